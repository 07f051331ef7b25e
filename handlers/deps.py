"""What every handler needs, injected into Bolt's context by one middleware.

Handlers stay plain functions (``register(app)`` wires them) and read ``context["acr"]``
instead of module globals, so two apps with different settings can run in one process
(tests run an HTTP and a Socket Mode app side by side).

The few reads a slash command needs *before* its ack (the channel policy) never queue
behind other commands' work: they run on their own small thread pool, one read per
channel at a time however many commands arrive together, and a policy whose few seconds
are up is served while its refresh runs.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.config import Settings
from bot.store import Store
from handlers.ackfirst import AckFirst
from handlers.policy import ChannelPolicy, LocalRateWindow, load_policy

T = TypeVar("T")

log = logging.getLogger("acrcheck.slack")

#: Channel policies are re-read from the database this often, so an admin's change reaches
#: every replica within seconds without a database read per message.
POLICY_TTL_SECONDS = 5.0
LOCALE_MEMORY_TTL_SECONDS = 3600.0
#: Threads reserved for reads that an ack waits for; everything else uses asyncio's default pool.
ACK_PATH_THREADS = 2


def _ack_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=ACK_PATH_THREADS, thread_name_prefix="acrcheck-ack")


@dataclass(slots=True)
class Deps:
    """Settings, the store, and small in-memory caches in front of it."""

    settings: Settings
    store: Store
    rate_window: LocalRateWindow = field(default_factory=LocalRateWindow)
    ack_first: AckFirst = field(default_factory=AckFirst)
    _policies: dict[str, tuple[ChannelPolicy, float]] = field(default_factory=dict)
    _policy_loads: dict[str, asyncio.Future[ChannelPolicy]] = field(default_factory=dict)
    _policy_generation: int = 0
    _locales: dict[str, tuple[str, float]] = field(default_factory=dict)
    _ack_executor: ThreadPoolExecutor = field(default_factory=_ack_pool)

    async def run_for_ack(self, func: Callable[..., T], *args: Any) -> T:
        """Run a blocking call that an ack waits for, on the threads reserved for that."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, func, *args)
        return await loop.run_in_executor(self._ack_executor, call)

    async def policy(self, channel_id: str) -> ChannelPolicy:
        """Effective policy for a channel, cached for a few seconds.

        Concurrent callers share one database read per channel; once a cached policy
        has expired it is still returned while the fresh one is read in the background.
        """
        now = time.monotonic()
        cached = self._policies.get(channel_id)
        if cached and cached[1] > now:
            return cached[0]
        load = self._policy_loads.get(channel_id)
        if load is None:
            load = asyncio.ensure_future(self._load_policy(channel_id, self._policy_generation))
            self._policy_loads[channel_id] = load
            load.add_done_callback(functools.partial(self._load_done, channel_id))
        if cached is not None:
            return cached[0]
        return await asyncio.shield(load)

    async def _load_policy(self, channel_id: str, generation: int) -> ChannelPolicy:
        policy = await self.run_for_ack(load_policy, self.settings, self.store, channel_id)
        if generation == self._policy_generation:  # not read before a change made here
            self._policies[channel_id] = (policy, time.monotonic() + POLICY_TTL_SECONDS)
        return policy

    def _load_done(self, channel_id: str, load: asyncio.Future[ChannelPolicy]) -> None:
        if self._policy_loads.get(channel_id) is load:
            del self._policy_loads[channel_id]
        if not load.cancelled() and load.exception() is not None:
            log.warning("reading the policy of a channel failed: %s", type(load.exception()).__name__)

    def forget_policy(self, channel_id: str) -> None:
        """After a change made on this replica: the next caller reads it fresh."""
        self._policy_generation += 1
        self._policies.pop(channel_id, None)
        self._policy_loads.pop(channel_id, None)

    def cached_locale(self, user_id: str) -> str | None:
        cached = self._locales.get(user_id)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        return None

    def remember_locale(self, user_id: str, locale: str) -> None:
        self._locales[user_id] = (locale, time.monotonic() + LOCALE_MEMORY_TTL_SECONDS)

    def close(self) -> None:
        """Release the ack-path threads (idle threads also end by themselves at exit)."""
        self._ack_executor.shutdown(wait=False)


def deps_of(context: Any) -> Deps:
    """The Deps object the middleware put into Bolt's context."""
    deps = context["acr"]
    assert isinstance(deps, Deps)
    return deps
