"""Auth fixtures: one PKI and one auth service process for the session, and a cloudpipe
server process that checks API keys with it over mutual TLS."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cloudpipe_auth import pki
from tests.auth.support import AuthProcess, start_auth_service
from tests.gateway.support import GatewayProcess, start_gateway
from tests.support import PerExecutor, ServerProcess, start_server

ADMIN_TOKEN = "admin-token-for-tests-" + "x" * 20


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki") / "certs"
    pki.init(directory)
    return directory


@pytest.fixture(scope="session")
def auth_service(pki_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthProcess]:
    # every test reaches it from loopback, one source bucket for the whole session: the
    # default burst (10, one back every 6 s) let other tests' failed logins turn one
    # test's admin call into a 429 (seen in CI). The limiter is tested on services of its
    # own (test_rate_limits.py, the trusted-proxy test in test_ui_accounts.py).
    env = {"CLOUDPIPE_AUTH_ADMIN_TOKEN": ADMIN_TOKEN, "CLOUDPIPE_AUTH_FAILURE_BURST": "10000"}
    service = start_auth_service(pki_dir, tmp_path_factory.mktemp("auth"), env)
    yield service
    assert service.stop() == 0, service.log


@pytest.fixture(scope="session")
def auth_servers(
    auth_service: AuthProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PerExecutor[ServerProcess]]:
    @contextmanager
    def make(fake: bool) -> Iterator[ServerProcess]:
        server = start_server(
            tmp_path_factory.mktemp("auth-server"),
            env=auth_service.server_env(CLOUDPIPE_AUTH_CACHE_TTL="0", CLOUDPIPE_MAX_CONCURRENT_JOBS="2"),
            fake=fake,
        )
        yield server
        assert server.stop() == 0, server.log

    pool = PerExecutor(make)
    yield pool
    pool.close()


@pytest.fixture
def auth_server(auth_servers: PerExecutor[ServerProcess], request: pytest.FixtureRequest) -> ServerProcess:
    """A server whose API keys are checked by `auth_service`, with no answer cache (so a
    revocation shows at once) and two jobs at a time: on the Docker engine for
    `docker`-marked tests, else with the fake executor."""
    return auth_servers.get(request)


@pytest.fixture(scope="session")
def auth_gateways(
    auth_servers: PerExecutor[ServerProcess], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PerExecutor[GatewayProcess]]:
    @contextmanager
    def make(fake: bool) -> Iterator[GatewayProcess]:
        process = start_gateway(auth_servers.kind(fake).address, tmp_path_factory.mktemp("auth-gateway"))
        yield process
        assert process.stop() == 0, process.log

    pool = PerExecutor(make)
    yield pool
    pool.close()


@pytest.fixture
def auth_gateway(auth_gateways: PerExecutor[GatewayProcess], request: pytest.FixtureRequest) -> GatewayProcess:
    """The multyvac HTTP gateway in front of `auth_server`."""
    return auth_gateways.get(request)
