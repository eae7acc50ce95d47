"""Log lines carry the job id and account of the context they are made in, in both forms."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from cloudpipe_common.errors import InvalidArgument
from cloudpipe_common.logs import (
    ContextFilter,
    background_context,
    bind_log_context,
    formatter,
    job_context,
    job_fields,
    log_context,
    log_format,
)
from cloudpipe_server.executors.docker_io import in_daemon_thread


class Captured:
    """A logger of its own writing through the programs' handler setup into a buffer."""

    def __init__(self, fmt: str) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(formatter(fmt))
        self.handler.addFilter(ContextFilter())
        self.log = logging.getLogger(f"cloudpipe_test_logs.{fmt}")
        self.log.setLevel(logging.DEBUG)
        self.log.propagate = False
        self.log.addHandler(self.handler)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines()]

    def close(self) -> None:
        self.log.removeHandler(self.handler)


@pytest.fixture
def as_json() -> Iterator[Captured]:
    captured = Captured("json")
    yield captured
    captured.close()


@pytest.fixture
def as_text() -> Iterator[Captured]:
    captured = Captured("text")
    yield captured
    captured.close()


def test_json_lines_carry_the_context_job_and_account(as_json: Captured) -> None:
    with log_context(job_id=12, account="alice"):
        as_json.log.info("job %d: processing", 12)
    as_json.log.info("serving")
    inside, outside = as_json.records()
    assert inside["job_id"] == 12 and inside["account"] == "alice"
    assert inside["message"] == "job 12: processing"
    assert {"time", "level", "logger", "message"} <= inside.keys()
    assert "job_id" not in outside and "account" not in outside


def test_an_extra_at_the_call_site_wins_over_the_context(as_json: Captured) -> None:
    with log_context(job_id=1, account="alice"):
        as_json.log.warning("job %d: lease lost", 7, extra=job_fields(7))
    (record,) = as_json.records()
    assert record["job_id"] == 7 and record["account"] == "alice"


def test_nested_contexts_add_fields_and_restore_them(as_json: Captured) -> None:
    with log_context(account="alice"):
        with log_context(job_id=3):
            as_json.log.info("inner")
        as_json.log.info("outer")
    inner, outer = as_json.records()
    assert (inner["job_id"], inner["account"]) == (3, "alice")
    assert "job_id" not in outer and outer["account"] == "alice"


def test_text_lines_end_with_the_fields_before_a_traceback(as_text: Captured) -> None:
    with log_context(job_id=12, account="alice"):
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            as_text.log.exception("job %d: executor failed", 12)
    as_text.log.info("no job here")
    lines = as_text.lines()
    assert lines[0].endswith("cloudpipe_test_logs.text: job 12: executor failed job=12 account=alice")
    assert any("RuntimeError: boom" in line for line in lines)
    assert lines[-1].endswith("no job here")


def test_a_text_field_cannot_pass_for_other_fields(as_text: Captured) -> None:
    """The account of a failed login is what the caller claimed: one with a space or '='
    is quoted, so `x job=1` cannot read as a job field."""
    with log_context(account="x job=1"):
        as_text.log.info("login failed")
    with log_context(account='quo"te\nnext'):
        as_text.log.info("also failed")
    first, second = as_text.lines()
    assert first.endswith('login failed account="x job=1"')
    assert second.endswith('also failed account="quo\\"te\\nnext"') and len(as_text.lines()) == 2


async def test_each_task_logs_with_its_own_job(as_json: Captured) -> None:
    """What the dispatcher does: one task per job, its context naming the job; concurrent
    tasks do not mix their fields, and the loop that made them has none."""

    async def run(job_id: int) -> None:
        await asyncio.sleep(0)
        as_json.log.info("job %d: running", job_id)
        await asyncio.sleep(0)
        as_json.log.info("job %d: done", job_id)

    tasks = [asyncio.create_task(run(i), context=job_context(i, f"acct{i}")) for i in (1, 2, 3)]
    await asyncio.gather(*tasks)
    as_json.log.info("claim loop")
    records = as_json.records()
    for record in records[:-1]:
        assert record["message"].startswith(f"job {record['job_id']}:")  # type: ignore[union-attr]
        assert record["account"] == f"acct{record['job_id']}"
    assert "job_id" not in records[-1]


async def test_a_task_binding_its_fields_keeps_them_to_itself(as_json: Captured) -> None:
    """What an RPC does: the interceptor binds the caller's account in the RPC's task."""

    async def rpc() -> None:
        bind_log_context(account="bob")
        as_json.log.info("in the rpc")

    await asyncio.create_task(rpc())
    as_json.log.info("after it")
    inside, after = as_json.records()
    assert inside["account"] == "bob" and "account" not in after


async def test_work_in_a_daemon_thread_keeps_the_job_of_its_caller(as_json: Captured) -> None:
    def blocking() -> str:
        as_json.log.info("job 5: in a worker thread")
        return threading.current_thread().name

    with log_context(job_id=5, account="carol"):
        name = await in_daemon_thread(blocking)
    assert name != threading.current_thread().name
    (record,) = as_json.records()
    assert (record["job_id"], record["account"]) == (5, "carol")


async def test_background_work_started_by_a_job_is_not_that_jobs(as_json: Captured) -> None:
    async def sweep() -> None:
        as_json.log.info("warm container: idle")

    with log_context(job_id=9, account="dave"):
        await asyncio.create_task(sweep(), context=background_context("erin"))
    (record,) = as_json.records()
    assert "job_id" not in record and record["account"] == "erin"


def test_the_flag_overrides_the_environment() -> None:
    assert log_format({"CLOUDPIPE_LOG_FORMAT": "json"}) == "json"
    assert log_format({"CLOUDPIPE_LOG_FORMAT": "json"}, "text") == "text"
    assert log_format({}, "JSON") == "json"
    assert log_format({}) == "text"


def test_a_bad_format_names_where_it_came_from() -> None:
    with pytest.raises(InvalidArgument, match="CLOUDPIPE_LOG_FORMAT: 'xml' is not one of text, json"):
        log_format({"CLOUDPIPE_LOG_FORMAT": "xml"})
    with pytest.raises(InvalidArgument, match="--log-format: 'xml'"):
        log_format({"CLOUDPIPE_LOG_FORMAT": "json"}, "xml")


@pytest.mark.parametrize(
    "program",
    ["cloudpipe_server.__main__", "cloudpipe_auth.__main__", "http_gateway.__main__"],
)
def test_every_program_refuses_an_unknown_log_format_as_a_usage_error(
    program: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main = __import__(program, fromlist=["main"]).main
    with pytest.raises(SystemExit) as exited:
        main(["--log-format", "xml"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--log-format" in err and "invalid choice: 'xml'" in err and "Traceback" not in err
