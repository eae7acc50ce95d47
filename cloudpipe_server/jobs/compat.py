"""Submit-time compatibility of function jobs with the runner image they will run in.

A function job is a pickle: it only loads in a runner with the same Python minor
version and the serializer it was made with. Runner images built by
`runner_images/build.py` say what they have in labels (`org.cloudpipe.python`, e.g.
"3.11", and `org.cloudpipe.serializers`, e.g. "cloudpickle==3.1.1 dill==0.4.1"), so a
mismatch is refused at submit time with FAILED_PRECONDITION naming both sides and the
fix, instead of failing later inside the container at unpickle time.

A function job that names no image, from a client whose Python is not the default
runner's, runs in the runner built for that Python (`cloudpipe/runner-python3.X`, e.g.
3.13 on Debian trixie's python3) when the engine has it: the user does not have to know.

Images without these labels (any image not built by build.py), and images the engine
does not have yet (they are pulled when the job runs), are not checked here.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from cloudpipe_server.errors import FailedPrecondition
from cloudpipe_server.models import JobSpec

LABEL_RUNNER = "org.cloudpipe.runner"
LABEL_PYTHON = "org.cloudpipe.python"
LABEL_SERIALIZERS = "org.cloudpipe.serializers"
# The runner runner_images/build.py makes for one Python minor version (3.13, ...).
RUNNER_FOR_PYTHON = "cloudpipe/runner-python{minor}:latest"
# Runner images labelled before serializers were recorded carry cloudpickle only.
_LEGACY_SERIALIZERS = frozenset({"cloudpickle"})

ImageLabels = Callable[[str], Awaitable[Mapping[str, str] | None]]


def minor_version(version: str) -> str:
    """The major.minor part of a version: 3.11.2 -> 3.11."""
    return ".".join(version.strip().split(".")[:2])


def serializers_of(labels: Mapping[str, str]) -> frozenset[str] | None:
    """Serializer names a runner image has, or None when it is not a Cloudpipe runner."""
    if LABEL_RUNNER not in labels and LABEL_SERIALIZERS not in labels:
        return None
    listed = labels.get(LABEL_SERIALIZERS, "").split()
    if not listed:
        return _LEGACY_SERIALIZERS
    return frozenset(item.split("==")[0] for item in listed)


class RunnerCheck:
    """Refuses function jobs their runner image cannot load. Image labels are looked up
    through `image_labels` (the executor's) and kept for `ttl` seconds."""

    def __init__(
        self,
        image_labels: ImageLabels,
        default_image: str,
        *,
        ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._image_labels = image_labels
        self._default_image = default_image
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Mapping[str, str] | None]] = {}

    async def resolve(self, specs: Sequence[JobSpec]) -> list[JobSpec]:
        """The specs, each function job without an image given the runner of its
        client's Python when the default runner has another; FailedPrecondition for
        the first function job that cannot run in its image."""
        resolved = []
        for index, spec in enumerate(specs):
            if spec.client_python or spec.serializer:
                spec = await self._runner_for(spec)
                await self._check_one(spec, f"jobs[{index}]")
            resolved.append(spec)
        return resolved

    async def _runner_for(self, spec: JobSpec) -> JobSpec:
        if spec.image or not spec.client_python:
            return spec
        client_python = minor_version(spec.client_python)
        default = await self._labels(self._default_image)
        if not default or minor_version(default.get(LABEL_PYTHON, "")) in ("", client_python):
            return spec
        matching = RUNNER_FOR_PYTHON.format(minor=client_python)
        labels = await self._labels(matching)
        if labels and minor_version(labels.get(LABEL_PYTHON, "")) == client_python:
            return dataclasses.replace(spec, image=matching)
        return spec

    async def _check_one(self, spec: JobSpec, where: str) -> None:
        image = spec.image or self._default_image
        labels = await self._labels(image)
        if not labels:
            return
        runner_python = labels.get(LABEL_PYTHON, "")
        client_python = minor_version(spec.client_python) if spec.client_python else ""
        if client_python and runner_python and minor_version(runner_python) != client_python:
            raise FailedPrecondition(
                f"{where}: Python version mismatch: this function was pickled by Python {client_python}, but "
                f"the runner image {image!r} has Python {runner_python}, which cannot load it, and the server "
                f"has no {RUNNER_FOR_PYTHON.format(minor=client_python)}. Fix: run the client on Python "
                f"{runner_python} (or 3.13: python runner_images/build.py --only python3.13), or build a runner "
                f"for Python {client_python} from an image that has it (python runner_images/build.py --only "
                f"python3 --base-python3 python:{client_python}-slim) and tag it "
                f"{RUNNER_FOR_PYTHON.format(minor=client_python)}, or submit with image=..."
            )
        available = serializers_of(labels)
        if spec.serializer and available is not None and spec.serializer not in available:
            raise FailedPrecondition(
                f"{where}: serializer mismatch: this function was serialized with {spec.serializer}, but the "
                f"runner image {image!r} only has {', '.join(sorted(available))}. Fix: rebuild the runner "
                "(python runner_images/build.py --only python3) or submit with the default serializer"
            )

    async def _labels(self, image: str) -> Mapping[str, str] | None:
        now = self._clock()
        cached = self._cache.get(image)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        labels = await self._image_labels(image)
        self._cache[image] = (now, labels)
        return labels
