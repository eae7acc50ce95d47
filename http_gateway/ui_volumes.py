"""The web UI's volumes routes under `/ui/api/`, over the gRPC `VolumeService` on the
gateway's channel.

    GET  /ui/api/volumes                          {"volumes": [volume...]} by name
    POST /ui/api/volume/create    name=X          the volume
    POST /ui/api/volume/delete    name=X          {"deleted": X}
    GET  /ui/api/volume/files?name=X&path=P       {"name", "path", "entries": [entry...], "truncated"}
    GET  /ui/api/volume/download?name=X&path=P    the file's bytes (attachment), as they come
    POST /ui/api/volume/upload?name=X&path=P      the body is the file (Content-Length): its entry
    POST /ui/api/volume/remove    name=X, path=P  {"removed": P}

Every call carries the caller's credentials; the server scopes each to the caller's
account, so another account's volume looks missing (404), to every route. Names and
paths are the server's to check: a bad one is its INVALID_ARGUMENT (400), answered by
meaning through ui_errors like every other failure.

Files go through, never into, the gateway: a download is the gRPC `Download` stream
written out chunk by chunk (Content-Length from the entry that leads the stream, so a
stream cut short shows as a short body); an upload is the request body forwarded to
`Upload` in messages of at most `UPLOAD_CHUNK`, its declared Content-Length the
`size_bytes` the server checks against the volume's quota before any byte is stored.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any, Protocol

import grpc
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cloudpipe_proto.v1 import volumes_pb2 as pb
from cloudpipe_sdk._uploading import send_upload
from http_gateway import multyvac
from http_gateway.caller import Caller
from http_gateway.golang import parse_query
from http_gateway.job_json import stamp
from http_gateway.multyvac import ApiError, Reply
from http_gateway.request_body import read_form
from http_gateway.ui_errors import service_failure
from http_gateway.ui_schedules import Services

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 16 << 10  # a name and a path (the server allows paths of 4 KiB)
UPLOAD_CHUNK = 1 << 20  # the server's limit per Upload message
MAX_DECLARED = (1 << 63) - 1  # UploadStart.size_bytes is an int64; the server's quota is far below
# The deadline of one download or upload: files move at the pace of the browser.
TRANSFER_SECONDS = 3600.0
_HINT = "See docs/ui.md for the UI's routes."


class VolumeServices(Services, Protocol):
    """What these routes need of the gateway: credentials, unary calls, and the
    `VolumeService` stub itself for the two streaming calls."""

    def service_stub(self, service: str) -> Any: ...


def volume_json(volume: pb.Volume) -> dict[str, Any]:
    return {
        "name": volume.name,
        "created_at": stamp(volume.created_at) if volume.HasField("created_at") else "",
    }


def entry_json(entry: pb.FileEntry) -> dict[str, Any]:
    return {
        "path": entry.path,
        "name": entry.path.rsplit("/", 1)[-1],
        "directory": entry.directory,
        "size_bytes": entry.size_bytes,
        "mode": entry.mode,
        "modified_at": stamp(entry.modified_at) if entry.HasField("modified_at") else "",
    }


def attachment(path: str) -> str:
    """Content-Disposition for a download of `path`: its last component as the file
    name, plain ASCII in `filename` and exact (RFC 6266 / 5987) in `filename*`."""
    name = path.rsplit("/", 1)[-1] or "download"
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"


def _qinval(message: str) -> ApiError:
    return ApiError(400, "QINVAL", message, _HINT)


class VolumeApi:
    """The handlers; `gateway` supplies the credentials and the gRPC calls."""

    def __init__(self, gateway: VolumeServices) -> None:
        self._gateway = gateway

    # -- plumbing -------------------------------------------------------------------------

    async def _verified(self, caller: Caller, error: ApiError) -> ApiError:
        """`error` once the server has accepted the credentials (bad credentials beat bad input)."""
        await self._gateway.call_service("volumes", "List", pb.ListVolumesRequest(), caller)
        return error

    async def _form(self, request: Request, caller: Caller) -> dict[str, list[str]]:
        return await read_form(request, MAX_FORM_BYTES, lambda error: self._verified(caller, error))

    async def _named(self, values: dict[str, list[str]], caller: Caller) -> str:
        name = values.get("name", [""])[0].strip()
        if not name:
            raise await self._verified(caller, _qinval("Name a volume in name"))
        return name

    async def _located(self, values: dict[str, list[str]], caller: Caller, *, file: bool) -> tuple[str, str]:
        """The volume and the path of a request; a file's path must be given (the top is
        "" and no file), a directory's defaults to the top."""
        name = await self._named(values, caller)
        path = values.get("path", [""])[0]
        if file and not path:
            raise await self._verified(caller, _qinval("Name a file of the volume in path"))
        return name, path

    def _stub(self) -> Any:
        return self._gateway.service_stub("volumes")

    # -- routes ---------------------------------------------------------------------------

    async def volumes(self, request: Request) -> Reply:
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self._gateway.caller(request)
        answer = await self._gateway.call_service("volumes", "List", pb.ListVolumesRequest(), caller)
        listed = sorted(answer.volumes, key=lambda v: v.name)
        return multyvac.json_reply({"volumes": [volume_json(v) for v in listed]})

    async def create(self, request: Request) -> Reply:
        caller = self._gateway.caller(request)
        name = await self._named(await self._form(request, caller), caller)
        made = await self._gateway.call_service("volumes", "Create", pb.CreateVolumeRequest(name=name), caller)
        return multyvac.json_reply(volume_json(made))

    async def delete(self, request: Request) -> Reply:
        caller = self._gateway.caller(request)
        name = await self._named(await self._form(request, caller), caller)
        await self._gateway.call_service("volumes", "Delete", pb.DeleteVolumeRequest(name=name), caller)
        return multyvac.json_reply({"deleted": name})

    async def files(self, request: Request) -> Reply:
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self._gateway.caller(request)
        values, _error = parse_query(request.scope["query_string"])
        name, path = await self._located(values, caller, file=False)
        answer = await self._gateway.call_service(
            "volumes", "ListFiles", pb.ListFilesRequest(volume=name, path=path), caller
        )
        return multyvac.json_reply(
            {
                "name": name,
                "path": path.strip("/"),
                "entries": [entry_json(e) for e in answer.entries],
                "truncated": answer.truncated,
            }
        )

    async def remove(self, request: Request) -> Reply:
        caller = self._gateway.caller(request)
        name, path = await self._located(await self._form(request, caller), caller, file=True)
        await self._gateway.call_service("volumes", "RemoveFile", pb.RemoveFileRequest(volume=name, path=path), caller)
        return multyvac.json_reply({"removed": path})

    async def open_download(self, request: Request) -> tuple[Any, pb.FileEntry]:
        """The started `Download` call of the request's file, and the file's entry (its
        first message); failures before that are ApiErrors by meaning."""
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self._gateway.caller(request)
        values, _error = parse_query(request.scope["query_string"])
        name, path = await self._located(values, caller, file=True)
        call = self._stub().Download(
            pb.DownloadRequest(volume=name, path=path), metadata=caller.metadata, timeout=TRANSFER_SECONDS
        )
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as exc:
            log.info("volumes.Download for %s failed: %s %s", caller.account, exc.code().name, exc.details())
            raise service_failure(exc, caller.account) from None
        if first is grpc.aio.EOF or first.WhichOneof("part") != "entry":
            call.cancel()
            raise ApiError(502, "SERVER", "The server's download did not start with the file's entry", "", True)
        return call, first.entry

    async def upload(self, request: Request) -> Reply:
        """The request body, of exactly its Content-Length, written to the file at
        `path`: whole, or (a refusal, a client gone mid-body) not at all."""
        if request.method != "POST":
            raise multyvac.minval("POST")
        caller = self._gateway.caller(request)
        values, _error = parse_query(request.scope["query_string"])
        name, path = await self._located(values, caller, file=True)
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():
            raise await self._verified(
                caller, ApiError(411, "QINVAL", "An upload needs its Content-Length", "Send the file as the body.")
            )
        if int(declared) > MAX_DECLARED:
            raise await self._verified(caller, ApiError(413, "QINVAL", f"The file is over {MAX_DECLARED} bytes"))
        start = pb.UploadStart(volume=name, path=path, size_bytes=int(declared))

        async def messages() -> AsyncIterator[pb.UploadRequest]:
            yield pb.UploadRequest(start=start)
            pending = bytearray()
            async for chunk in request.stream():
                pending += chunk
                while len(pending) >= UPLOAD_CHUNK:
                    yield pb.UploadRequest(data=bytes(pending[:UPLOAD_CHUNK]))
                    del pending[:UPLOAD_CHUNK]
            if pending:
                yield pb.UploadRequest(data=bytes(pending))

        call = self._stub().Upload(metadata=caller.metadata, timeout=TRANSFER_SECONDS)
        try:
            # the body is read once the server accepted the start; a client gone mid-body
            # cancels the call, and nothing is stored
            entry = await send_upload(call, messages())
        except grpc.aio.AioRpcError as exc:
            log.info("volumes.Upload for %s failed: %s %s", caller.account, exc.code().name, exc.details())
            raise service_failure(exc, caller.account) from None
        return multyvac.json_reply(entry_json(entry))


class FileDownload:
    """The ASGI endpoint of `GET /ui/api/volume/download`: the file's bytes as the gRPC
    stream brings them. Failures before the first byte are answered in the Go envelope;
    after it, the connection ends early (short of the Content-Length)."""

    def __init__(self, api: VolumeApi) -> None:
        self._api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            call, entry = await self._api.open_download(request)
        except ApiError as exc:
            reply = exc.reply()
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.url.path)
            reply = multyvac.wtf(type(exc).__name__).reply()
        else:
            await self._stream(call, entry, scope, receive, send)
            return
        await Response(reply.body, reply.status, headers={"content-type": reply.content_type})(scope, receive, send)

    @staticmethod
    async def _stream(call: Any, entry: pb.FileEntry, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {
            "content-disposition": attachment(entry.path),
            "content-length": str(entry.size_bytes),
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
        }

        async def data() -> AsyncIterator[bytes]:
            while (message := await call.read()) is not grpc.aio.EOF:
                if message.WhichOneof("part") == "data":
                    yield message.data

        try:
            response = StreamingResponse(data(), media_type="application/octet-stream", headers=headers)
            await response(scope, receive, send)
        except ClientDisconnect:
            log.info("download of %s: the client went away", entry.path)
        except grpc.aio.AioRpcError as exc:
            log.warning("download of %s cut short: %s %s", entry.path, exc.code().name, exc.details())
        finally:
            call.cancel()
