"""The image spec as the server holds it: a base and steps, validated and bounded, and
its content address.

Nothing here is Dockerfile text: every field is checked against a narrow grammar
(package names, variable names, absolute paths), commands are kept as data and later
written in exec form, so a spec cannot add Dockerfile instructions of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from cloudpipe_server.errors import InvalidArgument, ResourceExhausted

REFERENCE_REPOSITORY = "cloudpipe/image"
MAX_STEPS = 64
MAX_NAMES_PER_STEP = 100
MAX_NAME_CHARS = 200
MAX_COMMANDS_PER_STEP = 50
MAX_COMMAND_CHARS = 8192
MAX_ENV_VARIABLES = 100
MAX_ENV_VALUE_CHARS = 4096
MAX_FILES = 10_000
MAX_FILE_BYTES_TOTAL = 64 << 20  # every added file of one spec together
MAX_PATH_CHARS = 1024

_APT_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+~:-]+)?")
# A requirement: name, optional extras, optional version clauses; no URLs, no options.
_PIP_NAME = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*\])?"
    r"((===?|~=|!=|<=?|>=?)[A-Za-z0-9.*+!_-]+(,(===?|~=|!=|<=?|>=?)[A-Za-z0-9.*+!_-]+)*)?"
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DESTINATION = re.compile(r"/[A-Za-z0-9._/@+-]*")
_BASE = re.compile(r"[a-z0-9][a-z0-9._/:@-]*")
_PATH_PART = re.compile(r"[A-Za-z0-9._@+ -]+")


@dataclass(frozen=True)
class AddedFile:
    path: str  # relative, '/'-separated
    content: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Step:
    """One step; `kind` is pip_install, apt_install, env, run_commands or add_files."""

    kind: str
    names: tuple[str, ...] = ()  # packages, or commands for run_commands
    variables: tuple[tuple[str, str], ...] = ()
    destination: str = ""
    files: tuple[AddedFile, ...] = ()
    python_path: bool = False

    def describe(self) -> str:
        """A short, human description ("pip_install six==1.17.0")."""
        if self.kind in ("pip_install", "apt_install"):
            return f"{self.kind} {' '.join(self.names)}"[:200]
        if self.kind == "run_commands":
            return f"run_commands {' && '.join(self.names)}"[:200]
        if self.kind == "env":
            return f"env {' '.join(k for k, _ in self.variables)}"[:200]
        where = "the Python path" if self.python_path else self.destination
        return f"add_files {len(self.files)} file(s) to {where}"


@dataclass(frozen=True)
class ImageSpec:
    base: str = ""  # empty: the server's Python 3 runner
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def summary(self) -> str:
        head = self.base or "runner"
        return "; ".join([head, *(step.describe() for step in self.steps)])[:500]

    def canonical(self) -> bytes:
        """A normalized serialization: file contents by their hashes, env sorted."""
        steps = []
        for step in self.steps:
            steps.append(
                {
                    "kind": step.kind,
                    "names": list(step.names),
                    "variables": [list(pair) for pair in step.variables],
                    "destination": step.destination,
                    "python_path": step.python_path,
                    "files": [[f.path, f.mode, hashlib.sha256(f.content).hexdigest()] for f in step.files],
                }
            )
        return json.dumps({"base": self.base, "steps": steps}, sort_keys=True).encode()


def digest_of(spec: ImageSpec, account: str, base_image_id: str, recipe_version: str) -> str:
    """The content address: the normalized spec, the account it belongs to, the id of
    the base image it builds on and the version of the Dockerfile recipe."""
    hasher = hashlib.sha256()
    for part in (recipe_version.encode(), account.encode(), base_image_id.encode(), spec.canonical()):
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()


def reference_of(digest: str) -> str:
    return f"{REFERENCE_REPOSITORY}:{digest}"


def digest_from_reference(reference: str) -> str | None:
    """The digest of a reference this server makes, or None for any other name."""
    repository, _, tag = reference.partition(":")
    if repository != REFERENCE_REPOSITORY or not re.fullmatch(r"[0-9a-f]{64}", tag):
        return None
    return tag


# -- validation ------------------------------------------------------------------------


def check_base(base: str) -> str:
    if base and (len(base) > MAX_NAME_CHARS or not _BASE.fullmatch(base)):
        raise InvalidArgument(f"spec.base: {base[:100]!r} is not an image name")
    return base


def check_names(kind: str, names: list[str], where: str) -> tuple[str, ...]:
    pattern = _PIP_NAME if kind == "pip_install" else _APT_NAME
    if not names:
        raise InvalidArgument(f"{where}: {kind} needs at least one package")
    if len(names) > MAX_NAMES_PER_STEP:
        raise ResourceExhausted(f"{where}: at most {MAX_NAMES_PER_STEP} packages per step, got {len(names)}")
    for index, name in enumerate(names):
        if len(name) > MAX_NAME_CHARS or not pattern.fullmatch(name):
            raise InvalidArgument(f"{where}.names[{index}]: {name[:100]!r} is not a {kind} package name")
    return tuple(names)


def check_commands(commands: list[str], where: str) -> tuple[str, ...]:
    if not commands:
        raise InvalidArgument(f"{where}: run_commands needs at least one command")
    if len(commands) > MAX_COMMANDS_PER_STEP:
        raise ResourceExhausted(f"{where}: at most {MAX_COMMANDS_PER_STEP} commands per step")
    for index, command in enumerate(commands):
        if not command.strip():
            raise InvalidArgument(f"{where}.commands[{index}]: empty command")
        if len(command) > MAX_COMMAND_CHARS or "\0" in command:
            raise InvalidArgument(f"{where}.commands[{index}]: longer than {MAX_COMMAND_CHARS} characters or has NUL")
    return tuple(commands)


def check_variables(variables: dict[str, str], where: str) -> tuple[tuple[str, str], ...]:
    if not variables:
        raise InvalidArgument(f"{where}: env needs at least one variable")
    if len(variables) > MAX_ENV_VARIABLES:
        raise ResourceExhausted(f"{where}: at most {MAX_ENV_VARIABLES} variables per step")
    for name, value in variables.items():
        if len(name) > MAX_NAME_CHARS or not _ENV_NAME.fullmatch(name):
            raise InvalidArgument(f"{where}: {name[:100]!r} is not a variable name")
        if len(value) > MAX_ENV_VALUE_CHARS or not value.isprintable():
            raise InvalidArgument(f"{where}.{name}: the value is too long or has a newline or control character")
    return tuple(sorted(variables.items()))


def check_destination(destination: str, where: str) -> str:
    if len(destination) > MAX_PATH_CHARS or not _DESTINATION.fullmatch(destination) or ".." in destination.split("/"):
        raise InvalidArgument(f"{where}.destination: {destination[:100]!r} is not an absolute path")
    return destination.rstrip("/") or "/"


def check_file_path(path: str, where: str) -> str:
    parts = path.split("/")
    if (
        not path
        or len(path) > MAX_PATH_CHARS
        or PurePosixPath(path).is_absolute()
        or any(part in ("", ".", "..") or not _PATH_PART.fullmatch(part) for part in parts)
    ):
        raise InvalidArgument(f"{where}.path: {path[:100]!r} is not a relative path of plain names")
    return path


def check_mode(mode: int, where: str) -> int:
    if mode & ~0o777:
        raise InvalidArgument(f"{where}.mode: only permission bits (0..0777), got {oct(mode)}")
    return mode or 0o644


def check_totals(spec: ImageSpec) -> ImageSpec:
    if len(spec.steps) > MAX_STEPS:
        raise ResourceExhausted(f"spec.steps: at most {MAX_STEPS} steps, got {len(spec.steps)}")
    files = [f for step in spec.steps for f in step.files]
    if len(files) > MAX_FILES:
        raise ResourceExhausted(f"spec: at most {MAX_FILES} added files, got {len(files)}")
    total = sum(len(f.content) for f in files)
    if total > MAX_FILE_BYTES_TOTAL:
        raise ResourceExhausted(f"spec: added files total {total} bytes; at most {MAX_FILE_BYTES_TOTAL}")
    return spec
