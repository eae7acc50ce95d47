"""The ImageService calls: the Build request made from an `Image` (local files read
here, bounded), its events read, and the unary calls as `Rpc`s."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cloudpipe_proto.v1 import images_pb2 as pb
from cloudpipe_sdk._compat import UTC
from cloudpipe_sdk._errors import ImageBuildFailed, InvalidRequest, ProtocolError
from cloudpipe_sdk._image import MAX_LOCAL_BYTES, Image, LocalFiles
from cloudpipe_sdk._rpc import Rpc
from cloudpipe_sdk._types import BuildLog, BuiltImage


def build_request(image: Image) -> pb.BuildImageRequest:
    """The request; local files are read now. InvalidRequest past the size bound."""
    spec = pb.ImageSpec(base=image.base)
    total = 0
    for kind, payload in image.steps:
        step = spec.steps.add()
        if isinstance(payload, LocalFiles):
            files = step.add_files
            files.destination = payload.destination
            files.python_path = payload.python_path
            for relative, local in payload.files:
                content = Path(local).read_bytes()
                total += len(content)
                if total > MAX_LOCAL_BYTES:
                    raise InvalidRequest(
                        f"the image's local files exceed {MAX_LOCAL_BYTES >> 20} MiB together (at {local}); "
                        "install large things with pip_install/apt_install or run_commands instead"
                    )
                mode = stat.S_IMODE(os.stat(local).st_mode) & 0o755
                files.files.add(path=relative, content=content, mode=mode)
        elif kind == "pip_install":
            step.pip_install.names.extend(payload)  # type: ignore[arg-type]
        elif kind == "apt_install":
            step.apt_install.names.extend(payload)  # type: ignore[arg-type]
        elif kind == "run_commands":
            step.run_commands.commands.extend(payload)  # type: ignore[arg-type]
        elif kind == "env":
            step.env.variables.update(dict(payload))  # type: ignore[arg-type]
        else:
            raise InvalidRequest(f"unknown image step {kind!r}")
    return pb.BuildImageRequest(spec=spec)


def image_from_pb(message: pb.Image, cached: bool = False) -> BuiltImage:
    created = message.created_at.ToDatetime(UTC) if message.HasField("created_at") else None
    return BuiltImage(message.reference, message.digest, message.summary, message.size_bytes, created, cached)


def read_event(event: pb.BuildEvent) -> BuildLog | BuiltImage:
    """A log line, or the built image; raises ImageBuildFailed for a failure."""
    kind = event.WhichOneof("event")
    if kind == "log":
        return BuildLog(event.log.line, event.log.step, event.log.steps)
    if kind == "built":
        return image_from_pb(event.built.image, event.built.cached)
    if kind == "failed":
        failed = event.failed
        raise ImageBuildFailed(failed.step, failed.step_description, failed.message, failed.log_tail)
    raise ProtocolError(f"unknown build event {kind!r}: the server is newer than this SDK")


def get_image(reference: str) -> Rpc[BuiltImage]:
    return Rpc("images", "Get", pb.GetImageRequest(reference=reference), image_from_pb)


def list_images() -> Rpc[list[BuiltImage]]:
    return Rpc("images", "List", pb.ListImagesRequest(), lambda r: [image_from_pb(i) for i in r.images])


def delete_image(reference: str) -> Rpc[None]:
    return Rpc("images", "Delete", pb.DeleteImageRequest(reference=reference), lambda _: None, retry=False)
