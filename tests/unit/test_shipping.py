"""The user's own modules travel by value: a function of a local package (mypkg.core
importing mypkg.util) pickled by dump_call loads in a fresh interpreter that cannot
import mypkg; installed packages stay by reference."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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
