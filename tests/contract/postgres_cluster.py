"""A real, throwaway PostgreSQL cluster for the contract tests and the benchmarks.

`start_cluster()` runs Debian's initdb/pg_ctl (or those in $CLOUDPIPE_PG_BIN) into a fresh temporary directory on a free
loopback port (unix socket in that directory too) and `ThrowawayCluster.stop()` removes
everything again. PostgreSQL refuses to run as root, so as root the binaries run as the
`postgres` OS user (`runuser -u postgres --`) and the directory is handed to that user.
`fresh_database()` gives each test (or benchmark run) its own database on any server;
`benchmark_server()` is the server a benchmark uses.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path


def _debian_pg_bin() -> Path:
    """The newest Debian PostgreSQL server's bin/ (15 here), or the 15 path if none is installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]), reverse=True)
    return found[0].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = Path(os.environ.get("CLOUDPIPE_PG_BIN") or _debian_pg_bin())

# Settings for a cluster that only lives for a test session: durability costs time and buys nothing.
THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresMissing(RuntimeError):
    """The PostgreSQL server binaries are not installed here."""


@dataclass
class ThrowawayCluster:
    """A running cluster; the superuser `postgres` logs in without a password (trust)."""

    root: Path
    port: int
    _run_as: list[str]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            subprocess.run(
                [*self._run_as, str(PG_BIN / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop"],
                check=True,
                capture_output=True,
                timeout=60,
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(*, durable: bool = False) -> ThrowawayCluster:
    """initdb + pg_ctl start on a free loopback port. `durable=True` keeps PostgreSQL's
    default fsync/synchronous_commit (what a production server runs with)."""
    initdb, pg_ctl = PG_BIN / "initdb", PG_BIN / "pg_ctl"
    if not (initdb.exists() and pg_ctl.exists()):
        raise PostgresMissing(
            f"PostgreSQL server binaries not found in {PG_BIN}: run scripts/test.sh (it installs and starts "
            "what the tests need), or set CLOUDPIPE_TEST_POSTGRES_URL to a server the tests may create databases on"
        )
    run_as: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="cloudpipe-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    try:
        init = [str(initdb), "-D", str(root / "data"), "-A", "trust", "-U", "postgres", "--no-sync"]
        subprocess.run(
            [*run_as, *init, "-E", "UTF8", "--locale=C.UTF-8"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        port = _free_port()
        options = [f"-p {port}", f"-k {root}", "-c listen_addresses=127.0.0.1", "-c max_connections=200"]
        if not durable:
            options += [f"-c {name}={value}" for name, value in THROWAWAY_SETTINGS.items()]
        start = [str(pg_ctl), "-D", str(root / "data"), "-l", str(root / "server.log"), "-w", "-t", "60"]
        subprocess.run(
            [*run_as, *start, "-o", " ".join(options), "start"],
            check=True,
            capture_output=True,
            timeout=90,
        )
    except subprocess.CalledProcessError as exc:
        log = root / "server.log"
        detail = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"{exc.cmd[len(run_as)]} failed: {exc.stderr.decode()}{detail}") from exc
    return ThrowawayCluster(root, port, run_as)


@contextmanager
def fresh_database(admin_url: str, prefix: str = "cloudpipe_test") -> Iterator[str]:
    """CREATE DATABASE on the server of `admin_url`; yields a URL to it; drops it after."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"{prefix}_{secrets.token_hex(6)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def database_url(conninfo: str, scheme: str = "postgresql") -> str:
    """The `scheme://user[:password]@host:port/dbname` URL of a conninfo string (what
    `fresh_database` yields), the form CLOUDPIPE_STORE_URL takes."""
    from urllib.parse import quote

    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(conninfo)
    login = ":".join(quote(str(parts[key]), safe="") for key in ("user", "password") if parts.get(key))
    return f"{scheme}://{login}@{parts['host']}:{parts['port']}/{parts['dbname']}"


def benchmark_server(stack: ExitStack) -> str:
    """A superuser URL for a benchmark: `CLOUDPIPE_TEST_POSTGRES_URL` when set, else a
    throwaway cluster with PostgreSQL's default durability, stopped with `stack`."""
    external = os.environ.get("CLOUDPIPE_TEST_POSTGRES_URL")
    if external:
        return external
    cluster = start_cluster(durable=True)
    stack.callback(cluster.stop)
    return cluster.url()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
