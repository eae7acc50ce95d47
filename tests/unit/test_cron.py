"""When schedules fire: cron fields, aliases, time zones across DST, month ends, leap
days, jitter and start/end dates. Every instant is given explicitly (no clock)."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from cloudpipe_server.errors import InvalidArgument
from cloudpipe_server.scheduler.cron import CronExpression, Timing, jitter_for

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def local_times(expression: str, zone: str, after: datetime, count: int) -> list[str]:
    """The next `count` fires as local wall-clock strings with their UTC offset."""
    cron = CronExpression(expression, zone)
    times = []
    for instant in cron.times(after):
        times.append(instant.astimezone(cron.zone).strftime("%Y-%m-%d %H:%M%z"))
        if len(times) == count:
            return times
    return times


# -- daylight saving time: Europe/Berlin (last Sundays of March and October) ---------------


def test_berlin_a_daily_time_skipped_by_spring_forward_fires_once_when_the_gap_ends() -> None:
    after = datetime(2026, 3, 27, 12, tzinfo=BERLIN)
    assert local_times("30 2 * * *", "Europe/Berlin", after, 3) == [
        "2026-03-28 02:30+0100",
        "2026-03-29 03:00+0200",  # 02:30 does not exist that night: the first instant after the gap
        "2026-03-30 02:30+0200",
    ]


def test_berlin_skipped_quarter_hours_collapse_into_one_fire_at_the_end_of_the_gap() -> None:
    after = datetime(2026, 3, 29, 1, 40, tzinfo=BERLIN)
    assert local_times("*/15 * * * *", "Europe/Berlin", after, 3) == [
        "2026-03-29 01:45+0100",
        "2026-03-29 03:00+0200",  # 02:00, 02:15, 02:30, 02:45 and 03:00 itself: one fire
        "2026-03-29 03:15+0200",
    ]


def test_berlin_a_time_in_the_repeated_autumn_hour_fires_once_at_its_first_occurrence() -> None:
    after = datetime(2026, 10, 24, 12, tzinfo=BERLIN)
    assert local_times("30 2 * * *", "Europe/Berlin", after, 2) == [
        "2026-10-25 02:30+0200",
        "2026-10-26 02:30+0100",
    ]
    half_hours = local_times("*/30 * * * *", "Europe/Berlin", datetime(2026, 10, 25, 1, 40, tzinfo=BERLIN), 4)
    assert half_hours == [
        "2026-10-25 02:00+0200",
        "2026-10-25 02:30+0200",
        "2026-10-25 03:00+0100",
        "2026-10-25 03:30+0100",
    ]


def test_berlin_from_inside_the_repeated_hour_the_next_fire_is_after_it() -> None:
    second_pass = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)  # 02:10 CET, the second 02:10 of the night
    cron = CronExpression("*/30 * * * *", "Europe/Berlin")
    assert cron.next_after(second_pass) == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)  # 03:00 CET


def test_hourly_fires_every_real_hour_across_both_transitions() -> None:
    cron = CronExpression("@hourly", "Europe/Berlin")
    spring = list(zip(cron.times(datetime(2026, 3, 29, 0, tzinfo=UTC)), range(4), strict=False))
    assert [t for t, _ in spring] == [datetime(2026, 3, 29, h, tzinfo=UTC) for h in range(1, 5)]
    autumn = [t for t, _ in zip(cron.times(datetime(2026, 10, 24, 23, tzinfo=UTC)), range(4), strict=False)]
    # 02:00 local occurs twice; it fires once, so there are two real hours between 01:00 and 03:00 local fires
    assert autumn == [datetime(2026, 10, 25, h, tzinfo=UTC) for h in (0, 2, 3)] + [
        datetime(2026, 10, 25, 4, tzinfo=UTC)
    ]


# -- daylight saving time: America/New_York (second Sunday of March, first of November) ----


def test_new_york_a_time_skipped_by_spring_forward_fires_at_three() -> None:
    after = datetime(2026, 3, 7, 12, tzinfo=NEW_YORK)
    assert local_times("0 2 * * *", "America/New_York", after, 3) == [
        "2026-03-08 03:00-0400",
        "2026-03-09 02:00-0400",
        "2026-03-10 02:00-0400",
    ]
    assert local_times("30 2 * * *", "America/New_York", after, 1) == ["2026-03-08 03:00-0400"]


def test_new_york_the_repeated_one_oclock_hour_fires_once() -> None:
    after = datetime(2026, 10, 31, 12, tzinfo=NEW_YORK)
    assert local_times("30 1 * * *", "America/New_York", after, 2) == [
        "2026-11-01 01:30-0400",
        "2026-11-02 01:30-0500",
    ]
    minutes = local_times("*/20 1 * * *", "America/New_York", datetime(2026, 11, 1, 0, 50, tzinfo=NEW_YORK), 4)
    assert minutes == [
        "2026-11-01 01:00-0400",
        "2026-11-01 01:20-0400",
        "2026-11-01 01:40-0400",
        "2026-11-02 01:00-0500",
    ]


def test_a_utc_schedule_ignores_every_zones_transitions() -> None:
    after = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert local_times("0 * * * *", "UTC", after, 3) == [
        "2026-03-29 01:00+0000",
        "2026-03-29 02:00+0000",
        "2026-03-29 03:00+0000",
    ]


# -- calendars --------------------------------------------------------------------------


def test_the_31st_fires_only_in_months_that_have_one() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    months = [t[:10] for t in local_times("0 12 31 * *", "UTC", after, 7)]
    assert months == ["2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31", "2026-08-31", "2026-10-31", "2026-12-31"]


def test_the_last_day_of_the_month_and_leap_days() -> None:
    after = datetime(2027, 12, 31, tzinfo=UTC)
    assert [t[:10] for t in local_times("0 0 L * *", "UTC", after, 3)] == ["2028-01-31", "2028-02-29", "2028-03-31"]
    assert [t[:10] for t in local_times("0 0 29 2 *", "UTC", datetime(2026, 1, 1, tzinfo=UTC), 3)] == [
        "2028-02-29",
        "2032-02-29",
        "2036-02-29",
    ]


def test_aliases_mean_what_cron_means() -> None:
    after = datetime(2026, 5, 13, 10, 30, tzinfo=UTC)  # a Wednesday
    expected = {
        "@hourly": datetime(2026, 5, 13, 11, tzinfo=UTC),
        "@daily": datetime(2026, 5, 14, tzinfo=UTC),
        "@midnight": datetime(2026, 5, 14, tzinfo=UTC),
        "@weekly": datetime(2026, 5, 17, tzinfo=UTC),  # Sunday
        "@monthly": datetime(2026, 6, 1, tzinfo=UTC),
        "@yearly": datetime(2027, 1, 1, tzinfo=UTC),
        "@annually": datetime(2027, 1, 1, tzinfo=UTC),
    }
    assert {alias: CronExpression(alias).next_after(after) for alias in expected} == expected


def test_day_of_month_and_weekday_are_ored_like_vixie_cron() -> None:
    after = datetime(2026, 6, 1, tzinfo=UTC)  # a Monday
    days = [t[:10] for t in local_times("0 0 13 * 5", "UTC", after, 3)]
    assert days == ["2026-06-05", "2026-06-12", "2026-06-13"]


def test_a_leading_seconds_field_gives_sub_minute_schedules() -> None:
    after = datetime(2026, 1, 1, 0, 0, 59, tzinfo=UTC)
    cron = CronExpression("*/20 * * * * *")
    assert [t for t, _ in zip(cron.times(after), range(3), strict=False)] == [
        datetime(2026, 1, 1, 0, 1, s, tzinfo=UTC) for s in (0, 20, 40)
    ]


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "cron: a cron expression is required"),
        ("* * *", "expected 5 fields"),
        ("* * * * * * *", "expected 5 fields"),
        ("@reboot", "unknown alias '@reboot'"),
        ("61 * * * *", "not a valid cron expression"),
        ("0 0 31 2 *", "never fires"),
        ("; rm -rf / * * * *", "is not a cron expression"),
    ],
)
def test_invalid_expressions_are_rejected_naming_the_field(expression: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as raised:
        CronExpression(expression, prefix="spec.")
    assert str(raised.value).startswith("spec.cron:")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "Europe/berlin ", "CEST+2"])
def test_unknown_time_zones_are_rejected_naming_the_field(zone: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^timezone: unknown time zone"):
        CronExpression("* * * * *", zone)


# -- jitter and bounds ---------------------------------------------------------------------


def test_jitter_is_bounded_deterministic_and_spread() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    bound = timedelta(seconds=30)
    delays = [jitter_for(f"schedule-{n}", at, bound) for n in range(2000)]
    assert all(timedelta(0) <= d < bound for d in delays)
    assert delays == [jitter_for(f"schedule-{n}", at, bound) for n in range(2000)]
    assert max(delays) > timedelta(seconds=29) and min(delays) < timedelta(seconds=1)
    per_fire = {jitter_for("one", at + timedelta(minutes=m), bound) for m in range(100)}
    assert len(per_fire) > 90  # each fire of one schedule gets its own delay
    assert jitter_for("x", at, timedelta(0)) == timedelta(0)


def test_timing_adds_jitter_and_keeps_within_start_and_end() -> None:
    start = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    end = datetime(2026, 1, 1, 0, 13, tzinfo=UTC)
    timing = Timing("sid", CronExpression("* * * * *"), timedelta(seconds=5), start, end)
    fires = list(timing.fires(datetime(2026, 1, 1, tzinfo=UTC)))
    assert [s for s, _ in fires] == [start + timedelta(minutes=m) for m in range(4)]  # start and end included
    assert all(timedelta(0) <= d - s < timedelta(seconds=5) for s, d in fires)
    assert timing.next_after(end) is None
    assert timing.preview(datetime(2026, 1, 1, tzinfo=UTC), 2) == fires[:2]


def test_one_expression_stepped_from_many_threads_gives_each_its_own_times() -> None:
    cron = CronExpression("*/7 * * * * *", "Europe/Berlin")  # the firing loop plans in worker threads
    starts = [datetime(2026, 3, 29, 0, n, tzinfo=UTC) for n in range(16)]
    expected = [list(islice(CronExpression("*/7 * * * * *", "Europe/Berlin").times(s), 300)) for s in starts]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        with ThreadPoolExecutor(8) as pool:
            found = list(pool.map(lambda s: list(islice(cron.times(s), 300)), starts))
    finally:
        sys.setswitchinterval(interval)
    assert found == expected
