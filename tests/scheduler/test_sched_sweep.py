"""Sweeps on SQLite in one process: quiet posting, drift replies, missing registries, 429, resume."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fake_registry import World
from fake_slack import FakeSlack

from bot.config import Settings
from bot.scheduler.store import Store
from bot.scheduler.sweep import Sweeper

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EVERY = "every 10s"


def slot(n: int) -> datetime:
    return T0 + timedelta(seconds=10 * n)


async def test_status_message_is_quiet_and_changes_go_to_its_thread(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    settings = make_settings(sqlite_url, fake_slack.api_url)
    store.upsert_watch("reg1", "C1", EVERY, source="slack")
    world.add("reg1")
    sweeper = make_sweeper(store, settings)

    await sweeper.run(EVERY, slot(0))
    [status] = fake_slack.top_level()
    status_ts = next(ts for (ch, ts) in fake_slack.messages if ch == "C1")
    assert "reg1" in status.params["text"] and "healthy" in status.params["text"]
    assert not fake_slack.replies() and not fake_slack.updates()

    for n in (1, 2):  # nothing changed: nothing posted, nothing edited
        await sweeper.run(EVERY, slot(n))
    assert len(fake_slack.calls) == 1

    world.registries["reg1"]["config"]["ip_rules"] = ["203.0.113.0/24", "198.51.100.7"]
    await sweeper.run(EVERY, slot(3))
    [reply] = fake_slack.replies()
    assert reply.params["thread_ts"] == status_ts
    assert "IP rule added: `198.51.100.7`" in reply.params["text"]
    assert not fake_slack.updates()  # status text did not change: no chat.update

    world.registries["reg1"]["status"] = "firewall_ip_not_allowed"
    await sweeper.run(EVERY, slot(4))
    [update] = fake_slack.updates()
    assert update.params["ts"] == status_ts and "Problem firewall_ip_not_allowed" in update.params["text"]
    assert "Problem detected" in fake_slack.replies()[-1].params["text"]

    await sweeper.run(EVERY, slot(5))  # still broken: quiet
    assert len(fake_slack.replies()) == 2 and len(fake_slack.updates()) == 1

    world.registries["reg1"]["status"] = "healthy"
    await sweeper.run(EVERY, slot(6))
    assert "Resolved: Problem firewall_ip_not_allowed has cleared" in fake_slack.replies()[-1].params["text"]
    assert "healthy" in fake_slack.updates()[-1].params["text"]
    assert len(fake_slack.top_level()) == 1  # one status message for the registry, ever

    calls = len(fake_slack.calls)
    await sweeper.run(EVERY, slot(6))  # same slot again (e.g. another replica): claimed already
    assert len(fake_slack.calls) == calls


async def test_registry_that_disappears_is_reported_once(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    settings = make_settings(sqlite_url, fake_slack.api_url)
    store.upsert_watch("reg1", "C1", EVERY, source="slack")
    world.add("reg1")
    sweeper = make_sweeper(store, settings)
    await sweeper.run(EVERY, slot(0))
    world.registries["reg1"]["exists"] = False  # ARM 404 / gone from Resource Graph
    checks_before = world.checks
    for n in range(1, 5):
        await sweeper.run(EVERY, slot(n))
    replies = fake_slack.replies()
    assert len(replies) == 1 and "no longer found" in replies[0].params["text"]
    assert len(fake_slack.updates()) == 1 and "not found" in fake_slack.updates()[0].params["text"]
    assert world.checks == checks_before  # a deleted registry is not probed
    world.registries["reg1"]["exists"] = True
    await sweeper.run(EVERY, slot(5))
    assert "found again" in fake_slack.replies()[-1].params["text"]


async def test_failed_config_read_does_not_look_like_deletion(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    settings = make_settings(sqlite_url, fake_slack.api_url)
    store.upsert_watch("reg1", "C1", EVERY, source="slack")
    world.add("reg1")
    sweeper = make_sweeper(store, settings)
    await sweeper.run(EVERY, slot(0))

    async def broken_read(names: list[str], settings: Settings) -> dict[str, Any]:
        raise RuntimeError("Resource Graph unavailable")

    sweeper.reader = broken_read
    await sweeper.run(EVERY, slot(1))
    assert len(fake_slack.calls) == 1  # no "not found", no drift against an unknown config


async def test_throttled_bulk_read_waits_for_retry_after(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    settings = make_settings(sqlite_url, fake_slack.api_url)
    store.upsert_watch("reg1", "C1", EVERY, source="slack")
    world.add("reg1")
    sweeper = make_sweeper(store, settings)
    attempts: list[float] = []

    class Throttled(Exception):
        retry_after = 0.3

    async def throttled_once(names: list[str], settings: Settings) -> dict[str, Any]:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise Throttled("429 Too Many Requests")
        return await world.read(names, settings)

    sweeper.reader = throttled_once
    await sweeper.run(EVERY, slot(0))
    assert len(attempts) == 2 and attempts[1] - attempts[0] >= 0.3
    assert len(fake_slack.top_level()) == 1


async def test_slack_429_is_retried_after_retry_after(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    settings = make_settings(sqlite_url, fake_slack.api_url)
    store.upsert_watch("reg1", "C1", EVERY, source="slack")
    world.add("reg1")
    fake_slack.rate_limit("chat.postMessage", 1, retry_after=1)
    started = time.monotonic()
    await make_sweeper(store, settings).run(EVERY, slot(0))
    assert time.monotonic() - started >= 1.0
    statuses = [c.status for c in fake_slack.calls]
    assert statuses == [429, 200]  # one refusal, one successful post: no duplicate
    assert len(fake_slack.top_level()) == 1


async def test_per_channel_pacing(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    settings = make_settings(sqlite_url, fake_slack.api_url)
    for i in range(4):
        store.upsert_watch(f"reg{i}", "C1", EVERY, source="slack")
        world.add(f"reg{i}")
    store.upsert_watch("other", "C2", EVERY, source="slack")
    world.add("other")
    await make_sweeper(store, settings, min_interval=0.2).run(EVERY, slot(0))
    times = sorted(c.at for c in fake_slack.posts("C1"))
    assert len(times) == 4
    assert all(b - a >= 0.18 for a, b in itertools.pairwise(times))
    assert len(fake_slack.posts("C2")) == 1


async def test_flaky_check_is_not_news_until_it_keeps_failing(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    settings = make_settings(sqlite_url, fake_slack.api_url)
    store.upsert_watch("reg1", "C1", EVERY, source="slack")
    world.add("reg1")
    sweeper = make_sweeper(store, settings)
    await sweeper.run(EVERY, slot(0))

    async def failing(registry: str, config: Any, settings: Settings) -> Any:
        raise TimeoutError("probe timed out")

    sweeper.check = failing
    for n in (1, 2):
        await sweeper.run(EVERY, slot(n))
    assert len(fake_slack.calls) == 1
    await sweeper.run(EVERY, slot(3))  # third failure in a row
    assert "could not run" in fake_slack.replies()[-1].params["text"]


async def test_interrupted_run_is_resumed_not_repeated(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    """Leader 1 journals its plan then loses Slack (dies); leader 2 adopts the claim and posts once."""
    store.upsert_watch("reg1", "C1", EVERY, source="slack")
    world.add("reg1")
    dead_slack = make_settings(sqlite_url, "http://127.0.0.1:9/api/")  # nothing listens on port 9
    first = make_sweeper(store, dead_slack, epoch=1)
    stats_error: BaseException | None = None
    try:
        await first.run(EVERY, slot(0))
    except BaseException as exc:  # the sweep reports per-watch failures in stats, not by raising
        stats_error = exc
    assert stats_error is None
    assert store.claims_for("watch:")[0][3] == "planned"

    settings = make_settings(sqlite_url, fake_slack.api_url)
    same_term = make_sweeper(store, settings, epoch=1)
    await same_term.run(EVERY, slot(0), allow_takeover=True)
    assert fake_slack.calls == []  # same leadership term: not an orphan

    checks = world.checks
    second = make_sweeper(store, settings, epoch=2)
    await second.run(EVERY, slot(0), allow_takeover=True)
    assert world.checks == checks  # resumed from the journal, not re-checked
    assert len(fake_slack.top_level()) == 1
    assert store.claims_for("watch:")[0][3] == "done"
    await second.run(EVERY, slot(0), allow_takeover=True)
    assert len(fake_slack.calls) == 1


async def test_daily_digest_once_per_channel(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    settings = make_settings(sqlite_url, fake_slack.api_url)
    store.upsert_watch("reg1", "C1", EVERY, source="slack")
    store.upsert_watch("reg2", "C1", EVERY, source="slack")
    store.upsert_watch("reg3", "C2", EVERY, source="slack")
    world.add("reg1")
    world.add("reg2", status="firewall_ip_not_allowed")
    world.add("reg3")
    sweeper = make_sweeper(store, settings)
    await sweeper.run(EVERY, slot(0))
    fake_slack.reset()
    assert await sweeper.digest(T0) == 2
    assert await sweeper.digest(T0) == 0
    texts = {c.params["channel"]: c.params["text"] for c in fake_slack.posts()}
    assert "1/2 healthy" in texts["C1"] and "reg2" in texts["C1"]
    assert "1/1 healthy" in texts["C2"]


async def test_many_watches_one_bulk_read(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    settings = make_settings(sqlite_url, fake_slack.api_url)
    for i in range(60):
        store.upsert_watch(f"reg{i:03d}", f"C{i % 6}", EVERY, source="slack")
        world.add(f"reg{i:03d}")
    world.check_delay = 0.05
    inflight = peak = 0

    async def counting_check(registry: str, config: Any, settings: Settings) -> Any:
        nonlocal inflight, peak
        inflight += 1
        peak = max(peak, inflight)
        try:
            return await world.check(registry, config, settings)
        finally:
            inflight -= 1

    sweeper = make_sweeper(store, settings)  # concurrency 8
    sweeper.check = counting_check
    stats = await sweeper.run(EVERY, slot(0))
    assert world.reads == 1 and stats.claimed == 60  # one bulk read for the whole sweep
    assert 1 < peak <= 8  # probes run in parallel, bounded by the semaphore
    assert len(fake_slack.top_level()) == 60
