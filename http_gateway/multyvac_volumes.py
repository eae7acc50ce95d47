"""multyvac 0.5.0's volume API (`multyvac/volume.py`), which the Go server never served,
over the gRPC `VolumeService`; and the `vol` of multyvac jobs made into mounts.

    GET  /v1/volume[?name=N...]         {"volumes": [{name, mount_path, mount_type, created_at, description}]}
    POST /v1/volume  {"volume": {name, mount_path, mount_type?, description?}}   {"status": "ok"}
    GET  /v1/volume/<n>/ls?path=P       {"ls": [{path, type: "f"|"d", size, mode}]}
    PUT  /v1/volume/<n>/mkdir?path=P    {"status": "ok"}
    PUT  /v1/volume/<n>  multipart file=(path, bytes), file_mode   {"status": "ok"}
    GET  /v1/volume/<n>?path=P...       {"files": [{path, contents (base64), size, mode}]}
    POST /v1/volume/<n>/rm?path=P       {"status": "ok"}

A multyvac volume is a Cloudpipe volume with a mount path: a multyvac job's `vol`
names volumes, each mounted at its own mount path (multyvac's `submit(f)` puts a
function's local modules in `auto-deps-<host>`, mounted at /pymodules, on its
PYTHONPATH). Paths are the volume's own, so a leading `/` is dropped. Errors are in the
Go envelope: 404 `VNF` for a volume the account does not have (another account's
included), 409 with "name already exists" for a second volume of a name (the client
looks for those words), others by the server's answer. Files go through the gateway's
memory here, as multyvac sends and expects them whole: one file or one answer is at
most MAX_FILE_BYTES (`cloudpipe volume put/get` stream any size).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any, Protocol

import grpc
from starlette.datastructures import UploadFile
from starlette.requests import Request

from cloudpipe_proto.v1 import jobs_pb2 as jpb
from cloudpipe_proto.v1 import volumes_pb2 as pb
from cloudpipe_sdk._uploading import send_upload
from http_gateway import multyvac
from http_gateway.caller import Caller
from http_gateway.golang import GoError, parse_query, parse_uint
from http_gateway.job_json import stamp
from http_gateway.multyvac import ApiError, Reply
from http_gateway.request_body import read_body
from http_gateway.ui_errors import service_failure

MAX_FILE_BYTES = 16 << 20
MAX_VOLUME_JSON = 64 << 10  # the body of a volume's creation
UPLOAD_CHUNK = 1 << 20
TRANSFER_SECONDS = 600.0
_HINT = "See multyvac's volume documentation; Cloudpipe serves its volume calls."


class VolumeGateway(Protocol):
    """What these routes need of the gateway: credentials, a credential check and the
    `VolumeService` stub."""

    def caller(self, request: Request) -> Caller: ...

    async def verified(self, caller: Caller, error: ApiError) -> ApiError: ...

    def service_stub(self, service: str) -> Any: ...


_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


def volume_name(given: str) -> str:
    """The Cloudpipe name of a multyvac volume name. multyvac names its module volume
    `auto-deps-<hostname>`, and host names can have capitals or other characters a
    Cloudpipe name has not: such a name is lower-cased, other characters become '-',
    and a hash of the name as given keeps two names from meeting. Valid names are kept."""
    if _NAME.fullmatch(given):
        return given
    lowered = re.sub(r"[^a-z0-9_.-]", "-", given.lower()).lstrip("_.-")
    return f"{lowered[:54]}-{hashlib.sha256(given.encode()).hexdigest()[:8]}".lstrip("-")


def vnf(name: str) -> ApiError:
    return ApiError(404, "VNF", f"Volume [{name}] not found.", "Create it first: multyvac.volume.create(name, path).")


def _volume_missing(error: grpc.aio.AioRpcError) -> bool:
    """The server's NOT_FOUND of the volume itself (not of a path in it)."""
    details = error.details() or ""
    return error.code() == grpc.StatusCode.NOT_FOUND and details.startswith("volume ") and details.endswith("not found")


def _qinval(message: str) -> ApiError:
    return ApiError(400, "QINVAL", message, _HINT)


def _path(values: dict[str, list[str]], *, required: bool = True) -> str:
    """The volume-relative `path` of a query (a leading '/' is the volume's top)."""
    raw = values.get("path", [""])[0]
    path = raw.lstrip("/")
    if required and not path:
        raise _qinval("Name a path in the volume in path")
    return path


def volume_json(volume: pb.Volume) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": volume.name,
        "mount_path": volume.mount_path,
        "mount_type": "bind",
        "created_at": stamp(volume.created_at) if volume.HasField("created_at") else "",
    }
    if volume.description:
        out["description"] = volume.description
    return out


def mounts(volumes: list[pb.Volume], names: list[str]) -> list[str]:
    """A multyvac job's `vol` names as `JobSpec.volumes` entries: `NAME:MOUNT_PATH` for
    each volume of the account that has a mount path; others stay bare names (kept,
    mounting nothing, as the Go server ignored them)."""
    paths = {v.name: v.mount_path for v in volumes if v.mount_path}
    entries = []
    for name in names:
        own = volume_name(name) if ":" not in name else name
        entries.append(f"{own}:{paths[own]}" if ":" not in name and own in paths else name)
    return entries


class MultyvacVolumes:
    """The handlers; `gateway` supplies the credentials and the gRPC stub."""

    def __init__(self, gateway: VolumeGateway, rpc_timeout: float) -> None:
        self._gateway = gateway
        self._timeout = rpc_timeout

    async def _call(self, method: str, request: Any, caller: Caller, volume: str = "") -> Any:
        """A unary VolumeService call; NOT_FOUND of `volume` is VNF, others by meaning."""
        try:
            return await getattr(self._gateway.service_stub("volumes"), method)(
                request, metadata=caller.metadata, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            if volume and _volume_missing(exc):
                raise vnf(volume) from None
            raise service_failure(exc, caller.account) from None

    async def listed(self, caller: Caller) -> list[pb.Volume]:
        answer = await self._call("List", pb.ListVolumesRequest(), caller)
        return list(answer.volumes)

    async def with_mounts(self, specs: list[jpb.JobSpec], caller: Caller) -> None:
        """Turn the bare `vol` names of `specs` into mounts at their volumes' mount paths."""
        if not any(":" not in name for spec in specs for name in spec.volumes):
            return
        volumes = await self.listed(caller)
        for spec in specs:
            entries = mounts(volumes, list(spec.volumes))
            del spec.volumes[:]
            spec.volumes.extend(entries)

    # -- /v1/volume -----------------------------------------------------------------------

    async def volumes(self, request: Request) -> Reply:
        caller = self._gateway.caller(request)
        if request.method == "GET":
            wanted = {volume_name(n) for n in parse_query(request.scope["query_string"])[0].get("name", [])}
            listed = [v for v in await self.listed(caller) if not wanted or v.name in wanted]
            return multyvac.json_reply({"volumes": [volume_json(v) for v in listed]})
        if request.method != "POST":
            raise multyvac.minval()
        body = await read_body(
            request, MAX_VOLUME_JSON, lambda error: self._gateway.verified(caller, error), "The volume"
        )
        fields = await self._creation(body, caller)
        await self._create(caller, fields)
        return Reply(200, multyvac.JSON, multyvac.OK_BODY)

    async def _creation(self, body: bytes, caller: Caller) -> dict[str, str]:
        try:
            payload = json.loads(body)
            volume = payload["volume"]
            fields = {key: volume.get(key) or "" for key in ("name", "mount_path", "mount_type", "description")}
            if not all(isinstance(value, str) for value in fields.values()):
                raise TypeError("a field is not a string")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            error = ApiError(400, "JPRS", f"Unable to parse volume payload as JSON: {exc}", _HINT)
            raise await self._gateway.verified(caller, error) from None
        if fields["mount_type"] not in ("", "bind"):
            raise await self._gateway.verified(caller, _qinval("mount_type: only bind is supported"))
        if not fields["name"]:
            raise await self._gateway.verified(caller, _qinval("Give the volume a name"))
        if not fields["mount_path"]:
            raise await self._gateway.verified(caller, _qinval("Give the volume a mount_path"))
        return fields

    async def _create(self, caller: Caller, fields: dict[str, str]) -> None:
        request = pb.CreateVolumeRequest(
            name=volume_name(fields["name"]), mount_path=fields["mount_path"], description=fields["description"]
        )
        try:
            await self._gateway.service_stub("volumes").Create(request, metadata=caller.metadata, timeout=60.0)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                message = f"A volume with that name already exists: {fields['name']}"
                raise ApiError(409, "VEXISTS", message, "Use multyvac.volume.get(name).") from None
            raise service_failure(exc, caller.account) from None

    # -- /v1/volume/<name>[/...] ------------------------------------------------------------

    async def ls(self, request: Request) -> Reply:
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self._gateway.caller(request)
        name = volume_name(request.path_params["name"])
        path = _path(parse_query(request.scope["query_string"])[0], required=False)
        answer = await self._call("ListFiles", pb.ListFilesRequest(volume=name, path=path), caller, name)
        entries = [
            {"path": e.path, "type": "d" if e.directory else "f", "size": e.size_bytes, "mode": e.mode}
            for e in answer.entries
        ]
        return multyvac.json_reply({"ls": entries})

    async def mkdir(self, request: Request) -> Reply:
        if request.method != "PUT":
            raise multyvac.minval("PUT")
        caller = self._gateway.caller(request)
        name = volume_name(request.path_params["name"])
        path = await self._checked_path(request, caller)
        await self._call("MakeDirectory", pb.MakeDirectoryRequest(volume=name, path=path), caller, name)
        return Reply(200, multyvac.JSON, multyvac.OK_BODY)

    async def rm(self, request: Request) -> Reply:
        if request.method != "POST":
            raise multyvac.minval("POST")
        caller = self._gateway.caller(request)
        name = volume_name(request.path_params["name"])
        path = await self._checked_path(request, caller)
        await self._call("RemoveFile", pb.RemoveFileRequest(volume=name, path=path), caller, name)
        return Reply(200, multyvac.JSON, multyvac.OK_BODY)

    async def _checked_path(self, request: Request, caller: Caller) -> str:
        try:
            return _path(parse_query(request.scope["query_string"])[0])
        except ApiError as exc:
            raise await self._gateway.verified(caller, exc) from None

    async def files(self, request: Request) -> Reply:
        """GET: the contents of the files at `path` (one or more); PUT: write one file."""
        caller = self._gateway.caller(request)
        name = volume_name(request.path_params["name"])
        if request.method == "PUT":
            await self._put(request, caller, name)
            return Reply(200, multyvac.JSON, multyvac.OK_BODY)
        if request.method != "GET":
            raise multyvac.minval("GET or PUT")
        paths = [p.lstrip("/") for p in parse_query(request.scope["query_string"])[0].get("path", [])]
        if not paths or not all(paths):
            raise await self._gateway.verified(caller, _qinval("Name the files to read in path"))
        files, total = [], 0
        for path in paths:
            entry, data = await self._download(caller, name, path, MAX_FILE_BYTES - total)
            total += len(data)
            files.append(
                {"path": path, "contents": base64.b64encode(data).decode(), "size": len(data), "mode": entry.mode}
            )
        return multyvac.json_reply({"files": files})

    async def _download(self, caller: Caller, name: str, path: str, room: int) -> tuple[pb.FileEntry, bytes]:
        stub = self._gateway.service_stub("volumes")
        call = stub.Download(
            pb.DownloadRequest(volume=name, path=path), metadata=caller.metadata, timeout=TRANSFER_SECONDS
        )
        entry: pb.FileEntry | None = None
        data = bytearray()
        try:
            async for chunk in call:
                if chunk.WhichOneof("part") == "entry":
                    entry = chunk.entry
                    if entry.size_bytes > room:
                        raise ApiError(
                            413,
                            "VTOOBIG",
                            f"{path} is over {MAX_FILE_BYTES} bytes with the files before it",
                            "Read it with cloudpipe volume get, which streams any size.",
                        )
                else:
                    data += chunk.data
        except grpc.aio.AioRpcError as exc:
            if _volume_missing(exc):
                raise vnf(name) from None
            raise service_failure(exc, caller.account) from None
        finally:
            call.cancel()
        if entry is None:
            raise ApiError(502, "SERVER", "The server's download did not start with the file's entry", "", True)
        return entry, bytes(data)

    async def _put(self, request: Request, caller: Caller, name: str) -> None:
        declared = request.headers.get("content-length", "")
        if not declared.isdigit():  # multyvac (requests) always declares it; a form of unknown size is not read
            error = ApiError(411, "QINVAL", "A file upload needs its Content-Length", "Send the form whole.")
            raise await self._gateway.verified(caller, error)
        if int(declared) > MAX_FILE_BYTES + (64 << 10):
            error = ApiError(
                413, "VTOOBIG", f"A file is at most {MAX_FILE_BYTES} bytes here", "Use cloudpipe volume put."
            )
            raise await self._gateway.verified(caller, error)
        try:
            form = await request.form(max_files=1, max_fields=4, max_part_size=64 << 10)
        except Exception as exc:  # starlette's MultiPartException and malformed bodies
            raise await self._gateway.verified(
                caller, _qinval(f"Send the file as multipart form data: {exc}")
            ) from None
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise await self._gateway.verified(caller, _qinval("Send the file in the form's file part"))
            mode_text = form.get("file_mode")
            mode = 0
            if isinstance(mode_text, str) and mode_text:
                try:
                    mode = parse_uint(mode_text)
                except GoError:
                    raise await self._gateway.verified(caller, _qinval("file_mode: a number")) from None
            data = await upload.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                error = ApiError(
                    413, "VTOOBIG", f"A file is at most {MAX_FILE_BYTES} bytes here", "Use cloudpipe volume put."
                )
                raise await self._gateway.verified(caller, error)
            await self._upload(caller, name, upload.filename.lstrip("/"), mode, data)
        finally:
            await form.close()

    async def _upload(self, caller: Caller, name: str, path: str, mode: int, data: bytes) -> None:
        start = pb.UploadStart(volume=name, path=path, size_bytes=len(data), mode=mode)

        async def messages() -> Any:
            yield pb.UploadRequest(start=start)
            for offset in range(0, len(data), UPLOAD_CHUNK):
                yield pb.UploadRequest(data=data[offset : offset + UPLOAD_CHUNK])

        stub = self._gateway.service_stub("volumes")
        try:
            await send_upload(stub.Upload(metadata=caller.metadata, timeout=TRANSFER_SECONDS), messages())
        except grpc.aio.AioRpcError as exc:
            if _volume_missing(exc):
                raise vnf(name) from None
            raise service_failure(exc, caller.account) from None
