"""The two distributions as a user installs them: wheels built with `python -m build`
from this checkout, installed into new virtual environments (nothing of the checkout on
`sys.path`). Used by tests/packaging and by the docs tests, which run the SDK guide's
examples in an environment that has only the SDK wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support import ROOT

# Packages of the server distribution that must never come with the SDK.
SERVER_ONLY = {"docker", "uvicorn", "starlette", "argon2-cffi", "cryptography", "httpx", "croniter", "cloudpipe"}


@dataclass(frozen=True)
class Venv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def distributions(self) -> dict[str, str]:
        """Every distribution installed (pip, setuptools, wheel left out): name -> version."""
        listed = run([str(self.python), "-m", "pip", "list", "--format=freeze", "--exclude-editable"])
        found = dict(line.split("==", 1) for line in listed.splitlines() if "==" in line)
        return {
            name.lower(): version
            for name, version in found.items()
            if name.lower() not in {"pip", "setuptools", "wheel"}
        }


def run(command: list[str], **options: object) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600, **options)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


def build_wheel(project: Path, out: Path) -> Path:
    """`python -m build --wheel` of the project folder (ROOT or ROOT/"sdk") into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.glob("*.whl"))
    run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(project)])
    (wheel,) = set(out.glob("*.whl")) - before
    return wheel


def new_venv(where: Path, *wheels: Path, python: str = sys.executable) -> Venv:
    """A virtual environment made by `python` with `wheels` (and what they require) installed."""
    run([python, "-m", "venv", str(where)])
    venv = Venv(where)
    environment = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    run([str(venv.python), "-m", "pip", "install", "-q", *map(str, wheels)], env=environment)
    return venv


def sdk_wheel(out: Path) -> Path:
    """The SDK wheel (sdk/pyproject.toml); its build folders are removed afterwards."""
    try:
        return build_wheel(ROOT / "sdk", out)
    finally:
        shutil.rmtree(ROOT / "sdk" / "build", ignore_errors=True)
