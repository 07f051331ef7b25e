"""The real service (leadership + APScheduler) on SQLite: settings sync and restart survival."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from fake_registry import World
from fake_slack import FakeSlack

from bot.config import Settings
from bot.scheduler.poster import make_slack_client
from bot.scheduler.service import SchedulerHandle, SchedulerOptions, start_scheduler
from bot.scheduler.store import Store

FAST = SchedulerOptions(
    leader_poll=0.1, takeover_grace=0.1, sync_interval=0.3, slack_min_interval=0.0, misfire_grace=5
)


async def wait_for(predicate: Callable[[], Any], timeout: float = 8.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def start(settings: Settings, world: World, store: Store) -> SchedulerHandle:
    return await start_scheduler(
        settings, make_slack_client(settings), options=FAST, check=world.check, reader=world.read, store=store
    )


async def test_restart_keeps_watches_state_and_status_message(
    world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings], sqlite_url: str
) -> None:
    settings = make_settings(sqlite_url, fake_slack.api_url, watches=[("RegOne", "C1", "every 1s")])
    world.add("regone")
    store = Store(sqlite_url)
    store.create_all()

    handle = await start(settings, world, store)
    await wait_for(lambda: handle.is_leader and len(fake_slack.top_level()) == 1)
    await wait_for(lambda: world.checks >= 3)  # APScheduler keeps firing every second
    assert len(fake_slack.calls) == 1  # ...and nothing changed, so nothing more was posted
    await handle.stop()
    assert not handle.is_leader
    assert [w.registry for w in store.list_watches()] == ["regone"]  # synced from settings

    world.registries["regone"]["config"]["public_network_access"] = "Disabled"
    checks = world.checks
    handle = await start(settings, world, store)  # a new process would see the same database
    await wait_for(lambda: len(fake_slack.replies()) == 1)
    assert world.checks > checks
    [status_ts] = [ts for (_, ts), p in fake_slack.messages.items() if not p.get("thread_ts")]
    reply = fake_slack.replies()[0]
    assert reply.params["thread_ts"] == status_ts  # the old thread, not a new status message
    assert "Public network access switched Enabled → Disabled" in reply.params["text"]
    assert len(fake_slack.top_level()) == 1
    await handle.stop()


async def test_watch_added_on_another_replica_is_picked_up(
    world: World, fake_slack: FakeSlack, make_settings: Callable[..., Settings], sqlite_url: str
) -> None:
    settings = make_settings(sqlite_url, fake_slack.api_url)
    store = Store(sqlite_url)
    store.create_all()
    handle = await start(settings, world, store)
    await wait_for(lambda: handle.is_leader)
    world.add("latereg")
    store.upsert_watch("latereg", "C9", "hourly", source="slack")  # e.g. /acrcheck watch on a follower
    await wait_for(lambda: len(fake_slack.top_level()) == 1)  # first status without waiting an hour
    await handle.stop()
