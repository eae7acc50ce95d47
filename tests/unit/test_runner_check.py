"""RunnerCheck on its own: which specs pass, and how long image labels are reused."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from cloudpipe_server.errors import FailedPrecondition
from cloudpipe_server.jobs.compat import RunnerCheck, minor_version, serializers_of
from cloudpipe_server.models import JobSpec

RUNNER = {"org.cloudpipe.runner": "python3", "org.cloudpipe.python": "3.11"}


class Labels:
    def __init__(self, images: dict[str, Mapping[str, str] | None]) -> None:
        self.images = images
        self.lookups: list[str] = []

    async def __call__(self, image: str) -> Mapping[str, str] | None:
        self.lookups.append(image)
        return self.images.get(image)


def test_versions_and_serializer_labels_parse() -> None:
    assert minor_version("3.11.2") == "3.11" and minor_version("3.12") == "3.12"
    assert serializers_of({"org.cloudpipe.serializers": "cloudpickle==3.1.1 dill==0.4.1"}) == {"cloudpickle", "dill"}
    assert serializers_of(RUNNER) == {"cloudpickle"}  # labelled before serializers were recorded
    assert serializers_of({"maintainer": "someone"}) is None


async def test_shell_jobs_and_matching_functions_pass() -> None:
    labels = Labels({"runner": {**RUNNER, "org.cloudpipe.serializers": "cloudpickle==3.1.1 dill==0.4.1"}})
    check = RunnerCheck(labels, "runner")
    await check.resolve([JobSpec(cmd="true"), JobSpec(cmd="x", client_python="3.11.7", serializer="dill")])
    assert labels.lookups == ["runner"]


async def test_mismatch_names_the_job_both_versions_and_the_fix() -> None:
    check = RunnerCheck(Labels({"runner": RUNNER}), "runner")
    with pytest.raises(FailedPrecondition, match=r"jobs\[1\]: Python version mismatch.*3\.12.*3\.11") as raised:
        await check.resolve([JobSpec(cmd="true"), JobSpec(cmd="x", client_python="3.12")])
    assert "--base-python3 python:3.12-slim" in str(raised.value)
    with pytest.raises(FailedPrecondition, match="serialized with dill"):
        await check.resolve([JobSpec(cmd="x", client_python="3.11", serializer="dill")])


async def test_unknown_or_foreign_images_pass() -> None:
    check = RunnerCheck(Labels({"plain": {"maintainer": "x"}}), "missing")
    await check.resolve([JobSpec(cmd="x", client_python="3.99", serializer="dill")])
    await check.resolve([JobSpec(cmd="x", image="plain", client_python="3.99", serializer="dill")])


async def test_labels_are_cached_for_the_ttl() -> None:
    now = [0.0]
    labels = Labels({"runner": RUNNER})
    check = RunnerCheck(labels, "runner", ttl=30, clock=lambda: now[0])
    spec = JobSpec(cmd="x", client_python="3.11")
    await check.resolve([spec, spec])
    now[0] = 29
    await check.resolve([spec])
    now[0] = 31
    await check.resolve([spec])
    assert labels.lookups == ["runner", "runner"]


async def test_a_function_without_an_image_gets_the_runner_of_its_python() -> None:
    runner_313 = {"org.cloudpipe.runner": "python3.13", "org.cloudpipe.python": "3.13"}
    labels = Labels({"runner": RUNNER, "cloudpipe/runner-python3.13:latest": runner_313})
    check = RunnerCheck(labels, "runner")
    shell, same, newer, named = await check.resolve(
        [
            JobSpec(cmd="true"),
            JobSpec(cmd="x", client_python="3.11.7"),
            JobSpec(cmd="x", client_python="3.13.1"),
            JobSpec(cmd="x", image="runner", client_python="3.11"),
        ]
    )
    assert (shell.image, same.image, named.image) == ("", "", "runner")
    assert newer.image == "cloudpipe/runner-python3.13:latest"
    # A Python with no runner of its own is refused, naming the runner it looked for.
    with pytest.raises(FailedPrecondition, match=r"has no cloudpipe/runner-python3\.12:latest"):
        await check.resolve([JobSpec(cmd="x", client_python="3.12.0")])
