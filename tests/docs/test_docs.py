"""Every example of docs/sdk.md (```python blocks) and docs/cli.md (```sh blocks) runs
as it is, each block on its own, against a server of its own (the examples kill jobs),
in a virtual environment that has only the SDK wheel installed (as a user's would: the
checkout is not on the path). The inputs and outputs examples use a SeaweedFS of their
own (tests/transfers/seaweed.py), named to them by S3_* variables, as a user names theirs."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support import ROOT, ServerProcess, start_server
from tests.transfers.seaweed import ACCESS_KEY, SECRET_KEY, S3Server, start_s3_server
from tests.wheels import Venv

pytestmark = pytest.mark.docker
DOCS = ROOT / "docs"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(name: str, language: str) -> list[tuple[str, str]]:
    text = (DOCS / name).read_text()
    found = []
    for match in _BLOCK.finditer(text):
        if match.group(1) == language:
            line = text[: match.start()].count("\n") + 1
            found.append((f"{name}:{line}", match.group(2)))
    return found


# Images the examples build (docs/sdk.md, "An image with your packages"); removed once
# the server, and with it the warm containers on them, has stopped.
EXAMPLE_IMAGES = ("my/runner-click:1",)
EXAMPLE_BUCKET = "examples"


@pytest.fixture(scope="module")
def docs_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    s3 = start_s3_server(tmp_path_factory.mktemp("docs-seaweedfs"))
    s3.client().make_bucket(EXAMPLE_BUCKET)
    yield s3
    s3.stop()


@pytest.fixture(scope="module")
def docs_server(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: docker.DockerClient
) -> Iterator[ServerProcess]:
    existing = {image for image in EXAMPLE_IMAGES if _has_image(docker_engine, image)}
    # the examples' object store is on loopback, which a server refuses by default
    env = {"CLOUDPIPE_TRANSFER_ALLOW_PRIVATE_ADDRESSES": "true"}
    server = start_server(tmp_path_factory.mktemp("docs-server"), env=env)
    yield server
    assert server.stop() == 0, server.log
    for image in EXAMPLE_IMAGES:
        if image in existing:  # not ours to remove: it was there before (another run's)
            continue
        try:
            docker_engine.images.remove(image)
        except docker.errors.ImageNotFound:
            pass


def _has_image(engine: docker.DockerClient, image: str) -> bool:
    try:
        engine.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


OUTSIDE_THE_VENV = {"PYTHONPATH", "VIRTUAL_ENV"}


def environment(server: ServerProcess, workdir: Path, venv: Venv, s3: S3Server) -> dict[str, str]:
    return {
        "S3_ENDPOINT_URL": s3.endpoint,
        "S3_ACCESS_KEY_ID": ACCESS_KEY,
        "S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "S3_BUCKET": EXAMPLE_BUCKET,
        **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDPIPE_") and k not in OUTSIDE_THE_VENV},
        "CLOUDPIPE_ADDRESS": server.address,
        "CLOUDPIPE_API_KEY": server.api_key,
        "CLOUDPIPE_CONFIG": str(workdir / "no-config.toml"),
        "PATH": f"{venv.bin}:{os.environ.get('PATH', '')}",
    }


@pytest.mark.parametrize(("where", "code"), blocks("sdk.md", "python"), ids=lambda v: v if ":" in v else "")
def test_sdk_guide_example_runs(
    where: str, code: str, docs_server: ServerProcess, sdk_venv: Venv, tmp_path: Path, docs_s3: S3Server
) -> None:
    done = subprocess.run(
        [str(sdk_venv.python), "-c", code],
        cwd=tmp_path,
        env=environment(docs_server, tmp_path, sdk_venv, docs_s3),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize(("where", "code"), blocks("cli.md", "sh"), ids=lambda v: v if ":" in v else "")
def test_cli_reference_example_runs(
    where: str, code: str, docs_server: ServerProcess, sdk_venv: Venv, tmp_path: Path, docs_s3: S3Server
) -> None:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=tmp_path,
        env=environment(docs_server, tmp_path, sdk_venv, docs_s3),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, f"{where} failed:\n{done.stdout}\n{done.stderr}"


def test_every_guide_has_examples() -> None:
    assert len(blocks("sdk.md", "python")) >= 10
    assert len(blocks("cli.md", "sh")) >= 8
