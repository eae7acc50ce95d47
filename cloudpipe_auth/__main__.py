"""`cloudpipe-auth` / `python -m cloudpipe_auth`: the auth service.

Two HTTPS listeners in one process, as the original auth-store: the internal one
requires a client certificate signed by the internal CA (mutual TLS), the external one
is plain TLS. Both stop gracefully on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import ssl
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from cloudpipe_auth.config import AuthServiceSettings
from cloudpipe_auth.core import AccountService, Policy
from cloudpipe_auth.credentials import PasswordHasher
from cloudpipe_auth.external import create_external_app
from cloudpipe_auth.internal import create_internal_app
from cloudpipe_auth.sqlite import open_account_store
from cloudpipe_common.errors import CloudpipeError
from cloudpipe_common.listen import split_host_port
from cloudpipe_common.logs import FORMATS, configure_logging, log_format
from cloudpipe_common.ratelimit import FailureLimiter, LimiterConfig

log = logging.getLogger("cloudpipe_auth")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to us: two of them share one loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _uvicorn(
    app: ASGIApp, listen: str, variable: str, cert: Path, key: Path, ca: Path | None, trusted_proxies: str = ""
) -> _Server:
    for path in (cert, key, *([ca] if ca else [])):
        if not path.is_file():
            raise CloudpipeError(f"{path} does not exist (run `cloudpipe pki init DIR`)")
    try:
        host, port = split_host_port(listen)
    except ValueError as exc:
        raise CloudpipeError(f"{variable}: {exc}") from None
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # The failure limiter's source is the client address, taken from X-Forwarded-For
        # when the peer is one of these (the HTTP gateway relaying the web UI's sign-ins);
        # unset: uvicorn's default, $FORWARDED_ALLOW_IPS or 127.0.0.1.
        proxy_headers=True,
        forwarded_allow_ips=trusted_proxies or None,
        ssl_certfile=str(cert),
        ssl_keyfile=str(key),
        ssl_ca_certs=str(ca) if ca else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if ca else ssl.CERT_NONE,
        log_config=None,
        access_log=False,  # uvicorn's access log prints query strings: AccessLog does it safely
        server_header=False,
        lifespan="off",
        loop="asyncio",
        timeout_graceful_shutdown=5,
    )
    return _Server(config)


async def serve(settings: AuthServiceSettings) -> None:
    store = open_account_store(settings.resolved_store_url)
    await store.initialize()
    limiter = FailureLimiter(LimiterConfig(settings.failure_burst, settings.failure_refill_seconds))
    policy = Policy(
        min_password_length=settings.min_password_length,
        open_signup=settings.open_signup,
        session_ttl=timedelta(seconds=settings.session_ttl),
        admin_token=settings.admin_token,
        reserved_names=tuple(name.strip() for name in settings.reserved_names.split(",") if name.strip()),
    )
    service = AccountService(store, PasswordHasher(), limiter, policy, lambda: datetime.now(UTC))
    internal = _uvicorn(
        create_internal_app(service),
        settings.internal_listen,
        "CLOUDPIPE_AUTH_INTERNAL_LISTEN",
        settings.path("internal_cert", "auth-store-cert.pem"),
        settings.path("internal_key", "auth-store-key.pem"),
        settings.path("ca", "ca.pem"),
    )
    external = _uvicorn(
        create_external_app(service),
        settings.external_listen,
        "CLOUDPIPE_AUTH_EXTERNAL_LISTEN",
        settings.path("external_cert", "external-cert.pem"),
        settings.path("external_key", "external-key.pem"),
        None,
        settings.trusted_proxies,
    )
    loop = asyncio.get_running_loop()

    def stop() -> None:
        internal.should_exit = external.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    log.info(
        "auth service: internal (mutual TLS) on %s, external on %s, store %s",
        settings.internal_listen,
        settings.external_listen,
        settings.resolved_store_url,
    )
    try:
        await asyncio.gather(internal.serve(), external.serve())
    finally:
        await store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cloudpipe-auth",
        description="Accounts and API keys for Cloudpipe. Every flag has a CLOUDPIPE_AUTH_<NAME> variable.",
    )
    parser.add_argument("--internal-listen", help="HOST:PORT of the mutual-TLS API (127.0.0.1:9001)")
    parser.add_argument("--external-listen", help="HOST:PORT of the people's API (127.0.0.1:9000)")
    parser.add_argument("--pki-dir", type=Path, help="directory written by `cloudpipe pki init`")
    parser.add_argument("--data-dir", type=Path, help="where auth.db lives")
    parser.add_argument("--store-url", help="sqlite:///PATH (default <data-dir>/auth.db)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--log-format",
        type=str.lower,
        choices=FORMATS,
        help="text (the default) or json, one object a line (CLOUDPIPE_LOG_FORMAT)",
    )
    args = vars(parser.parse_args(argv))
    chosen_format = args.pop("log_format")
    try:
        settings = AuthServiceSettings.from_env(**args)
        fmt = log_format(os.environ, chosen_format)
    except CloudpipeError as exc:
        print(f"cloudpipe-auth: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, fmt)
    try:
        asyncio.run(serve(settings))
    except CloudpipeError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
