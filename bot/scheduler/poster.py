"""Slack output for watches: paced per channel, 429-aware, with counters.

Slack allows about one ``chat.postMessage`` per second per channel (bursts tolerated) and
answers 429 with ``Retry-After`` when a limit is hit. Two layers handle that:
``ChannelPacer`` keeps us under the per-channel rate in the first place, and slack_sdk's
``AsyncRateLimitErrorRetryHandler`` sleeps for ``Retry-After`` and retries when Slack still
says no. Channels are independent, so a big sweep posts to many channels in parallel.

A ``chat.postMessage`` is not idempotent: when the connection breaks after Slack applied the
message, retrying it posts the message twice. So the poster never resends a post on its own
unless the connection could not even be opened (``ClientConnectorError``: nothing was sent);
any other transport failure goes back to the sweep, which journaled the attempt and, on its
next try, first looks for the message in the channel (:meth:`Poster.find_post`) by the
``acrcheck_watch`` metadata every post carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import ClientConnectorError
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings

__all__ = [
    "ChannelPacer",
    "NotSentRetryHandler",
    "Poster",
    "SlackPostError",
    "ensure_retry_handlers",
    "make_slack_client",
]

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


#: Methods whose repetition is visible in the channel; resent only when surely never sent.
_NOT_IDEMPOTENT = ("chat.postMessage",)
#: How far back a resumed post is searched before its first attempt (clock skew between us and Slack).
SEARCH_SKEW_SECONDS = 120.0
#: Bound on the search: pages of ``SEARCH_PAGE_SIZE`` messages each.
SEARCH_MAX_PAGES = 10
SEARCH_PAGE_SIZE = 200


class NotSentRetryHandler(AsyncConnectionErrorRetryHandler):
    """slack_sdk's connection-error retry, except a post is resent only if it never left.

    slack_sdk retries on ``ServerDisconnectedError`` and on read timeouts too, which for
    ``chat.postMessage`` means a second message whenever Slack applied the first one and the
    answer was lost. Those errors are returned to the caller instead.
    """

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if request.url.rstrip("/").endswith(_NOT_IDEMPOTENT):
            return isinstance(error, ClientConnectorError)
        return await super()._can_retry_async(state=state, request=request, response=response, error=error)


class SlackPostError(RuntimeError):
    """Slack refused an action for good (``permanent``) or failed transiently."""

    def __init__(self, error: str, *, permanent: bool, maybe_applied: bool = False) -> None:
        super().__init__(error)
        self.error = error
        self.permanent = permanent
        #: Slack may have applied the call anyway (an HTTP 5xx answer): a retried post must look first.
        self.maybe_applied = maybe_applied


def ensure_retry_handlers(client: AsyncWebClient, *, max_retries: int = 5) -> AsyncWebClient:
    """The scheduler's twin of a client built elsewhere (e.g. by the Bolt app).

    Same class, token, URL and session (a shallow copy, so metering subclasses keep
    counting), with the 429 Retry-After handler added and blind connection-error retries
    replaced by :class:`NotSentRetryHandler`. The original client is left as it was.
    """
    twin = copy.copy(client)
    handlers = []
    for handler in client.retry_handlers or []:
        if isinstance(handler, AsyncConnectionErrorRetryHandler) and not isinstance(handler, NotSentRetryHandler):
            handler = NotSentRetryHandler(max_retry_count=handler.max_retry_count)
        handlers.append(handler)
    if not any(isinstance(h, AsyncRateLimitErrorRetryHandler) for h in handlers):
        handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=max_retries))
    twin.retry_handlers = handlers
    return twin


def make_slack_client(settings: Settings) -> AsyncWebClient:
    """Client on ``settings.slack_api_url`` that honours Retry-After and retries dropped connections."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(
        token=token,
        base_url=settings.slack_api_url,
        retry_handlers=[
            NotSentRetryHandler(max_retry_count=2),
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
            except ClientConnectorError as exc:  # never connected: Slack cannot have applied it
                raise SlackPostError("connection_failed", permanent=False) from exc
        return str(resp.get("ts"))

    async def find_post(
        self,
        channel: str,
        payload: dict[str, Any],
        *,
        oldest: float,
        thread_ts: str | None = None,
        event_type: str = "acrcheck_watch",
    ) -> str | None:
        """The ts of our message carrying ``payload`` as metadata, posted after ``oldest``; else None.

        Top-level messages are searched with ``conversations.history``, thread replies with
        ``conversations.replies`` on ``thread_ts``; both bounded in time (``oldest`` minus
        :data:`SEARCH_SKEW_SECONDS`) and in pages. A message whose metadata lacks ``op`` (posted
        before ops were tagged) matches on ``job`` and ``slot`` alone.
        """
        kwargs: dict[str, Any] = {
            "channel": channel,
            "oldest": f"{max(0.0, oldest - SEARCH_SKEW_SECONDS):.6f}",
            "include_all_metadata": True,
            "limit": SEARCH_PAGE_SIZE,
        }
        cursor: str | None = None
        for _ in range(SEARCH_MAX_PAGES):
            method = "conversations.replies" if thread_ts else "conversations.history"
            self.calls[method] += 1
            try:
                if thread_ts:
                    resp = await self.client.conversations_replies(ts=thread_ts, cursor=cursor, **kwargs)
                else:
                    resp = await self.client.conversations_history(cursor=cursor, **kwargs)
            except SlackApiError as exc:
                raise self._error(exc) from exc
            for message in resp.get("messages") or []:
                if not isinstance(message, dict) or (thread_ts and message.get("ts") == thread_ts):
                    continue  # the thread's parent is the status message, never the reply
                meta = message.get("metadata")
                if not isinstance(meta, dict) or meta.get("event_type") != event_type:
                    continue
                found = meta.get("event_payload")
                if isinstance(found, dict) and all(
                    found.get(k) == v for k, v in payload.items() if k != "op" or "op" in found
                ):
                    return str(message.get("ts"))
            cursor = str((resp.get("response_metadata") or {}).get("next_cursor") or "") or None
            if not cursor:
                return None
        log.warning(
            "search for an earlier post in %s stopped after %d pages; assuming it was not posted",
            channel, SEARCH_MAX_PAGES,
        )  # fmt: skip
        return None

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
        """Slack answered: ``ok: false`` (refused, nothing applied) or HTTP 5xx (may be applied)."""
        code = str(exc.response.get("error", "unknown_error")) if exc.response is not None else "unknown_error"
        status = int(getattr(exc.response, "status_code", 200) or 200) if exc.response is not None else 500
        return SlackPostError(code, permanent=code in _PERMANENT, maybe_applied=status >= 500)
