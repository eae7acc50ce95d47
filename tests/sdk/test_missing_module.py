"""A job that needs a package its image lacks fails with MissingModule (a JobFailed and a
ModuleNotFoundError) naming the module, the image and the fix; an image built FROM the
runner with that package, passed as `image=`, runs the same call. Real server, real
Docker runner, a real `docker build`."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import docker
import pytest

from cloudpipe_sdk import Client, JobFailed, JobStatus, MissingModule, RemoteTraceback
from tests.cli.support import cloudpipe
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


def test_an_installed_package_missing_in_the_image_is_named_with_the_fix(client: Client) -> None:
    job = client.submit(click.style, "hi", bold=True)  # click is installed here, so pickled by reference
    with pytest.raises(MissingModule) as raised:
        job.result(timeout=60)
    missing = raised.value
    assert isinstance(missing, JobFailed) and isinstance(missing, ModuleNotFoundError)
    assert missing.module == missing.name == "click" and missing.job_id == job.id
    assert missing.status == JobStatus.ERROR.value
    assert missing.image == job.snapshot.image == "cloudpipe/runner-python3:latest"  # the server's default
    message = str(missing)
    assert "'click' is not installed in the image cloudpipe/runner-python3:latest" in message
    assert "FROM cloudpipe/runner-python3" in message and "image=" in message
    assert isinstance(missing.__cause__, RemoteTraceback)
    assert "cannot unpickle the job payload" in missing.remote_traceback
    assert isinstance(job.exception(timeout=5), MissingModule)


def test_a_function_importing_a_missing_module_raises_missing_module(client: Client) -> None:
    def needs_a_package() -> None:
        import cloudpipe_no_such_package  # type: ignore[import-not-found]  # noqa: F401

    with pytest.raises(MissingModule) as raised:
        client.with_options(image="cloudpipe/runner-python3").submit(needs_a_package).result(timeout=60)
    assert raised.value.module == "cloudpipe_no_such_package"
    assert raised.value.image == "cloudpipe/runner-python3"
    assert "needs_a_package" in raised.value.remote_traceback
    with pytest.raises(ModuleNotFoundError):  # code that catches ModuleNotFoundError still does
        raise raised.value


def test_the_cli_names_the_missing_module(server: ServerProcess, tmp_path: Path) -> None:
    done = cloudpipe(server, "submit", "--wait", "click:style", "hi", cwd=tmp_path)
    assert done.exit_code == 1
    assert "'click' is not installed in the image" in done.stderr, done.stderr


@pytest.fixture
def image_with_click(docker_engine: docker.DockerClient, tmp_path: Path) -> Iterator[str]:
    """What docs/sdk.md tells users to do: an image FROM the runner that has the package
    (here copied in from this interpreter, since the build has no package index)."""
    context = tmp_path / "image"
    context.mkdir()
    shutil.copytree(Path(click.__file__).parent, context / "click")
    (context / "Dockerfile").write_text(
        "FROM cloudpipe/runner-python3\nCOPY click/ /usr/lib/python3/dist-packages/click/\n"
    )
    tag = f"cloudpipe-test/with-click:{uuid.uuid4().hex[:8]}"
    docker_engine.images.build(path=str(context), tag=tag, rm=True)
    yield tag
    docker_engine.images.remove(tag, force=True)


def test_an_image_from_the_runner_with_the_package_runs_the_job(client: Client, image_with_click: str) -> None:
    job = client.with_options(image=image_with_click).submit(click.style, "hi", bold=True)
    assert job.result(timeout=60) == click.style("hi", bold=True)


@pytest.fixture
def image_without_runner(docker_engine: docker.DockerClient, tmp_path: Path) -> Iterator[str]:
    """An image with python3 but no Cloudpipe runner (and so no warm agent either)."""
    (tmp_path / "Dockerfile").write_text(
        "FROM cloudpipe/runner-python3\nUSER root\n"
        'RUN python3 -c "import os, cloudpipe_runner, cloudpipe_agent; '
        'os.remove(cloudpipe_runner.__file__); os.remove(cloudpipe_agent.__file__)"\n'
        "USER 1000:1000\nLABEL org.cloudpipe.agent=none\n"
    )
    tag = f"cloudpipe-test/no-runner:{uuid.uuid4().hex[:8]}"
    docker_engine.images.build(path=str(tmp_path), tag=tag, rm=True)
    yield tag
    docker_engine.images.remove(tag, force=True)


def test_a_function_job_in_an_image_without_the_runner_says_so(client: Client, image_without_runner: str) -> None:
    job = client.with_options(image=image_without_runner).submit(pow, 2, 3)
    with pytest.raises(MissingModule) as raised:
        job.result(timeout=60)
    assert raised.value.module == "cloudpipe_runner" and raised.value.image == image_without_runner
    assert "has no Cloudpipe Python runner" in str(raised.value)
    assert "FROM cloudpipe/runner-python3" in str(raised.value)
