"""ImageService servicer: validate, convert, call the service layer, convert back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from cloudpipe_proto.v1 import images_pb2 as pb
from cloudpipe_proto.v1 import images_pb2_grpc as pb_grpc
from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.images.build import Done, Failed, Log
from cloudpipe_server.images.convert import image_to_pb, spec_from_pb
from cloudpipe_server.images.service import ImageService
from cloudpipe_server.rpc.interceptor import current_principal

Context: TypeAlias = grpc.aio.ServicerContext


class ImageServicer(pb_grpc.ImageServiceServicer):
    def __init__(self, service: ImageService) -> None:
        self._service = service

    async def Build(self, request: pb.BuildImageRequest, context: Context) -> AsyncIterator[pb.BuildEvent]:
        if not request.HasField("spec"):
            raise InvalidArgument("spec: give the image spec to build")
        spec = spec_from_pb(request.spec)
        async for event in self._service.build(current_principal(), spec):
            if isinstance(event, Log):
                yield pb.BuildEvent(log=pb.BuildLog(line=event.line[:4096], step=event.step, steps=event.steps))
            elif isinstance(event, Done):
                yield pb.BuildEvent(built=pb.Built(image=image_to_pb(event.image), cached=event.cached))
            elif isinstance(event, Failed):
                failed = pb.BuildFailed(
                    step=event.step,
                    step_description=event.description,
                    message=event.message[:4096],
                    log_tail=event.tail[-16384:],
                )
                yield pb.BuildEvent(failed=failed)
            else:
                raise TypeError(f"unknown build event {event!r}")

    async def Get(self, request: pb.GetImageRequest, context: Context) -> pb.Image:
        return image_to_pb(await self._service.get(current_principal(), request.reference))

    async def List(self, request: pb.ListImagesRequest, context: Context) -> pb.ListImagesResponse:
        images = await self._service.list_all(current_principal())
        return pb.ListImagesResponse(images=[image_to_pb(image) for image in images])

    async def Delete(self, request: pb.DeleteImageRequest, context: Context) -> pb.DeleteImageResponse:
        await self._service.delete(current_principal(), request.reference)
        return pb.DeleteImageResponse()
