"""HTTP gateway wire-compatible with the multyvac 0.5.0 client (see README.md here).

app.py       routing and wiring (Starlette, gRPC channel)
multyvac.py  the wire contract: envelopes, codes, payloads, job JSON
golang.py    the Go 1.4 parsers whose behaviour and messages the contract embeds
config.py    GatewaySettings, read from the environment in one place
"""

from http_gateway.app import create_app
from http_gateway.config import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]
