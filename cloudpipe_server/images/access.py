"""Jobs may name only their own account's built images: a job whose `image` is a
reference this server makes (cloudpipe/image:<digest>) of another account, or of no
image at all, is refused at submit with NOT_FOUND, as an unknown image would be."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from cloudpipe_server.errors import NotFound
from cloudpipe_server.images.engine import BuiltImage
from cloudpipe_server.images.spec import digest_from_reference
from cloudpipe_server.models import JobSpec

Inspect = Callable[[str], Awaitable[BuiltImage | None]]


class ImageAccess:
    def __init__(self, inspect: Inspect) -> None:
        self._inspect = inspect

    async def check(self, account: str, specs: Sequence[JobSpec]) -> None:
        """Raise NotFound for the first spec naming a built image `account` does not own."""
        allowed: set[str] = set()
        for index, spec in enumerate(specs):
            if spec.image in allowed or digest_from_reference(spec.image) is None:
                continue
            image = await self._inspect(spec.image)
            if image is None or image.account != account:
                raise NotFound(f"jobs[{index}].image: image {spec.image!r} not found (build it with your account)")
            allowed.add(spec.image)
