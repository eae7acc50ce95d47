"""`secrets=` as a job option: a list of names (environment variables) or a mapping of
name -> file path becomes the wire's "NAME" / "NAME:/path" entries in every spec the
client builds (shell, submit, map, saved jobs, inline schedule jobs); bad names and
paths are refused here, before anything is sent; and a value set through
`client.secrets` is in no repr of what the SDK builds."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloudpipe_sdk import Client, InvalidRequest, JobOptions
from cloudpipe_sdk._convert import spec_from_pb, spec_to_pb
from cloudpipe_sdk._schedule_calls import inline_job
from cloudpipe_sdk._secret_calls import set_secret


@pytest.fixture
def client() -> Iterator[Client]:
    with Client("127.0.0.1:1", retry_for=0.1) as made:  # never connects: specs only
        yield made


def test_names_and_files_become_wire_entries_in_every_spec(client: Client) -> None:
    assert JobOptions(secrets=["API_TOKEN"]).shell_spec("true").secrets == ("API_TOKEN",)
    files = {"DB_PASSWORD": "/run/secrets/db", "TLS_KEY": "/etc/app/key.pem"}
    assert JobOptions(secrets=files).shell_spec("true").secrets == (
        "DB_PASSWORD:/run/secrets/db",
        "TLS_KEY:/etc/app/key.pem",
    )
    both = ("API_TOKEN", "API_TOKEN:/run/token")  # one secret as a variable and as a file
    assert JobOptions(secrets=both).shell_spec("true").secrets == both
    view = client.with_options(secrets=["API_TOKEN"])
    assert view.options.function_spec(abs, (-1,), {}).secrets == ("API_TOKEN",)
    shell = client._shell_spec(
        "true", stdin=None, result_source="stdout", interactive=False, depends_on=(), options={"secrets": files}
    )
    assert shell.secrets == ("DB_PASSWORD:/run/secrets/db", "TLS_KEY:/etc/app/key.pem")
    plan = client._map_plan(abs, [(-1,), (-2,)], 2, None, False, False, {"secrets": ["A_KEY"]})
    assert [spec.secrets for spec in plan.specs] == [("A_KEY",)]
    scheduled = inline_job(client.options, {"cmd": "date", "secrets": ["API_TOKEN"]})
    assert scheduled["job"].secrets == ("API_TOKEN",)
    assert JobOptions().shell_spec("true").secrets == ()
    assert spec_from_pb(spec_to_pb(shell)).secrets == shell.secrets


@pytest.mark.parametrize(
    ("secrets", "env"),
    [
        ("API_TOKEN", {}),  # one string, not a list of names
        (["1BAD"], {}),
        (["has-dash"], {}),
        (["x" * 129], {}),
        ([7], {}),
        (["TOKEN", "TOKEN"], {}),
        ({"A": "/run/same", "B": "/run/same"}, {}),
        (["TOKEN"], {"TOKEN": "also here"}),
        (["CLOUDPIPE_JOB_ID"], {}),
        ({"TOKEN": "relative"}, {}),
        ({"TOKEN": "/"}, {}),
        ({"TOKEN": ""}, {}),
        ({"TOKEN": "/a/../b"}, {}),
        ({"TOKEN": "/proc/self/x"}, {}),
        ({"TOKEN": "/dev"}, {}),
        ({"TOKEN": 5}, {}),
        (["TOKEN:relative"], {}),
        (42, {}),
    ],
)
def test_bad_secrets_are_refused_before_sending(client: Client, secrets: object, env: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest, match="secrets"):
        JobOptions(secrets=secrets, env=env)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="secrets"):
        client.with_options(secrets=secrets, env=env)


def test_a_value_is_in_no_repr_or_error() -> None:
    value = "hunter2-" + "q" * 16
    rpc = set_secret("API_TOKEN", value)
    assert rpc.request.value == value.encode() and value not in repr(rpc)
    assert set_secret("RAW", b"\x00\xff").request.value == b"\x00\xff"
    with pytest.raises(InvalidRequest, match="not a secret name") as bad_name:
        set_secret("bad-name", value)
    with pytest.raises(InvalidRequest, match="str or bytes") as bad_type:
        set_secret("NUMBER", 12345)  # type: ignore[arg-type]
    assert value not in str(bad_name.value) and "12345" not in str(bad_type.value)
