"""An Upload stream on grpc's asyncio API that keeps the server's refusal.

The server refuses an upload at its start (no such volume, a size over the quota, a bad
path) by ending the call, and accepts it by sending the initial metadata
`x-cloudpipe-upload: accepted` before it reads any data. A client that wrote data
before it knew had a write fail after the server's status, and grpc's asyncio client
then reports INTERNAL "Internal error from Core" in its place (grpc/grpc#36066). So the
data waits for the answer to the start: one round trip per upload. (The blocking API
reports the server's status in that case; `Transport.upload` needs none of this.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import Any

import grpc

from cloudpipe_proto.v1 import volumes_pb2 as pb

ACCEPTED_KEY = "x-cloudpipe-upload"
ACCEPTED = "accepted"


async def send_upload(call: Any, messages: AsyncIterable[pb.UploadRequest]) -> pb.FileEntry:
    """Write `messages` (the start first) to the Upload `call` (a `grpc.aio` stream-unary
    call in reader/writer style) and return its answer; raises its `AioRpcError`, or
    what `messages` raised. The call is cancelled on the way out (a no-op once it
    ended; else, `messages` failed or this task was cancelled, nothing is stored)."""
    stream = aiter(messages)
    try:
        try:
            start = await anext(stream, None)
            if start is not None:
                await call.write(start)
                headers = await call.initial_metadata()
                if headers is not None and headers.get(ACCEPTED_KEY) == ACCEPTED:
                    async for message in stream:
                        await call.write(message)
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the server ended the call: its status, awaited below, says why
        entry: pb.FileEntry = await call
        return entry
    finally:
        call.cancel()
