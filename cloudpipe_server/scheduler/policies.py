"""Which fires run: the catch-up policy (fires missed while no scheduler ran) and the
overlap policy (fires while a run of the same schedule is still going). Pure
functions of their arguments, so every server decides the same way.

A fire is *missed* when the pass that finds it starts more than the misfire grace
after its due time (the server was down, or the pass ran that late). Fires found in
time run, whatever the catch-up policy. Missed fires:

- `skip`: none runs; each is recorded as skipped.
- `run_once`: the latest missed fire runs, the others are recorded as skipped.
- `run_all`: every missed fire scheduled within the catch-up window before now runs;
  older ones are recorded as skipped. The window is at most `MAX_CATCHUP_WINDOW` (366
  days).

Every fire that is to run then passes the overlap policy, together with the fires of
the same pass (a catch-up of three fires overlaps itself):

- `allow`: all run.
- `skip`: while a run is going (or a fire is buffered), none runs; otherwise the
  first runs and the others are skipped.
- `buffer_one`: while a run is going, the first waits (buffered) until it ends, the
  others are skipped, and with a fire already buffered all are skipped; otherwise the
  first runs, the second is buffered and the others are skipped.
- `cancel_previous`: the running jobs are killed and the last fire runs; earlier fires
  of the same pass are skipped as superseded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cloudpipe_server.scheduler.models import CatchupPolicy, FireOutcome, OverlapPolicy

MAX_CATCHUP_WINDOW = timedelta(days=366)  # the longest `run_all` window a schedule may have


@dataclass(frozen=True)
class Decision:
    """What one fire does: PENDING (run now), BUFFERED or SKIPPED, and why."""

    scheduled_at: datetime
    due_at: datetime
    outcome: FireOutcome
    reason: str = ""


def is_missed(due_at: datetime, now: datetime, grace: timedelta) -> bool:
    return due_at < now - grace


def plan_catchup(
    fires: Sequence[tuple[datetime, datetime]],
    now: datetime,
    *,
    grace: timedelta,
    policy: CatchupPolicy,
    window: timedelta,
    more_missed_follow: bool = False,
) -> list[Decision]:
    """Decide the due (scheduled, due) `fires` of one schedule, in scheduled order:
    PENDING for those that run, SKIPPED (with the reason) for missed ones the policy
    drops. `more_missed_follow` says the list was cut short and later fires are missed
    too, so under `run_once` none of these is the latest."""
    missed = [f for f in fires if is_missed(f[1], now, grace)]
    latest = missed[-1] if missed and not more_missed_follow else None
    decisions: list[Decision] = []
    for scheduled, due in fires:
        if not is_missed(due, now, grace):
            decisions.append(Decision(scheduled, due, FireOutcome.PENDING))
        elif policy is CatchupPolicy.SKIP:
            decisions.append(Decision(scheduled, due, FireOutcome.SKIPPED, "missed (catch-up: skip)"))
        elif policy is CatchupPolicy.RUN_ONCE:
            if (scheduled, due) == latest:
                decisions.append(Decision(scheduled, due, FireOutcome.PENDING, "late: catch-up (run_once)"))
            else:
                reason = "missed; only the latest missed fire runs (catch-up: run_once)"
                decisions.append(Decision(scheduled, due, FireOutcome.SKIPPED, reason))
        elif policy is CatchupPolicy.RUN_ALL:
            if now - scheduled <= window:  # `now - window` could overflow
                decisions.append(Decision(scheduled, due, FireOutcome.PENDING, "late: catch-up (run_all)"))
            else:
                reason = f"missed, older than the catch-up window of {window} (catch-up: run_all)"
                decisions.append(Decision(scheduled, due, FireOutcome.SKIPPED, reason))
        else:
            raise AssertionError(f"unknown catch-up policy {policy}")
    return decisions


@dataclass(frozen=True)
class OverlapPlan:
    """The decisions after the overlap policy, and the jobs to kill first."""

    decisions: list[Decision]
    kill: tuple[int, ...] = ()


def plan_overlap(
    decisions: Sequence[Decision],
    policy: OverlapPolicy,
    *,
    running: Sequence[int],
    buffered: bool,
) -> OverlapPlan:
    """Apply the overlap policy to the PENDING `decisions` of one schedule (others pass
    through). `running` are the unfinished jobs of earlier fires, `buffered` says a fire
    of the schedule is already waiting."""
    runs = [d for d in decisions if d.outcome is FireOutcome.PENDING]
    if not runs or policy is OverlapPolicy.ALLOW:
        return OverlapPlan(list(decisions))
    changed: dict[datetime, Decision] = {}

    def mark(decision: Decision, outcome: FireOutcome, reason: str) -> None:
        changed[decision.scheduled_at] = Decision(decision.scheduled_at, decision.due_at, outcome, reason)

    busy = f"job {running[0]} of an earlier fire is still running" if running else ""
    if policy is OverlapPolicy.SKIP:
        if busy or buffered:
            for run in runs:
                mark(run, FireOutcome.SKIPPED, f"{busy or 'a fire is buffered'} (overlap: skip)")
        else:
            for run in runs[1:]:
                mark(run, FireOutcome.SKIPPED, f"overlaps the fire at {_iso(runs[0])} (overlap: skip)")
    elif policy is OverlapPolicy.BUFFER_ONE:
        if busy or buffered:
            for index, run in enumerate(runs):
                if index == 0 and not buffered:
                    mark(run, FireOutcome.BUFFERED, f"waits: {busy} (overlap: buffer_one)")
                else:
                    mark(run, FireOutcome.SKIPPED, "a fire is already buffered (overlap: buffer_one)")
        else:
            for index, run in enumerate(runs[1:]):
                if index == 0:
                    mark(run, FireOutcome.BUFFERED, f"waits for the fire at {_iso(runs[0])} (overlap: buffer_one)")
                else:
                    mark(run, FireOutcome.SKIPPED, "a fire is already buffered (overlap: buffer_one)")
    elif policy is OverlapPolicy.CANCEL_PREVIOUS:
        for run in runs[:-1]:
            mark(run, FireOutcome.SKIPPED, f"superseded by the fire at {_iso(runs[-1])} (overlap: cancel_previous)")
        return OverlapPlan([changed.get(d.scheduled_at, d) for d in decisions], tuple(running))
    else:
        raise AssertionError(f"unknown overlap policy {policy}")
    return OverlapPlan([changed.get(d.scheduled_at, d) for d in decisions])


def _iso(decision: Decision) -> str:
    return decision.scheduled_at.isoformat()
