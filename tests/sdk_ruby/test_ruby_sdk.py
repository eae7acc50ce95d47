"""The Ruby groundwork (sdk-ruby/) against a real server: the generated stubs'
staleness check, the minitest suite (with a Python job for it to read), and every
```ruby block of docs/ruby.md."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support import ROOT, ServerProcess, start_server

pytestmark = pytest.mark.docker
SDK = ROOT / "sdk-ruby"
_BLOCK = re.compile(r"^```ruby\n(.*?)^```", re.MULTILINE | re.DOTALL)


def needs_ruby() -> None:
    for tool in ("ruby", "grpc_tools_ruby_protoc"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} missing (Debian: apt-get install ruby ruby-grpc ruby-google-protobuf ruby-grpc-tools)")


@pytest.fixture(scope="module")
def ruby_server(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient
) -> Iterator[ServerProcess]:
    needs_ruby()
    server = start_server(tmp_path_factory.mktemp("ruby-server"))
    yield server
    assert server.stop() == 0, server.log


def environment(server: ServerProcess, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDPIPE_")},
        "CLOUDPIPE_ADDRESS": server.address,
        "CLOUDPIPE_API_KEY": server.api_key,
        **extra,
    }


def test_generated_ruby_stubs_are_fresh() -> None:
    needs_ruby()
    done = subprocess.run(["ruby", "scripts/gen.rb", "--check"], cwd=SDK, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruby_client_suite_passes(ruby_server: ServerProcess) -> None:
    with ruby_server.client() as client:
        python_job = client.submit(lambda: "from python")
        assert python_job.result(timeout=120) == "from python"
    env = environment(ruby_server, CLOUDPIPE_TEST_PYTHON_JOB=str(python_job.id))
    done = subprocess.run(
        ["ruby", "-w", "-Ilib", "-Itest", "test/test_client.rb"],
        cwd=SDK,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert re.search(r"\d+ runs, \d+ assertions, 0 failures, 0 errors, 0 skips", report), report


@pytest.mark.parametrize("index", range(len(_BLOCK.findall((ROOT / "docs/ruby.md").read_text()))))
def test_ruby_guide_example_runs(index: int, ruby_server: ServerProcess, tmp_path: Path) -> None:
    code = _BLOCK.findall((ROOT / "docs/ruby.md").read_text())[index]
    done = subprocess.run(
        ["ruby", "-I", str(SDK / "lib"), "-e", code],
        cwd=tmp_path,
        env=environment(ruby_server),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, f"docs/ruby.md block {index} failed:\n{done.stdout}\n{done.stderr}"
