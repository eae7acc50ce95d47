"""Building images through the Docker engine, confined and once per digest.

Confinement (the same spirit as jobs): the build's containers get a memory limit and a
CPU quota, the whole build a time limit (the engine cancels a build whose client hangs
up, so the connection is shut at the deadline), the network only for the build
(bridge; the image carries none), no host mounts (the classic builder has none and the
Dockerfile is ours, see `dockerfile`), and the image ends as the runner's non-root
user. Nothing is pulled: bases must be on the engine. At most `concurrent_builds`
builds run at once on one server, an account has at most MAX_REQUESTS_PER_ACCOUNT build
requests in progress on one server (waiting ones included), and at most
`max_images_per_account` images.

Once per digest: within one server an asyncio lock per digest; across servers on one
engine the engine lock (`engine.EngineLock`). A request that waited finds the image
built and reports it as cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import tempfile
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from cloudpipe_common.waiting import within
from cloudpipe_server.errors import FailedPrecondition, ResourceExhausted
from cloudpipe_server.images import wheels
from cloudpipe_server.images.dockerfile import LABEL_ACCOUNT, RECIPE_VERSION, Base, Recipe, render
from cloudpipe_server.images.engine import BuiltImage, Engine, hang_up
from cloudpipe_server.images.spec import ImageSpec, digest_of, reference_of

log = logging.getLogger(__name__)

TAIL_LINES = 40
MAX_REQUESTS_PER_ACCOUNT = 4
_RUNNER_LABELS = ("org.cloudpipe.runner", "org.cloudpipe.serializers", "org.cloudpipe.agent")
_STEP_LINE = re.compile(r"Step (\d{1,4})/\d{1,4} : ")

__all__ = ["BuildConfig", "BuiltImage", "Done", "Event", "Failed", "ImageBuilder", "Log"]


@dataclass(frozen=True)
class BuildConfig:
    runner_image: str
    base_url: str = ""  # empty: DOCKER_HOST or the local socket
    memory_bytes: int = 2 << 30
    cpus: float = 1.0
    timeout: float = 900.0
    concurrent_builds: int = 2
    max_images_per_account: int = 100
    wheel_source: wheels.WheelSource = field(default_factory=wheels.WheelSource)


@dataclass(frozen=True)
class Log:
    line: str
    step: int
    steps: int


@dataclass(frozen=True)
class Done:
    image: BuiltImage
    cached: bool


@dataclass(frozen=True)
class Failed:
    step: int
    description: str
    message: str
    tail: str


Event = Log | Done | Failed


class ImageBuilder:
    """Builds specs on one engine; `build` is an async stream of events."""

    def __init__(self, config: BuildConfig) -> None:
        self._config = config
        self.engine = Engine(config.base_url)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._slots = asyncio.Semaphore(config.concurrent_builds)
        self.builds_started = 0  # engine builds this builder ran (tests, metrics)
        self._requests: dict[str, int] = {}  # build requests in progress, by account

    def close(self) -> None:
        self.engine.close()

    async def inspect(self, reference: str) -> BuiltImage | None:
        return await self.engine.inspect(reference)

    async def list_images(self, account: str) -> list[BuiltImage]:
        return await self.engine.images_of(account)

    async def remove(self, reference: str) -> None:
        await self.engine.remove(reference)

    async def build(self, account: str, spec: ImageSpec) -> AsyncIterator[Event]:
        """Log events, then one Done or Failed. Raises Unavailable when the engine does
        not answer, ResourceExhausted past the account's number of images or of build
        requests in progress."""
        if self._requests.get(account, 0) >= MAX_REQUESTS_PER_ACCOUNT:
            raise ResourceExhausted(
                f"the account has {MAX_REQUESTS_PER_ACCOUNT} image builds in progress on this server, "
                "the most it may have: wait for one to finish"
            )
        self._requests[account] = self._requests.get(account, 0) + 1
        try:
            async with contextlib.aclosing(self._request(account, spec)) as events:
                async for event in events:
                    yield event
        finally:
            self._requests[account] -= 1
            if not self._requests[account]:
                del self._requests[account]

    async def _request(self, account: str, spec: ImageSpec) -> AsyncGenerator[Event, None]:
        steps = len(spec.steps)
        try:
            base, python_version = await self._base(account, spec)
        except FailedPrecondition as exc:
            yield Failed(0, "the base image", str(exc), "")
            return
        digest = digest_of(spec, account, f"{base.runner}|{base.image}", RECIPE_VERSION)
        reference = reference_of(digest)
        if (found := await self.inspect(reference)) is not None:
            yield Done(found, cached=True)
            return
        if len(await self.list_images(account)) >= self._config.max_images_per_account:
            raise ResourceExhausted(
                f"the account has {self._config.max_images_per_account} images, the most it may have: "
                "delete some (cloudpipe image rm)"
            )
        lock = self._locks.get(digest)
        if lock is None:
            lock = self._locks[digest] = asyncio.Lock()
        # the outcome is told after the locks are released: a caller that stops reading
        # at the outcome (the SDK does) must not leave the engine lock behind
        outcome: Done | Failed | None = None
        async with lock, self.engine.lock(digest, base.runner, self._config.timeout + 60) as waited:
            if waited:
                yield Log("waited for the same image being built by another request", 0, steps)
            if (found := await self.inspect(reference)) is not None:
                outcome = Done(found, cached=True)
            else:
                if self._slots.locked():
                    yield Log("waiting for a build slot (other builds are running)", 0, steps)
                async with (
                    self._slots,
                    contextlib.aclosing(self._build(account, spec, base, python_version, digest)) as events,
                ):
                    async for event in events:
                        if isinstance(event, Log):
                            yield event
                        else:
                            outcome = event
        if outcome is not None:
            yield outcome

    async def _base(self, account: str, spec: ImageSpec) -> tuple[Base, str]:
        runner, runner_labels = await self.engine.image_id(self._config.runner_image, "the runner image")
        if not spec.base:
            version = runner_labels.get("org.cloudpipe.python") or (await self.engine.probe(runner))[0]
            return Base(runner), version
        image, labels = await self.engine.image_id(spec.base, f"the base image {spec.base!r}")
        if labels.get(LABEL_ACCOUNT, account) != account:  # another account's image, by any name
            raise FailedPrecondition(f"the base image {spec.base!r} is not on the server's engine")
        version, _ = await self.engine.probe(image)
        _, runner_site = await self.engine.probe(runner)
        labels = {k: v for k, v in runner_labels.items() if k in _RUNNER_LABELS}
        labels["org.cloudpipe.python"] = version
        return Base(runner, image, runner_site, labels), version

    async def _build(
        self, account: str, spec: ImageSpec, base: Base, python_version: str, digest: str
    ) -> AsyncGenerator[Event, None]:
        steps = len(spec.steps)
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        source = self._config.wheel_source
        with tempfile.TemporaryDirectory(prefix="cloudpipe-image-") as folder:
            work = Path(folder)
            downloaded: dict[int, list[Path]] = {}
            pip_tool: Path | None = None
            for index, step in enumerate(spec.steps):
                if step.kind != "pip_install":
                    continue
                yield Log(f"downloading wheels for {' '.join(step.names)} (Python {python_version})", index + 1, steps)
                try:
                    downloaded[index] = await wheels.download(step.names, python_version, source, work / f"pip-{index}")
                    if pip_tool is None:
                        pip_tool = await wheels.pip_wheel(python_version, source, work / "pip-tool")
                except wheels.DownloadFailed as exc:
                    tail.extend(exc.log.splitlines())
                    yield Failed(index + 1, step.describe(), str(exc), "\n".join(tail))
                    return
                yield Log(f"downloaded {', '.join(w.name for w in downloaded[index])}", index + 1, steps)
            recipe = render(spec, base, account=account, digest=digest, wheels=downloaded, pip_tool=pip_tool)
            context = work / "context.tar"
            await asyncio.to_thread(recipe.write_tarball, context)
            self.builds_started += 1
            log.info("image %s: building for account %s (%s)", digest[:12], account, spec.summary()[:200])
            async for event in self._stream(recipe, context, reference_of(digest), steps, tail):
                yield event
                if isinstance(event, Failed):
                    log.info("image %s: step %d failed: %s", digest[:12], event.step, event.message[:200])
                    return
        found = await self.inspect(reference_of(digest))
        if found is None:
            yield Failed(0, "the build", "the engine finished without the image", "\n".join(tail))
            return
        log.info("image %s: built", digest[:12])
        yield Done(found, cached=False)

    def _params(self, tag: str) -> dict[str, str]:
        period = 100_000
        return {
            "t": tag,
            "rm": "1",
            "forcerm": "1",
            "pull": "0",
            "networkmode": "bridge",
            "memory": str(self._config.memory_bytes),
            "memswap": str(self._config.memory_bytes),
            "cpuperiod": str(period),
            "cpuquota": str(int(period * self._config.cpus)),
        }

    async def _stream(
        self, recipe: Recipe, context: Path, tag: str, steps: int, tail: deque[str]
    ) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        try:
            response = await self.engine.call(lambda _: self.engine.start_build(context, self._params(tag)))
        except FailedPrecondition as exc:
            yield Failed(0, "the build", str(exc), "")
            return

        def pump() -> None:
            try:
                for raw in response.iter_lines():
                    if raw:
                        loop.call_soon_threadsafe(queue.put_nowait, json.loads(raw))
            except (requests.RequestException, ValueError, AttributeError, OSError) as exc:
                loop.call_soon_threadsafe(queue.put_nowait, {"cloudpipe-closed": str(exc)})
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        thread = threading.Thread(target=pump, name="image-build", daemon=True)
        thread.start()
        deadline = time.monotonic() + self._config.timeout
        instruction = 0

        def failed(message: str) -> Failed:
            step = recipe.steps_of[instruction - 1] if 0 < instruction <= len(recipe.steps_of) else 0
            return Failed(step, recipe.descriptions[step], message, "\n".join(tail))

        try:
            while True:
                try:
                    item = await within(queue.get(), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    yield failed(f"the build took longer than the limit of {self._config.timeout:.0f} s")
                    return
                if item is None:
                    return
                if "error" in item or "cloudpipe-closed" in item:
                    message = str(item.get("error") or item.get("cloudpipe-closed")).strip()
                    tail.append(message)
                    yield failed(message)
                    return
                for line in str(item.get("stream", "")).splitlines():
                    # the engine's "Step N/M : ..." lines; a step's own output may print
                    # anything, so only a number within the recipe counts
                    if (step := _STEP_LINE.match(line)) and 1 <= int(step[1]) <= len(recipe.steps_of):
                        instruction = int(step[1])
                    tail.append(line)
                    yield Log(line, recipe.steps_of[instruction - 1] if instruction else 0, steps)
        finally:
            hang_up(response)  # at the deadline, or when the caller went away: the build is cancelled
            await asyncio.to_thread(thread.join, 10)
            response.close()
