"""The Docker engine as the image builder uses it: one lazily made client, blocking
calls run in threads with the engine's failures as Unavailable, the images of an
account, the short probe of a base image, the streamed build request, and the lock
of one digest across servers.

The lock is a created (never started) container named after the digest: the engine
refuses a second container of one name, so whoever creates it builds; it is removed by
its id after the build, and taken over when older than the build time limit (its
server went away)."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors
import requests

from cloudpipe_server.errors import FailedPrecondition, NotFound, Unavailable
from cloudpipe_server.images.dockerfile import LABEL_ACCOUNT, LABEL_DIGEST, LABEL_SUMMARY
from cloudpipe_server.images.spec import reference_of

log = logging.getLogger(__name__)

T = TypeVar("T")
LOCK_PREFIX = "cloudpipe-imagebuild-"
LABEL_LOCK = "org.cloudpipe.image.build-lock"
_PROBE = "import site, sys; print('%d.%d' % sys.version_info[:2]); print(site.getsitepackages()[0])"
_UNREACHABLE = (requests.exceptions.ConnectionError, docker.errors.DockerException)


@dataclass(frozen=True)
class BuiltImage:
    """An image the builder made, read back from the engine's labels."""

    reference: str
    digest: str
    account: str
    summary: str
    size_bytes: int = 0
    created_at: datetime | None = None


def built_from_attrs(attrs: dict[str, Any]) -> BuiltImage | None:
    """The image of an engine `inspect`/`images` entry, or None if it is not ours."""
    labels = (attrs.get("Config") or {}).get("Labels") or attrs.get("Labels") or {}
    digest = labels.get(LABEL_DIGEST, "")
    if not digest or LABEL_ACCOUNT not in labels:
        return None
    created = attrs.get("Created")
    when = None
    if isinstance(created, int):
        when = datetime.fromtimestamp(created, UTC)
    elif isinstance(created, str) and created:
        when = datetime.fromisoformat(created[:19]).replace(tzinfo=UTC)
    summary = labels.get(LABEL_SUMMARY, "")
    return BuiltImage(reference_of(digest), digest, labels[LABEL_ACCOUNT], summary, int(attrs.get("Size") or 0), when)


class Engine:
    def __init__(self, base_url: str = "") -> None:
        self._base_url = base_url
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()

    @property
    def api(self) -> docker.APIClient:
        with self._client_lock:
            if self._client is None:
                self._client = docker.DockerClient(base_url=self._base_url) if self._base_url else docker.from_env()
            return self._client.api

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    async def call(self, fn: Callable[[docker.APIClient], T]) -> T:
        """`fn(api)` in a thread; an engine that does not answer is Unavailable (an
        APIError, the engine answering, is left to the caller)."""

        def run() -> T:
            return fn(self.api)

        try:
            return await asyncio.to_thread(run)
        except docker.errors.APIError:
            raise
        except _UNREACHABLE as exc:
            raise Unavailable(f"the Docker engine does not answer: {exc}") from None

    # -- images --------------------------------------------------------------------------

    async def inspect(self, reference: str) -> BuiltImage | None:
        try:
            attrs = await self.call(lambda api: api.inspect_image(reference))
        except docker.errors.ImageNotFound:
            return None
        return built_from_attrs(attrs)

    async def image_id(self, name: str, what: str) -> tuple[str, dict[str, str]]:
        """The id and labels of an image the engine has; FailedPrecondition if it lacks it."""
        try:
            attrs = await self.call(lambda api: api.inspect_image(name))
        except docker.errors.ImageNotFound:
            raise FailedPrecondition(f"{what} is not on the server's engine (bases are not pulled)") from None
        return str(attrs["Id"]), dict((attrs.get("Config") or {}).get("Labels") or {})

    async def images_of(self, account: str) -> list[BuiltImage]:
        wanted = {"label": [f"{LABEL_ACCOUNT}={account}", LABEL_DIGEST]}
        found = await self.call(lambda api: api.images(filters=wanted))
        # only images that still carry their tag: an untagged one (its tag moved to a
        # rebuild, or a layer of a build) cannot be named, used or deleted by reference
        images = [
            image
            for item in found
            if (image := built_from_attrs(item)) is not None
            and image.account == account
            and image.reference in (item.get("RepoTags") or [])
        ]
        return sorted(
            {i.digest: i for i in images}.values(),
            key=lambda i: i.created_at or datetime.min.replace(tzinfo=UTC),
            reverse=True,
        )

    async def remove(self, reference: str) -> None:
        try:
            await self.call(lambda api: api.remove_image(reference, force=True))
        except docker.errors.ImageNotFound:
            raise NotFound(f"image {reference!r} not found") from None

    async def probe(self, image: str) -> tuple[str, str]:
        """The image's python3 version ("3.11") and site directory, from a short
        container without network."""

        def run(api: docker.APIClient) -> bytes:
            container = api.create_container(
                image,
                command=["python3", "-c", _PROBE],
                user="root",
                entrypoint=[],
                network_disabled=True,
                host_config=api.create_host_config(mem_limit=256 << 20, network_mode="none", pids_limit=64),
                labels={LABEL_LOCK: "probe"},
            )
            try:
                api.start(container)
                status = api.wait(container, timeout=60)
                # the last lines only: the image's python3 is the account's own and may print anything
                output: bytes = api.logs(container, stdout=True, stderr=True, tail=5)[-4096:]
            except requests.exceptions.ReadTimeout:
                raise FailedPrecondition("the base image's python3 did not finish within 60 s") from None
            finally:
                api.remove_container(container, force=True)
            if status.get("StatusCode") != 0:
                raise FailedPrecondition(
                    f"python3 does not run in the base image: {output.decode(errors='replace')[-300:]}"
                )
            return output

        try:
            lines = (await self.call(run)).decode(errors="replace").split()
        except docker.errors.APIError as exc:
            raise FailedPrecondition(f"the base image cannot run python3: {exc.explanation or exc}") from None
        said = lines[-2:]
        if len(said) < 2 or not re.fullmatch(r"3\.\d{1,2}", said[0]) or not re.fullmatch(r"/[\w./+-]{1,400}", said[1]):
            raise FailedPrecondition("the base image's python3 did not say its version (a Python 3 is needed)")
        return lines[-2], lines[-1]

    # -- builds --------------------------------------------------------------------------

    def start_build(self, context: Path, params: dict[str, str]) -> requests.Response:
        """POST /build with the context tarball at `context`, streamed (blocking)."""
        api = self.api
        url = f"{api.base_url}/v{api.api_version}/build"
        with context.open("rb") as tarball:
            response: requests.Response = api.post(
                url,
                params=params,
                data=tarball,
                headers={"Content-Type": "application/x-tar"},
                stream=True,
                timeout=None,
            )
        if response.status_code != 200:
            text = response.text[:500]
            response.close()
            raise FailedPrecondition(f"the engine refused the build: {text}")
        return response

    def lock(self, digest: str, runner_image: str, stale_after: float) -> EngineLock:
        return EngineLock(self, LOCK_PREFIX + digest[:48], runner_image, stale_after)


def hang_up(response: requests.Response) -> None:
    """Shut a streamed response's connection down under the thread reading it (closing
    the response would wait for that read, i.e. for the build, to end); the engine
    cancels a build whose client hung up."""
    connection = getattr(response.raw, "connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed already


class EngineLock:
    """`async with` holds the lock of one digest; it yields whether it had to wait."""

    def __init__(self, engine: Engine, name: str, image: str, stale_after: float, poll: float = 0.5) -> None:
        self._engine = engine
        self._name = name
        self._image = image
        self._stale_after = stale_after
        self._poll = poll
        self._id = ""

    async def __aenter__(self) -> bool:
        waited = False
        while True:
            try:
                created = await self._engine.call(self._create)
                self._id = str(created["Id"])
                return waited
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise Unavailable(f"the Docker engine refused the build lock: {exc.explanation or exc}") from None
            waited = True
            await self._remove_if_stale()
            await asyncio.sleep(self._poll)

    async def __aexit__(self, *exc_info: object) -> None:
        await self._remove(self._id)

    def _create(self, api: docker.APIClient) -> dict[str, Any]:
        created: dict[str, Any] = api.create_container(
            self._image, command=["true"], name=self._name, labels={LABEL_LOCK: str(time.time())}, network_disabled=True
        )
        return created

    async def _remove(self, container_id: str) -> None:
        try:
            await self._engine.call(lambda api: api.remove_container(container_id, force=True))
        except docker.errors.NotFound:
            pass
        except Unavailable:
            log.warning("image build lock %s could not be removed (the engine is away)", self._name)

    async def _remove_if_stale(self) -> None:
        try:
            attrs = await self._engine.call(lambda api: api.inspect_container(self._name))
        except docker.errors.NotFound:
            return
        since = float(((attrs.get("Config") or {}).get("Labels") or {}).get(LABEL_LOCK) or 0)
        if time.time() - since > self._stale_after:
            log.warning("image build lock %s is stale (its server went away?): taking it over", self._name)
            await self._remove(str(attrs["Id"]))  # by id: never a lock someone took meanwhile
