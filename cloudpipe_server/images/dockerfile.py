"""Spec -> Dockerfile and build context, with a map from Dockerfile instructions back to
the spec's steps (so a failed instruction names the user's step).

Only this module writes Dockerfile text, from validated values: commands and package
names go in exec form (JSON arrays, so no shell parsing and no way out of the
instruction), ENV and LABEL values are quoted, files come from the context under names
this module chooses. The image ends as the runner's non-root user.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from cloudpipe_server.images.spec import ImageSpec, Step

RECIPE_VERSION = "1"  # part of every digest: bump when the generated Dockerfile changes meaning
RUNNER_UID = "1000"  # the runner images' user (runner_images/python3/Dockerfile)
RUNNER_HOME = "/home/cloudpipe"
LABEL_ACCOUNT = "org.cloudpipe.account"
LABEL_DIGEST = "org.cloudpipe.image.digest"
LABEL_SUMMARY = "org.cloudpipe.image.summary"
_SITE = "$(python3 -c 'import site; print(site.getsitepackages()[0])')"


@dataclass(frozen=True)
class Base:
    """What the build starts from. `runner` is the runner image (its id); `image` the
    user's base (its id) when the runner is added to another image, else empty."""

    runner: str
    image: str = ""
    runner_site: str = ""  # where the runner keeps its packages (for adding it)
    labels: dict[str, str] = field(default_factory=dict)  # runner labels for an added runner


@dataclass
class Recipe:
    dockerfile: str
    context: dict[str, tuple[bytes | Path, int]]  # path in the context -> (content or file, mode)
    steps_of: list[int]  # for each instruction: the spec step it belongs to (1-based; 0: ours)
    descriptions: list[str]

    def write_tarball(self, path: Path) -> None:
        """The build context as an uncompressed tar (Dockerfile included), written to
        `path` (files given by path are streamed from disk)."""
        with tarfile.open(path, mode="w") as tar:
            for name, (content, mode) in {"Dockerfile": (self.dockerfile.encode(), 0o644), **self.context}.items():
                info = tarfile.TarInfo(name)
                info.mode = mode
                info.mtime = 0
                if isinstance(content, Path):
                    info.size = content.stat().st_size
                    with content.open("rb") as source:
                        tar.addfile(info, source)
                else:
                    info.size = len(content)
                    tar.addfile(info, io.BytesIO(content))


def _exec(*argv: str) -> str:
    return json.dumps(list(argv))


def _quoted(value: str) -> str:
    """A double-quoted Dockerfile word. Control characters would end the instruction:
    callers pass values without them (validated, or `printable`)."""
    if not value.isprintable():
        raise ValueError("a Dockerfile value with control characters")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def printable(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)


def render(
    spec: ImageSpec,
    base: Base,
    *,
    account: str,
    digest: str,
    wheels: dict[int, list[Path]],
    pip_tool: Path | None,
) -> Recipe:
    """The recipe of `spec`. `wheels[i]` are the wheel files downloaded for step i (0-based);
    `pip_tool` the pip wheel that installs them (when any step is pip_install)."""
    lines: list[str] = []
    steps_of: list[int] = []
    context: dict[str, tuple[bytes | Path, int]] = {}

    def add(instruction: str, step: int) -> None:
        lines.append(instruction)
        steps_of.append(step)

    if base.image:
        add(f"FROM {base.runner} AS cloudpipe-runner", 0)
        add(f"FROM {base.image}", 0)
        add("USER root", 0)
        setup = (
            "set -eu; command -v python3 >/dev/null && command -v bash >/dev/null"
            " || { echo 'cloudpipe: the base image needs python3 and bash' >&2; exit 1; };"
            f" getent passwd {RUNNER_UID} >/dev/null || useradd --uid {RUNNER_UID} --create-home"
            f" --home-dir {RUNNER_HOME} --shell /bin/bash cloudpipe;"
            f" mkdir -p {RUNNER_HOME} && chown {RUNNER_UID}:{RUNNER_UID} {RUNNER_HOME}"
        )
        add(f"RUN {_exec('/bin/sh', '-c', setup)}", 0)
        add(f"COPY --from=cloudpipe-runner {base.runner_site}/ /tmp/cloudpipe-runner/", 0)
        install = (
            f'set -eu; site="{_SITE}"; mkdir -p "$site"; cp -a /tmp/cloudpipe-runner/. "$site/";'
            " rm -rf /tmp/cloudpipe-runner"
        )
        add(f"RUN {_exec('/bin/sh', '-c', install)}", 0)
        if base.labels:
            add("LABEL " + " ".join(f"{k}={_quoted(v)}" for k, v in sorted(base.labels.items())), 0)
    else:
        add(f"FROM {base.runner}", 0)
        add("USER root", 0)
    if pip_tool is not None:
        context["pip-tool/pip.whl"] = (pip_tool, 0o644)
        add("COPY pip-tool/pip.whl /opt/cloudpipe-pip/pip.whl", 0)
    for index, step in enumerate(spec.steps):
        for instruction in _instructions(index, step, wheels.get(index, []), context):
            add(instruction, index + 1)
    add(f"USER {RUNNER_UID}:{RUNNER_UID}", 0)
    add(f"WORKDIR {RUNNER_HOME}", 0)
    labels = {LABEL_ACCOUNT: account, LABEL_DIGEST: digest, LABEL_SUMMARY: printable(spec.summary())}
    add("LABEL " + " ".join(f"{k}={_quoted(v)}" for k, v in labels.items()), 0)
    descriptions = ["the runner setup", *(step.describe() for step in spec.steps)]
    return Recipe("\n".join(lines) + "\n", context, steps_of, descriptions)


def _instructions(
    index: int, step: Step, wheels: list[Path], context: dict[str, tuple[bytes | Path, int]]
) -> list[str]:
    if step.kind == "pip_install":
        folder = f"pip-{index}"
        for wheel in wheels:
            context[f"{folder}/{wheel.name}"] = (wheel, 0o644)
        pip = [
            "python3",
            "/opt/cloudpipe-pip/pip.whl/pip",
            "install",
            "--no-index",
            "--find-links",
            f"/tmp/cloudpipe-{folder}",
            "--no-cache-dir",
            "--break-system-packages",
            "--root-user-action=ignore",
            "--disable-pip-version-check",
            "--",
            *step.names,
        ]
        return [
            f"COPY {folder}/ /tmp/cloudpipe-{folder}/",
            f"RUN {_exec(*pip)}",
            f"RUN {_exec('rm', '-rf', f'/tmp/cloudpipe-{folder}')}",
        ]
    if step.kind == "apt_install":
        script = (
            "set -eu; apt-get update; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends"
            ' -- "$@"; rm -rf /var/lib/apt/lists/*'
        )
        return [f"RUN {_exec('/bin/sh', '-c', script, 'apt-install', *step.names)}"]
    if step.kind == "env":
        return ["ENV " + " ".join(f"{name}={_quoted(value)}" for name, value in step.variables)]
    if step.kind == "run_commands":
        return [f"RUN {_exec('/bin/bash', '-c', command)}" for command in step.names]
    if step.kind == "add_files":
        folder = f"files-{index}"
        for item in step.files:
            context[f"{folder}/{item.path}"] = (item.content, item.mode)
        if not step.python_path:
            return [f"COPY --chown={RUNNER_UID}:{RUNNER_UID} {folder}/ {step.destination}/"]
        place = f"/tmp/cloudpipe-{folder}"
        script = f'set -eu; site="{_SITE}"; mkdir -p "$site"; cp -a {place}/. "$site/"; rm -rf {place}'
        return [f"COPY {folder}/ {place}/", f"RUN {_exec('/bin/sh', '-c', script)}"]
    raise ValueError(f"unknown step kind {step.kind!r}")  # spec.py admits no other
