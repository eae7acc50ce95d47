"""The runner reports a module missing in its image as `missing_module` in the failure
envelope, and the SDK recognises it (also from runners older than that key)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from cloudpipe_sdk._outcome import missing_module
from tests.support import ROOT


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    path = ROOT / "runner_images" / "python3" / "cloudpipe_runner.py"
    spec = importlib.util.spec_from_file_location("cloudpipe_runner", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "cloudpipe_runner", module)
    spec.loader.exec_module(module)
    return module


def test_a_payload_needing_a_missing_module_names_it_and_the_fix(runner: ModuleType) -> None:
    envelope = runner.run(b"cnosuchmod_for_test\nf\n.")  # a pickle of nosuchmod_for_test.f
    assert envelope["ok"] is False and envelope["missing_module"] == "nosuchmod_for_test"
    assert isinstance(envelope["exc"], ModuleNotFoundError) and envelope["exc"].name == "nosuchmod_for_test"
    assert "FROM cloudpipe/runner-python3" in envelope["exc_repr"]
    assert "cannot unpickle the job payload" in envelope["traceback"]
    assert missing_module(envelope) == "nosuchmod_for_test"


def test_a_function_importing_a_missing_module_is_reported_too(runner: ModuleType) -> None:
    def needs() -> None:
        import nosuchmod_inside  # type: ignore[import-not-found]  # noqa: F401

    envelope = runner.run(runner.dumps((needs, (), {})))
    assert envelope["missing_module"] == "nosuchmod_inside"


def test_other_failures_are_not_missing_modules(runner: ModuleType) -> None:
    envelope = runner.run(runner.dumps((divmod, (1, 0), {})))
    assert "missing_module" not in envelope and missing_module(envelope) == ""
    assert missing_module({"ok": False, "exc": ImportError("cannot import name 'x'")}) == ""


def test_an_older_runner_s_message_is_recognised() -> None:
    old = {
        "ok": False,
        "exc": None,
        "exc_type": "builtins.RuntimeError",
        "exc_repr": 'RuntimeError("cannot unpickle the job payload (builtins.ModuleNotFoundError: '
        "No module named 'numpy'); client: Python 3.11 ...\")",
    }
    assert missing_module(old) == "numpy"
