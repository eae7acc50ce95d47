"""Gateway fixtures: a real server plus a real gateway process for the session (the
server on the Docker engine for `docker`-marked tests, with the fake executor for the others),
and gateways in front of a dead and of a silent gRPC address."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pytest

from tests.gateway.support import CLIENT_LABEL, CLIENT_LABEL_VALUE, PY2_IMAGE, GatewayProcess, start_gateway
from tests.support import JOB_LABEL, PerExecutor, ServerProcess, free_port, start_server

MAX_BODY = 1 << 20  # small, so the over-limit test stays cheap
CONCURRENT_JOBS = 2  # tests/gateway/test_kill.py fills both slots to keep a job queued


@dataclass
class Stack:
    server: ServerProcess
    gateway: GatewayProcess

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def key(self) -> str:
        return self.server.api_key


@pytest.fixture(scope="session")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PerExecutor[Stack]]:
    pool = PerExecutor(lambda fake: _stack(tmp_path_factory, fake))
    yield pool
    pool.close()


@pytest.fixture
def stack(stacks: PerExecutor[Stack], request: pytest.FixtureRequest) -> Stack:
    """A real server (jobs limited to CONCURRENT_JOBS at once) and a gateway in front of
    it: on the Docker engine for `docker`-marked tests, else with the fake executor."""
    return stacks.get(request)


@contextmanager
def _stack(tmp_path_factory: pytest.TempPathFactory, fake: bool) -> Iterator[Stack]:
    data_dir = tmp_path_factory.mktemp("gateway-server")
    server = start_server(data_dir, env={"CLOUDPIPE_MAX_CONCURRENT_JOBS": str(CONCURRENT_JOBS)}, fake=fake)
    try:
        gateway = start_gateway(server.address, data_dir, "--max-body-bytes", str(MAX_BODY))
    except BaseException:
        server.stop()
        raise
    yield Stack(server, gateway)
    try:
        httpx.post(f"{gateway.url}/v1/job/kill_all", auth=("admin", server.api_key), timeout=30)
        _wait_no_job_containers()
    finally:
        gateway_rc = gateway.stop()
        server_rc = server.stop()
    assert gateway_rc == 0, gateway.log
    assert server_rc == 0, server.log


def _wait_no_job_containers(timeout: float = 30) -> None:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception:
        return
    deadline = time.monotonic() + timeout

    def job_containers() -> list[object]:  # warm containers (pool label) live as long as their server
        # sparse: no inspect per container, so one removed meanwhile (another test's) is no error
        found = client.containers.list(all=True, filters={"label": JOB_LABEL}, sparse=True)
        return [c for c in found if "org.cloudpipe.pool" not in (c.attrs.get("Labels") or {})]

    while job_containers() and time.monotonic() < deadline:
        time.sleep(0.3)
    client.close()


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client authenticated as the admin account."""
    with httpx.Client(base_url=stack.url, auth=("admin", stack.key), timeout=30) as client:
        yield client


@pytest.fixture
def anon(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client that sends no credentials."""
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def dead_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway whose gRPC server address refuses connections."""
    gateway = start_gateway(f"127.0.0.1:{free_port()}", tmp_path_factory.mktemp("dead-gateway"))
    yield gateway
    assert gateway.stop() == 0, gateway.log


@pytest.fixture(scope="session")
def silent_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway whose gRPC server accepts TCP connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        gateway = start_gateway(address, tmp_path_factory.mktemp("silent-gateway"), "--rpc-timeout", "1")
        yield gateway
        assert gateway.stop() == 0, gateway.log


@pytest.fixture(scope="session")
def py2_docker() -> Iterator[object]:
    """The Docker engine, with the Python 2.7 runner image (multyvac 0.5.0 inside) present."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        pytest.fail(f"these tests need a running Docker engine: {exc}")
    try:
        client.images.get(PY2_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"{PY2_IMAGE} missing: run python runner_images/build.py --only python2")
    yield client
    left = client.containers.list(all=True, filters={"label": f"{CLIENT_LABEL}={CLIENT_LABEL_VALUE}"})
    for container in left:
        container.remove(force=True)
    client.close()
    assert not left, f"multyvac client containers left behind: {[c.name for c in left]}"


@pytest.fixture(scope="session")
def trustings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PerExecutor[GatewayProcess]]:
    pool = PerExecutor(lambda fake: _trusting(tmp_path_factory, fake))
    yield pool
    pool.close()


@pytest.fixture
def trusting(trustings: PerExecutor[GatewayProcess], request: pytest.FixtureRequest) -> GatewayProcess:
    """A gateway in front of a server that accepts every account name with any key
    (`--insecure-no-auth`): the spec's "trusting auth service" (7.4 #22), and a way to
    have several accounts until the accounts issue lands. Docker-backed for
    `docker`-marked tests, else with the fake executor."""
    return trustings.get(request)


@contextmanager
def _trusting(tmp_path_factory: pytest.TempPathFactory, fake: bool) -> Iterator[GatewayProcess]:
    data_dir = tmp_path_factory.mktemp("trusting-server")
    server = start_server(data_dir, env={"CLOUDPIPE_ALLOW_ANONYMOUS": "true"}, fake=fake)
    try:
        gateway = start_gateway(server.address, data_dir)
    except BaseException:
        server.stop()
        raise
    yield gateway
    gateway_rc = gateway.stop()
    assert server.stop() == 0, server.log
    assert gateway_rc == 0, gateway.log


@pytest.fixture
def as_account(trusting: GatewayProcess) -> Iterator[Callable[[str], httpx.Client]]:
    """`as_account(name)`: an HTTP client of the trusting gateway for account `name`."""
    clients: list[httpx.Client] = []

    def make(name: str) -> httpx.Client:
        client = httpx.Client(base_url=trusting.url, auth=(name, "any-key"), timeout=30)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
