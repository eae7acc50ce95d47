"""A submit whose answer is lost is retried with the same idempotency keys, so the
server never makes a second job (real server; the loss is simulated on the client)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from cloudpipe_sdk import Client
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


class LostAnswer(grpc.RpcError):  # type: ignore[misc]
    """What the client sees when the connection drops after the server acted."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "connection reset after the request was sent"

    def result(self, timeout: float | None = None) -> Any:
        raise self


class DropFirstSubmitAnswer(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.submits = 0

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        outcome = continuation(details, request)  # the server stores the jobs
        if details.method.endswith("/Submit"):
            self.submits += 1
            if self.submits == 1:
                outcome.result()
                return LostAnswer()
        return outcome


def client_losing_first_answer(server: ServerProcess, dropper: DropFirstSubmitAnswer) -> Client:
    channel = grpc.intercept_channel(grpc.insecure_channel(server.address), dropper)
    return Client(server.address, api_key=server.api_key, channel=channel)


def test_a_retried_submit_makes_one_job(server: ServerProcess, client: Client) -> None:
    dropper = DropFirstSubmitAnswer()
    with client_losing_first_answer(server, dropper) as flaky:
        job = flaky.shell("echo once", name="idempotent-one")
    assert dropper.submits == 2
    assert [j.id for j in client.list(names=["idempotent-one"])] == [job.id]
    assert job.result(timeout=60) == b"once\n"


def test_a_retried_map_makes_each_job_once(server: ServerProcess, client: Client) -> None:
    dropper = DropFirstSubmitAnswer()
    with client_losing_first_answer(server, dropper) as flaky:
        assert list(flaky.map(abs, [-1, -2, -3], name="idempotent-map")) == [1, 2, 3]
    assert dropper.submits == 2
    assert len(client.list(names=["idempotent-map"])) == 3


def test_separate_submits_of_the_same_command_are_separate_jobs(client: Client) -> None:
    first, second = client.shell("true", name="idempotent-two"), client.shell("true", name="idempotent-two")
    assert first.id != second.id
