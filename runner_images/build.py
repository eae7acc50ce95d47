#!/usr/bin/env python3
"""Build the Cloudpipe runner images.

Usage::

    python runner_images/build.py [--only python3|python2|node]
                                  [--base-python3 IMG] [--base-python2 IMG]
                                  [--force]

For every runner image this script

1. resolves the base image: an explicit ``--base-*`` image (pulled if
   missing), else the official default base if present locally or pullable,
   else a locally built ``cloudpipe/base-<suite>:latest`` (made once with
   debootstrap from the host's configured Debian mirror, then reused);
2. downloads the Python packages the image needs on the host with
   ``pip download`` (cached under ``$XDG_CACHE_HOME/cloudpipe``), so that
   ``docker build`` itself needs no network access;
3. stages the build context and hashes it together with the build arguments
   and the base image ID; the image is rebuilt only when that hash differs
   from the ``org.cloudpipe.context-hash`` label of the existing image (or
   with ``--force``);
4. builds the image, asks its Python for ``major.minor`` and applies the
   ``org.cloudpipe.*`` labels and the final tag.

Only the standard library and the ``docker`` SDK are used. One file over 400 lines on
purpose: it is a standalone script (setup runs it by path and it imports nothing of
Cloudpipe), and its parts (image specs, base bootstrap, package download, context hash,
build) are one pipeline read top to bottom.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

try:
    import docker
    import docker.errors
    from docker.models.images import Image
except ImportError:
    sys.exit("error: build.py needs the Docker SDK for Python (pip install docker)")

HERE = Path(__file__).resolve().parent

LABEL_RUNNER = "org.cloudpipe.runner"
LABEL_PYTHON = "org.cloudpipe.python"
LABEL_HASH = "org.cloudpipe.context-hash"
LABEL_BASE = "org.cloudpipe.base"
LABEL_BASE_PACKAGES = "org.cloudpipe.base.packages"  # what debootstrap included, comma-separated
LABEL_SERIALIZERS = "org.cloudpipe.serializers"

# The serializers of function jobs; both must equal the SDK's pinned versions.
CLOUDPICKLE_VERSION = os.environ.get("CLOUDPICKLE_VERSION", "3.1.1")
DILL_VERSION = os.environ.get("DILL_VERSION", "0.4.1")

# Setuptools releases that can still run the 2014-era setup.py scripts of
# the Python 2 sdists (ez_setup needs pkg_resources, ConcurrentLogHandler
# passes use_2to3); only used while pip prepares their metadata on the host.
LEGACY_SETUPTOOLS = "setuptools<58"

# pip 24.1 and newer refuse the metadata of some 2019-era wheels (pandas 0.24.2
# says `pytz (>=2011k)`); downloads marked legacy_pip run this pip from its wheel.
LEGACY_PIP = "pip==24.0"

# Removed from debootstrap trees before import (paths relative to the rootfs).
SLIM_REMOVE = (
    "var/lib/apt/lists/*",
    "var/cache/apt/archives/*",
    "var/cache/apt/*.bin",
    "var/log/*.log",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
)
DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
"""

# Prints the interpreter's major.minor; valid Python 2 and 3.
PYTHON_VERSION_CODE = "import sys; print('%d.%d' % sys.version_info[:2])"


class BuildError(Exception):
    """A build step failed; the message is meant for the user."""


@dataclass(frozen=True)
class Download:
    """One ``pip download`` invocation whose output goes into the context."""

    requirements: tuple[str, ...]
    options: tuple[str, ...]
    legacy_setuptools: bool = False
    legacy_pip: bool = False


@dataclass(frozen=True)
class ImageSpec:
    """Everything needed to build one runner image."""

    name: str
    tag: str
    default_base: str
    suite: str
    base_packages: tuple[str, ...]
    downloads: tuple[Download, ...]
    python: str
    probe: str
    python_prefix: str
    build_args: dict[str, str] = field(default_factory=dict)
    # Space-separated "name==version" of the serializers the runner loads jobs with.
    serializers: str = ""
    # The folder of its Dockerfile and sources, when another image's (default: name).
    context: str = ""

    @property
    def context_dir(self) -> Path:
        """Directory holding this image's Dockerfile and sources."""
        return HERE / (self.context or self.name)

    @property
    def local_base(self) -> str:
        """Tag of the debootstrap-built fallback base image."""
        return f"cloudpipe/base-{self.suite}:latest"


def python_runner(name: str, tag: str, suite: str, python_prefix: str) -> ImageSpec:
    """A Python function runner on a Debian suite's own python3 (one Dockerfile for all)."""
    return ImageSpec(
        name=name,
        tag=tag,
        default_base=f"debian:{suite}-slim",
        suite=suite,
        base_packages=("python3",),
        downloads=(
            Download(
                requirements=(f"cloudpickle=={CLOUDPICKLE_VERSION}", f"dill=={DILL_VERSION}"),
                options=("--only-binary=:all:", "--no-deps"),
            ),
        ),
        python="python3",
        probe=f"import cloudpickle, dill, cloudpipe_runner, cloudpipe_agent; {PYTHON_VERSION_CODE}",
        python_prefix=python_prefix,
        build_args={"CLOUDPICKLE_VERSION": CLOUDPICKLE_VERSION, "DILL_VERSION": DILL_VERSION},
        serializers=f"cloudpickle=={CLOUDPICKLE_VERSION} dill=={DILL_VERSION}",
        context="python3",
    )


SPECS: dict[str, ImageSpec] = {
    # The default runner (Python 3.11, Debian bookworm's) and one per other Python the
    # SDK supports that a Debian release ships: a function job from a client of that
    # Python runs in `cloudpipe/runner-python3.X` without the user naming it (the server
    # chooses it: cloudpipe_server/jobs/compat.py). Python 3.10 and 3.12 are in no Debian
    # release this machine's mirror carries.
    "python3": python_runner("python3", "cloudpipe/runner-python3:latest", "bookworm", "3."),
    "python3.13": python_runner("python3.13", "cloudpipe/runner-python3.13:latest", "trixie", "3.13"),
    # Node.js function jobs (sdk-node): Debian's nodejs, the python3 image's warm agent.
    "node": ImageSpec(
        name="node",
        tag="cloudpipe/runner-node:latest",
        default_base="debian:bookworm-slim",
        suite="bookworm",
        base_packages=("python3",),
        downloads=(
            Download(
                requirements=(f"cloudpickle=={CLOUDPICKLE_VERSION}",), options=("--only-binary=:all:", "--no-deps")
            ),
        ),
        python="python3",
        probe=(
            "import subprocess, cloudpickle, cloudpipe_runner, cloudpipe_agent; "
            "subprocess.run(['cloudpipe-node-runner', '--version'], check=True, stdout=subprocess.DEVNULL); "
            + PYTHON_VERSION_CODE
        ),
        python_prefix="3.",
        build_args={"CLOUDPICKLE_VERSION": CLOUDPICKLE_VERSION},
    ),
    "python2": ImageSpec(
        name="python2",
        tag="cloudpipe/runner-py2:latest",
        default_base="debian:bullseye-slim",
        suite="bullseye",
        # rsync: the server end of multyvac's volume sync (multyvacinit/sync.py); rsync and
        # ssh: the client end, for the multyvac client run from this image (tests, demo)
        base_packages=("python2.7", "rsync", "openssh-client"),
        downloads=(
            Download(
                requirements=(
                    "pip==20.3.4",
                    "setuptools==44.1.1",
                    "wheel==0.37.1",
                    "requests==2.27.1",
                    "urllib3==1.26.20",
                    "chardet==4.0.0",
                    "idna==2.10",
                    "certifi==2020.4.5.1",
                ),
                options=(
                    "--python-version",
                    "27",
                    "--only-binary=:all:",
                    "--no-deps",
                ),
            ),
            Download(
                requirements=("multyvac==0.5.0", "ConcurrentLogHandler==0.9.1"),
                # Source only for these two (they have no py2 wheels); `:all:` would also
                # force the isolated build environment's setuptools to build from source,
                # which fails. The build environment gets setuptools as a wheel, pinned by
                # LEGACY_SETUPTOOLS.
                options=("--no-binary=multyvac,ConcurrentLogHandler", "--no-deps"),
                legacy_setuptools=True,
            ),
            # multyvac ships a function's pure-Python modules but never a package with C
            # extensions: it expects those on the runner. The Python 2.7 builds of the
            # common ones, with their dependencies, pinned to their last py2 releases.
            Download(
                requirements=(
                    "numpy==1.16.6",
                    "scipy==1.2.3",
                    "pandas==0.24.2",
                    "python-dateutil==2.8.2",
                    "pytz==2021.3",
                    "six==1.16.0",
                    "beautifulsoup4==4.9.3",
                    "soupsieve==1.9.6",
                    "backports.functools-lru-cache==1.6.6",
                ),
                options=(
                    "--python-version",
                    "27",
                    "--implementation",
                    "cp",
                    "--abi",
                    "cp27mu",
                    "--platform",
                    "manylinux1_x86_64",
                    "--only-binary=:all:",
                    "--no-deps",
                ),
                legacy_pip=True,
            ),
        ),
        python="python",
        probe=f"import multyvac, multyvacinit.pybootstrap, numpy, scipy, pandas, bs4, requests; {PYTHON_VERSION_CODE}",
        python_prefix="2.7",
    ),
}


def log(spec: ImageSpec, message: str) -> None:
    """Print one progress line for ``spec``."""
    print(f"[{spec.name}] {message}", flush=True)


def run_quiet(cmd: Sequence[str], what: str, env: dict[str, str] | None = None) -> None:
    """Run ``cmd`` capturing its output; raise BuildError with its tail on failure."""
    try:
        proc = subprocess.run(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            check=False,
        )
    except OSError as exc:
        raise BuildError(f"{what}: cannot run {cmd[0]}: {exc}") from exc
    if proc.returncode != 0:
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{tail(proc.stdout)}")


def tail(text: str, lines: int = 25) -> str:
    """Return the last ``lines`` non-empty lines of ``text``, without colour codes, indented."""
    plain = [line for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines() if line.strip()]
    return "\n".join("    " + line for line in plain[-lines:])


# --------------------------------------------------------------------------
# Base images
# --------------------------------------------------------------------------


def find_image(client: docker.DockerClient, ref: str) -> Image | None:
    """Return the local image ``ref`` or None."""
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def base_packages(image: Image) -> set[str]:
    """The packages a debootstrap base was made with (none known for one made before
    the label existed: it is built again once)."""
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    return {name for name in str(labels.get(LABEL_BASE_PACKAGES, "")).split(",") if name}


def try_pull(client: docker.DockerClient, ref: str) -> Image | None:
    """Pull ``ref``; return None (instead of raising) if the pull fails."""
    try:
        return client.images.pull(ref)
    except docker.errors.APIError:
        return None


def resolve_base(client: docker.DockerClient, spec: ImageSpec, override: str | None) -> tuple[str, Image]:
    """Return ``(reference, image)`` of the base for ``spec``.

    Builds the debootstrap base when neither the requested nor the default
    base image can be found or pulled.
    """
    if override:
        image = find_image(client, override) or try_pull(client, override)
        if image is None:
            raise BuildError(f"base image {override} is not present locally and cannot be pulled")
        log(spec, f"base: {override}")
        return override, image
    image = find_image(client, spec.default_base)
    if image is not None:
        log(spec, f"base: {spec.default_base} (local)")
        return spec.default_base, image
    image = try_pull(client, spec.default_base)
    if image is not None:
        log(spec, f"base: {spec.default_base} (pulled)")
        return spec.default_base, image
    image = find_image(client, spec.local_base)
    if image is not None and set(spec.base_packages) <= base_packages(image):
        log(spec, f"base: {spec.local_base} (cached; {spec.default_base} unavailable)")
        return spec.local_base, image
    if image is not None:
        log(spec, f"base: {spec.local_base} lacks some of {','.join(spec.base_packages)}; building it again")
    log(spec, f"base: {spec.default_base} unavailable; building {spec.local_base} with debootstrap")
    return spec.local_base, build_debootstrap_base(client, spec)


def apt_source_uris() -> list[str]:
    """Return the Debian archive URIs configured for apt on this host, in order.

    Security and update suites (``bookworm-security``) are skipped: only
    stanzas/lines naming a plain release suite count.
    """
    uris: list[str] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        text = Path(path).read_text(encoding="utf-8", errors="replace")
        for stanza in re.split(r"\n\s*\n", text):
            fields = parse_deb822(stanza)
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "deb" not in fields.get("types", "").split():
                continue
            if any("-" not in s and "/" not in s for s in fields.get("suites", "").split()):
                uris.extend(fields.get("uris", "").split())
    list_files = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]
    for path in list_files:
        if not os.path.exists(path):
            continue
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if words[:1] == ["deb"] and len(words) > 2 and "-" not in words[2]:
                uris.append(words[1])
    return list(dict.fromkeys(u.rstrip("/") for u in uris if u.startswith(("http:", "https:", "file:"))))


def parse_deb822(stanza: str) -> dict[str, str]:
    """Parse one deb822 stanza into lower-cased keys and joined values."""
    fields: dict[str, str] = {}
    key = None
    for line in stanza.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and key is not None:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


def find_mirror(suite: str) -> str:
    """Return a configured Debian mirror URL that carries ``suite``.

    Each configured archive URI is tried as is, then ``/debian`` on the same
    host (for mirrors configured with a snapshot or distribution-specific path).
    """
    configured = apt_source_uris()
    candidates: list[str] = []
    for uri in configured:
        candidates.append(uri)
        parts = urllib.parse.urlsplit(uri)
        if parts.scheme in ("http", "https"):
            candidates.append(urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/debian", "", "")))
    candidates = list(dict.fromkeys(candidates))
    for uri in candidates:
        request = urllib.request.Request(f"{uri}/dists/{suite}/Release", method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=20):
                return uri
        except (urllib.error.URLError, OSError, ValueError):
            continue
    tried = ", ".join(candidates) or "none (no deb source found in /etc/apt)"
    raise BuildError(f"no configured Debian mirror carries '{suite}'; tried: {tried}")


def ensure_debootstrap() -> str:
    """Return the debootstrap executable, installing it with apt-get if missing."""
    found = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run_quiet(["apt-get", "update", "-qq"], "apt-get update", env)
    run_quiet(["apt-get", "install", "-y", "-qq", "debootstrap"], "apt-get install debootstrap", env)
    found = shutil.which("debootstrap") or shutil.which("debootstrap", path="/usr/sbin:/sbin")
    if not found:
        raise BuildError("debootstrap is still missing after apt-get install")
    return found


def mounts_under(root: Path) -> list[str]:
    """Return mount points at or below ``root``, deepest first."""
    prefix = str(root)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len, reverse=True)


def remove_tree(root: Path) -> None:
    """Delete a debootstrap work tree, unmounting anything left mounted in it first.

    Never recurses into a mounted file system (e.g. a bind-mounted /dev).
    """
    for point in mounts_under(root):
        subprocess.run(["umount", point], check=False, capture_output=True)
    leftover = mounts_under(root)
    if leftover:
        raise BuildError(f"not deleting {root}: still mounted: {', '.join(leftover)}")
    shutil.rmtree(root)


def build_debootstrap_base(client: docker.DockerClient, spec: ImageSpec) -> Image:
    """Create ``spec.local_base`` with debootstrap and ``docker import``."""
    if os.geteuid() != 0:
        raise BuildError(
            f"building {spec.local_base} with debootstrap needs root (or make {spec.default_base} available locally)"
        )
    debootstrap = ensure_debootstrap()
    mirror = find_mirror(spec.suite)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=f"cloudpipe-{spec.suite}-", dir="/var/tmp"))
    try:
        rootfs = workdir / "rootfs"
        log(spec, f"debootstrap {spec.suite} (minbase + {','.join(spec.base_packages)}) from {mirror}")
        run_quiet(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(spec.base_packages)}",
                spec.suite,
                str(rootfs),
                mirror,
            ],
            f"debootstrap {spec.suite}",
        )
        slim_rootfs(rootfs)
        archive = workdir / "rootfs.tar"
        run_quiet(
            [
                "tar",
                "--numeric-owner",
                "--xattrs",
                "-C",
                str(rootfs),
                "--exclude=./dev/*",
                "--exclude=./proc/*",
                "--exclude=./sys/*",
                "-cf",
                str(archive),
                ".",
            ],
            "tar rootfs",
        )
        repository, tag = spec.local_base.split(":")
        client.api.import_image(
            src=str(archive),
            repository=repository,
            tag=tag,
            changes=[
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "ENV LANG=C.UTF-8",
                f"LABEL {LABEL_BASE}={spec.suite}",
                f"LABEL {LABEL_BASE_PACKAGES}={','.join(sorted(spec.base_packages))}",
                'CMD ["bash"]',
            ],
        )
    finally:
        remove_tree(workdir)
    image = find_image(client, spec.local_base)
    if image is None:
        raise BuildError(f"docker import did not produce {spec.local_base}")
    log(spec, f"built {spec.local_base} in {time.monotonic() - started:.0f}s ({size_mb(image)})")
    return image


def slim_rootfs(rootfs: Path) -> None:
    """Drop apt caches, logs, documentation and translations from a new rootfs.

    Like the official ``-slim`` images, a dpkg ``path-exclude`` file keeps
    later package installs from bringing the documentation back.
    """
    for pattern in SLIM_REMOVE:
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                if path.name != "partial":  # apt's download directories stay
                    shutil.rmtree(path)
            else:
                path.unlink()
    for path in (rootfs / "usr/share/doc").rglob("*"):
        if path.name != "copyright" and (path.is_file() or path.is_symlink()):
            path.unlink()
    (rootfs / "etc/dpkg/dpkg.cfg.d/cloudpipe-slim").write_text(DPKG_EXCLUDES, encoding="utf-8")


# --------------------------------------------------------------------------
# Build context
# --------------------------------------------------------------------------


def cache_root() -> Path:
    """Directory for downloaded packages, shared between runs."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "cloudpipe" / "runner-images"


def fetch_packages(spec: ImageSpec, download: Download) -> Path:
    """Run ``pip download`` for ``download`` once and return the cached directory."""
    key_material = json.dumps(
        [download.requirements, download.options, download.legacy_setuptools, download.legacy_pip]
    )
    dest = cache_root() / hashlib.sha256(key_material.encode()).hexdigest()[:20]
    names = " ".join(download.requirements)
    if (dest / ".complete").exists():
        log(spec, f"packages: {names} (cached)")
        return dest
    log(spec, f"packages: pip download {names}")
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip"]
    if download.legacy_pip:
        (wheel,) = fetch_packages(
            spec, Download(requirements=(LEGACY_PIP,), options=("--only-binary=:all:", "--no-deps"))
        ).glob("pip-*.whl")
        pip = [sys.executable, str(wheel / "pip")]  # pip runs from its own wheel
    command = [
        *pip,
        "download",
        "--disable-pip-version-check",
        "--no-input",
        "-d",
        str(partial),
        *download.options,
        *download.requirements,
    ]
    with tempfile.TemporaryDirectory(prefix="cloudpipe-pip-") as tmp:
        env = dict(os.environ)
        if download.legacy_setuptools:
            constraints = Path(tmp) / "constraints.txt"
            constraints.write_text(LEGACY_SETUPTOOLS + "\n", encoding="utf-8")
            # pip >= 25.3 constrains isolated build environments through
            # PIP_BUILD_CONSTRAINT, older pip through PIP_CONSTRAINT.
            env["PIP_CONSTRAINT"] = env["PIP_BUILD_CONSTRAINT"] = str(constraints)
        run_quiet(command, f"pip download {names}", env)
    (partial / ".complete").touch()
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(partial, dest)
    return dest


def stage_context(spec: ImageSpec, staging: Path) -> None:
    """Copy the image sources plus downloaded packages into ``staging``."""
    shutil.copytree(
        spec.context_dir, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    )
    packages = staging / "packages"
    packages.mkdir(exist_ok=True)
    for download in spec.downloads:
        for item in fetch_packages(spec, download).iterdir():
            if not item.name.startswith("."):
                shutil.copy2(item, packages / item.name)


def iter_files(root: Path) -> Iterator[Path]:
    """Yield the regular files below ``root`` in a stable order."""
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


def context_hash(staging: Path, build_args: dict[str, str], base: Image) -> str:
    """Hash the staged context, the build arguments and the base image ID."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"args": build_args, "base": base.id}, sort_keys=True).encode())
    for path in iter_files(staging):
        digest.update(path.relative_to(staging).as_posix().encode() + b"\0")
        digest.update(b"x" if os.access(path, os.X_OK) else b"-")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# --------------------------------------------------------------------------
# Docker build
# --------------------------------------------------------------------------


def docker_build(
    client: docker.DockerClient,
    what: str,
    *,
    path: str | None = None,
    fileobj: io.BytesIO | None = None,
    tag: str | None = None,
    buildargs: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    nocache: bool = False,
) -> str:
    """Run a classic ``docker build`` through the API; return the image ID.

    Never pulls: the base must already be local. The build log is kept quiet
    and only shown (its tail) when the build fails.
    """
    lines: list[str] = []
    image_id = None
    try:
        for chunk in client.api.build(
            path=path,
            fileobj=fileobj,
            tag=tag,
            buildargs=buildargs,
            labels=labels,
            nocache=nocache,
            pull=False,
            rm=True,
            forcerm=True,
            decode=True,
        ):
            if "stream" in chunk:
                lines.extend(chunk["stream"].splitlines())
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = str(chunk["aux"]["ID"])
            if "error" in chunk:
                lines.append(chunk["error"])
                raise BuildError(f"{what} failed:\n{tail(chr(10).join(lines))}")
    except docker.errors.APIError as exc:
        raise BuildError(f"{what} failed: {exc.explanation or exc}") from exc
    if image_id is None:
        raise BuildError(f"{what} finished without an image ID:\n{tail(chr(10).join(lines))}")
    return image_id


def probe_python(client: docker.DockerClient, spec: ImageSpec, image_id: str) -> str:
    """Import the image's runtime modules in a throwaway container; return ``major.minor``."""
    try:
        output = client.containers.run(
            image_id,
            [spec.python, "-c", spec.probe],
            remove=True,
            network_disabled=True,
            stdout=True,
            stderr=False,
        )
    except docker.errors.ContainerError as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc.stderr)
        raise BuildError(f"{spec.tag}: import check failed:\n{tail(stderr)}") from exc
    version = output.decode().strip().splitlines()[-1]
    if not version.startswith(spec.python_prefix):
        raise BuildError(f"{spec.tag}: expected Python {spec.python_prefix}*, image has {version}")
    return version


def size_mb(image: Image) -> str:
    """Human readable size of ``image``."""
    return f"{image.attrs.get('Size', 0) / 1e6:.0f} MB"


def build_image(client: docker.DockerClient, spec: ImageSpec, base_override: str | None, force: bool) -> None:
    """Build ``spec.tag`` unless it is already up to date."""
    base_ref, base = resolve_base(client, spec, base_override)
    build_args = {"BASE": base_ref, **spec.build_args}
    with tempfile.TemporaryDirectory(prefix=f"cloudpipe-{spec.name}-ctx-") as tmp:
        staging = Path(tmp)
        stage_context(spec, staging)
        digest = context_hash(staging, build_args, base)
        existing = find_image(client, spec.tag)
        existing_labels = (existing.labels or {}) if existing is not None else {}
        if not force and existing_labels.get(LABEL_HASH) == digest:
            log(spec, f"up to date: {spec.tag} (context {digest[:12]})")
            return
        started = time.monotonic()
        log(spec, f"building {spec.tag} from {base_ref}")
        built = docker_build(client, f"docker build {spec.tag}", path=str(staging), buildargs=build_args, nocache=force)
    python = probe_python(client, spec, built)
    labels = {LABEL_RUNNER: spec.name, LABEL_PYTHON: python, LABEL_HASH: digest}
    if spec.serializers:
        labels[LABEL_SERIALIZERS] = spec.serializers
    final_id = docker_build(
        client, f"labelling {spec.tag}", tag=spec.tag, labels=labels, fileobj=io.BytesIO(f"FROM {built}\n".encode())
    )
    if existing is not None and existing.id and existing.id != final_id:
        remove_stale(client, existing.id)
    image = client.images.get(final_id)
    log(spec, f"built {spec.tag} in {time.monotonic() - started:.0f}s (python {python}, {size_mb(image)})")


def remove_stale(client: docker.DockerClient, image_id: str) -> None:
    """Remove a superseded image if nothing else (tag or container) uses it."""
    try:
        if not client.images.get(image_id).tags:
            client.images.remove(image_id)
    except docker.errors.APIError:
        pass  # still referenced (e.g. by a container); leave it to `docker image prune`


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse command line arguments."""
    parser = argparse.ArgumentParser(description="Build the Cloudpipe runner images.")
    parser.add_argument("--only", choices=sorted(SPECS), help="build just this image")
    parser.add_argument(
        "--base-python3", metavar="IMG", help="base image for the python3 runner (default: debian:bookworm-slim)"
    )
    parser.add_argument(
        "--base-python2", metavar="IMG", help="base image for the python2 runner (default: debian:bullseye-slim)"
    )
    parser.add_argument(
        "--base-node", metavar="IMG", help="base image for the node runner (default: debian:bookworm-slim)"
    )
    parser.add_argument("--force", action="store_true", help="rebuild runner images even if their inputs are unchanged")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = parse_args(argv)
    overrides = {"python3": args.base_python3, "python2": args.base_python2, "node": args.base_node}
    names = [args.only] if args.only else ["python3", "python2", "node", "python3.13"]
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except docker.errors.DockerException as exc:
        print(f"error: cannot reach the Docker daemon: {exc}", file=sys.stderr)
        return 1
    try:
        for name in names:
            build_image(client, SPECS[name], overrides.get(name), args.force)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except docker.errors.DockerException as exc:
        print(f"error: Docker API call failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
