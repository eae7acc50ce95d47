"""The image service layer: an account's images, built, read and removed. An image of
another account is answered exactly as a missing one."""

from __future__ import annotations

from collections.abc import AsyncIterator

from cloudpipe_server.auth.base import Principal
from cloudpipe_server.errors import InvalidArgument, NotFound
from cloudpipe_server.images.build import BuiltImage, Event, ImageBuilder
from cloudpipe_server.images.spec import ImageSpec, digest_from_reference


class ImageService:
    def __init__(self, builder: ImageBuilder) -> None:
        self._builder = builder

    def build(self, caller: Principal, spec: ImageSpec) -> AsyncIterator[Event]:
        """Log events, then one Done or Failed (see `ImageBuilder.build`)."""
        if not caller.account.isprintable():
            raise InvalidArgument("this account's name has control characters: it cannot own images")
        return self._builder.build(caller.account, spec)

    async def get(self, caller: Principal, reference: str) -> BuiltImage:
        if digest_from_reference(reference) is None:
            raise InvalidArgument(
                f"reference: {reference[:100]!r} is not an image reference (cloudpipe/image:<digest>)"
            )
        image = await self._builder.inspect(reference)
        if image is None or image.account != caller.account:
            raise NotFound(f"image {reference!r} not found")
        return image

    async def list_all(self, caller: Principal) -> list[BuiltImage]:
        return await self._builder.list_images(caller.account)

    async def delete(self, caller: Principal, reference: str) -> None:
        image = await self.get(caller, reference)
        await self._builder.remove(image.reference)
