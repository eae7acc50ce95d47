"""The auth service (`cloudpipe-auth`): accounts, passwords and API keys behind two
HTTPS listeners, compatible with the original auth-store (spec 5.3)."""

from cloudpipe_server.auth.service.config import AuthServiceSettings
from cloudpipe_server.auth.service.core import AccountService, NewKey, Policy
from cloudpipe_server.auth.service.external import create_external_app
from cloudpipe_server.auth.service.internal import create_internal_app
from cloudpipe_server.auth.service.store import Account, AccountStore, ApiKey

__all__ = [
    "Account",
    "AccountService",
    "AccountStore",
    "ApiKey",
    "AuthServiceSettings",
    "NewKey",
    "Policy",
    "create_external_app",
    "create_internal_app",
]
