"""`client.quotas` and `cloudpipe admin quota|quotas` against a real server whose
accounts live in a real auth service: the admin sets, merges, clears and lists an
account's overrides; an account reads its own and is refused the rest; bad limits are
refused before anything is sent; exit codes as for any refused or missing thing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cloudpipe_sdk import (
    AccountQuotas,
    AsyncClient,
    AuthError,
    Client,
    InvalidRequest,
    NotFound,
    QuotaLimits,
    ResourceExhausted,
)
from tests.auth.support import AuthProcess, new_account
from tests.cli.support import cloudpipe
from tests.support import ServerProcess, start_server

DEFAULT_RUNNING = 3


@pytest.fixture(scope="module")
def server(auth_service: AuthProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = auth_service.server_env(CLOUDPIPE_AUTH_CACHE_TTL="0", CLOUDPIPE_MAX_RUNNING_PER_ACCOUNT=str(DEFAULT_RUNNING))
    process = start_server(tmp_path_factory.mktemp("quota-sdk"), env=env, fake=True)
    yield process
    assert process.stop() == 0, process.log


@pytest.fixture
def admin(server: ServerProcess) -> Iterator[Client]:
    with server.client() as client:
        yield client


def test_the_admin_sets_merges_clears_and_lists_an_accounts_quotas(
    admin: Client, server: ServerProcess, auth_service: AuthProcess
) -> None:
    name, _, key = new_account(auth_service, "sdk")
    made = admin.quotas.set(name, max_queued=2)
    assert made.override == QuotaLimits(2, None) and (made.max_queued, made.max_running) == (2, DEFAULT_RUNNING)
    merged = admin.quotas.set(name, max_running=1)  # max_queued left out: kept
    assert merged.override == QuotaLimits(2, 1) and merged.max_running == 1 and merged.updated_at is not None
    defaults, listed = admin.quotas.list()
    assert defaults == QuotaLimits(0, DEFAULT_RUNNING)
    assert [q.override for q in listed if q.account == name] == [QuotaLimits(2, 1)]

    with Client(server.address, api_key=key) as own:
        mine = own.quotas.get()
        assert isinstance(mine, AccountQuotas) and (mine.account, mine.max_queued) == (name, 2)
        for _ in range(3):  # one runs (the fake executor holds it), two wait: at the queued limit
            own.shell("sleep 60")
        with pytest.raises(ResourceExhausted, match="its limit is 2"):
            own.shell("sleep 60")
        with pytest.raises(AuthError):
            own.quotas.set(name, max_queued=100)
        with pytest.raises(AuthError):
            own.quotas.list()
        own.kill_all()

    back = admin.quotas.set(name, max_queued=None)
    assert back.override == QuotaLimits(None, 1) and back.max_queued == 0
    cleared = admin.quotas.clear(name)
    assert cleared.override == QuotaLimits() and cleared.updated_at is None
    assert cleared.max_running == DEFAULT_RUNNING


def test_bad_limits_are_refused_before_sending_and_unknown_accounts_are_not_found(admin: Client) -> None:
    for options in ({"max_queued": -1}, {"max_running": 10**6}, {"max_queued": 1.5}, {"max_running": True}):
        with pytest.raises(InvalidRequest):
            admin.quotas.set("anyone@example.com", **options)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        admin.quotas.clear("")
    with pytest.raises(NotFound):
        admin.quotas.set("nobody@example.com", max_queued=1, max_running=1)


def test_the_cli_sets_shows_lists_and_clears_quotas(server: ServerProcess, auth_service: AuthProcess) -> None:
    name, _, key = new_account(auth_service, "cli")
    made = cloudpipe(server, "admin", "quota", name, "--max-queued", "7", "--max-running", "0", "--json")
    assert made.exit_code == 0, made.stderr
    shown = json.loads(made.stdout)
    assert shown["override"] == {"max_queued": 7, "max_running": 0} and shown["max_running"] == 0

    kept = cloudpipe(server, "admin", "quota", name, "--max-running", "default")
    assert kept.exit_code == 0, kept.stderr
    assert f"account: {name}" in kept.stdout and "max queued: 7  (override: 7)" in kept.stdout
    assert f"max running: {DEFAULT_RUNNING}  (override: default)" in kept.stdout

    listed = cloudpipe(server, "admin", "quotas", "--json")
    assert listed.exit_code == 0, listed.stderr
    answer = json.loads(listed.stdout)
    assert answer["defaults"] == {"max_queued": 0, "max_running": DEFAULT_RUNNING}
    assert name in [row["account"] for row in answer["accounts"]]
    table = cloudpipe(server, "admin", "quotas")
    assert table.exit_code == 0 and name in table.stdout and "defaults: max queued no limit" in table.stdout

    cleared = cloudpipe(server, "admin", "quota", name, "--clear", "--json")
    assert cleared.exit_code == 0 and json.loads(cleared.stdout)["override"] == {
        "max_queued": None,
        "max_running": None,
    }

    own = cloudpipe(None, "--address", server.address, "--api-key", key, "admin", "quota")
    assert own.exit_code == 0 and f"account: {name}" in own.stdout
    refused = cloudpipe(
        None, "--address", server.address, "--api-key", key, "admin", "quota", name, "--max-queued", "1"
    )
    assert refused.exit_code == 4, refused.stderr
    missing = cloudpipe(server, "admin", "quota", "nobody@example.com", "--max-queued", "1")
    assert missing.exit_code == 3, missing.stderr
    negative = cloudpipe(server, "admin", "quota", name, "--max-queued", "-1")
    assert negative.exit_code == 2 and "negative" in negative.stderr
    both = cloudpipe(server, "admin", "quota", name, "--clear", "--max-queued", "1")
    assert both.exit_code != 0 and "--clear" in both.stderr


async def test_the_async_client_sets_and_reads_quotas(server: ServerProcess, auth_service: AuthProcess) -> None:
    name, _, _ = new_account(auth_service, "async")
    async with AsyncClient(server.address, api_key=server.api_key) as client:
        await client.quotas.set(name, max_queued=4, max_running=None)
        merged = await client.quotas.set(name, max_running=2)
        assert merged.override == QuotaLimits(4, 2)
        assert (await client.quotas.get(name)).max_running == 2
        assert name in [q.account for q in (await client.quotas.list())[1]]
        assert (await client.quotas.clear(name)).override == QuotaLimits()
