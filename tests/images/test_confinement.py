"""The build service's confinement and its once-per-digest guarantee across servers:
two builders (as two servers on one engine would have) share only the engine, a build
past its time limit is cancelled, a step past its memory limit fails."""

from __future__ import annotations

import asyncio
import time
import uuid

import docker
import pytest

from cloudpipe_server.images import spec as s
from cloudpipe_server.images.build import BuildConfig, Done, Failed, ImageBuilder
from cloudpipe_server.images.spec import reference_of

pytestmark = pytest.mark.docker

RUNNER = "cloudpipe/runner-python3:latest"


def builder(**config: object) -> ImageBuilder:
    return ImageBuilder(BuildConfig(runner_image=RUNNER, **config))  # type: ignore[arg-type]


async def outcome(built: ImageBuilder, account: str, spec: s.ImageSpec) -> Done | Failed:
    last = None
    async for event in built.build(account, spec):
        last = event
    assert isinstance(last, Done | Failed)
    return last


def commands(*lines: str) -> s.ImageSpec:
    return s.ImageSpec("", (s.Step("run_commands", names=lines),))


def test_two_servers_on_one_engine_build_a_spec_once(docker_engine: docker.DockerClient) -> None:
    account = f"lock-{uuid.uuid4().hex[:8]}"
    spec = commands(f"sleep 2; echo {uuid.uuid4().hex}")
    first, second = builder(), builder()

    async def both() -> list[Done | Failed]:
        return await asyncio.gather(outcome(first, account, spec), outcome(second, account, spec))

    try:
        results = asyncio.run(both())
        assert all(isinstance(r, Done) for r in results)
        done = [r for r in results if isinstance(r, Done)]
        assert sorted(r.cached for r in done) == [False, True]
        assert first.builds_started + second.builds_started == 1
    finally:
        for result in results:
            if isinstance(result, Done):
                docker_engine.images.remove(result.image.reference, force=True)
                break
        first.close()
        second.close()


def test_a_build_past_its_time_limit_is_cancelled(docker_engine: docker.DockerClient) -> None:
    marker = uuid.uuid4().hex
    built = builder(timeout=4.0)
    started = time.monotonic()
    try:
        result = asyncio.run(outcome(built, "limits", commands(f"echo {marker}; sleep 120")))
    finally:
        built.close()
    assert isinstance(result, Failed) and result.step == 1
    assert "longer than the limit of 4 s" in result.message and marker in result.tail
    assert time.monotonic() - started < 30

    def still_running() -> list[str]:
        found = docker_engine.api.containers(all=True)
        return [c["Id"] for c in found if marker in str(c.get("Command", ""))]

    deadline = time.monotonic() + 20
    while still_running() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not still_running(), "the engine kept running the cancelled build's container"


def test_a_step_past_the_memory_limit_fails(docker_engine: docker.DockerClient) -> None:
    built = builder(memory_bytes=96 << 20)
    hog = "python3 -c 'x = bytearray(400 << 20); x[::4096] = b\"1\" * len(x[::4096])'"
    try:
        result = asyncio.run(outcome(built, "limits", commands(f"echo {uuid.uuid4().hex}", hog)))
    finally:
        built.close()
    assert isinstance(result, Failed) and result.step == 1, result
    assert "returned a non-zero code" in result.message
    assert docker_engine.images.list(name=reference_of("0" * 64)) == []
