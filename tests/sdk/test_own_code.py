"""A user's own code runs without installing it in the image: a function of a local
package (`<pkg>.core`, which imports `<pkg>.util` and `<pkg>.helpers.text`) travels by
value through every path (submit, map, starmap, executor, @client.function, saved
functions, the async client and the CLI's `module:function`), against a real server and
the Docker runner. The runner image has only the standard library, cloudpickle and dill,
so each of these fails with a missing module if any part of the package is left behind."""

from __future__ import annotations

import importlib
import textwrap
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from cloudpipe_sdk import AsyncClient, Client
from tests.cli.support import cloudpipe
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


def write_project(root: Path) -> str:
    """Two packages' worth of modules under `root`; returns the (unique) package name,
    so that no earlier import of the same name is reused."""
    name = f"mypkg_{uuid.uuid4().hex[:8]}"
    package = root / name
    (package / "helpers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "helpers" / "__init__.py").write_text("")
    (package / "helpers" / "text.py").write_text("def shout(s):\n    return s.upper() + '!'\n")
    (package / "util.py").write_text(
        textwrap.dedent(
            f"""
            from {name}.helpers import text

            class Box:
                def __init__(self, value):
                    self.value = value

            def double(x):
                return 2 * x

            def label(x):
                return text.shout(f"n={{x}}")
            """
        )
    )
    (package / "core.py").write_text(
        textwrap.dedent(
            f"""
            import {name}.util as util

            def work(x):
                return util.double(x)

            def describe(x):
                return util.label(util.double(x))

            def unbox(box):
                return util.double(box.value)
            """
        )
    )
    return name


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, ModuleType, ModuleType]:
    """The project on sys.path, as a user's working directory is: (its root, core, util)."""
    name = write_project(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path, importlib.import_module(f"{name}.core"), importlib.import_module(f"{name}.util")


def test_submit_and_map_ship_a_local_package_and_what_it_imports(
    client: Client, project: tuple[Path, ModuleType, ModuleType]
) -> None:
    _, core, util = project
    assert client.submit(core.describe, 21).result(timeout=60) == "N=42!"
    assert client.submit(core.unbox, util.Box(5)).result(timeout=60) == 10  # an argument of a local class
    assert list(client.map(core.work, [1, 2, 3])) == [2, 4, 6]
    assert list(client.starmap(core.describe, [(1,), (2,)])) == ["N=2!", "N=4!"]


def test_the_executor_ships_a_local_package(client: Client, project: tuple[Path, ModuleType, ModuleType]) -> None:
    _, core, _ = project
    with client.executor() as pool:
        assert pool.submit(core.describe, 5).result(timeout=60) == "N=10!"
        assert list(pool.map(core.work, [7, 8])) == [14, 16]


def test_a_decorated_local_function_ships_its_package(
    client: Client, project: tuple[Path, ModuleType, ModuleType]
) -> None:
    _, core, _ = project
    remote = client.function(core.describe)
    assert remote.remote(3).result(timeout=60) == "N=6!"
    assert list(remote.map([1])) == ["N=2!"]


def test_a_saved_function_ships_its_package(client: Client, project: tuple[Path, ModuleType, ModuleType]) -> None:
    _, core, _ = project
    name = f"own-code-{uuid.uuid4().hex[:8]}"
    client.saved_jobs.save_function(name, core.describe, args=(1,))
    try:
        assert client.saved_jobs.run(name).result(timeout=60) == "N=2!"
        assert client.saved_jobs.run(name, args=(2,)).result(timeout=60) == "N=4!"  # pickled again
    finally:
        client.saved_jobs.delete(name)


async def test_the_async_client_ships_a_local_package(
    server: ServerProcess, project: tuple[Path, ModuleType, ModuleType]
) -> None:
    _, core, _ = project
    async with AsyncClient(server.address, api_key=server.api_key) as client:
        job = await client.submit(core.describe, 4)
        assert await job.result(timeout=60) == "N=8!"


def test_the_cli_ships_the_package_of_module_function(server: ServerProcess, tmp_path: Path) -> None:
    name = write_project(tmp_path)
    done = cloudpipe(server, "submit", "--wait", f"{name}.core:describe", "21", cwd=tmp_path)
    assert (done.exit_code, done.stdout) == (0, "N=42!\n"), done.stderr
