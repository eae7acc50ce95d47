"""`client.images`: build an `Image` (streaming its log), read, list and remove your
account's images. `Images` for `Client`, `AsyncImages` for `AsyncClient`; requests are
made in `cloudpipe_sdk._image_calls`.

Example::

    built = client.images.build(Image.runner().pip_install("six"), on_log=print)
    built.reference                 # "cloudpipe/image:<digest>": usable as image=
    client.images.list()            # your images, newest first
    client.images.delete(built.reference)
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from cloudpipe_sdk import _image_calls as calls
from cloudpipe_sdk._errors import InvalidRequest, ProtocolError
from cloudpipe_sdk._image import Image
from cloudpipe_sdk._types import BuildLog, BuiltImage

if TYPE_CHECKING:
    from cloudpipe_sdk._transport import AsyncTransport, Transport

log = logging.getLogger("cloudpipe_sdk.images")
OnLog = Callable[[BuildLog], None]


def _log_line(line: BuildLog) -> None:
    log.info("image build [%d/%d] %s", line.step, line.steps, line.line)


class Images:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def build(self, image: Image, *, on_log: OnLog | None = None) -> BuiltImage:
        """Build `image` (or find it built) and return it; each log line goes to
        `on_log` (default: the `cloudpipe_sdk.images` logger at INFO). Raises
        ImageBuildFailed naming the failing step, with the log's tail."""
        emit = on_log or _log_line
        for event in self._transport.build_image(calls.build_request(image)):
            item = calls.read_event(event)
            if isinstance(item, BuiltImage):
                return item
            emit(item)
        raise ProtocolError("the build stream ended without a result")

    def get(self, reference: str) -> BuiltImage:
        """One of your images (NotFound for another account's or a missing one)."""
        return self._transport.call(calls.get_image(reference))

    def list(self) -> builtins.list[BuiltImage]:
        """Your images, newest first."""
        return self._transport.call(calls.list_images())

    def delete(self, reference: str) -> None:
        """Remove one of your images; jobs running on it are not affected."""
        self._transport.call(calls.delete_image(reference))


class AsyncImages:
    def __init__(self, transport: AsyncTransport) -> None:
        self._transport = transport

    async def build(self, image: Image, *, on_log: OnLog | None = None) -> BuiltImage:
        """As `Images.build`."""
        emit = on_log or _log_line
        async for event in self._transport.build_image(calls.build_request(image)):
            item = calls.read_event(event)
            if isinstance(item, BuiltImage):
                return item
            emit(item)
        raise ProtocolError("the build stream ended without a result")

    async def get(self, reference: str) -> BuiltImage:
        return await self._transport.call(calls.get_image(reference))

    async def list(self) -> builtins.list[BuiltImage]:
        return await self._transport.call(calls.list_images())

    async def delete(self, reference: str) -> None:
        await self._transport.call(calls.delete_image(reference))


class ImageReferences:
    """The references of the Images a client built, so one Image value is built (or
    looked up) once per client: the resolver `JobOptions` calls to name an Image."""

    def __init__(self, transport: Transport) -> None:
        self._images = Images(transport)
        self._built: dict[Image, str] = {}

    def __call__(self, image: Image) -> str:
        if image not in self._built:
            self._built[image] = self._images.build(image).reference
        return self._built[image]


class AsyncImageReferences:
    """As `ImageReferences` for `AsyncClient`: `ensure` builds (awaited) before specs
    are made; naming an Image not ensured first is refused with the fix."""

    def __init__(self, transport: AsyncTransport) -> None:
        self._images = AsyncImages(transport)
        self._built: dict[Image, str] = {}

    async def ensure(self, image: object) -> None:
        if isinstance(image, Image) and image not in self._built:
            self._built[image] = (await self._images.build(image)).reference

    def __call__(self, image: Image) -> str:
        if image not in self._built:
            raise InvalidRequest(
                "with AsyncClient, build an Image before using it here: "
                "built = await client.images.build(image), then image=built"
            )
        return self._built[image]
