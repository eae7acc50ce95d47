"""`volumes=` as a job option: mount path -> volume name (":ro" for read-only) becomes
the wire's "NAME:/path[:ro]" entries in every spec the client builds; bad paths and
names are refused here, before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloudpipe_sdk import Client, InvalidRequest, JobOptions
from cloudpipe_sdk._convert import spec_from_pb, spec_to_pb


@pytest.fixture
def client() -> Iterator[Client]:
    with Client("127.0.0.1:1", retry_for=0.1) as made:  # never connects: specs only
        yield made


def test_mounts_become_wire_entries_in_every_spec(client: Client) -> None:
    volumes = {"/data": "mydata", "/ref": "refdata:ro"}
    assert JobOptions(volumes=volumes).shell_spec("true").volumes == ("mydata:/data", "refdata:/ref:ro")
    view = client.with_options(volumes=volumes)
    assert view.options.function_spec(abs, (-1,), {}).volumes == ("mydata:/data", "refdata:/ref:ro")
    shell = client._shell_spec(
        "true", stdin=None, result_source="stdout", interactive=False, depends_on=(), options={"volumes": volumes}
    )
    assert shell.volumes == ("mydata:/data", "refdata:/ref:ro")
    plan = client._map_plan(abs, [(-1,), (-2,)], 2, None, False, False, {"volumes": {"/w": "work:rw"}})
    assert [spec.volumes for spec in plan.specs] == [("work:/w:rw",)]
    assert JobOptions().shell_spec("true").volumes == ()
    assert spec_from_pb(spec_to_pb(shell)).volumes == shell.volumes


@pytest.mark.parametrize(
    "volumes",
    [
        {"data": "mydata"},  # relative
        {"/": "mydata"},
        {"/a/../etc": "mydata"},
        {"/a:b": "mydata"},
        {"/data": "Bad Name"},
        {"/data": "mydata:rx"},
        {"/data": ""},
        ["mydata:/data"],  # the wire's form is not the option's
    ],
)
def test_bad_mounts_are_refused_before_sending(client: Client, volumes: object) -> None:
    with pytest.raises(InvalidRequest, match="volumes"):
        JobOptions(volumes=volumes)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="volumes"):
        client.with_options(volumes=volumes)
