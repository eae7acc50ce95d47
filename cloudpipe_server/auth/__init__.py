"""Who is calling: principals and the authenticators that produce them (static admin,
anonymous, a chain, and the client of the auth service's internal API in `remote`).

The auth service itself is a separate program, `cloudpipe_auth`; this package holds only
what the server needs to authenticate its callers."""

from cloudpipe_server.auth.base import Authenticator, Principal, Standing
from cloudpipe_server.auth.chain import ChainAuthenticator
from cloudpipe_server.auth.static import AnonymousAuthenticator, StaticAdminAuthenticator

__all__ = [
    "AnonymousAuthenticator",
    "Authenticator",
    "ChainAuthenticator",
    "Principal",
    "Standing",
    "StaticAdminAuthenticator",
]
