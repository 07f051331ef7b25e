"""Slack failing for a while must not lose an alert: the leader finishes its own unfinished plans.

A run saves its plan and advances the baseline in one transaction, then talks to Slack. If
Slack is down for that slot, the next slot's diff (against the advanced baseline) finds no
change, so the saved plan is the only record of the alert. These tests drive sweeps
directly on SQLite (one long-lived leader, one term) and the real service once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fake_registry import World
from fake_slack import FakeSlack

from bot.config import Settings
from bot.scheduler.poster import make_slack_client
from bot.scheduler.service import SchedulerOptions, start_scheduler
from bot.scheduler.store import Store
from bot.scheduler.sweep import Sweeper

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
EVERY = "every 10s"
DEAD_SLACK = "http://127.0.0.1:9/api/"  # nothing listens on port 9: connection refused


def slot(n: int) -> datetime:
    return T0 + timedelta(seconds=10 * n)


def slot_s(n: int) -> int:
    return int(slot(n).timestamp())


def status_text(fake_slack: FakeSlack) -> str:
    """What the (single) status message says now."""
    [params] = [p for p in fake_slack.messages.values() if not p.get("thread_ts")]
    return str(params["text"])


def posted_slot(call: Any) -> int:
    return int(call.params["metadata"]["event_payload"]["slot"])


def claim_states(store: Store) -> dict[int, str]:
    return {slot_: state for _, slot_, _, state in store.claims_for("watch:")}


async def healthy_then_broken(
    store: Store, world: World, sweeper: Sweeper, fake_slack: FakeSlack
) -> None:
    """Slot 0: healthy status posted. Then the registry's firewall starts refusing us."""
    store.upsert_watch("reg1", "C1", EVERY, source="slack")
    world.add("reg1")
    await sweeper.run(EVERY, slot(0))
    assert len(fake_slack.top_level()) == 1 and "healthy" in status_text(fake_slack)
    world.registries["reg1"]["status"] = "firewall_ip_not_allowed"


@pytest.mark.parametrize("failure", ["http_500", "unreachable"])
async def test_alert_lost_to_a_slack_outage_is_delivered_next_slot_exactly_once(
    failure: str, store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    sweeper = make_sweeper(store, make_settings(sqlite_url, fake_slack.api_url))
    await healthy_then_broken(store, world, sweeper, fake_slack)

    if failure == "http_500":
        fake_slack.outage(500)
        stats = await sweeper.run(EVERY, slot(1))
        fake_slack.outage(None)
        assert fake_slack.failed_calls()  # Slack was asked and said 500
    else:  # same leader, same term: only this slot's Slack client cannot connect
        down = make_sweeper(store, make_settings(sqlite_url, DEAD_SLACK))
        stats = await down.run(EVERY, slot(1))
    assert stats.failures == 1
    assert claim_states(store)[slot_s(1)] == "planned"
    assert len(fake_slack.ok_calls()) == 1  # nothing reached Slack

    stats = await sweeper.run(EVERY, slot(2))  # Slack is back: the next opportunity
    [update] = fake_slack.updates()
    [reply] = fake_slack.replies()
    assert stats.backlog == 1
    assert "Problem firewall_ip_not_allowed" in update.params["text"]
    assert "Problem detected" in reply.params["text"]
    assert posted_slot(reply) == slot_s(1)  # delivered as slot 1's alert, in its thread
    assert "firewall_ip_not_allowed" in status_text(fake_slack)

    for n in (3, 4):  # exactly once: nothing is repeated later
        await sweeper.run(EVERY, slot(n))
    assert len(fake_slack.updates()) == 1 and len(fake_slack.replies()) == 1
    assert len(fake_slack.top_level()) == 1
    assert set(claim_states(store).values()) == {"done"}


async def test_between_slots_retry_waits_for_backoff_then_delivers_once(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    """An hourly or daily watch must not wait for its next slot: the service retries between slots."""
    sweeper = make_sweeper(store, make_settings(sqlite_url, fake_slack.api_url))
    await healthy_then_broken(store, world, sweeper, fake_slack)
    fake_slack.outage(500)
    await sweeper.run(EVERY, slot(1))
    fake_slack.outage(None)
    ok_before = len(fake_slack.ok_calls())

    sweeper.retry_backoff = 60  # the backoff after the failure has not expired yet
    assert await sweeper.retry_pending() == 1
    assert len(fake_slack.ok_calls()) == ok_before  # not retried before its time

    for claim in store.adopt_unfinished(owner="test-owner", epoch=1, fence=None):
        assert claim.plan is not None and claim.plan["attempts"] == 1  # the failure was journaled
        claim.plan["retry_at"] = 0
        store.record_progress(claim, claim.plan, owner="test-owner")
    assert await sweeper.retry_pending() == 0
    assert len(fake_slack.updates()) == 1 and len(fake_slack.replies()) == 1
    assert await sweeper.retry_pending() == 0  # nothing left: no second delivery
    await sweeper.run(EVERY, slot(2))
    assert len(fake_slack.updates()) == 1 and len(fake_slack.replies()) == 1


async def test_plan_that_keeps_failing_is_given_up_and_the_status_heals(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    sweeper = make_sweeper(store, make_settings(sqlite_url, fake_slack.api_url))
    sweeper.max_attempts = 3
    sweeper.retry_window = 0
    await healthy_then_broken(store, world, sweeper, fake_slack)
    fake_slack.outage(500)
    await sweeper.run(EVERY, slot(1))  # attempt 1 (the slot's own run)
    stats = await sweeper.run(EVERY, slot(2))  # attempt 2: still failing, so slot 2 waits
    assert stats.held == 1 and slot_s(2) not in claim_states(store)
    with caplog.at_level(logging.ERROR, logger="bot.scheduler.sweep"):
        await sweeper.run(EVERY, slot(3))  # attempt 3: given up; slot 3 runs
    assert any("giving up" in r.getMessage() and "claim marked failed" in r.getMessage() for r in caplog.records)
    states = claim_states(store)
    assert states[slot_s(1)] == "failed" and slot_s(3) in states  # later slots are no longer blocked
    assert len(fake_slack.ok_calls()) == 1

    fake_slack.outage(None)
    await sweeper.run(EVERY, slot(4))
    # the reply of slot 1 is gone (logged above), but the status message is right again
    [update] = fake_slack.updates()
    assert "firewall_ip_not_allowed" in update.params["text"]
    assert "firewall_ip_not_allowed" in status_text(fake_slack)
    assert not fake_slack.replies()
    await sweeper.run(EVERY, slot(5))
    assert len(fake_slack.ok_calls()) == 2
    assert claim_states(store)[slot_s(5)] == "done"


async def test_earlier_slot_plan_of_a_dead_leader_is_finished_before_the_next_slot(
    store: Store, world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings],
    make_sweeper: Callable[..., Sweeper], sqlite_url: str,
) -> None:  # fmt: skip
    first = make_sweeper(store, make_settings(sqlite_url, fake_slack.api_url), epoch=1)
    await healthy_then_broken(store, world, first, fake_slack)
    fake_slack.outage(500)
    await first.run(EVERY, slot(1))  # leader 1 then dies with slot 1 planned
    fake_slack.outage(None)

    second = make_sweeper(store, make_settings(sqlite_url, fake_slack.api_url), epoch=2)
    second.leadership.owner = "second-owner"
    world.registries["reg1"]["status"] = "healthy"
    await second.run(EVERY, slot(4), allow_takeover=True)
    replies = [c.params["text"] for c in fake_slack.replies()]
    assert len(replies) == 2  # slot 1's alert first, then slot 4's recovery, in that order
    assert "Problem detected" in replies[0] and "Resolved" in replies[1]
    assert "healthy" in status_text(fake_slack)
    assert set(claim_states(store).values()) == {"done"}


async def test_service_retries_between_slots_after_an_outage(
    world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings], sqlite_url: str
) -> None:
    """The real service (APScheduler + sync job): a daily watch's alert lands minutes later, not tomorrow."""
    settings = make_settings(sqlite_url, fake_slack.api_url, watches=[("regone", "C1", "daily 03:00 UTC")])
    world.add("regone")
    store = Store(sqlite_url)
    store.create_all()
    options = SchedulerOptions(
        leader_poll=0.1, takeover_grace=0.1, sync_interval=0.2, slack_min_interval=0.0, misfire_grace=5,
        retry_backoff=0.3,
    )  # fmt: skip
    handle = await start_scheduler(
        settings, make_slack_client(settings), options=options, check=world.check, reader=world.read, store=store
    )
    try:
        await wait_for(lambda: len(fake_slack.top_level()) == 1)  # first run right away (new watch)
        world.registries["regone"]["status"] = "firewall_ip_not_allowed"
        fake_slack.outage(500)
        # a run of the daily slot while Slack is down (as the schedule would fire it)
        spec_slot = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
        await handle.service._sweep("daily 03:00 UTC", spec_slot + timedelta(days=1))
        assert fake_slack.failed_calls()
        await asyncio.sleep(0.8)  # retries keep failing meanwhile, with backoff
        fake_slack.outage(None)
        await wait_for(lambda: len(fake_slack.replies()) == 1)
        await asyncio.sleep(1.0)
        assert len(fake_slack.replies()) == 1 and len(fake_slack.updates()) == 1
        assert "firewall_ip_not_allowed" in status_text(fake_slack)
    finally:
        await handle.stop()


async def wait_for(predicate: Callable[[], Any], timeout: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
