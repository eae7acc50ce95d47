"""`Image`: what a job's container is made of, as an immutable, chainable value. The
server builds it (once per account and content) and jobs run in the result.

Example::

    from cloudpipe_sdk import Image

    image = (
        Image.runner()                       # the Python 3 runner (Debian bookworm)
        .apt_install("figlet")
        .pip_install("six==1.17.0")
        .env({"GREETING": "hello"})
        .run_commands("figlet -v > /dev/null")
        .add_local_python_source("mypkg")    # importable in the job
    )
    client.submit(fn, image=image)           # any `image=`: built on first use, then cached
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cloudpipe_sdk._errors import InvalidRequest

MAX_LOCAL_BYTES = 64 << 20  # the server's bound on every added file of one image together
MAX_LOCAL_FILES = 10_000
_SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


@dataclass(frozen=True)
class LocalFiles:
    """Files read from this machine when the image is built: (path in the image
    relative to `destination`, local path) pairs. `python_path`: where the image's
    python3 imports installed packages from."""

    destination: str
    files: tuple[tuple[str, str], ...]
    python_path: bool = False


Step = tuple[str, tuple[str, ...]] | tuple[str, tuple[tuple[str, str], ...]] | tuple[str, LocalFiles]


@dataclass(frozen=True)
class Image:
    """An image spec; each method returns a new Image with one more step. Start with
    `Image.runner()` or `Image.from_image(name)`."""

    base: str = ""
    steps: tuple[Step, ...] = ()

    @classmethod
    def runner(cls) -> Image:
        """The server's Python 3 runner image (Debian bookworm, Python 3.11)."""
        return cls()

    @classmethod
    def from_image(cls, name: str) -> Image:
        """Start from an image the server's engine has (Debian or Ubuntu based, with
        python3 and bash); the Cloudpipe runner is added to it."""
        if not name:
            raise InvalidRequest("from_image: give an image name (or use Image.runner())")
        return cls(base=name)

    def _with(self, step: Step) -> Image:
        return Image(self.base, (*self.steps, step))

    def pip_install(self, *packages: str) -> Image:
        """Install Python packages (requirement specifiers like "six==1.17.0"; wheels only)."""
        return self._with(("pip_install", _names("pip_install", packages)))

    def apt_install(self, *packages: str) -> Image:
        """Install Debian packages with apt-get."""
        return self._with(("apt_install", _names("apt_install", packages)))

    def env(self, variables: Mapping[str, str]) -> Image:
        """Set environment variables in the image."""
        if not variables:
            raise InvalidRequest("env: give at least one variable")
        return self._with(("env", tuple(sorted((str(k), str(v)) for k, v in variables.items()))))

    def run_commands(self, *commands: str) -> Image:
        """Run shell commands (bash, as root) during the build, each as its own step."""
        return self._with(("run_commands", _names("run_commands", commands)))

    def add_local_file(self, local_path: str | Path, remote_path: str) -> Image:
        """Copy a file of this machine to `remote_path` (absolute) in the image."""
        local = Path(local_path)
        if not local.is_file():
            raise InvalidRequest(f"add_local_file: {local} is not a file")
        remote = PurePosixPath(remote_path)
        if not remote.is_absolute() or not remote.name:
            raise InvalidRequest(f"add_local_file: {remote_path!r} must be an absolute path of a file")
        return self._with(("add_files", LocalFiles(str(remote.parent), ((remote.name, str(local)),))))

    def add_local_dir(self, local_path: str | Path, remote_path: str) -> Image:
        """Copy a directory of this machine (without __pycache__ and VCS folders) to
        `remote_path` (absolute) in the image."""
        local = Path(local_path)
        if not local.is_dir():
            raise InvalidRequest(f"add_local_dir: {local} is not a directory")
        if not PurePosixPath(remote_path).is_absolute():
            raise InvalidRequest(f"add_local_dir: {remote_path!r} must be an absolute path")
        return self._with(("add_files", LocalFiles(remote_path, _walk(local, ""))))

    def add_local_python_source(self, *modules: str) -> Image:
        """Make local modules or packages (by import name) importable in the image, as
        installed packages are: for code that is not shipped with each call, or that
        is too large to ship."""
        if not modules:
            raise InvalidRequest("add_local_python_source: give at least one module name")
        files: list[tuple[str, str]] = []
        for module in modules:
            files.extend(_python_source(module))
        return self._with(("add_files", LocalFiles("", tuple(files), python_path=True)))

    def describe(self) -> str:
        """A one-line description ("runner + apt_install figlet + pip_install six")."""
        parts = [self.base or "runner"]
        for kind, payload in self.steps:
            if isinstance(payload, LocalFiles):
                parts.append(f"{kind} ({len(payload.files)} files)")
            else:
                parts.append(f"{kind} {' '.join(p if isinstance(p, str) else p[0] for p in payload)}")
        return " + ".join(parts)


def _names(kind: str, values: tuple[str, ...]) -> tuple[str, ...]:
    if not values or not all(isinstance(v, str) and v for v in values):
        raise InvalidRequest(f"{kind}: give one or more non-empty strings")
    return tuple(values)


def _walk(root: Path, prefix: str) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in _SKIPPED_DIRS for part in relative.parts) or not path.is_file():
            continue
        found.append((f"{prefix}{relative.as_posix()}", str(path)))
        if len(found) > MAX_LOCAL_FILES:
            raise InvalidRequest(f"{root}: more than {MAX_LOCAL_FILES} files")
    return tuple(found)


def _python_source(module: str) -> tuple[tuple[str, str], ...]:
    if "." in module:
        raise InvalidRequest(f"add_local_python_source: {module!r}: give a top-level module or package name")
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    if found is None or found.origin in (None, "built-in", "frozen"):
        raise InvalidRequest(f"add_local_python_source: no module {module!r} importable here")
    if found.submodule_search_locations:
        folder = Path(next(iter(found.submodule_search_locations)))
        return _walk(folder, f"{module}/")
    origin = Path(str(found.origin))
    if origin.suffix != ".py":
        raise InvalidRequest(f"add_local_python_source: {module!r} is not Python source ({origin.name})")
    return ((origin.name, str(origin)),)
