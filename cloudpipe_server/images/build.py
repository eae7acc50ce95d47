"""Building images through the Docker engine, confined and once per digest.

Confinement (the same spirit as jobs): the build's containers get a memory limit and a
CPU quota, the whole build a time limit (the engine cancels a build whose client goes
away, so the stream is closed at the deadline), the network only for the build
(bridge; the image carries none), no host mounts (the classic builder has none and the
Dockerfile is ours, see `dockerfile`), and the image ends as the runner's non-root
user. Nothing is pulled: bases must be on the engine.

Once per digest: within one server an asyncio lock per digest; across servers on one
engine a lock container named after the digest (the engine refuses a second container
of one name), removed after the build, taken over when older than the time limit. A
request that waited finds the image built and reports it as cached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import docker
import docker.errors
import requests

from cloudpipe_server.errors import FailedPrecondition, NotFound
from cloudpipe_server.images import wheels
from cloudpipe_server.images.dockerfile import (
    LABEL_ACCOUNT,
    LABEL_DIGEST,
    LABEL_SUMMARY,
    RECIPE_VERSION,
    Base,
    Recipe,
    render,
)
from cloudpipe_server.images.spec import ImageSpec, digest_of, reference_of

log = logging.getLogger(__name__)

LOCK_PREFIX = "cloudpipe-imagebuild-"
LABEL_LOCK = "org.cloudpipe.image.build-lock"
TAIL_LINES = 40
_RUNNER_LABELS = ("org.cloudpipe.runner", "org.cloudpipe.serializers", "org.cloudpipe.agent")
_VERSION_PROBE = "import site, sys; print('%d.%d' % sys.version_info[:2]); print(site.getsitepackages()[0])"


@dataclass(frozen=True)
class BuildConfig:
    runner_image: str
    base_url: str = ""  # empty: DOCKER_HOST or the local socket
    memory_bytes: int = 2 << 30
    cpus: float = 1.0
    timeout: float = 900.0
    wheel_source: wheels.WheelSource = field(default_factory=wheels.WheelSource)


@dataclass(frozen=True)
class BuiltImage:
    reference: str
    digest: str
    account: str
    summary: str
    size_bytes: int = 0
    created_at: datetime | None = None


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


def built_from_attrs(attrs: dict[str, Any]) -> BuiltImage | None:
    """The image of an engine `inspect`/`images` entry, or None if it is not ours."""
    labels = (attrs.get("Config") or {}).get("Labels") or attrs.get("Labels") or {}
    digest = labels.get(LABEL_DIGEST, "")
    if not digest or LABEL_ACCOUNT not in labels:
        return None
    created = attrs.get("Created")
    when = (
        datetime.fromtimestamp(created, UTC)
        if isinstance(created, int)
        else (datetime.fromisoformat(created[:19]).replace(tzinfo=UTC) if created else None)
    )
    return BuiltImage(
        reference_of(digest),
        digest,
        labels[LABEL_ACCOUNT],
        labels.get(LABEL_SUMMARY, ""),
        int(attrs.get("Size") or 0),
        when,
    )


class ImageBuilder:
    """Builds specs on one engine; `build` is an async stream of events."""

    def __init__(self, config: BuildConfig) -> None:
        self._config = config
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.builds_started = 0  # engine builds this builder ran (tests, metrics)

    @property
    def api(self) -> docker.APIClient:
        with self._client_lock:
            if self._client is None:
                url = self._config.base_url
                self._client = docker.DockerClient(base_url=url) if url else docker.from_env()
            return self._client.api

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # -- lookups -------------------------------------------------------------------------

    async def inspect(self, reference: str) -> BuiltImage | None:
        try:
            attrs = await asyncio.to_thread(self.api.inspect_image, reference)
        except docker.errors.ImageNotFound:
            return None
        return built_from_attrs(attrs)

    async def list_images(self, account: str) -> list[BuiltImage]:
        found = await asyncio.to_thread(
            self.api.images, filters={"label": [f"{LABEL_ACCOUNT}={account}", LABEL_DIGEST]}
        )
        images = [image for item in found if (image := built_from_attrs(item)) is not None and image.account == account]
        return sorted(
            {i.digest: i for i in images}.values(),
            key=lambda i: i.created_at or datetime.min.replace(tzinfo=UTC),
            reverse=True,
        )

    async def remove(self, reference: str) -> None:
        try:
            await asyncio.to_thread(self.api.remove_image, reference, force=True)
        except docker.errors.ImageNotFound:
            raise NotFound(f"image {reference!r} not found") from None

    # -- building ------------------------------------------------------------------------

    async def build(self, account: str, spec: ImageSpec) -> AsyncIterator[Event]:
        """Log events, then one Done or Failed."""
        steps = len(spec.steps)
        try:
            base, python_version = await self._base(spec)
        except FailedPrecondition as exc:
            yield Failed(0, "the base image", str(exc), "")
            return
        digest = digest_of(spec, account, f"{base.runner}|{base.image}", RECIPE_VERSION)
        reference = reference_of(digest)
        if (found := await self.inspect(reference)) is not None:
            yield Done(found, cached=True)
            return
        lock = self._locks.get(digest)
        if lock is None:
            lock = self._locks[digest] = asyncio.Lock()
        async with lock, self._engine_lock(digest) as waited:
            if waited:
                yield Log("waited for the same image being built by another request", 0, steps)
            if (found := await self.inspect(reference)) is not None:
                yield Done(found, cached=True)
                return
            async for event in self._build(account, spec, base, python_version, digest):
                yield event

    async def _base(self, spec: ImageSpec) -> tuple[Base, str]:
        runner = await self._image_id(self._config.runner_image, "the runner image")
        runner_labels = (await asyncio.to_thread(self.api.inspect_image, runner))["Config"].get("Labels") or {}
        if not spec.base:
            version = runner_labels.get("org.cloudpipe.python") or (await self._probe(runner))[0]
            return Base(runner), version
        image = await self._image_id(spec.base, f"the base image {spec.base!r}")
        version, _ = await self._probe(image)
        _, runner_site = await self._probe(runner)
        labels = {k: v for k, v in runner_labels.items() if k in _RUNNER_LABELS}
        labels["org.cloudpipe.python"] = version
        return Base(runner, image, runner_site, labels), version

    async def _image_id(self, name: str, what: str) -> str:
        try:
            attrs = await asyncio.to_thread(self.api.inspect_image, name)
        except docker.errors.ImageNotFound:
            raise FailedPrecondition(
                f"{what} is not on the server's engine (images are not pulled for builds)"
            ) from None
        return str(attrs["Id"])

    async def _probe(self, image: str) -> tuple[str, str]:
        """The image's python3 version ("3.11") and site directory, from a short
        container without network."""

        def run() -> bytes:
            container = self.api.create_container(
                image,
                command=["python3", "-c", _VERSION_PROBE],
                user="root",
                entrypoint=[],
                network_disabled=True,
                host_config=self.api.create_host_config(mem_limit=256 << 20, network_mode="none"),
                labels={LABEL_LOCK: "probe"},
            )
            try:
                self.api.start(container)
                status = self.api.wait(container, timeout=60)
                output: bytes = self.api.logs(container, stdout=True, stderr=True)
                if status.get("StatusCode") != 0:
                    raise FailedPrecondition(
                        f"python3 does not run in {image}: {output.decode(errors='replace')[-300:]}"
                    )
                return output
            finally:
                self.api.remove_container(container, force=True)

        try:
            lines = (await asyncio.to_thread(run)).decode().split()
        except docker.errors.APIError as exc:
            raise FailedPrecondition(f"the base image cannot run python3: {exc.explanation or exc}") from None
        if len(lines) < 2:
            raise FailedPrecondition("the base image's python3 did not say its version")
        return lines[0], lines[1]

    def _engine_lock(self, digest: str) -> _EngineLock:
        return _EngineLock(self, LOCK_PREFIX + digest[:48], self._config.timeout + 60)

    async def _build(
        self, account: str, spec: ImageSpec, base: Base, python_version: str, digest: str
    ) -> AsyncIterator[Event]:
        steps = len(spec.steps)
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        downloaded: dict[int, dict[str, bytes]] = {}
        pip_tool: bytes | None = None
        for index, step in enumerate(spec.steps):
            if step.kind != "pip_install":
                continue
            yield Log(f"downloading wheels for {' '.join(step.names)} (Python {python_version})", index + 1, steps)
            try:
                downloaded[index] = await wheels.download(step.names, python_version, self._config.wheel_source)
                if pip_tool is None:
                    pip_tool = await wheels.pip_wheel(python_version, self._config.wheel_source)
            except wheels.DownloadFailed as exc:
                tail.extend(exc.log.splitlines())
                yield Failed(index + 1, step.describe(), str(exc), "\n".join(tail))
                return
            yield Log(f"downloaded {', '.join(sorted(downloaded[index]))}", index + 1, steps)
        recipe = render(spec, base, account=account, digest=digest, wheels=downloaded, pip_tool=pip_tool)
        self.builds_started += 1
        log.info("image %s: building for account %s (%s)", digest[:12], account, spec.summary()[:200])
        async for event in self._stream(recipe, reference_of(digest), steps, tail):
            yield event
            if isinstance(event, Failed):
                return
        found = await self.inspect(reference_of(digest))
        if found is None:
            yield Failed(0, "the build", "the engine finished without the image", "\n".join(tail))
            return
        log.info("image %s: built", digest[:12])
        yield Done(found, cached=False)

    async def _stream(self, recipe: Recipe, tag: str, steps: int, tail: deque[str]) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        response = await asyncio.to_thread(self._start_build, recipe, tag)

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
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    step = recipe.steps_of[instruction - 1] if instruction else 0
                    message = f"the build took longer than the limit of {self._config.timeout:.0f} s"
                    yield Failed(step, recipe.descriptions[step], message, "\n".join(tail))
                    return
                if item is None:
                    return
                if "error" in item or "cloudpipe-closed" in item:
                    step = recipe.steps_of[instruction - 1] if instruction else 0
                    message = str(item.get("error") or item.get("cloudpipe-closed")).strip()
                    tail.append(message)
                    yield Failed(step, recipe.descriptions[step], message, "\n".join(tail))
                    return
                for line in str(item.get("stream", "")).splitlines():
                    if line.startswith("Step ") and " : " in line:
                        instruction = int(line.split()[1].split("/")[0])
                    tail.append(line)
                    step = recipe.steps_of[instruction - 1] if instruction else 0
                    yield Log(line, step, steps)
        finally:
            # at the deadline, or when the caller went away: the engine cancels the build
            # of a client that hung up
            _hang_up(response)
            await asyncio.to_thread(thread.join, 10)
            response.close()

    def _start_build(self, recipe: Recipe, tag: str) -> requests.Response:
        api = self.api
        period = 100_000
        params = {
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
        url = f"{api.base_url}/v{api.api_version}/build"
        response: requests.Response = api.post(
            url,
            params=params,
            data=recipe.tarball(),
            headers={"Content-Type": "application/x-tar"},
            stream=True,
            timeout=None,
        )
        if response.status_code != 200:
            text = response.text[:500]
            response.close()
            raise FailedPrecondition(f"the engine refused the build: {text}")
        return response


def _hang_up(response: requests.Response) -> None:
    """Shut the build's connection down under the thread reading it (closing the
    response would wait for that read, i.e. for the build, to end)."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed already


class _EngineLock:
    """The cross-server lock of one digest: a created (never started) container named
    after it. `async with` yields whether it had to wait."""

    def __init__(self, builder: ImageBuilder, name: str, stale_after: float, poll: float = 0.5) -> None:
        self._builder = builder
        self._name = name
        self._stale_after = stale_after
        self._poll = poll

    async def __aenter__(self) -> bool:
        waited = False
        while True:
            try:
                await asyncio.to_thread(self._create)
                return waited
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
            waited = True
            await self._remove_if_stale()
            await asyncio.sleep(self._poll)

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await asyncio.to_thread(self._builder.api.remove_container, self._name, force=True)
        except docker.errors.NotFound:
            pass

    def _create(self) -> None:
        api = self._builder.api
        api.create_container(
            self._builder._config.runner_image,
            command=["true"],
            name=self._name,
            labels={LABEL_LOCK: str(time.time())},
            network_disabled=True,
        )

    async def _remove_if_stale(self) -> None:
        try:
            attrs = await asyncio.to_thread(self._builder.api.inspect_container, self._name)
        except docker.errors.NotFound:
            return
        since = float((attrs.get("Config", {}).get("Labels") or {}).get(LABEL_LOCK) or 0)
        if time.time() - since > self._stale_after:
            log.warning("image build lock %s is stale (its server went away?): taking it over", self._name)
            await self.__aexit__()
