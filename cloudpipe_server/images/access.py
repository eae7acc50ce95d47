"""Jobs may name only their own account's built images: a job whose `image` is a
reference this server makes (cloudpipe/image:<digest>) of another account, or of no
image at all, is refused at submit with NOT_FOUND, as an unknown image would be.

The check is by name, so every other name that the engine would resolve to a built
image is refused too: the reference under a registry domain or `library/`
(the engine's default domain in front of cloudpipe/image:<digest>), and image ids or their prefixes
(`sha256:...`, `3f2a9b...`). Jobs name images by repository and tag."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence

from cloudpipe_server.errors import InvalidArgument, NotFound
from cloudpipe_server.images.engine import BuiltImage
from cloudpipe_server.images.spec import REFERENCE_REPOSITORY, digest_from_reference
from cloudpipe_server.models import JobSpec

Inspect = Callable[[str], Awaitable[BuiltImage | None]]

# an image id or a prefix of one: the engine looks such a name up among image ids
_IMAGE_ID = re.compile(r"(?:sha256:)?[0-9a-f]{1,64}")


def _without_domain(name: str) -> str:
    """The name as the engine resolves it locally: a leading registry domain (a first
    component with a dot or a port, or localhost) and `library/` taken away."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        name = rest
    return name.removeprefix("library/")


class ImageAccess:
    def __init__(self, inspect: Inspect) -> None:
        self._inspect = inspect

    async def check(self, account: str, specs: Sequence[JobSpec]) -> None:
        """Raise NotFound for the first spec naming a built image `account` does not own,
        InvalidArgument for one naming an image by its id."""
        allowed: set[str] = set()
        for index, spec in enumerate(specs):
            if not spec.image or spec.image in allowed:
                continue
            if _IMAGE_ID.fullmatch(spec.image):
                raise InvalidArgument(
                    f"jobs[{index}].image: {spec.image!r} looks like an image id; name the image by repository and tag"
                )
            name = _without_domain(spec.image)
            if not name.startswith(REFERENCE_REPOSITORY + ":") and not name.startswith(REFERENCE_REPOSITORY + "@"):
                continue
            image = await self._inspect(name) if digest_from_reference(name) is not None else None
            if image is None or image.account != account:
                raise NotFound(f"jobs[{index}].image: image {spec.image!r} not found (build it with your account)")
            allowed.add(spec.image)
