"""When a schedule fires: pure computation, no clock of its own (callers pass the
instants, so tests inject any time they like).

Expressions are the usual five cron fields (minute hour day-of-month month
day-of-week; day-of-month and day-of-week OR-ed when both are restricted, as in
Vixie cron), the aliases `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/
`@midnight` and `@hourly`, or — an extension for short intervals — six fields with a
leading seconds field (`*/5 * * * * *`: every five seconds). croniter matches the
fields; this module turns wall-clock matches into instants.

Time zones are IANA names (zoneinfo). Matching happens on the local wall clock, and
daylight-saving transitions follow one rule:

- Spring forward: a local time skipped by the transition (02:30 on the night clocks
  jump from 02:00 to 03:00) fires once, at the first valid instant after the gap (03:00
  local, the moment of the transition). Several skipped times (every 15 minutes, say)
  collapse into that one fire; a fire that also matches 03:00 is the same fire.
- Fall back: a local time that occurs twice (01:30 when clocks go from 02:00 back to
  01:00 in New York) fires once, at its first occurrence. The repeated hour never
  fires again.

So no fire is lost and none is doubled by a transition. Fixed-offset zones and UTC have
no transitions.

Jitter delays each fire by a pseudo-random amount in [0, jitter): deterministic per
fire (a hash of the schedule id and the scheduled time), so every server computes the
same due time and a fire is the same fire wherever it is computed.
"""

from __future__ import annotations

import functools
import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

from cloudpipe_server.errors import InvalidArgument

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_JITTER = timedelta(days=1)
# The instants a schedule may name (start_at, end_at, a preview's start): stores keep
# times as signed 64-bit nanoseconds (they end in 2262), and cron steps near year 9999
# overflow `datetime`.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_FIELD = re.compile(r"[0-9A-Za-z*/,\-?LW#]+")


def parse_timezone(name: str, where: str = "timezone") -> ZoneInfo:
    """The IANA zone `name` ("" means UTC). Raises InvalidArgument naming `where`."""
    if not name:
        return ZoneInfo("UTC")
    try:
        if name.startswith(("/", ".")) or ".." in name:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"{where}: unknown time zone {name!r}; use an IANA name such as Europe/Berlin") from None


def check_instant(moment: datetime | None, where: str) -> None:
    """Raises InvalidArgument naming `where` unless `moment` is None or in [EARLIEST, LATEST)."""
    if moment is not None and not EARLIEST <= moment < LATEST:
        raise InvalidArgument(f"{where}: {moment.isoformat()} is out of range: {EARLIEST:%Y} to before {LATEST:%Y}")


class CronExpression:
    """A validated cron expression in a time zone.

    Example::

        cron = CronExpression("30 2 * * *", "Europe/Berlin")
        cron.next_after(datetime(2026, 3, 28, 12, tzinfo=UTC))  # 2026-03-29 01:00 UTC (03:00 local)
    """

    def __init__(self, expression: str, timezone: str = "", *, prefix: str = "") -> None:
        """Raises InvalidArgument naming `{prefix}cron` or `{prefix}timezone`."""
        where = f"{prefix}cron"
        text = " ".join(expression.split())
        self.expression = text
        self.zone = parse_timezone(timezone, f"{prefix}timezone")
        fields = ALIASES.get(text.lower(), text).split(" ")
        if not text:
            raise InvalidArgument(f"{where}: a cron expression is required (e.g. '0 * * * *' or '@hourly')")
        if text.startswith("@") and text.lower() not in ALIASES:
            names = ", ".join(sorted(ALIASES))
            raise InvalidArgument(f"{where}: unknown alias {text!r}; use one of {names}")
        if len(fields) not in (5, 6) or not all(_FIELD.fullmatch(f) for f in fields):
            raise InvalidArgument(
                f"{where}: {text!r} is not a cron expression: expected 5 fields (minute hour day month weekday)"
                " or 6 with a leading seconds field"
            )
        self._fields = " ".join(fields)
        self._seconds = len(fields) == 6
        # Wall-clock match -> the next one. Schedules sharing an expression fire at the
        # same instants: a thousand "0 * * * *" schedules step from one hour to the next once.
        self._steps: dict[datetime, datetime] = {}
        self._lock = threading.Lock()  # the firing loop steps in worker threads
        try:
            # One matcher per expression, repositioned for every step (`set_current`):
            # building a croniter parses the expression, which costs several times a step.
            self._matcher = croniter(
                self._fields, datetime(2000, 1, 1), ret_type=datetime, second_at_beginning=self._seconds
            )
            self._matcher.get_next(datetime)
        except CroniterBadDateError:
            raise InvalidArgument(f"{where}: {text!r} never fires (no such date)") from None
        except (CroniterError, ValueError, KeyError) as exc:
            raise InvalidArgument(f"{where}: {text!r} is not a valid cron expression: {exc}") from None

    def __repr__(self) -> str:
        return f"CronExpression({self.expression!r}, {self.zone.key!r})"

    def times(self, after: datetime) -> Iterator[datetime]:
        """The fire instants strictly after `after` (aware), in order, as UTC datetimes."""
        naive = after.astimezone(self.zone).replace(tzinfo=None)
        last = after
        while True:
            following = self._steps.get(naive)
            if following is None:
                with self._lock:  # one matcher, positioned then stepped: one thread at a time
                    try:
                        self._matcher.set_current(naive, force=True)
                        following = self._matcher.get_next(datetime)
                    except CroniterBadDateError:
                        return
                    if len(self._steps) >= 4096:
                        self._steps.clear()
                    self._steps[naive] = following
            naive = following
            instant = self._instant(naive)
            if instant > last:  # earlier ones: the repeated hour of a fall-back, or a collapsed gap
                last = instant
                yield instant

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire instant strictly after `after`, or None if there is none."""
        return next(self.times(after), None)

    def _instant(self, naive: datetime) -> datetime:
        """The UTC instant of a local wall-clock time: its first occurrence, or the end
        of the gap for a time a spring-forward skipped."""
        first = naive.replace(tzinfo=self.zone, fold=0)
        instant = first.astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) == naive:
            return instant
        # In a gap: fold=1 reads it with the offset before the jump (an instant before
        # the transition), fold=0 with the offset after it (an instant after); the
        # transition lies in between. Bisect to the second.
        low = naive.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        low, high = min(low, instant), max(low, instant)
        before = low.astimezone(self.zone).utcoffset()
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if middle.astimezone(self.zone).utcoffset() == before:
                low = middle
            else:
                high = middle
        return high.replace(microsecond=0)


@functools.lru_cache(maxsize=4096)
def cron_expression(expression: str, timezone: str = "") -> CronExpression:
    """`CronExpression(expression, timezone)`, reused: the firing loop computes the next
    fire of every schedule on every fire."""
    return CronExpression(expression, timezone)


def jitter_for(schedule_id: str, scheduled_at: datetime, jitter: timedelta) -> timedelta:
    """The delay of one fire, in [0, jitter), whole milliseconds: the same on every
    server and every run, different between fires and schedules."""
    if jitter <= timedelta(0):
        return timedelta(0)
    key = f"{schedule_id}|{scheduled_at.astimezone(UTC).isoformat()}".encode()
    fraction = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64
    millis = int(fraction * (jitter / timedelta(milliseconds=1)))
    return timedelta(milliseconds=millis)


@dataclass(frozen=True)
class Timing:
    """Everything that decides when one schedule fires."""

    schedule_id: str
    cron: CronExpression
    jitter: timedelta = timedelta(0)
    start_at: datetime | None = None
    end_at: datetime | None = None

    def fires(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        """(scheduled, due) pairs of the fires strictly after `after`, in scheduled
        order, within [start_at, end_at]."""
        begin = after
        if self.start_at is not None and self.start_at > after:
            begin = self.start_at - timedelta(microseconds=1)  # start_at itself may fire
        for scheduled in self.cron.times(begin):
            if self.end_at is not None and scheduled > self.end_at:
                return
            yield scheduled, scheduled + jitter_for(self.schedule_id, scheduled, self.jitter)

    def next_after(self, after: datetime) -> tuple[datetime, datetime] | None:
        """The first (scheduled, due) pair strictly after `after`, or None when the
        schedule has ended."""
        return next(self.fires(after), None)

    def preview(self, after: datetime, count: int) -> list[tuple[datetime, datetime]]:
        """The next `count` (scheduled, due) pairs after `after`."""
        found: list[tuple[datetime, datetime]] = []
        for pair in self.fires(after):
            if len(found) >= count:
                break
            found.append(pair)
        return found
