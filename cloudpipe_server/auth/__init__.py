"""Who is calling: principals and the authenticators that produce them."""

from cloudpipe_server.auth.base import Authenticator, Principal
from cloudpipe_server.auth.chain import ChainAuthenticator
from cloudpipe_server.auth.static import AnonymousAuthenticator, StaticAdminAuthenticator

__all__ = [
    "AnonymousAuthenticator",
    "Authenticator",
    "ChainAuthenticator",
    "Principal",
    "StaticAdminAuthenticator",
]
