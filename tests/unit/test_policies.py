"""Which fires run: catch-up after downtime, and overlap with a run still going."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloudpipe_server.scheduler.models import CatchupPolicy, FireOutcome, OverlapPolicy
from cloudpipe_server.scheduler.policies import Decision, plan_catchup, plan_overlap

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
GRACE = timedelta(seconds=10)
RUN, SKIP, WAIT = FireOutcome.PENDING, FireOutcome.SKIPPED, FireOutcome.BUFFERED


def minutes(*offsets: int) -> list[tuple[datetime, datetime]]:
    return [(T0 + m * MINUTE, T0 + m * MINUTE) for m in offsets]


def outcomes(decisions: list[Decision]) -> list[FireOutcome]:
    return [d.outcome for d in decisions]


def catchup(
    policy: CatchupPolicy, now: datetime, window: timedelta = timedelta(minutes=3), **kw: bool
) -> list[FireOutcome]:
    return outcomes(plan_catchup(minutes(0, 1, 2, 3, 4, 5), now, grace=GRACE, policy=policy, window=window, **kw))


def test_fires_found_within_the_grace_run_whatever_the_policy() -> None:
    now = T0 + 5 * MINUTE + timedelta(seconds=5)
    for policy in CatchupPolicy:
        assert catchup(policy, now)[-1] is RUN


def test_run_all_with_a_window_longer_than_the_calendar_runs_every_missed_fire() -> None:
    now = T0 + 10 * MINUTE  # a window reaching before year 1 must not overflow
    assert catchup(CatchupPolicy.RUN_ALL, now, window=timedelta(seconds=3e11)) == [RUN] * 6


def test_skip_drops_every_missed_fire() -> None:
    now = T0 + 5 * MINUTE + timedelta(seconds=5)  # minutes 0-4 missed, 5 on time
    assert catchup(CatchupPolicy.SKIP, now) == [SKIP] * 5 + [RUN]
    assert catchup(CatchupPolicy.SKIP, now + MINUTE) == [SKIP] * 6


def test_run_once_runs_only_the_latest_missed_fire() -> None:
    now = T0 + 10 * MINUTE
    assert catchup(CatchupPolicy.RUN_ONCE, now) == [SKIP] * 5 + [RUN]
    decisions = plan_catchup(minutes(0, 1), now, grace=GRACE, policy=CatchupPolicy.RUN_ONCE, window=MINUTE)
    assert "run_once" in decisions[0].reason and decisions[1].reason == "late: catch-up (run_once)"


def test_run_once_waits_for_the_last_chunk_of_a_long_outage() -> None:
    now = T0 + 10 * MINUTE
    assert catchup(CatchupPolicy.RUN_ONCE, now, more_missed_follow=True) == [SKIP] * 6


def test_run_all_runs_the_missed_fires_within_the_window() -> None:
    now = T0 + 5 * MINUTE + timedelta(seconds=30)  # window 3 min: fires from 2:30 on
    assert catchup(CatchupPolicy.RUN_ALL, now) == [SKIP] * 3 + [RUN] * 3
    assert catchup(CatchupPolicy.RUN_ALL, now, window=timedelta(hours=1)) == [RUN] * 6


def decisions(*offsets: int) -> list[Decision]:
    return [Decision(s, d, RUN) for s, d in minutes(*offsets)]


def test_allow_runs_everything_side_by_side() -> None:
    plan = plan_overlap(decisions(0, 1), OverlapPolicy.ALLOW, running=[7], buffered=True)
    assert outcomes(plan.decisions) == [RUN, RUN] and plan.kill == ()


def test_skip_runs_nothing_while_a_run_is_going() -> None:
    plan = plan_overlap(decisions(0), OverlapPolicy.SKIP, running=[7], buffered=False)
    assert outcomes(plan.decisions) == [SKIP] and "job 7" in plan.decisions[0].reason
    idle = plan_overlap(decisions(0, 1, 2), OverlapPolicy.SKIP, running=[], buffered=False)
    assert outcomes(idle.decisions) == [RUN, SKIP, SKIP]


def test_buffer_one_keeps_one_fire_waiting() -> None:
    busy = plan_overlap(decisions(0, 1), OverlapPolicy.BUFFER_ONE, running=[7], buffered=False)
    assert outcomes(busy.decisions) == [WAIT, SKIP]
    full = plan_overlap(decisions(0), OverlapPolicy.BUFFER_ONE, running=[7], buffered=True)
    assert outcomes(full.decisions) == [SKIP]
    idle = plan_overlap(decisions(0, 1, 2), OverlapPolicy.BUFFER_ONE, running=[], buffered=False)
    assert outcomes(idle.decisions) == [RUN, WAIT, SKIP]


def test_cancel_previous_kills_the_running_jobs_and_runs_the_latest() -> None:
    plan = plan_overlap(decisions(0, 1), OverlapPolicy.CANCEL_PREVIOUS, running=[7, 8], buffered=False)
    assert outcomes(plan.decisions) == [SKIP, RUN] and plan.kill == (7, 8)
    assert "superseded" in plan.decisions[0].reason


def test_skipped_fires_pass_through_the_overlap_policy_untouched() -> None:
    mixed = [Decision(T0, T0, SKIP, "missed"), *decisions(1)]
    for policy in OverlapPolicy:
        plan = plan_overlap(mixed, policy, running=[], buffered=False)
        assert plan.decisions[0] == mixed[0] and plan.decisions[1].outcome is RUN
