"""Parse watch schedules and Slack command arguments, and compute fire slots.

Pure functions only (no I/O), so the command handler, the settings sync and the scheduler
agree on one canonical schedule text, and every replica computes the *same* slot for a
fire time. Slots are what the claim table dedupes on, so they must be deterministic:
interval schedules are aligned to the Unix epoch (``every 30m`` fires at :00 and :30 UTC on
every replica), daily schedules to a wall-clock time in a named time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "DEFAULT_SCHEDULE",
    "ScheduleError",
    "ScheduleSpec",
    "WatchArgs",
    "parse_channel",
    "parse_schedule",
    "parse_watch_args",
]

DEFAULT_SCHEDULE = "hourly"

_UNITS = {
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
}  # fmt: skip
_EVERY = re.compile(r"^every\s+(\d+)\s*([a-z]+)$")
_DAILY = re.compile(r"^daily(?:\s+(?:at\s+)?(\d{1,2}):(\d{2}))?(?:\s+(\S+))?$")
_CHANNEL = re.compile(r"^<#([CG][A-Z0-9]{2,})(?:\|[^>]*)?>$")
_BARE_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ScheduleError(ValueError):
    """Bad schedule or command arguments; the message is shown to the user as is."""


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """A normalised schedule: either a fixed interval or a daily wall-clock time."""

    kind: str  # "interval" | "daily"
    interval_seconds: int = 0
    at: time | None = None
    tz: str = "UTC"

    @property
    def text(self) -> str:
        """Canonical text; stored in the database and used as the scheduler group key."""
        if self.kind == "daily":
            assert self.at is not None
            return f"daily {self.at:%H:%M} {self.tz}"
        if self.interval_seconds == 3600:
            return "hourly"
        n = self.interval_seconds
        if n % 3600 == 0:
            return f"every {n // 3600}h"
        if n % 60 == 0:
            return f"every {n // 60}m"
        return f"every {n}s"

    @property
    def period_seconds(self) -> int:
        """Nominal time between two fires (used for limits and grace periods)."""
        return self.interval_seconds if self.kind == "interval" else 86400

    def slot_at(self, now: datetime) -> datetime:
        """The fire time this moment belongs to: the latest scheduled time at or before ``now``."""
        now = now.astimezone(UTC)
        if self.kind == "interval":
            elapsed = int((now - _EPOCH).total_seconds())
            return _EPOCH + timedelta(seconds=elapsed - elapsed % self.interval_seconds)
        assert self.at is not None
        zone = ZoneInfo(self.tz)
        local_day = now.astimezone(zone).date()
        for day in (local_day, local_day - timedelta(days=1)):
            candidate = _local(day, self.at, zone)
            if candidate <= now:
                return candidate
        return _local(local_day - timedelta(days=2), self.at, zone)  # pragma: no cover - DST corner

    def next_after(self, slot: datetime) -> datetime:
        """The fire time following ``slot``."""
        if self.kind == "interval":
            return slot + timedelta(seconds=self.interval_seconds)
        assert self.at is not None
        zone = ZoneInfo(self.tz)
        day = slot.astimezone(zone).date() + timedelta(days=1)
        return _local(day, self.at, zone)


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def parse_schedule(text: str | None, *, min_interval_seconds: int = 1) -> ScheduleSpec:
    """Parse ``every 30m`` | ``hourly`` | ``daily 09:00 [TZ]`` (case-insensitive).

    ``min_interval_seconds`` lets the Slack command refuse noisy schedules while settings
    files and tests may use second-level intervals.
    """
    raw = " ".join((text or DEFAULT_SCHEDULE).split())
    lowered = raw.lower()
    if lowered == "hourly":
        spec = ScheduleSpec("interval", interval_seconds=3600)
    elif match := _EVERY.match(lowered):
        count, unit = int(match.group(1)), match.group(2)
        if unit not in _UNITS:
            raise ScheduleError(f"Unknown unit `{unit}` in `{raw}`: use s, m or h (e.g. `every 30m`).")
        seconds = count * _UNITS[unit]
        if seconds <= 0:
            raise ScheduleError("The interval must be greater than zero.")
        if seconds > 86400 or (86400 % seconds != 0 and seconds > 3600):
            raise ScheduleError(
                "Intervals longer than an hour must divide a day (2h, 3h, 4h, 6h, 8h, 12h, 24h); "
                "use `daily HH:MM` for a fixed time."
            )
        spec = ScheduleSpec("interval", interval_seconds=seconds)
    elif match := _DAILY.match(lowered):
        hour, minute = int(match.group(1) or 9), int(match.group(2) or 0)
        if hour > 23 or minute > 59:
            raise ScheduleError(f"`{raw}` is not a valid time of day (use 24-hour HH:MM).")
        tz_name = _original_case(raw, match.group(3)) if match.group(3) else "UTC"
        try:
            ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(
                f"Unknown time zone `{tz_name}`: use an IANA name such as `Europe/Paris` or `UTC`."
            ) from None
        spec = ScheduleSpec("daily", at=time(hour, minute), tz=tz_name)
    else:
        raise ScheduleError(
            f"I don't understand the schedule `{raw}`. Use `every 30m`, `hourly` or `daily 09:00 [TZ]`."
        )
    if spec.period_seconds < min_interval_seconds:
        raise ScheduleError(
            f"`{raw}` is too frequent: the shortest schedule allowed here is every {_human(min_interval_seconds)}."
        )
    return spec


def _original_case(raw: str, lowered_token: str) -> str:
    """Time zone names are case-sensitive on disk; recover the user's spelling."""
    for token in raw.split():
        if token.lower() == lowered_token:
            return "UTC" if token.upper() == "UTC" else token
    return lowered_token


def _human(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def parse_channel(token: str) -> str | None:
    """Channel id from Slack's ``<#C123|name>`` markup (or a bare id); None if not a channel."""
    if match := _CHANNEL.match(token):
        return match.group(1)
    if _BARE_CHANNEL_ID.match(token):
        return token
    return None


@dataclass(frozen=True, slots=True)
class WatchArgs:
    """Parsed arguments of ``/acrcheck watch`` or ``unwatch``."""

    registry: str
    schedule: ScheduleSpec | None
    channel: str | None


def parse_watch_args(args: str, *, with_schedule: bool = True, min_interval_seconds: int = 1) -> WatchArgs:
    """Split ``REGISTRY [schedule] [#channel]`` in any order after the registry.

    The channel may appear anywhere after the registry because people type it where it
    feels natural (``watch myreg #ops hourly`` and ``watch myreg hourly #ops``).
    """
    tokens = args.split()
    if not tokens:
        raise ScheduleError("Name the registry, e.g. `/acrcheck watch myregistry hourly #platform`.")
    registry, rest = tokens[0], tokens[1:]
    channel: str | None = None
    schedule_tokens: list[str] = []
    for token in rest:
        found = parse_channel(token)
        if found is not None:
            if channel is not None and channel != found:
                raise ScheduleError("Give one channel only.")
            channel = found
        elif token.startswith("#"):
            raise ScheduleError(
                f"I can't resolve `{token}`: pick the channel from Slack's autocomplete so it is linked."
            )
        else:
            schedule_tokens.append(token)
    if schedule_tokens and not with_schedule:
        raise ScheduleError(f"Unexpected `{' '.join(schedule_tokens)}`: give the registry and optionally a channel.")
    schedule = (
        parse_schedule(" ".join(schedule_tokens) or None, min_interval_seconds=min_interval_seconds)
        if with_schedule
        else None
    )
    return WatchArgs(registry=registry, schedule=schedule, channel=channel)
