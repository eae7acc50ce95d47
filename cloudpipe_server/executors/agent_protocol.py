"""The server's half of the warm-container agent protocol (version 1).

The agent (`runner_images/python3/cloudpipe_agent.py`, inside the runner image) and the
server talk over the container's attached stdin and stdout: frames of a 5-byte header
`struct.pack("!BI", kind, length)` and `length` bytes. The agent cannot import this
module (it lives in the image), so the constants are repeated there; a change here is
a new protocol version there (the image label `org.cloudpipe.agent`).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

PROTOCOL = "1"
HEADER = struct.Struct("!BI")

# server -> agent
RUN, STDIN, STDIN_END, SIGNAL = 1, 2, 3, 4
# agent -> server
READY, STARTED, STDOUT, STDERR, RESULT, EXIT = 16, 17, 18, 19, 20, 21

STDIN_CHUNK = 1 << 20
MAX_FRAME = 64 << 20  # the agent never sends more in one frame; anything larger is corruption


def frame(kind: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def json_frame(kind: int, value: dict[str, Any]) -> bytes:
    return frame(kind, json.dumps(value).encode())


def run_frames(
    job_id: int, cmd: str, env: dict[str, str], result_path: str | None, stdin: bytes, result_cap: int = 0
) -> list[bytes]:
    """Everything that starts one job: RUN, its stdin in pieces, and the end of stdin.
    `result_cap` (optional in version 1): the agent sends only the size of a bigger result."""
    run = {"job": job_id, "cmd": cmd, "env": env, "result_path": result_path}
    if result_cap:
        run["result_cap"] = result_cap
    frames = [json_frame(RUN, run)]
    frames += [frame(STDIN, stdin[i : i + STDIN_CHUNK]) for i in range(0, len(stdin), STDIN_CHUNK)]
    frames.append(frame(STDIN_END))
    return frames


class FrameParser:
    """Reassembles frames from the agent's stdout, whatever pieces it arrives in."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        frames: list[tuple[int, bytes]] = []
        offset = 0
        while len(self._buffer) - offset >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buffer, offset)
            if length > MAX_FRAME:
                raise ValueError(f"agent frame of {length} bytes (kind {kind}): the stream is corrupt")
            end = offset + HEADER.size + length
            if len(self._buffer) < end:
                break
            frames.append((kind, bytes(self._buffer[offset + HEADER.size : end])))
            offset = end
        del self._buffer[:offset]
        return frames


@dataclass(frozen=True)
class AgentExit:
    """How the agent says a job ended."""

    code: int
    signal: int = 0
    oom: bool = False
    utime: float = 0.0
    stime: float = 0.0
    maxrss_kib: int = 0
    error: str = ""
    result_size: int = 0  # the whole result's size (agents that predate it: 0)

    @classmethod
    def parse(cls, payload: bytes) -> AgentExit:
        doc = json.loads(payload)
        return cls(
            code=int(doc.get("code", 1)),
            signal=int(doc.get("signal") or 0),
            oom=bool(doc.get("oom")),
            utime=float(doc.get("utime") or 0.0),
            stime=float(doc.get("stime") or 0.0),
            maxrss_kib=int(doc.get("maxrss") or 0),
            error=str(doc.get("error") or ""),
            result_size=int(doc.get("result_size") or 0),
        )
