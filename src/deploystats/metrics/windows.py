"""Report windows: ISO weeks, calendar months and explicit ranges, in the configured timezone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from deploystats.errors import ConfigError, DeploystatsError

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class WindowError(DeploystatsError):
    """A window option that cannot be parsed."""


@dataclass(frozen=True)
class Window:
    """A half-open [start, end) interval of instants, with the name users gave it."""

    start: datetime
    end: datetime
    label: str
    timezone: str

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"timezone: unknown IANA time zone {name!r} (e.g. Europe/Berlin)"
        ) from None


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """00:00 of `day` in `tz` as a UTC instant (DST-safe: built from the local wall clock)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def iso_week(text: str, tz_name: str = "UTC") -> Window:
    """`2026-W47`: Monday 00:00 to the next Monday 00:00, local time."""
    match = _WEEK.match(text)
    if not match:
        raise WindowError(f"--week {text!r}: use an ISO week like 2026-W47")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise WindowError(f"--week {text!r}: {year} has no week {week}") from None
    tz = zone(tz_name)
    return Window(
        _local_midnight(monday, tz), _local_midnight(monday + timedelta(days=7), tz), text, tz_name
    )


def month(text: str, tz_name: str = "UTC") -> Window:
    """`2026-11`: the calendar month, local time."""
    match = _MONTH.match(text)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise WindowError(f"--month {text!r}: use a month like 2026-11")
    year, number = int(match.group(1)), int(match.group(2))
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    tz = zone(tz_name)
    return Window(_local_midnight(first, tz), _local_midnight(following, tz), text, tz_name)


def parse_instant(text: str, tz_name: str, option: str) -> datetime:
    """An ISO date (local midnight) or datetime (local unless it names an offset)."""
    tz = zone(tz_name)
    try:
        if len(text) == 10:
            return _local_midnight(date.fromisoformat(text), tz)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise WindowError(
            f"{option} {text!r}: use an ISO date or datetime, e.g. 2026-11-01 or "
            "2026-11-01T12:00:00Z"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)).astimezone(UTC)


def between(since: str, until: str, tz_name: str = "UTC") -> Window:
    """--since A --until B: [A, B)."""
    start = parse_instant(since, tz_name, "--since")
    end = parse_instant(until, tz_name, "--until")
    if end <= start:
        raise WindowError(f"--until {until} must be after --since {since}")
    return Window(start, end, f"{since}..{until}", tz_name)


def last_complete_week(now: datetime, tz_name: str = "UTC") -> Window:
    """The ISO week before the one holding `now`, in the configured timezone."""
    local = now.astimezone(zone(tz_name)).date() - timedelta(days=7)
    year, week, _ = local.isocalendar()
    return iso_week(f"{year}-W{week:02d}", tz_name)


def resolve_window(
    *,
    week: str | None = None,
    month_text: str | None = None,
    since: str | None = None,
    until: str | None = None,
    tz_name: str = "UTC",
    now: datetime | None = None,
) -> Window:
    """The window the options name; default the last complete ISO week."""
    given = [name for name, value in (("--week", week), ("--month", month_text)) if value]
    if since or until:
        given.append("--since/--until")
    if len(given) > 1:
        raise WindowError(f"give one window, not {' and '.join(given)}")
    if week:
        return iso_week(week, tz_name)
    if month_text:
        return month(month_text, tz_name)
    if since or until:
        if not (since and until):
            raise WindowError(
                "--since and --until go together: e.g. --since 2026-11-01 --until 2026-12-01"
            )
        return between(since, until, tz_name)
    return last_complete_week(now or datetime.now(UTC), tz_name)
