"""The Node.js SDK (sdk-node/) against a real server: `npm ci`, the generated code's
staleness check, the TypeScript build, then node's own test runner over sdk-node/test/
(with CLOUDPIPE_ADDRESS / CLOUDPIPE_API_KEY of a server started here), and the Python
SDK reading the jobs the Node SDK made (and the other way round)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from cloudpipe_sdk import Client
from tests.support import ROOT, ServerProcess, start_server

pytestmark = pytest.mark.docker
SDK = ROOT / "sdk-node"
NODE_IMAGE = "cloudpipe/runner-node:latest"


def run(*cmd: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=SDK, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def built_sdk() -> Path:
    """sdk-node installed from its lock file and built (dist/)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("these tests need node and npm (Debian: apt-get install nodejs npm; scripts/setup.sh)")
    for step in (("npm", "ci", "--no-audit", "--no-fund"), ("npm", "run", "build")):
        done = run(*step)
        assert done.returncode == 0, f"{' '.join(step)} failed:\n{done.stdout}\n{done.stderr}"
    return SDK


@pytest.fixture(scope="module")
def node_server(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient
) -> Iterator[ServerProcess]:
    try:
        docker_engine.images.get(NODE_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.fail(f"runner image {NODE_IMAGE} missing: run python runner_images/build.py --only node")
    server = start_server(tmp_path_factory.mktemp("node-server"))
    yield server
    assert server.stop() == 0, server.log


def node_environment(server: ServerProcess, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDPIPE_")},
        "CLOUDPIPE_ADDRESS": server.address,
        "CLOUDPIPE_API_KEY": server.api_key,
        **extra,
    }


def test_generated_node_code_is_fresh(built_sdk: Path) -> None:
    done = run("npm", "run", "--silent", "gen:check")
    assert done.returncode == 0, done.stdout + done.stderr


def test_node_sdk_suite_passes_and_jobs_cross_sdks(built_sdk: Path, node_server: ServerProcess, tmp_path: Path) -> None:
    node_jobs = tmp_path / "node-jobs.json"
    with node_server.client() as client:
        python_job = client.submit(lambda: print("from python") or "python result")
        assert python_job.result(timeout=120) == "python result"
        env = node_environment(
            node_server, CLOUDPIPE_TEST_PYTHON_JOB=str(python_job.id), CLOUDPIPE_TEST_NODE_JOBS=str(node_jobs)
        )
        done = run("npm", "test", env=env, timeout=900)
        report = f"{done.stdout}\n{done.stderr}"
        assert done.returncode == 0, report
        assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout, report

        ids = json.loads(node_jobs.read_text())
        shell = client.get(ids["shell"])
        assert shell.result(timeout=60) == b"from node\n"
        assert shell.status.value == "done"
        function = client.get(ids["function"])
        envelope = json.loads(function.result(timeout=60))  # the Node runner's JSON envelope, as bytes
        assert envelope["ok"] is True and envelope["value"] == {"doubled": 42}
        named = client.list(names=["interop-node-shell", "interop-node-function"])
        assert sorted(job.id for job in named) == sorted(ids.values())


def test_grpc_errors_of_a_bad_key_are_auth_errors_in_both_sdks(built_sdk: Path, node_server: ServerProcess) -> None:
    from cloudpipe_sdk import AuthError

    with Client(node_server.address, api_key="wrong") as stranger, pytest.raises(AuthError):
        stranger.get(1)
    script = (
        "import { Client, AuthError } from './dist/index.js';"
        "const c = new Client(undefined, { apiKey: 'wrong' });"
        "try { await c.get(1); process.exit(2); } catch (e) { process.exit(e instanceof AuthError ? 0 : 3); }"
    )
    done = run("node", "--input-type=module", "-e", script, env=node_environment(node_server))
    assert done.returncode == 0, done.stdout + done.stderr


_BLOCK = re.compile(r"^```js\n(.*?)^```", re.MULTILINE | re.DOTALL)


def js_blocks() -> list[tuple[str, str]]:
    found = []
    for name in ("docs/node.md", "README.md"):
        found += [(f"{name}#{i}", code) for i, code in enumerate(_BLOCK.findall((ROOT / name).read_text()))]
    return found


@pytest.mark.parametrize(("where", "code"), js_blocks(), ids=[where for where, _ in js_blocks()])
def test_node_guide_example_runs(
    where: str, code: str, built_sdk: Path, node_server: ServerProcess, tmp_path: Path
) -> None:
    """Each block runs as an ES module that imports the package by its name."""
    (tmp_path / "node_modules" / "@cloudpipe").mkdir(parents=True)
    (tmp_path / "node_modules" / "@cloudpipe" / "sdk").symlink_to(built_sdk)
    (tmp_path / "example.mjs").write_text(code)
    done = subprocess.run(
        ["node", "example.mjs"],
        cwd=tmp_path,
        env=node_environment(node_server),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"
