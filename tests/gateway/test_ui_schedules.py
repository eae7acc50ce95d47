"""The UI's schedules and saved jobs routes (/ui/api/schedule*, /ui/api/saved-job*)
against a real server: what an account sees and can do, that one account never sees
or touches another's, and bad input answered 4xx in the Go envelope."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from cloudpipe_sdk import Client
from tests.gateway.conftest import Stack
from tests.gateway.support import GatewayProcess, assert_api_error


def triple(x: int) -> int:
    return 3 * x


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture
def sdk(trusting: GatewayProcess) -> Iterator[Callable[[str], Client]]:
    """`sdk(account)`: an SDK client of the trusting gateway's server for `account`."""
    clients: list[Client] = []

    def make(account: str) -> Client:
        client = Client(trusting.server_address, account=account, api_key="any-key")
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def wait_job_finished(http: httpx.Client, jid: int, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, object] = http.get("/ui/api/job", params={"jid": jid, "view": "summary"}).json()
        if job.get("status") in ("done", "error", "killed", "stalled") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def test_an_account_sees_its_schedules_with_next_fire_and_can_pause_resume_and_fire_them(
    sdk: Callable[[str], Client], as_account: Callable[[str], httpx.Client]
) -> None:
    account = unique("sched")
    client, http = sdk(account), as_account(account)
    client.saved_jobs.save_shell("report", "echo report", description="the daily report")
    client.schedules.create("nightly", "30 2 * * *", saved_job="report", timezone="Europe/Berlin")

    (schedule,) = http.get("/ui/api/schedules").json()["schedules"]
    assert schedule["name"] == "nightly" and schedule["cron"] == "30 2 * * *"
    assert schedule["timezone"] == "Europe/Berlin"
    assert schedule["target"] == {"saved_job": "report", "version": 0}
    assert schedule["paused"] is False and schedule["last_fire"] is None
    assert schedule["next_fire_at"] and schedule["next_due_at"]

    paused = http.post("/ui/api/schedule/pause", data={"name": "nightly"})
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert http.get("/ui/api/schedules").json()["schedules"][0]["paused"] is True
    resumed = http.post("/ui/api/schedule/resume", data={"name": "nightly"}).json()
    assert resumed["paused"] is False

    fire = http.post("/ui/api/schedule/trigger", data={"name": "nightly"}).json()
    assert fire["manual"] is True and fire["job_id"] > 0
    job = wait_job_finished(http, fire["job_id"])
    assert job["saved_job"] == "report" and job["status"] == "done"

    (schedule,) = http.get("/ui/api/schedules").json()["schedules"]
    assert schedule["last_fire"]["job_id"] == fire["job_id"]
    fires = http.get("/ui/api/schedule/history", params={"name": "nightly"}).json()["fires"]
    assert [f["job_id"] for f in fires] == [fire["job_id"]]
    assert fires[0]["manual"] is True and fires[0]["outcome"] in ("running", "finished")


def test_saved_jobs_list_their_versions_and_run_with_overrides(
    sdk: Callable[[str], Client], as_account: Callable[[str], httpx.Client]
) -> None:
    account = unique("saved")
    client, http = sdk(account), as_account(account)
    client.saved_jobs.save_shell("greet", "echo hello", env={"WHO": "world"})
    client.saved_jobs.save_shell("greet", "echo hello again", env={"WHO": "world"}, description="second")
    client.saved_jobs.save_function("tripled", triple, args=(14,))

    listed = http.get("/ui/api/saved-jobs").json()["saved_jobs"]
    assert [(s["name"], s["version"], s["kind"]) for s in listed] == [("greet", 2, "shell"), ("tripled", 1, "function")]
    function = listed[1]
    assert function["function"].endswith("triple") and function["stdin_bytes"] > 0
    assert all("stdin" not in s for s in listed)  # the pickled call stays on the server

    detail = http.get("/ui/api/saved-job", params={"name": "greet"}).json()
    assert detail["saved_job"]["version"] == 2 and detail["saved_job"]["description"] == "second"
    assert [(v["version"], v["cmd"]) for v in detail["versions"]] == [(2, "echo hello again"), (1, "echo hello")]
    first = http.get("/ui/api/saved-job", params={"name": "greet", "version": "1"}).json()
    assert first["saved_job"]["cmd"] == "echo hello"

    run = http.post(
        "/ui/api/saved-job/run",
        data={
            "name": "greet",
            "version": "1",
            "args": "two words\n--flag\n",
            "env": "EXTRA=1\nWHO=you",
            "max_runtime": "30",
        },
    )
    assert run.status_code == 200, run.text
    assert run.json()["version"] == 1
    job = wait_job_finished(http, run.json()["jid"])
    assert job["saved_job"] == "greet" and job["cmd"] == "echo hello 'two words' --flag"
    assert job["env"] == {"EXTRA": "1", "WHO": "you"}
    assert job["max_runtime"] == 30_000_000_000

    refused = http.post("/ui/api/saved-job/run", data={"name": "tripled", "args": "1"})
    assert_api_error(refused, 400, "QINVAL")  # args are for shell jobs; the server says why


def test_one_account_never_sees_or_touches_another_accounts_schedules_or_saved_jobs(
    sdk: Callable[[str], Client], as_account: Callable[[str], httpx.Client]
) -> None:
    alice, bob = unique("alice"), unique("bob")
    owner = sdk(alice)
    owner.saved_jobs.save_shell("secret-report", "echo alice only")
    owner.schedules.create("alice-hourly", "@hourly", saved_job="secret-report")
    sdk(bob).saved_jobs.save_shell("bobs", "echo bob")
    other = as_account(bob)

    assert other.get("/ui/api/schedules").json() == {"schedules": []}
    assert [s["name"] for s in other.get("/ui/api/saved-jobs").json()["saved_jobs"]] == ["bobs"]
    for response in (
        other.get("/ui/api/schedule/history", params={"name": "alice-hourly"}),
        other.post("/ui/api/schedule/pause", data={"name": "alice-hourly"}),
        other.post("/ui/api/schedule/trigger", data={"name": "alice-hourly"}),
        other.get("/ui/api/saved-job", params={"name": "secret-report"}),
        other.post("/ui/api/saved-job/run", data={"name": "secret-report"}),
    ):
        assert_api_error(response, 404, "NOTFOUND")
    mine = as_account(alice)
    (schedule,) = mine.get("/ui/api/schedules").json()["schedules"]
    assert schedule["paused"] is False and schedule["last_fire"] is None  # bob's calls changed nothing
    assert mine.get("/ui/api/schedule/history", params={"name": "alice-hourly"}).json() == {"fires": []}


def test_bad_input_is_a_4xx_in_the_go_envelope(as_account: Callable[[str], httpx.Client]) -> None:
    http = as_account(unique("bad"))
    assert_api_error(http.get("/ui/api/schedule/history"), 400, "QINVAL")
    assert_api_error(http.get("/ui/api/schedule/history", params={"name": "x", "limit": "-1"}), 400, "QINVAL")
    assert_api_error(http.get("/ui/api/schedule/history", params={"name": "x", "limit": "5000"}), 400, "QINVAL")
    assert_api_error(http.post("/ui/api/schedule/pause", data={}), 400, "QINVAL")
    assert_api_error(http.post("/ui/api/schedule/pause", data={"name": "x" * 201}), 400, "QINVAL")
    assert_api_error(http.get("/ui/api/schedule/pause", params={"name": "x"}), 405, "MINVAL")
    assert_api_error(http.post("/ui/api/schedules"), 405, "MINVAL")
    assert_api_error(http.get("/ui/api/saved-job", params={"name": "x", "version": "v2"}), 400, "QINVAL")
    assert_api_error(http.post("/ui/api/saved-job/run", data={"name": "x", "env": "NOEQUALS"}), 400, "QINVAL")
    assert_api_error(http.post("/ui/api/saved-job/run", data={"name": "x", "max_runtime": "1e9"}), 400, "QINVAL")
    assert_api_error(http.post("/ui/api/saved-job/run", content=b"name=" + b"x" * (70 << 10)), 413, "QINVAL")
    assert_api_error(http.post("/ui/api/schedule/trigger", data={"name": "no-such"}), 404, "NOTFOUND")


def test_bad_credentials_beat_bad_input(stack: Stack) -> None:
    assert_api_error(httpx.get(f"{stack.url}/ui/api/schedules", timeout=10), 401, "ANONE")
    wrong = ("admin", "wrong")
    for response in (
        httpx.get(f"{stack.url}/ui/api/schedules", auth=wrong, timeout=10),
        httpx.get(f"{stack.url}/ui/api/schedule/history", auth=wrong, timeout=10),
        httpx.post(f"{stack.url}/ui/api/saved-job/run", data={"env": "bad"}, auth=wrong, timeout=10),
    ):
        assert_api_error(response, 401, "AFAIL")
