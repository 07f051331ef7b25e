"""What every handler needs, injected into Bolt's context by one middleware.

Handlers stay plain functions (``register(app)`` wires them) and read ``context["acr"]``
instead of module globals, so two apps with different settings can run in one process
(tests run an HTTP and a Socket Mode app side by side).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bot.config import Settings
from bot.store import Store
from handlers.policy import ChannelPolicy, load_policy

#: Channel policies are re-read from the database this often, so an admin's change reaches
#: every replica within seconds without a database read per message.
POLICY_TTL_SECONDS = 5.0
LOCALE_MEMORY_TTL_SECONDS = 3600.0


@dataclass(slots=True)
class Deps:
    """Settings, the store, and small in-memory caches in front of it."""

    settings: Settings
    store: Store
    _policies: dict[str, tuple[ChannelPolicy, float]] = field(default_factory=dict)
    _locales: dict[str, tuple[str, float]] = field(default_factory=dict)

    async def policy(self, channel_id: str) -> ChannelPolicy:
        """Effective policy for a channel, cached for a few seconds."""
        now = time.monotonic()
        cached = self._policies.get(channel_id)
        if cached and cached[1] > now:
            return cached[0]
        policy = await Store.run(load_policy, self.settings, self.store, channel_id)
        self._policies[channel_id] = (policy, now + POLICY_TTL_SECONDS)
        return policy

    def forget_policy(self, channel_id: str) -> None:
        self._policies.pop(channel_id, None)

    def cached_locale(self, user_id: str) -> str | None:
        cached = self._locales.get(user_id)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        return None

    def remember_locale(self, user_id: str, locale: str) -> None:
        self._locales[user_id] = (locale, time.monotonic() + LOCALE_MEMORY_TTL_SECONDS)


def deps_of(context: Any) -> Deps:
    """The Deps object the middleware put into Bolt's context."""
    deps = context["acr"]
    assert isinstance(deps, Deps)
    return deps
