"""VolumeService servicer: validate, convert, call the service layer, convert back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeAlias

import grpc

from cloudpipe_proto.v1 import volumes_pb2 as pb
from cloudpipe_proto.v1 import volumes_pb2_grpc as pb_grpc
from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.rpc.interceptor import current_principal
from cloudpipe_server.volumes.engine import Entry, VolumeInfo
from cloudpipe_server.volumes.service import VolumeService

Context: TypeAlias = grpc.aio.ServicerContext
MAX_CHUNK = 1 << 20
# sent as initial metadata once an upload's start is accepted (volumes.proto, Upload)
UPLOAD_ACCEPTED = (("x-cloudpipe-upload", "accepted"),)


def volume_to_pb(volume: VolumeInfo) -> pb.Volume:
    message = pb.Volume(
        name=volume.name, size_bytes=volume.size_bytes, mount_path=volume.mount_path, description=volume.description
    )
    if volume.created_at is not None:
        message.created_at.FromDatetime(volume.created_at)
    return message


def entry_to_pb(entry: Entry) -> pb.FileEntry:
    message = pb.FileEntry(path=entry.path, directory=entry.directory, size_bytes=entry.size_bytes, mode=entry.mode)
    if entry.modified_at is not None:
        message.modified_at.FromDatetime(entry.modified_at)
    return message


class VolumeServicer(pb_grpc.VolumeServiceServicer):
    def __init__(self, service: VolumeService) -> None:
        self._service = service

    async def Create(self, request: pb.CreateVolumeRequest, context: Context) -> pb.Volume:
        made = await self._service.create(current_principal(), request.name, request.mount_path, request.description)
        return volume_to_pb(made)

    async def Get(self, request: pb.GetVolumeRequest, context: Context) -> pb.Volume:
        return volume_to_pb(await self._service.get(current_principal(), request.name))

    async def List(self, request: pb.ListVolumesRequest, context: Context) -> pb.ListVolumesResponse:
        volumes = await self._service.list_all(current_principal())
        return pb.ListVolumesResponse(volumes=[volume_to_pb(v) for v in volumes])

    async def Delete(self, request: pb.DeleteVolumeRequest, context: Context) -> pb.DeleteVolumeResponse:
        await self._service.delete(current_principal(), request.name)
        return pb.DeleteVolumeResponse()

    async def ListFiles(self, request: pb.ListFilesRequest, context: Context) -> pb.ListFilesResponse:
        entries, truncated = await self._service.list_files(current_principal(), request.volume, request.path)
        return pb.ListFilesResponse(entries=[entry_to_pb(e) for e in entries], truncated=truncated)

    async def MakeDirectory(self, request: pb.MakeDirectoryRequest, context: Context) -> pb.FileEntry:
        return entry_to_pb(await self._service.make_directory(current_principal(), request.volume, request.path))

    async def RemoveFile(self, request: pb.RemoveFileRequest, context: Context) -> pb.RemoveFileResponse:
        await self._service.remove_file(current_principal(), request.volume, request.path)
        return pb.RemoveFileResponse()

    async def Upload(self, request_iterator: AsyncIterator[pb.UploadRequest], context: Context) -> pb.FileEntry:
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("part") != "start":
            raise InvalidArgument("the first message of an upload is its start (volume, path, size_bytes)")
        start = first.start

        async def chunks() -> AsyncIterator[bytes]:
            # the start passed every check: the client may send the data now (see the proto)
            await context.send_initial_metadata(UPLOAD_ACCEPTED)
            async for message in request_iterator:
                part = message.WhichOneof("part")
                if part != "data":
                    raise InvalidArgument(f"after the start, an upload sends only data, got {part or 'nothing'}")
                if len(message.data) > MAX_CHUNK:
                    raise InvalidArgument(f"data: at most {MAX_CHUNK} bytes per message")
                yield message.data

        principal = current_principal()
        entry = await self._service.upload(principal, start.volume, start.path, start.size_bytes, start.mode, chunks())
        return entry_to_pb(entry)

    async def Download(self, request: pb.DownloadRequest, context: Context) -> AsyncIterator[pb.DownloadChunk]:
        async for item in self._service.download(current_principal(), request.volume, request.path):
            if isinstance(item, Entry):
                yield pb.DownloadChunk(entry=entry_to_pb(item))
            else:
                yield pb.DownloadChunk(data=item)
