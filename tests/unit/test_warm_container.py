"""A warm container's reading of its agent, against a fake agent on a socket pair."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from cloudpipe_server.executors.agent_protocol import EXIT, READY, STARTED, frame, json_frame
from cloudpipe_server.executors.warm_container import PoolKey, WarmContainer, WarmRun

KEY = PoolKey("alice", "img", 1.0, 1 << 30, 512)


@dataclass
class Agent:
    """The agent's end of the attach: writes frames as the engine would wrap them."""

    sock: socket.socket

    def say(self, data: bytes) -> None:
        self.sock.sendall(struct.pack(">BxxxL", 1, len(data)) + data)


@pytest.fixture
async def attached() -> AsyncIterator[tuple[WarmContainer, Agent]]:
    ours, theirs = socket.socketpair()
    container = WarmContainer("c" * 64, KEY, ours, 1 << 20)
    agent = Agent(theirs)
    agent.say(json_frame(READY, {"protocol": 1}))
    await container.connect(5)
    yield container, agent
    await container.close()
    theirs.close()


async def start(container: WarmContainer, job_id: int) -> WarmRun:
    return await container.start_job(job_id, "true", {}, None, b"", lambda chunk: None)


async def test_exit_and_started_of_another_job_are_ignored(attached: tuple[WarmContainer, Agent]) -> None:
    container, agent = attached
    run = await start(container, 7)
    agent.say(json_frame(STARTED, {"job": 6, "pid": 99}) + json_frame(EXIT, {"job": 6, "code": 0}))
    agent.say(json_frame(STARTED, {"job": 7, "pid": 42}) + json_frame(EXIT, {"job": 7, "code": 3}))
    ended = await asyncio.wait_for(run.done, 5)
    assert ended is not None and ended.code == 3 and run.pid == 42
    assert container.alive


@pytest.mark.parametrize("payload", [b"[]", b'{"job": 7, "code": "zero"}', b"not json"])
async def test_a_malformed_message_loses_the_run_with_a_reason(
    attached: tuple[WarmContainer, Agent], payload: bytes
) -> None:
    container, agent = attached
    run = await start(container, 7)
    agent.say(frame(EXIT, payload))
    assert await asyncio.wait_for(run.done, 5) is None
    assert not container.alive and "malformed message" in container.protocol_error
