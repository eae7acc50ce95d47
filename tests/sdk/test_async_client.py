"""AsyncClient against a real server: the Client surface for asyncio, under concurrency."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import FIRST_COMPLETED
from datetime import UTC, datetime, timedelta

import pytest

from cloudpipe_sdk import AsyncClient, AsyncJob, Exit, JobFailed, JobStatus, NotFound, Output, Timeout
from tests.support import ServerProcess

pytestmark = pytest.mark.docker


def connect(server: ServerProcess) -> AsyncClient:
    return AsyncClient(server.address, api_key=server.api_key)


async def test_submit_shell_and_results(server: ServerProcess) -> None:
    async with connect(server) as client:
        job = await client.submit(pow, 2, 10)
        assert isinstance(job, AsyncJob)
        assert await job.result(timeout=60) == 1024
        shell = await client.shell("echo hi; exit 2")
        with pytest.raises(JobFailed) as failure:
            await shell.result(timeout=60)
        assert failure.value.return_code == 2 and failure.value.stdout_tail == "hi"
        assert (await client.get(job.id)).done()
        with pytest.raises(NotFound):
            await client.get(1 << 40)


async def test_fifty_concurrent_submits_and_waits(server: ServerProcess) -> None:
    async with connect(server) as client:
        started = time.monotonic()
        jobs = await asyncio.gather(*(client.submit(abs, -n) for n in range(50)))
        assert len({job.id for job in jobs}) == 50
        results = await asyncio.gather(*(job.result(timeout=120) for job in jobs))
        assert results == list(range(50))
        assert time.monotonic() - started < 120


async def test_map_and_starmap_are_async_iterators(server: ServerProcess) -> None:
    async with connect(server) as client:
        assert [r async for r in client.map(pow, [2, 3], [3, 2])] == [8, 9]
        assert [r async for r in client.starmap(divmod, [(7, 2), (9, 4), (5, 5)], chunksize=2)] == [
            (3, 1),
            (2, 1),
            (1, 0),
        ]
        mixed = [r async for r in client.map(divmod, [1, 1], [1, 0], return_exceptions=True)]
        assert mixed[0] == (1, 0) and isinstance(mixed[1], ZeroDivisionError)


async def test_as_completed_and_wait(server: ServerProcess) -> None:
    async with connect(server) as client:
        slow = await client.shell("sleep 2; echo slow")
        fast = await client.shell("echo fast")
        order = [job async for job in client.as_completed([slow, fast], timeout=60)]
        assert order == [fast, slow]
        assert await fast.result() == b"fast\n"
        sleeper = await client.shell("sleep 30")
        done, not_done = await client.wait([sleeper, fast], return_when=FIRST_COMPLETED)
        assert done == {fast} and not_done == {sleeper}
        with pytest.raises(Timeout):
            await sleeper.wait(timeout=0.5)
        await sleeper.kill()
        assert await sleeper.wait(timeout=30) is JobStatus.KILLED


async def test_streamed_output_arrives_while_the_job_runs(server: ServerProcess) -> None:
    async with connect(server) as client:
        job = await client.shell("echo first; sleep 2; echo second")
        arrivals = []
        async for event in job.stream():
            if isinstance(event, Output):
                arrivals.append((event.text, time.monotonic()))
        assert "".join(text for text, _ in arrivals) == "first\nsecond\n"
        assert arrivals[-1][1] - arrivals[0][1] > 1
        assert [text async for text in job.logs()] == ["first\nsecond\n"]
        assert "".join([text async for text in job.logs(follow=True)]) == "first\nsecond\n"


async def test_exception_returns_failures_and_lets_cancellation_through(server: ServerProcess) -> None:
    async with connect(server) as client:
        failed = await client.shell("exit 4")
        failure = await failed.exception(timeout=60)
        assert isinstance(failure, JobFailed) and failure.return_code == 4
        assert await (await client.submit(abs, -1)).exception(timeout=60) is None
        sleeper = await client.shell("sleep 30")
        waiting = asyncio.create_task(sleeper.exception())
        await asyncio.sleep(0.5)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await sleeper.kill()


def test_a_client_made_outside_the_event_loop_works_inside_it(server: ServerProcess) -> None:
    client = connect(server)

    async def use() -> object:
        async with client:
            return await (await client.submit(abs, -3)).result(timeout=60)

    assert asyncio.run(use()) == 3


async def test_saved_jobs_and_schedules_are_awaitable(server: ServerProcess) -> None:
    name = f"async-saved-{time.monotonic_ns()}"
    async with connect(server) as client:
        saved = await client.saved_jobs.save_shell(name, "echo saved; echo $EXTRA", memory="64M")
        assert saved.version == 1 and saved.spec.memory == 64 << 20 and not saved.is_function
        assert (await client.saved_jobs.save_shell(name, "echo saved; echo $EXTRA", memory="64M")).version == 1
        assert name in [s.name for s in await client.saved_jobs.list()]
        job = await client.saved_jobs.run(name, env={"EXTRA": "more"})
        assert isinstance(job, AsyncJob) and await job.result(timeout=60) == b"saved\nmore\n"
        schedule = await client.schedules.create(name, "0 3 * * *", saved_job=name, timezone="Europe/Berlin")
        assert schedule.spec.saved_job == name and schedule.spec.timezone == "Europe/Berlin"
        assert len(await client.schedules.preview(name, count=3)) == 3
        assert (await client.schedules.pause(name)).paused
        fire = await client.schedules.trigger(name)
        assert fire.job_id is not None and await client.job(fire.job_id).result(timeout=60) == b"saved\n\n"
        assert [f.manual for f in await client.schedules.history(name)] == [True]
        await client.schedules.delete(name)
        await client.saved_jobs.delete(name)
        with pytest.raises(NotFound):
            await client.saved_jobs.get(name)


async def test_a_scheduled_function_uses_the_clients_serializer(server: ServerProcess) -> None:
    name = f"async-fn-{time.monotonic_ns()}"
    async with connect(server) as client:
        dill = client.with_options(serializer="dill", retries=1)

        def answer() -> int:
            return 42

        await dill.schedules.function(answer, "@yearly", name=name)
        saved = await client.saved_jobs.get(name)
        assert saved.is_function and saved.spec.serializer == "dill" and saved.spec.env["CLOUDPIPE_RETRIES"] == "1"
        assert (await client.schedules.get(name)).spec.cron == "@yearly"
        assert await (await client.saved_jobs.run(name)).result(timeout=60) == 42
        await client.schedules.delete(name)
        await client.saved_jobs.delete(name)


async def test_attach_types_into_an_interactive_job(server: ServerProcess) -> None:
    async with connect(server) as client:
        job = await client.shell("tr a-z A-Z", interactive=True)
        async with await job.attach() as session:
            await session.write("shout\n")
            await session.close_stdin()
            events = [event async for event in session]
        assert b"".join(e.data for e in events if isinstance(e, Output)) == b"SHOUT\n"
        assert isinstance(events[-1], Exit) and events[-1].status is JobStatus.DONE
        assert session.offsets["stdout"] == len(b"SHOUT\n")
        quick = await client.shell("cat", interactive=True)
        async with await quick.attach(stdin="given\n") as given:
            assert b"".join([e.data async for e in given if isinstance(e, Output)]) == b"given\n"


async def test_list_filters_by_date_and_map_draws_progress(
    server: ServerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    async with connect(server) as client:
        before = datetime.now(UTC) - timedelta(seconds=5)
        job = await client.shell("true", name="async-dated")
        await job.wait(timeout=60)
        recent = await client.list(names=["async-dated"], created_after=before)
        assert job.id in [j.id for j in recent]
        assert await client.list(names=["async-dated"], created_before=before) == []
        assert [r async for r in client.map(abs, [-1, -2], progress=True)] == [1, 2]
        assert "map" in capsys.readouterr().err
