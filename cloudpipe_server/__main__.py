"""`cloudpipe-server`: run the control plane until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from cloudpipe_common.logs import FORMATS, configure_logging, log_format
from cloudpipe_common.memory import limit_malloc_arenas
from cloudpipe_server.app import rotate_secrets_key, start_server
from cloudpipe_server.config import Settings
from cloudpipe_server.errors import CloudpipeError
from cloudpipe_server.executors.base import Executor

ExecutorFactory = Callable[[Settings], Executor]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cloudpipe-server",
        description="Run the Cloudpipe control plane. Every flag has a CLOUDPIPE_<NAME> environment variable.",
    )
    parser.add_argument("--listen", help="host:port to serve gRPC on (default 127.0.0.1:50051)")
    parser.add_argument("--data-dir", type=Path, help="where the SQLite store and admin key live")
    parser.add_argument("--store-url", help="sqlite:///PATH (default: <data-dir>/cloudpipe.db)")
    parser.add_argument("--max-concurrent-jobs", type=int, help="containers run at once by this server")
    parser.add_argument("--default-image", help="image for jobs that name none")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    parser.add_argument(
        "--log-format",
        type=str.lower,
        choices=FORMATS,
        help="text (the default) or json, one object a line (CLOUDPIPE_LOG_FORMAT)",
    )
    parser.add_argument("--shutdown-grace", type=float, default=10.0, help="seconds running jobs get on SIGTERM")
    parser.add_argument(
        "--rotate-secrets-key",
        action="store_true",
        help="re-encrypt every stored secret with a new key (in the key file), then exit",
    )
    parser.add_argument(
        "--insecure-no-auth",
        action="store_true",
        default=None,
        dest="allow_anonymous",
        help="accept every caller without credentials (local experiments only)",
    )
    return parser.parse_args(argv)


async def serve(settings: Settings, shutdown_grace: float, executor: ExecutorFactory | None = None) -> None:
    running = await start_server(settings, executor=executor(settings) if executor is not None else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop(shutdown_grace)


def main(argv: list[str] | None = None, *, executor: ExecutorFactory | None = None) -> int:
    """Run the server; `executor` builds the executor from the settings instead of the
    Docker one (tests pass `cloudpipe_server.executors.fake.FakeExecutor`)."""
    limit_malloc_arenas(os.environ)  # before any thread starts: see cloudpipe_common/memory.py
    args = parse_args(argv)
    try:
        settings = Settings.from_env(
            listen=args.listen,
            data_dir=args.data_dir,
            store_url=args.store_url,
            max_concurrent_jobs=args.max_concurrent_jobs,
            default_image=args.default_image,
            log_level=args.log_level,
            allow_anonymous=args.allow_anonymous,
        )
        fmt = log_format(os.environ, args.log_format)
    except CloudpipeError as exc:
        print(f"cloudpipe-server: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, fmt)
    if args.rotate_secrets_key:
        try:
            count = asyncio.run(rotate_secrets_key(settings))
        except CloudpipeError as exc:
            print(f"cloudpipe-server: {exc}", file=sys.stderr)
            return 1
        print(f"secrets key rotated: {count} secrets re-encrypted")
        return 0
    try:
        asyncio.run(serve(settings, args.shutdown_grace, executor))
    except CloudpipeError as exc:
        logging.getLogger("cloudpipe_server").error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
