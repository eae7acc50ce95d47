"""The web UI's images routes under `/ui/api/`, over the gRPC `ImageService` on the
gateway's channel.

    GET  /ui/api/images                       {"images": [image...]} newest first
    POST /ui/api/image/delete  reference=X    {"deleted": X}

Every call carries the caller's credentials; the server scopes each to the caller's
account, so another account's image looks missing (404), to list and to delete.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from cloudpipe_proto.v1 import images_pb2 as pb
from http_gateway import multyvac
from http_gateway.golang import parse_query
from http_gateway.job_json import stamp
from http_gateway.multyvac import ApiError, Reply
from http_gateway.ui_schedules import Services

MAX_FORM_BYTES = 8 << 10
MAX_REFERENCE = 300


def image_json(image: pb.Image) -> dict[str, Any]:
    return {
        "reference": image.reference,
        "digest": image.digest,
        "created_at": stamp(image.created_at) if image.HasField("created_at") else "",
        "size_bytes": image.size_bytes,
        "summary": image.summary,
    }


class ImageApi:
    """The handlers; `gateway` supplies the credentials and the gRPC calls."""

    def __init__(self, gateway: Services) -> None:
        self._gateway = gateway

    async def images(self, request: Request) -> Reply:
        if request.method != "GET":
            raise multyvac.minval("GET")
        caller = self._gateway.caller(request)
        answer = await self._gateway.call_service("images", "List", pb.ListImagesRequest(), caller)
        return multyvac.json_reply({"images": [image_json(i) for i in answer.images]})

    async def delete(self, request: Request) -> Reply:
        if request.method != "POST":
            raise multyvac.minval("POST")
        caller = self._gateway.caller(request)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                break
        values, _error = parse_query(body)
        reference = values.get("reference", [""])[0].strip()
        problem = ""
        if len(body) > MAX_FORM_BYTES:
            problem = f"The form is over {MAX_FORM_BYTES} bytes"
        elif not reference:
            problem = "Name an image in reference"
        elif len(reference) > MAX_REFERENCE:
            problem = f"reference is longer than {MAX_REFERENCE} characters"
        if problem:
            # Bad credentials beat bad input: have the server check them first.
            await self._gateway.call_service("images", "List", pb.ListImagesRequest(), caller)
            raise ApiError(400, "QINVAL", problem, "See docs/ui.md for the UI's routes.")
        await self._gateway.call_service("images", "Delete", pb.DeleteImageRequest(reference=reference), caller)
        return multyvac.json_reply({"deleted": reference})
