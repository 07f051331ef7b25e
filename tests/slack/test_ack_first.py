"""What keeps acks ahead of other work: the quiet-moment gate and one policy read per channel."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

from bot.store import Store
from handlers.ackfirst import AckFirst
from handlers.deps import Deps
from tests.slack.conftest import ADMIN


async def test_follow_up_work_waits_for_a_quiet_moment() -> None:
    gate = AckFirst(quiet=0.05, max_wait=2.0)
    gate.arrived()
    started = time.monotonic()
    await gate.settle()
    assert time.monotonic() - started >= 0.04


async def test_follow_up_work_is_never_starved() -> None:
    gate = AckFirst(quiet=0.05, max_wait=0.3)
    stop = asyncio.Event()

    async def steady_stream() -> None:
        while not stop.is_set():
            gate.arrived()
            await asyncio.sleep(0.01)

    stream = asyncio.create_task(steady_stream())
    gate.arrived()
    started = time.monotonic()
    await gate.settle()
    waited = time.monotonic() - started
    stop.set()
    await stream
    assert 0.25 <= waited < 1.5


async def test_idle_gate_does_not_wait() -> None:
    gate = AckFirst(quiet=5.0, max_wait=5.0)
    started = time.monotonic()
    await gate.settle()  # nothing ever arrived
    assert time.monotonic() - started < 0.5


class CountingStore(Store):
    """A real store that counts override reads (what a burst of commands would each do)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reads = 0
        self._lock = threading.Lock()

    def overrides(self, channel_id: str) -> dict[str, str]:
        with self._lock:
            self.reads += 1
        time.sleep(0.05)  # a slow database
        return super().overrides(channel_id)


async def test_a_burst_shares_one_policy_read_and_sees_changes_made_here(
    settings_factory: Any, tmp_path: Path
) -> None:
    settings = settings_factory(f"sqlite:///{tmp_path / 'policy.db'}")
    base = Store.from_url(settings.database_url)
    store = CountingStore(base.engine)
    deps = Deps(settings=settings, store=store)
    try:
        policies = await asyncio.gather(*(deps.policy("C1") for _ in range(60)))
        assert store.reads == 1 and {p.mode for p in policies} == {"passive"}
        await asyncio.to_thread(store.set_override, "C1", "mode", "off", user_id=ADMIN)
        deps.forget_policy("C1")
        assert (await deps.policy("C1")).mode == "off"  # a change made on this replica shows at once
        assert store.reads == 2
    finally:
        deps.close()
        base.dispose()
