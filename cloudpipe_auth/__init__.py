"""The auth service (`cloudpipe-auth`): accounts, passwords and API keys behind two
HTTPS listeners, compatible with the original auth-store (spec 5.3), and the internal
PKI (`pki`, `cloudpipe pki init`).

A program of its own: it imports only `cloudpipe_common`, never the server, and the
server reaches it only over the wire (`cloudpipe_server.auth.remote`)."""

from cloudpipe_auth.config import AuthServiceSettings
from cloudpipe_auth.core import AccountService, NewKey, Policy
from cloudpipe_auth.external import create_external_app
from cloudpipe_auth.internal import create_internal_app
from cloudpipe_auth.store import Account, AccountStore, ApiKey

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
