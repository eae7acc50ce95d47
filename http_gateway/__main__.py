"""`python -m http_gateway` / `cloudpipe-gateway`: serve the multyvac HTTP API with uvicorn.

Flags override the environment (`CLOUDPIPE_GATEWAY_*`, `CLOUDPIPE_ADDRESS`); see
`http_gateway.config.GatewaySettings`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

import uvicorn

from cloudpipe_common.errors import InvalidArgument
from cloudpipe_common.logs import FORMATS, configure_logging, log_format
from cloudpipe_common.memory import limit_malloc_arenas
from http_gateway.app import create_app
from http_gateway.config import GatewaySettings, SettingsError


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cloudpipe-gateway", description="HTTP gateway for multyvac 0.5.0 clients, in front of a Cloudpipe server."
    )
    parser.add_argument("--listen", help="HOST:PORT to serve HTTP on (CLOUDPIPE_GATEWAY_LISTEN, 127.0.0.1:8000)")
    parser.add_argument("--server", help="gRPC address of the Cloudpipe server (CLOUDPIPE_ADDRESS, localhost:50051)")
    parser.add_argument("--default-image", help="image of jobs without a layer (CLOUDPIPE_GATEWAY_DEFAULT_IMAGE)")
    parser.add_argument("--max-body-bytes", type=int, help="largest request body (CLOUDPIPE_GATEWAY_MAX_BODY_BYTES)")
    parser.add_argument(
        "--max-concurrency", type=int, help="requests served at once, 503 beyond (CLOUDPIPE_GATEWAY_MAX_CONCURRENCY)"
    )
    parser.add_argument(
        "--rpc-timeout", type=float, help="deadline of each gRPC call, s (CLOUDPIPE_GATEWAY_RPC_TIMEOUT)"
    )
    parser.add_argument("--auth-address", help="address reported by /v1/auth_service (CLOUDPIPE_GATEWAY_AUTH_ADDRESS)")
    parser.add_argument("--auth-style", help="style reported by /v1/auth_service (CLOUDPIPE_GATEWAY_AUTH_STYLE, null)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING... (CLOUDPIPE_GATEWAY_LOG_LEVEL)")
    parser.add_argument(
        "--log-format",
        type=str.lower,
        choices=FORMATS,
        help="text (the default) or json, one object a line (CLOUDPIPE_LOG_FORMAT)",
    )
    parser.add_argument(
        "--access-log", action="store_true", default=None, help="log every request (CLOUDPIPE_GATEWAY_ACCESS_LOG)"
    )
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (CLOUDPIPE_GATEWAY_TLS_CERT)")
    parser.add_argument("--tls-key", help="and this key (CLOUDPIPE_GATEWAY_TLS_KEY)")
    parser.add_argument("--server-tls-ca", help="CA of a TLS gRPC server (CLOUDPIPE_TLS_CA)")
    parser.add_argument(
        "--auth-url",
        help="the auth service's people's listener, for the UI's accounts pages (CLOUDPIPE_GATEWAY_AUTH_URL)",
    )
    parser.add_argument("--auth-ca", help="CA of the auth service's certificate (CLOUDPIPE_GATEWAY_AUTH_CA)")
    parser.add_argument(
        "--sync-offer-seconds",
        type=float,
        help="how long the SSH port of a multyvac volume sync waits (CLOUDPIPE_GATEWAY_SYNC_OFFER_SECONDS, 120)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    limit_malloc_arenas(os.environ)  # before any thread starts: see cloudpipe_common/memory.py
    args = vars(parse_args(argv))
    chosen_format = args.pop("log_format")
    try:
        settings = GatewaySettings.from_env(**args)
        fmt = log_format(os.environ, chosen_format)
    except (SettingsError, InvalidArgument) as exc:
        print(f"cloudpipe-gateway: {exc}", file=sys.stderr)
        return 2
    level = settings.log_level.upper()
    configure_logging(level, fmt)
    host, port = settings.host_port
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        log_level=level.lower(),
        access_log=settings.access_log,
        server_header=False,  # the Go server sent none
        limit_concurrency=settings.max_concurrency,
        loop="asyncio",  # grpc.aio runs on the standard event loop
        lifespan="on",
        timeout_graceful_shutdown=10,
        ssl_certfile=settings.tls_cert or None,
        ssl_keyfile=settings.tls_key or None,
    )
    # uvicorn stops gracefully on SIGTERM/SIGINT, then re-raises the signal to the handler
    # that was installed before it: make that one a no-op so a requested stop exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop_requested)
    uvicorn.Server(config).run()
    return 0


def _stop_requested(signum: int, frame: object) -> None:
    logging.getLogger(__name__).info("stopped by signal %d", signum)


if __name__ == "__main__":
    sys.exit(main())
