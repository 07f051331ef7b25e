"""Schedule grammar, slot alignment and command argument parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.scheduler.schedule_spec import ScheduleError, parse_channel, parse_schedule, parse_watch_args


@pytest.mark.parametrize(
    ("text", "canonical", "period"),
    [
        ("every 30m", "every 30m", 1800),
        ("EVERY 30 minutes", "every 30m", 1800),
        ("hourly", "hourly", 3600),
        ("every 60m", "hourly", 3600),
        ("every 2s", "every 2s", 2),
        ("every 6h", "every 6h", 21600),
        ("daily 09:00", "daily 09:00 UTC", 86400),
        ("daily 9:05 Europe/Paris", "daily 09:05 Europe/Paris", 86400),
        (None, "hourly", 3600),
    ],
)
def test_parse_schedule(text: str | None, canonical: str, period: int) -> None:
    spec = parse_schedule(text)
    assert spec.text == canonical
    assert spec.period_seconds == period
    assert parse_schedule(spec.text) == spec  # canonical text round-trips


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("weekly", "don't understand"),
        ("every 5 fortnights", "Unknown unit"),
        ("every 0m", "greater than zero"),
        ("every 5h", "divide a day"),
        ("daily 25:00", "valid time"),
        ("daily 09:00 Mars/Olympus", "Unknown time zone"),
    ],
)
def test_bad_schedules_say_why(text: str, fragment: str) -> None:
    with pytest.raises(ScheduleError, match=fragment):
        parse_schedule(text)


def test_minimum_interval_for_commands() -> None:
    with pytest.raises(ScheduleError, match="too frequent"):
        parse_schedule("every 1m", min_interval_seconds=300)
    assert parse_schedule("every 5m", min_interval_seconds=300).interval_seconds == 300


def test_interval_slots_are_epoch_aligned_and_identical_everywhere() -> None:
    spec = parse_schedule("every 30m")
    assert spec.slot_at(datetime(2026, 3, 1, 10, 44, 59, tzinfo=UTC)) == datetime(
        2026, 3, 1, 10, 30, tzinfo=UTC
    )
    assert spec.slot_at(datetime(2026, 3, 1, 10, 30, tzinfo=UTC)) == datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    assert spec.next_after(datetime(2026, 3, 1, 10, 30, tzinfo=UTC)) == datetime(
        2026, 3, 1, 11, 0, tzinfo=UTC
    )


def test_daily_slot_in_time_zone_including_dst() -> None:
    spec = parse_schedule("daily 09:00 Europe/Paris")
    # winter: UTC+1
    assert spec.slot_at(datetime(2026, 1, 15, 8, 30, tzinfo=UTC)) == datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
    assert spec.slot_at(datetime(2026, 1, 15, 7, 59, tzinfo=UTC)) == datetime(2026, 1, 14, 8, 0, tzinfo=UTC)
    # summer: UTC+2
    assert spec.slot_at(datetime(2026, 7, 15, 7, 0, tzinfo=UTC)) == datetime(2026, 7, 15, 7, 0, tzinfo=UTC)
    assert spec.next_after(datetime(2026, 3, 28, 8, 0, tzinfo=UTC)) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def test_channel_markup() -> None:
    assert parse_channel("<#C0123ABC|platform>") == "C0123ABC"
    assert parse_channel("<#C0123ABC>") == "C0123ABC"
    assert parse_channel("C0123ABCD") == "C0123ABCD"
    assert parse_channel("hourly") is None


def test_watch_args_in_any_order() -> None:
    a = parse_watch_args("myreg daily 09:00 Europe/Paris <#C0123ABC|ops>")
    b = parse_watch_args("myreg <#C0123ABC|ops> daily 09:00 Europe/Paris")
    assert a == b
    assert a.registry == "myreg" and a.channel == "C0123ABC"
    assert a.schedule is not None and a.schedule.text == "daily 09:00 Europe/Paris"
    assert parse_watch_args("myreg").schedule == parse_schedule("hourly")


def test_watch_args_errors() -> None:
    with pytest.raises(ScheduleError, match="Name the registry"):
        parse_watch_args("  ")
    with pytest.raises(ScheduleError, match="autocomplete"):
        parse_watch_args("myreg #ops")
    with pytest.raises(ScheduleError, match="one channel"):
        parse_watch_args("myreg <#C0123ABC> <#C0999XYZ>")
    with pytest.raises(ScheduleError, match="Unexpected"):
        parse_watch_args("myreg hourly", with_schedule=False)
