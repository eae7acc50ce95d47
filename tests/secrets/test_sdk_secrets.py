"""`client.secrets` and `secrets=` job options on the real server: set, listed by name
with times, replaced, deleted; jobs get them as environment variables and as 0400
files whichever way they are submitted (shell, function, map, saved job, schedule);
what is refused raises the SDK's typed errors; and the value is nowhere on the client's
side: not in a repr, an error message or a log line. Jobs print a sha256 of what they
got, never the value."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from collections.abc import Iterator

import pytest

from cloudpipe_sdk import (
    AsyncClient,
    Client,
    InvalidRequest,
    JobFailed,
    NotFound,
    ResourceExhausted,
    Secret,
    Unavailable,
)
from tests.support import ServerProcess, free_port

pytestmark = pytest.mark.docker

VALUE = "s3cr3t-sdk-" + uuid.uuid4().hex  # a fresh one per run: found only where it leaked
DIGEST = hashlib.sha256(VALUE.encode()).hexdigest()
PRINT_DIGEST = 'printf %s "$TOKEN" | sha256sum | cut -c1-64'


class tenant:  # lower case: used like a function
    """`with tenant(server, "alice") as client:` a Client of a new account; the secrets
    it made are deleted when it closes."""

    def __init__(self, server: ServerProcess, prefix: str) -> None:
        self.account = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.client = Client(server.address, account=self.account)

    def __enter__(self) -> Client:
        return self.client

    def __exit__(self, *exc_info: object) -> None:
        for secret in self.client.secrets.list():
            self.client.secrets.delete(secret.name)
        self.client.close()


@pytest.fixture
def alice(secret_server: ServerProcess) -> Iterator[Client]:
    with tenant(secret_server, "alice") as client:
        yield client


@pytest.fixture
def bob(secret_server: ServerProcess) -> Iterator[Client]:
    with tenant(secret_server, "bob") as client:
        yield client


def digest_of_env() -> str:
    return hashlib.sha256(os.environ["TOKEN"].encode()).hexdigest()


def test_set_list_replace_delete(alice: Client, bob: Client) -> None:
    made = alice.secrets.set("TOKEN", VALUE)
    assert isinstance(made, Secret) and made.name == "TOKEN"
    assert made.created_at is not None and made.updated_at is not None
    replaced = alice.secrets.set("TOKEN", b"\x00binary\xff")  # bytes as they are
    assert replaced.created_at == made.created_at and replaced.updated_at >= made.updated_at  # type: ignore[operator]
    alice.secrets.set("A_KEY", "a")
    assert [s.name for s in alice.secrets.list()] == ["A_KEY", "TOKEN"]
    assert bob.secrets.list() == []  # accounts apart
    with pytest.raises(NotFound):
        bob.secrets.delete("TOKEN")
    alice.secrets.delete("TOKEN")
    assert [s.name for s in alice.secrets.list()] == ["A_KEY"]
    with pytest.raises(NotFound):
        alice.secrets.delete("TOKEN")

    with pytest.raises(InvalidRequest, match="not a secret name"):  # refused here, nothing sent
        alice.secrets.set("has-dash", "x")
    with pytest.raises(InvalidRequest):  # the server's limit: 64 KiB
        alice.secrets.set("HUGE", b"x" * ((64 << 10) + 1))
    alice.secrets.set("B_KEY", "b")
    alice.secrets.set("C_KEY", "c")
    with pytest.raises(ResourceExhausted):  # the test server allows 3 per account
        alice.secrets.set("D_KEY", "d")
    alice.secrets.set("A_KEY", "replaced")  # a replacement is not a new one


def test_jobs_get_secrets_however_they_are_submitted(alice: Client) -> None:
    alice.secrets.set("TOKEN", VALUE)
    job = alice.shell(PRINT_DIGEST, secrets=["TOKEN"])
    assert job.result(timeout=120) == f"{DIGEST}\n".encode()
    assert job.snapshot.spec.secrets == ("TOKEN",) and "TOKEN" not in job.snapshot.spec.env
    assert VALUE not in repr(job.snapshot)

    # as a file, readable by the job's user alone
    as_file = alice.shell(
        "stat -c '%a %u' /run/cp/token; sha256sum < /run/cp/token | cut -c1-64",
        secrets={"TOKEN": "/run/cp/token"},
    )
    assert as_file.result(timeout=120) == f"400 1000\n{DIGEST}\n".encode()
    assert as_file.snapshot.spec.secrets == ("TOKEN:/run/cp/token",)

    # function jobs, maps, saved jobs and inline schedule jobs take the option too
    view = alice.with_options(secrets=["TOKEN"])
    assert view.submit(digest_of_env).result(timeout=120) == DIGEST
    assert list(alice.map(lambda _: digest_of_env(), [1], secrets=["TOKEN"], timeout=120)) == [DIGEST]
    name = f"digest-{uuid.uuid4().hex[:8]}"
    saved = alice.saved_jobs.save_shell(name, PRINT_DIGEST, secrets=["TOKEN"])
    try:
        assert saved.spec.secrets == ("TOKEN",)
        assert alice.saved_jobs.run(name).result(timeout=120) == f"{DIGEST}\n".encode()
        schedule = alice.schedules.create(name, "@daily", cmd=PRINT_DIGEST, secrets={"TOKEN": "/run/t"})
        try:
            assert schedule.spec.job is not None and schedule.spec.job.secrets == ("TOKEN:/run/t",)
        finally:
            alice.schedules.delete(name)
    finally:
        alice.saved_jobs.delete(name)


def test_refusals_are_typed_errors(alice: Client, bob: Client) -> None:
    alice.secrets.set("MINE", VALUE)
    with pytest.raises(NotFound, match="ABSENT"):
        alice.shell("true", secrets=["ABSENT"])
    with pytest.raises(NotFound, match="MINE"):  # another account's looks missing
        bob.shell("true", secrets=["MINE"])
    with pytest.raises(NotFound):
        alice.with_options(secrets={"ABSENT": "/run/x"}).submit(abs, -1)
    assert alice.list() == [] and bob.list() == []  # no job was made
    with pytest.raises(InvalidRequest, match="secrets"):  # refused here, before sending
        alice.shell("true", secrets=["MINE"], env={"MINE": "also"})


def test_a_secret_deleted_before_its_job_starts_fails_the_job(alice: Client) -> None:
    alice.secrets.set("SHORT_LIVED", VALUE)
    first = alice.shell("sleep 2")
    job = alice.shell("echo ran", secrets=["SHORT_LIVED"], depends_on=[first])
    alice.secrets.delete("SHORT_LIVED")
    with pytest.raises(JobFailed) as failed:
        job.result(timeout=120)
    assert "SHORT_LIVED" in failed.value.reason and "no longer exists" in failed.value.reason
    assert failed.value.stdout_tail == ""


def test_the_value_is_nowhere_on_the_clients_side(
    alice: Client, secret_server: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    made = alice.secrets.set("TOKEN", VALUE)
    seen += [repr(made), str(made), repr(alice), repr(alice.secrets), repr(alice.secrets.list())]
    job = alice.shell(PRINT_DIGEST, secrets=["TOKEN"])
    job.result(timeout=120)
    seen += [repr(job), repr(job.snapshot), repr(alice.get(job.id).snapshot), repr(alice.list())]
    with pytest.raises(InvalidRequest) as too_big:  # the server's refusal of a value
        alice.secrets.set("TOKEN", VALUE * 2000)
    seen += [str(too_big.value), repr(too_big.value)]
    # an unreachable server: retried and logged, then Unavailable
    with (
        Client(f"127.0.0.1:{free_port()}", account=alice.config.account, retry_for=0.5) as gone,
        pytest.raises(Unavailable) as unreachable,
    ):
        gone.secrets.set("TOKEN", VALUE)
    seen += [str(unreachable.value), repr(unreachable.value)]
    assert "cannot reach" in caplog.text  # the retries were logged
    for text in [*seen, caplog.text]:
        assert VALUE not in text
    assert VALUE not in secret_server.log


def test_the_async_client(secret_server: ServerProcess) -> None:
    async def main(account: str) -> None:
        async with AsyncClient(secret_server.address, account=account) as client:
            made = await client.secrets.set("TOKEN", VALUE)
            assert isinstance(made, Secret) and made.name == "TOKEN"
            assert [s.name for s in await client.secrets.list()] == ["TOKEN"]
            job = await client.shell(PRINT_DIGEST, secrets=["TOKEN"])
            assert await job.result(timeout=120) == f"{DIGEST}\n".encode()
            with pytest.raises(NotFound):
                await client.shell("true", secrets=["ABSENT"])
            await client.secrets.delete("TOKEN")
            assert await client.secrets.list() == []
            with pytest.raises(NotFound):
                await client.secrets.delete("TOKEN")

    with tenant(secret_server, "carol") as client:
        asyncio.run(main(client.config.account))
