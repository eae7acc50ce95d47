"""The soak of bench/soak.py, one minute long: mixed jobs (10 % over the output cap), a
kill -9 of the server and an engine outage in the middle; no job may be lost or end in
a state that is not what it did, no container or zombie may be left, and the server's
memory must stay bounded. (The ten-minute run: `python -m bench.soak`.)"""

from __future__ import annotations

import docker
import pytest

from bench.soak import run

pytestmark = pytest.mark.docker


def test_one_minute_of_mixed_jobs_through_a_kill_and_an_engine_outage_loses_nothing(
    docker_engine: docker.DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    report = run(minutes=1, jobs_per_round=4)
    printed = capsys.readouterr().out
    assert report.ok, printed
    assert report.jobs >= 40 and len(report.rounds) >= 12, printed
    phases = {r.phase for r in report.rounds}
    assert {"kill -9", "outage", "restored"} <= phases, printed
    assert len({r.pid for r in report.rounds}) == 2, "the server was killed and restarted once"
    assert max(report.rss) < 400, f"server RSS reached {max(report.rss):.0f} MiB\n{printed}"
