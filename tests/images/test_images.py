"""Images built by the server from an `Image` spec, used by jobs: real builds on the
local Docker engine from the locally built runner (no registry), apt from the build
container, pip wheels downloaded on the server host (see cloudpipe_server/images/wheels.py)."""

from __future__ import annotations

import importlib
import subprocess
import threading
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import docker
import pytest

from cloudpipe_sdk import BuildLog, BuiltImage, Client, Image, ImageBuildFailed, InvalidRequest, NotFound

pytestmark = pytest.mark.docker


def uses_six_and_figlet() -> tuple[str, str]:
    import subprocess as sp

    import six  # type: ignore[import-untyped]

    banner = sp.run(["figlet", "-v"], capture_output=True, text=True, check=True).stdout
    return six.__version__, banner.splitlines()[0]


def test_an_image_with_a_debian_and_a_pip_package_runs_function_shell_and_map_jobs(
    account_client: Client, local_package: str
) -> None:
    image = (
        Image.runner()
        .apt_install("figlet")
        .pip_install("six==1.17.0")
        .env({"GREETING": 'hi "there" $HOME'})
        .add_local_python_source(local_package)
    )
    lines: list[BuildLog] = []
    built = account_client.images.build(image, on_log=lines.append)
    assert built.reference.startswith("cloudpipe/image:") and not built.cached
    assert any(line.step == 1 and "figlet" in line.line for line in lines)  # progress names the step
    assert {line.steps for line in lines} == {4}

    job = account_client.with_options(image=image).submit(uses_six_and_figlet)  # the Image itself as image=
    assert job.result(timeout=120) == ("1.17.0", "FIGlet Copyright (C) 1991-2012 Glenn Chappell, Ian Chai, John Cowan,")
    assert job.snapshot.image == built.reference

    shell = account_client.shell('figlet -v | head -1; echo "$GREETING"; id -u', image=image)
    assert shell.result(timeout=120).decode().splitlines()[1:] == ['hi "there" $HOME', "1000"]

    module = importlib.import_module(local_package)

    def greet(n: int) -> str:
        return f"{module.GREETING} {n}"

    assert list(account_client.map(greet, [1, 2], image=built)) == [
        "hello from a local package 1",
        "hello from a local package 2",
    ]


def test_a_second_use_is_a_cache_hit_without_a_rebuild(account_client: Client, image_server: object) -> None:
    image = Image.runner().run_commands(f"echo {uuid.uuid4().hex} > /tmp/marker")
    first = account_client.images.build(image)
    again = account_client.images.build(image)
    assert not first.cached and again.cached and again.reference == first.reference
    log: list[BuildLog] = []
    account_client.images.build(Image.runner().run_commands(image.steps[0][1][0]), on_log=log.append)  # type: ignore[index]
    assert log == []  # an equal spec from a new value: found, nothing built
    job = account_client.with_options(image=image).shell("cat /tmp/marker")
    assert job.result(timeout=60).strip() == image.steps[0][1][0].split()[1].encode()  # type: ignore[index]


def test_two_concurrent_builds_of_one_spec_build_once(account_client: Client) -> None:
    image = Image.runner().run_commands(f"sleep 2; echo {uuid.uuid4().hex}")
    results: list[BuiltImage] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(account_client.images.build(image))
        except BaseException as exc:  # noqa: BLE001: reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert len({r.reference for r in results}) == 1
    assert sorted(r.cached for r in results) == [False, True]


def test_a_failing_step_raises_image_build_failed_naming_it(account_client: Client) -> None:
    image = Image.runner().env({"A": "1"}).run_commands("echo about to fail; exit 3")
    with pytest.raises(ImageBuildFailed) as raised:
        account_client.with_options(image=image).submit(print)
    failure = raised.value
    assert failure.step == 2 and failure.step_description == "run_commands echo about to fail; exit 3"
    assert "about to fail" in failure.log_tail and "returned a non-zero code: 3" in failure.log_tail
    assert "step 2 (run_commands" in str(failure)


def test_a_missing_pip_package_fails_its_step(account_client: Client) -> None:
    name = f"cloudpipe-no-such-package-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ImageBuildFailed) as raised:
        account_client.images.build(Image.runner().apt_install("figlet").pip_install(name))
    assert raised.value.step == 2 and raised.value.step_description == f"pip_install {name}"
    assert name in raised.value.log_tail


def test_a_spec_outside_the_grammar_is_refused(account_client: Client) -> None:
    with pytest.raises(InvalidRequest, match="is not a apt_install package name"):
        account_client.images.build(Image.runner().apt_install("figlet; rm -rf /"))
    with pytest.raises(InvalidRequest, match="is not a pip_install package name"):
        account_client.images.build(Image.runner().pip_install("--index-url=http://example.invalid/ six"))
    with pytest.raises(InvalidRequest, match="not a variable name"):
        account_client.images.build(Image.runner().env({"BAD NAME": "x"}))


def test_another_account_cannot_see_or_use_an_image(account_client: Client, other_client: Client) -> None:
    built = account_client.images.build(Image.runner().run_commands(f"echo {uuid.uuid4().hex}"))
    missing = built.reference[:-8] + "00000000"
    assert account_client.images.get(built.reference).reference == built.reference
    for reference in (built.reference, missing):
        with pytest.raises(NotFound) as raised:
            other_client.images.get(reference)
        assert str(raised.value) == f"image {reference!r} not found (NOT_FOUND)"
        with pytest.raises(NotFound, match="not found"):
            other_client.shell("true", image=reference)
        with pytest.raises(NotFound):
            other_client.images.delete(reference)
    assert built.reference not in [i.reference for i in other_client.images.list()]
    assert built.reference in [i.reference for i in account_client.images.list()]
    account_client.images.delete(built.reference)
    with pytest.raises(NotFound):
        account_client.images.get(built.reference)


def test_no_other_name_of_an_image_reaches_another_account(
    account_client: Client, other_client: Client, docker_engine: docker.DockerClient
) -> None:
    """Found in review: the ownership check read only the exact reference, and a build
    base was not checked at all."""
    built = account_client.images.build(Image.runner().run_commands(f"echo {uuid.uuid4().hex}"))
    image_id = docker_engine.images.get(built.reference).id
    # the engine's default registry domain, which it resolves to its local names
    domain = urlsplit(docker_engine.info()["IndexServerAddress"]).hostname
    for alias in (f"{domain}/{built.reference}", f"{domain}/library/{built.reference}", f"localhost/{built.reference}"):
        with pytest.raises(NotFound, match="not found"):
            other_client.shell("true", image=alias)
    for by_id in (image_id, image_id.removeprefix("sha256:")[:12], image_id.removeprefix("sha256:")[:1]):
        with pytest.raises(InvalidRequest, match="looks like an image id"):
            other_client.shell("true", image=by_id)
    for base in (built.reference, image_id):
        with pytest.raises(ImageBuildFailed) as raised:
            other_client.images.build(Image.from_image(base).env({"X": "1"}))
        assert raised.value.step == 0 and "is not on the server's engine" in str(raised.value)
    assert account_client.shell("echo mine", image=f"{domain}/{built.reference}").result(timeout=120) == b"mine\n"
    account_client.images.delete(built.reference)


def test_from_image_adds_the_runner_to_another_base(account_client: Client, docker_engine: docker.DockerClient) -> None:
    base = "cloudpipe/base-bookworm:latest"  # debootstrap minbase with python3: no runner in it
    docker_engine.images.get(base)
    image = Image.from_image(base).env({"FROM_BASE": "yes"})
    job = account_client.with_options(image=image).submit(lambda: __import__("os").environ["FROM_BASE"])
    assert job.result(timeout=120) == "yes"


def test_local_files_and_dirs_are_copied_for_the_runner_user(account_client: Client, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"a": 1}')
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "sub" / "x.txt").write_text("x")
    image = Image.runner().add_local_file(tmp_path / "config.json", "/etc/app/config.json")
    image = image.add_local_dir(tmp_path / "data", "/opt/data")
    out = account_client.shell(
        "cat /etc/app/config.json; echo; cat /opt/data/sub/x.txt; echo; stat -c %u /opt/data/sub/x.txt", image=image
    )
    assert out.result(timeout=120).decode().split() == ['{"a":', "1}", "x", "1000"]


def test_the_cli_builds_lists_and_removes(image_server: object, tmp_path: Path) -> None:
    from tests.support import ServerProcess

    assert isinstance(image_server, ServerProcess)
    account = f"cli-{uuid.uuid4().hex[:8]}"
    spec = tmp_path / "image.toml"
    spec.write_text(f'[[steps]]\nrun_commands = ["echo {account} > /tmp/who"]\n')

    def cloudpipe(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"CLOUDPIPE_ADDRESS": image_server.address, "CLOUDPIPE_ACCOUNT": account, "PATH": "/usr/bin:/bin"}
        return subprocess.run(
            [str(Path(__import__("sys").executable).parent / "cloudpipe"), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
            cwd=tmp_path,
        )

    built = cloudpipe("image", "build", str(spec), "--env", "X=1")
    assert built.returncode == 0, built.stderr
    reference = built.stdout.strip()
    assert reference.startswith("cloudpipe/image:") and "[1/2]" in built.stderr
    assert reference in cloudpipe("image", "ls").stdout
    failed = cloudpipe("image", "build", "--run", "exit 7")
    assert failed.returncode == 1 and "step 1 (run_commands exit 7)" in failed.stderr
    assert cloudpipe("image", "rm", reference).returncode == 0
    assert reference not in cloudpipe("image", "ls", "--json").stdout


def test_grpcurl_sees_the_image_service(image_server: object) -> None:
    from tests.rpc.test_grpc_api import grpcurl
    from tests.support import ServerProcess

    assert isinstance(image_server, ServerProcess)
    described = grpcurl(image_server.address, "describe", "cloudpipe.v1.ImageService")
    assert described.returncode == 0, described.stderr
    assert "rpc Build" in described.stdout and "stream .cloudpipe.v1.BuildEvent" in described.stdout


def test_saved_jobs_and_schedules_run_in_an_image(account_client: Client) -> None:
    image = Image.runner().apt_install("figlet").env({"WHO": "scheduled"})
    saved = account_client.saved_jobs.save_shell("banner", 'figlet -v | head -1; echo "$WHO"', image=image)
    assert saved.spec.image.startswith("cloudpipe/image:")
    assert account_client.saved_jobs.run("banner").result(timeout=120).decode().split("\n")[1] == "scheduled"
    account_client.schedules.create("nightly-banner", "0 3 * * *", saved_job="banner")
    fire = account_client.schedules.trigger("nightly-banner")
    assert fire.job_id is not None
    output = account_client.get(fire.job_id).result(timeout=120).decode()
    assert output.startswith("FIGlet") and output.endswith("scheduled\n")
    account_client.schedules.delete("nightly-banner")


def test_the_async_client_builds_an_image_before_submitting(image_server: object) -> None:
    from cloudpipe_sdk import AsyncClient
    from tests.support import ServerProcess

    assert isinstance(image_server, ServerProcess)
    image = Image.runner().env({"ASYNC": "yes"})

    async def main() -> tuple[str, bytes]:
        async with AsyncClient(image_server.address, account=f"async-{uuid.uuid4().hex[:8]}") as client:
            try:
                job = await client.with_options(image=image).submit(lambda: __import__("os").environ["ASYNC"])
                shell = await client.shell("echo $ASYNC", image=image)
                return await job.result(timeout=120), await shell.result(timeout=120)
            finally:
                for built in await client.images.list():
                    await client.images.delete(built.reference)

    import asyncio

    assert asyncio.run(main()) == ("yes", b"yes\n")


def where_am_i(n: int) -> str:
    import os

    return f"{os.environ.get('WHERE', 'here')} {n}"


def test_decorated_functions_and_executors_take_an_image(account_client: Client) -> None:
    image = Image.runner().env({"WHERE": "in-image"})

    @account_client.function(image=image)
    def where(n: int) -> str:
        return f"{__import__('os').environ.get('WHERE', 'here')} {n}"

    assert where(1) == "here 1"  # a plain call stays local
    assert where.remote(2).result(timeout=120) == "in-image 2"
    with account_client.executor(image=image) as pool:
        assert pool.submit(where_am_i, 3).result(timeout=120) == "in-image 3"


def test_apply_files_declare_images_for_their_jobs(image_server: object, tmp_path: Path) -> None:
    from tests.support import ServerProcess

    assert isinstance(image_server, ServerProcess)
    account = f"apply-{uuid.uuid4().hex[:8]}"
    (tmp_path / "motd.txt").write_text("from the file's folder\n")
    (tmp_path / "jobs.toml").write_text(
        "[images.tools]\n"
        'steps = [{ apt_install = ["figlet"] },\n'
        '         { add_local_file = { local = "motd.txt", remote = "/etc/motd.txt" } }]\n'
        "[saved_jobs.motd]\n"
        'cmd = "cat /etc/motd.txt; figlet -v | head -1"\n'
        'image = "tools"\n'
    )

    def cloudpipe(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"CLOUDPIPE_ADDRESS": image_server.address, "CLOUDPIPE_ACCOUNT": account, "PATH": "/usr/bin:/bin"}
        return subprocess.run(
            [str(Path(__import__("sys").executable).parent / "cloudpipe"), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
            cwd="/",
        )

    first = cloudpipe("apply", str(tmp_path / "jobs.toml"))
    assert first.returncode == 0 and "1 to create" in first.stdout, first.stdout + first.stderr
    again = cloudpipe("apply", str(tmp_path / "jobs.toml"))
    assert "1 unchanged" in again.stdout, again.stdout
    ran = cloudpipe("saved", "run", "--wait", "motd")
    assert ran.returncode == 0 and ran.stdout.startswith("from the file's folder\nFIGlet"), ran.stdout + ran.stderr
    with Client(image_server.address, account=account) as client:
        assert client.saved_jobs.get("motd").spec.image.startswith("cloudpipe/image:")
        for built in client.images.list():
            client.images.delete(built.reference)


def test_a_step_printing_what_looks_like_the_engines_step_lines_builds(account_client: Client) -> None:
    """Found in review: a step's own output that began "Step ... : " was parsed as the
    engine's step counter (ValueError or IndexError: INTERNAL, the build cancelled)."""
    lines: list[BuildLog] = []
    noise = f"echo 'Step x : y'; echo 'Step 999/1 : y'; echo {uuid.uuid4().hex}"
    built = account_client.images.build(Image.runner().run_commands(noise), on_log=lines.append)
    assert any(line.line == "Step 999/1 : y" and line.step == 1 for line in lines)
    account_client.images.delete(built.reference)
