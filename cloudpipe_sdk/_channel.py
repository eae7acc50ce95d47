"""The one way to open a gRPC channel to a Cloudpipe server, for the SDK (sync and
asyncio), the `cloudpipe` CLI (through the SDK) and the HTTP gateway: TLS verified with
a CA file when one is given, else plain; messages up to the server's limit.

Example::

    channel = open_channel("localhost:50051", tls_ca="ca.pem")      # grpc.Channel
    channel = open_aio_channel("localhost:50051")                   # grpc.aio.Channel, in a loop
"""

from __future__ import annotations

import grpc
from grpc import aio

# The largest message either end sends: the server sets the same limit (cloudpipe_common.limits;
# tests/unit/test_packaging.py checks they agree). Our own constant, so the SDK needs
# nothing but its wire code.
MAX_MESSAGE_BYTES = 256 << 20

OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)


def _credentials(tls_ca: str) -> grpc.ChannelCredentials:
    with open(tls_ca, "rb") as handle:
        return grpc.ssl_channel_credentials(root_certificates=handle.read())


def open_channel(address: str, tls_ca: str = "") -> grpc.Channel:
    """A channel to `address`: TLS verified with the PEM file `tls_ca` when given."""
    if tls_ca:
        return grpc.secure_channel(address, _credentials(tls_ca), options=OPTIONS)
    return grpc.insecure_channel(address, options=OPTIONS)


def open_aio_channel(address: str, tls_ca: str = "") -> aio.Channel:
    """As `open_channel`, for grpc.aio (call it inside the event loop that will use it)."""
    if tls_ca:
        return aio.secure_channel(address, _credentials(tls_ca), options=OPTIONS)
    return aio.insecure_channel(address, options=OPTIONS)
