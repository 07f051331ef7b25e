"""Slack output for watches: paced per channel, 429-aware, with counters.

Slack allows about one ``chat.postMessage`` per second per channel (bursts tolerated) and
answers 429 with ``Retry-After`` when a limit is hit. Two layers handle that:
``ChannelPacer`` keeps us under the per-channel rate in the first place, and slack_sdk's
``AsyncRateLimitErrorRetryHandler`` sleeps for ``Retry-After`` and retries when Slack still
says no. Channels are independent, so a big sweep posts to many channels in parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings

__all__ = ["ChannelPacer", "Poster", "SlackPostError", "ensure_retry_handlers", "make_slack_client"]

log = logging.getLogger(__name__)

#: chat.update errors meaning "the message is gone": post a fresh status message instead.
_GONE = {"message_not_found", "cant_update_message", "edit_window_closed"}
#: Errors where retrying later cannot help; the action is dropped (and logged), not retried forever.
_PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "msg_too_long",
    "invalid_blocks",
    "restricted_action",
    "no_text",
    "invalid_auth",
    "account_inactive",
    "missing_scope",
}


class SlackPostError(RuntimeError):
    """Slack refused an action for good (``permanent``) or failed transiently."""

    def __init__(self, error: str, *, permanent: bool) -> None:
        super().__init__(error)
        self.error = error
        self.permanent = permanent


def ensure_retry_handlers(client: AsyncWebClient, *, max_retries: int = 5) -> AsyncWebClient:
    """Add the 429 Retry-After handler to a client built elsewhere (e.g. by the Bolt app)."""
    if not any(isinstance(h, AsyncRateLimitErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=max_retries))
    return client


def make_slack_client(settings: Settings) -> AsyncWebClient:
    """Client on ``settings.slack_api_url`` that honours Retry-After and retries dropped connections."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
        ],
    )


class ChannelPacer:
    """At most one Slack write per ``min_interval`` seconds per channel."""

    def __init__(self, min_interval: float = 1.0) -> None:
        self.min_interval = min_interval
        self._locks: dict[str, asyncio.Lock] = {}
        self._last: dict[str, float] = {}

    @contextlib.asynccontextmanager
    async def turn(self, channel: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            loop = asyncio.get_running_loop()
            wait = self._last.get(channel, -1e9) + self.min_interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                yield
            finally:
                self._last[channel] = loop.time()


class Poster:
    """The three Slack writes a watch makes; counts calls for metrics and the benchmark."""

    def __init__(self, client: AsyncWebClient, *, min_interval: float = 1.0) -> None:
        self.client = ensure_retry_handlers(client)
        self.pacer = ChannelPacer(min_interval)
        self.calls: Counter[str] = Counter()

    async def post(
        self, channel: str, text: str, *, thread_ts: str | None = None, metadata: dict[str, Any] | None = None
    ) -> str:
        """chat.postMessage; returns the new message's ts."""
        kwargs: dict[str, Any] = {"channel": channel, "text": text, "unfurl_links": False}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        if metadata:
            kwargs["metadata"] = metadata
        async with self.pacer.turn(channel):
            self.calls["chat.postMessage"] += 1
            try:
                resp = await self.client.chat_postMessage(**kwargs)
            except SlackApiError as exc:
                raise self._error(exc) from exc
        return str(resp.get("ts"))

    async def update(self, channel: str, ts: str, text: str) -> bool:
        """chat.update in place; False when the message is gone and must be re-posted."""
        async with self.pacer.turn(channel):
            self.calls["chat.update"] += 1
            try:
                await self.client.chat_update(channel=channel, ts=ts, text=text)
            except SlackApiError as exc:
                err = self._error(exc)
                if err.error in _GONE:
                    return False
                raise err from exc
        return True

    @staticmethod
    def _error(exc: SlackApiError) -> SlackPostError:
        code = str(exc.response.get("error", "unknown_error")) if exc.response is not None else "unknown_error"
        return SlackPostError(code, permanent=code in _PERMANENT)
