"""The user's own modules travel by value: a function of a local package (mypkg.core
importing mypkg.util) pickled by dump_call loads in a fresh interpreter that cannot
import mypkg; installed packages stay by reference."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cloudpipe_sdk import _shipping as shipping
from cloudpipe_sdk._serialize import dump_call
from cloudpipe_sdk._shipping import is_local


def test_a_local_package_and_what_it_imports_travel_by_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "project" / "mypkg_ship"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "util.py").write_text("def double(x):\n    return 2 * x\n")
    (package / "core.py").write_text(
        textwrap.dedent(
            """
            import json
            from mypkg_ship.util import double

            def work(x):
                return json.dumps(double(x))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    from mypkg_ship import core  # type: ignore[import-not-found]

    assert is_local(core) and not is_local(sys.modules["json"]) and not is_local(sys.modules["pytest"])
    payload = dump_call(core.work, (21,), {})
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, cloudpickle; f, a, k = cloudpickle.loads(sys.stdin.buffer.read()); print(f(*a, **k))",
        ],
        input=payload,
        capture_output=True,
        cwd=tmp_path,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr.decode()
    assert loaded.stdout.decode().strip() == "42"
    assert b"mypkg_ship" in payload and b"_pytest" not in payload


def test_modules_left_over_by_the_bound_are_named_in_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "project" / "bigpkg_ship"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "leaf.py").write_text("def one():\n    return 1\n")
    (package / "mid.py").write_text("from bigpkg_ship.leaf import one\n\ndef two():\n    return one() + 1\n")
    (package / "top.py").write_text("from bigpkg_ship.mid import two\n\ndef three():\n    return two() + 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "project"))
    monkeypatch.setattr(shipping, "MAX_MODULES", 1)
    from bigpkg_ship import top  # type: ignore[import-not-found]

    with pytest.warns(RuntimeWarning, match=r"more than 1 of your own modules; .*bigpkg_ship\.leaf, bigpkg_ship\.mid"):
        assert shipping.ship_local_modules([top.three]) == ["bigpkg_ship.top"]  # the function's own module first
