"""Python packages for pip_install steps, downloaded on the server host.

DECISION (issue 14): pip inside a build container cannot reach the package index on
this kind of host: outgoing TLS is re-signed by a local root that only the host's CA
bundle (/etc/ssl/certs/ca-certificates.crt, which pip is pointed at by /etc/pip.conf and
PIP_CERT) trusts; build containers have Debian's bundle or none (the runner base has no
ca-certificates and no pip), so verification fails there while apt, over plain http
with signed indexes, works. So the host's own pip downloads wheels (never sdists: no
package code runs on the host) for the image's Python version and the engine's
architecture into the build context, and the build installs them offline with a pip
wheel downloaded the same way. The host's pip settings (its index, CA bundle, local
wheel folders) apply as they are.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from cloudpipe_common.waiting import within

MAX_DOWNLOAD_BYTES = 512 << 20  # wheels of one step together
_MANYLINUX = ("manylinux2014", "manylinux_2_28", "manylinux_2_31", "manylinux_2_34", "manylinux_2_36")


class DownloadFailed(Exception):
    """pip could not download wheels for these requirements; `log` is its output."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


@dataclass(frozen=True)
class WheelSource:
    """How the host downloads: with `python` (this interpreter by default), for
    `machine` (the engine's architecture, e.g. x86_64), within `timeout` seconds."""

    python: str = sys.executable
    machine: str = platform.machine()
    timeout: float = 300.0


async def download(requirements: tuple[str, ...], python_version: str, source: WheelSource, dest: Path) -> list[Path]:
    """Download into the empty folder `dest` the wheel files that install
    `requirements` with their dependencies on CPython `python_version` (e.g. "3.11")."""
    platforms = [arg for tag in _MANYLINUX for arg in ("--platform", f"{tag}_{source.machine}")]
    dest.mkdir(parents=True, exist_ok=True)
    argv = [
        source.python,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-input",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        *platforms,
        "--dest",
        str(dest),
        "--",
        *requirements,
    ]
    output = await _run(argv, source.timeout, dest)
    files = sorted(dest.glob("*.whl"))
    if not files:
        raise DownloadFailed("pip downloaded no wheels", output)
    total = sum(f.stat().st_size for f in files)
    if total > MAX_DOWNLOAD_BYTES:
        raise DownloadFailed(f"the wheels total {total} bytes; at most {MAX_DOWNLOAD_BYTES}", output)
    return files


async def pip_wheel(python_version: str, source: WheelSource, dest: Path) -> Path:
    """A pip wheel that runs on `python_version`, to install the others offline."""
    found = [f for f in await download(("pip",), python_version, source, dest) if f.name.startswith("pip-")]
    if not found:
        raise DownloadFailed("no pip wheel", "")
    return found[0]


async def _run(argv: list[str], timeout: float, cwd: Path) -> str:
    """pip in `cwd` (the download folder), so a requirement named like a file never
    means a file of the server's working directory."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    try:
        raw, _ = await within(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise DownloadFailed(f"pip download took longer than {timeout:.0f} s", "") from None
    output = raw.decode(errors="replace")
    if process.returncode != 0:
        lines = [line for line in output.splitlines() if not line.startswith("WARNING: Location")]
        raise DownloadFailed(f"pip download exited with {process.returncode}", "\n".join(lines))
    return output
