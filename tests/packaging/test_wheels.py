"""Two distributions from this repository, built with `python -m build` and installed
from their wheels into new virtual environments: `cloudpipe-sdk` (the SDK and the CLI,
nothing of the server) and `cloudpipe` (the server, the auth service and the gateway,
which requires the SDK). The SDK runs on every Python it supports that this machine has."""

from __future__ import annotations

import glob
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.support import ROOT, start_server
from tests.wheels import SERVER_ONLY, Venv, build_wheel, new_venv, run, sdk_wheel

EVERY_MODULE = """
import importlib, pkgutil, cloudpipe_sdk
for module in pkgutil.iter_modules(cloudpipe_sdk.__path__):
    importlib.import_module("cloudpipe_sdk." + module.name)
"""
FUNCTION_JOB = """
from cloudpipe_sdk import Client
import sys
with Client(sys.argv[1], api_key=sys.argv[2]) as client:
    job = client.submit(pow, 2, 10)
    print(job.result(timeout=120), job.snapshot.image)
"""
SHELL_JOB = """
from cloudpipe_sdk import Client
import sys
with Client(sys.argv[1], api_key=sys.argv[2]) as client:
    job = client.shell("echo hello from $(uname -s)")
    print(job.result(timeout=120).decode().strip())
"""


def test_the_sdk_wheel_installs_alone(sdk_venv: Venv) -> None:
    installed = sdk_venv.distributions()
    print(f"\nSDK venv: {len(installed)} distributions: {sorted(installed)}")
    assert "cloudpipe-sdk" in installed
    assert not SERVER_ONLY & set(installed), sorted(SERVER_ONLY & set(installed))
    assert len(installed) <= 15
    server_side = "('cloudpipe_server', 'http_gateway', 'cloudpipe_auth', 'cloudpipe_common')"
    probe = f"import importlib.util as u; print([m for m in {server_side} if u.find_spec(m)])"
    assert run([str(sdk_venv.python), "-c", probe], cwd="/").strip() == "[]"
    assert "Run shell commands" in run([str(sdk_venv.bin / "cloudpipe"), "--help"], cwd="/")


def test_the_server_wheel_requires_the_sdk_and_carries_none_of_it(tmp_path: Path) -> None:
    wheel = build_wheel(ROOT, tmp_path / "dist")
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        (metadata,) = (name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        requires = [line for line in archive.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]
        assert any(name.startswith("http_gateway/ui/") for name in archive.namelist())
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    assert "Requires-Dist: cloudpipe-sdk==0.1.0" in requires
    assert {"cloudpipe_server", "cloudpipe_auth", "http_gateway", "cloudpipe_common"} <= tops
    assert not {"cloudpipe_sdk", "cloudpipe_proto"} & tops

    venv = new_venv(tmp_path / "venv", sdk_wheel(tmp_path / "dist"), wheel)
    assert "--listen" in run([str(venv.bin / "cloudpipe"), "server", "--help"], cwd="/")
    assert "--listen" in run([str(venv.bin / "cloudpipe-server"), "--help"], cwd="/")


# The runners runner_images/build.py makes for Pythons other than the default's.
RUNNERS = {"3.13": "cloudpipe/runner-python3.13:latest"}


def interpreter(minor: str) -> str | None:
    """An interpreter of Python `minor` where the machine has one (pyenv's, or on PATH
    outside pyenv's shims, which name versions that are not selected)."""
    built = sorted(glob.glob(f"/root/.pyenv/versions/{minor}.*/bin/python3"))
    on_path = shutil.which(f"python{minor}")
    return built[-1] if built else (on_path if on_path and "/shims/" not in on_path else None)


@pytest.mark.docker
@pytest.mark.parametrize("minor", ["3.10", "3.12", "3.13"])
def test_the_sdk_runs_a_job_on_another_python(minor: str, tmp_path: Path) -> None:
    python = interpreter(minor)
    if python is None:
        pytest.skip(f"no Python {minor} on this machine")
    venv = new_venv(tmp_path / "venv", sdk_wheel(tmp_path / "dist"), python=python)
    run([str(venv.python), "-c", EVERY_MODULE], cwd="/")
    server = start_server(tmp_path / "server")
    try:
        said = run([str(venv.python), "-c", SHELL_JOB, server.address, server.api_key], cwd="/")
        env = {"PATH": os.environ["PATH"], "CLOUDPIPE_ADDRESS": server.address, "CLOUDPIPE_API_KEY": server.api_key}
        listed = run([str(venv.bin / "cloudpipe"), "ls", "--json"], cwd="/", env=env)
        if minor in RUNNERS:  # a function job runs in the runner of the client's Python, unasked
            assert run([str(venv.python), "-c", FUNCTION_JOB, server.address, server.api_key], cwd="/").split() == [
                "1024",
                RUNNERS[minor],
            ]
    finally:
        assert server.stop() == 0, server.log
    assert said.strip() == "hello from Linux"
    assert "echo hello from" in listed
