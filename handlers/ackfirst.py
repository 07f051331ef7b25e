"""Acks first: work that follows an ack waits until requests stop arriving (briefly, bounded).

One event loop serves every request, so the work after one command's ack (rate counters in
the database, the user's locale, the live check, the reply) runs between the later requests
of a burst and delays their acks, which Slack and users are waiting for. Listeners call
:meth:`AckFirst.settle` right after their ack: it returns as soon as no request has arrived for
``quiet`` seconds, and never later than ``max_wait`` seconds, so a steady stream of requests
delays follow-up work a little but never starves it.
"""

from __future__ import annotations

import asyncio
import time

#: A burst's requests arrive well within this of each other; a gap this long means it is over.
QUIET_SECONDS = 0.02
#: Follow-up work never waits longer than this (response_url stays valid for 30 minutes).
MAX_WAIT_SECONDS = 0.3


class AckFirst:
    """Tracks request arrivals and lets follow-up work wait for a quiet moment."""

    __slots__ = ("_last_arrival", "max_wait", "quiet")

    def __init__(self, *, quiet: float = QUIET_SECONDS, max_wait: float = MAX_WAIT_SECONDS) -> None:
        self.quiet = quiet
        self.max_wait = max_wait
        self._last_arrival = 0.0

    def arrived(self) -> None:
        """A request from Slack reached the app (called by the middleware, before any listener)."""
        self._last_arrival = time.monotonic()

    async def settle(self) -> None:
        """Wait until no request has arrived for ``quiet`` seconds, at most ``max_wait`` seconds."""
        deadline = time.monotonic() + self.max_wait
        while True:
            now = time.monotonic()
            remaining = self.quiet - (now - self._last_arrival)
            if remaining <= 0 or now >= deadline:
                return
            await asyncio.sleep(min(remaining, deadline - now))
