"""Fake Slack on 127.0.0.1: Web API, response_url, private files and a Socket Mode websocket.

One aiohttp app in its own thread and event loop:

* ``/api/{method}``: parses JSON or form bodies, records ``(method, params, token)`` and
  answers Slack-shaped JSON; chosen methods can answer 429 with ``Retry-After``.
* ``/response/{id}``: response_url target; records the JSON posted.
* ``/files/{id}``: ``url_private`` of snippets; needs the bot token.
* ``/link``: the Socket Mode websocket returned by ``apps.connections.open``; sends
  ``hello``, collects acks, and :meth:`FakeSlack.send_envelope` pushes envelopes.

Tests poll the records with :meth:`FakeSlack.wait_for` (listeners run after the ack).

Posted messages are kept (``messages``) and listed back by ``conversations.history`` /
``conversations.replies`` like Slack does (``metadata`` only with ``include_all_metadata``,
``oldest`` and cursor pages honoured); ``clock_ts`` gives them wall-clock timestamps as Slack
does (off by default: some tests rely on the counter). :meth:`FakeSlack.hold` applies a chosen
call and withholds its answer until :meth:`FakeSlack.release`, so a test can stop or kill the
caller while its post is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-1-test-token"
BOT_USER_ID = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM_ID = "T0000001"


@dataclass
class Call:
    """One recorded Web API call."""

    method: str
    params: dict[str, Any]
    token: str
    at: float


class FakeSlack:
    """Start with :meth:`start`, stop with :meth:`stop`; thread-safe records."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.acks: list[dict[str, Any]] = []
        self.locales: dict[str, str] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.file_contents: dict[str, str] = {}
        self.file_downloads: list[tuple[str, str]] = []
        self.rate_limited: dict[str, int] = {}  # method -> number of 429s still to return
        self.retry_after = 1
        self.failing: dict[str, str] = {}  # method -> Slack error code
        self.valid_tokens = {BOT_TOKEN, APP_TOKEN}
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> chat.postMessage params
        self.clock_ts = False
        self._last_ts = 0.0
        self._hold: tuple[Callable[[str, dict[str, Any]], bool], threading.Event, threading.Event] | None = None
        self.held_params: dict[str, Any] | None = None
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        self._sockets: list[web.WebSocketResponse] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- lifecycle ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def start(self) -> FakeSlack:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            app = web.Application(client_max_size=8 * 1024 * 1024)
            app.router.add_route("*", "/api/{method}", self._api)
            app.router.add_post("/response/{rid}", self._response)
            app.router.add_get("/files/{fid}", self._file)
            app.router.add_get("/link", self._link)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-slack", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.responses.clear()
            self.acks.clear()
            self.file_downloads.clear()
            self.rate_limited.clear()
            self.failing.clear()
            self.messages.clear()
            self.clock_ts = False
            self._hold = None
            self.held_params = None

    # --- queries --------------------------------------------------------------------------
    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def posts(self) -> list[dict[str, Any]]:
        """Params of every chat.postMessage."""
        return [c.params for c in self.calls_of("chat.postMessage")]

    def outgoing_dump(self) -> str:
        """Everything the bot sent to Slack (all Web API params and response_url bodies), as text."""
        with self._lock:
            parts = [json.dumps(c.params, ensure_ascii=False) for c in self.calls]
            parts += [json.dumps(body, ensure_ascii=False) for _rid, body in self.responses]
        return "\n".join(parts)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
        """Poll until ``predicate()`` is truthy; raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for condition")

    def settle(self, quiet: float = 0.5, timeout: float = 10.0) -> None:
        """Wait until no new call arrived for ``quiet`` seconds (to assert that nothing more comes)."""
        deadline = time.monotonic() + timeout
        last = -1
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            with self._lock:
                count = len(self.calls) + len(self.responses)
            if count != last:
                last, stable_since = count, time.monotonic()
            elif time.monotonic() - stable_since >= quiet:
                return
            time.sleep(0.02)

    def add_snippet(self, file_id: str, content: str, **extra: Any) -> dict[str, Any]:
        info = {
            "id": file_id,
            "name": f"{file_id}.txt",
            "mode": "snippet",
            "filetype": "text",
            "mimetype": "text/plain",
            "size": len(content.encode()),
            "url_private": f"{self.base_url}/files/{file_id}",
            **extra,
        }
        self.files[file_id] = info
        self.file_contents[file_id] = content
        return info

    def hold(self, match: Callable[[str, dict[str, Any]], bool]) -> threading.Event:
        """Apply the first call ``match(method, params)`` accepts, then withhold its answer until
        :meth:`release`. Returns the event set once that call arrived (``held_params``)."""
        held, released = threading.Event(), threading.Event()
        with self._lock:
            self._hold = (match, held, released)
        return held

    def release(self) -> None:
        with self._lock:
            hold = self._hold
        if hold is not None:
            hold[2].set()

    def _take_hold(self, method: str, params: dict[str, Any]) -> threading.Event | None:
        with self._lock:
            if self._hold is None or self.held_params is not None or not self._hold[0](method, params):
                return None
            self.held_params = params
            self._hold[1].set()
            return self._hold[2]

    # --- Socket Mode --------------------------------------------------------------------------
    @property
    def socket_count(self) -> int:
        return len([ws for ws in self._sockets if not ws.closed])

    def send_envelope(self, envelope: dict[str, Any], *, connection: int | None = 0) -> None:
        """Push an envelope to one connection (index) or to all (``None``)."""
        assert self._loop is not None

        async def push() -> None:
            open_sockets = [ws for ws in self._sockets if not ws.closed]
            targets = open_sockets if connection is None else [open_sockets[connection]]
            for ws in targets:
                await ws.send_str(json.dumps(envelope))

        asyncio.run_coroutine_threadsafe(push(), self._loop).result(5)

    def send_raw(self, text: str, *, connection: int = 0) -> None:
        """Push any text frame (a malformed envelope, say) to one connection."""
        assert self._loop is not None

        async def push() -> None:
            await [ws for ws in self._sockets if not ws.closed][connection].send_str(text)

        asyncio.run_coroutine_threadsafe(push(), self._loop).result(5)

    def events_envelope(self, event_payload: dict[str, Any], *, retry_attempt: int = 0) -> dict[str, Any]:
        return {
            "envelope_id": str(uuid.uuid4()),
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
            "payload": event_payload,
        }

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": len(self._sockets)}))
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                with self._lock:
                    self.acks.append(data)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
        return ws

    # --- HTTP handlers ----------------------------------------------------------------------
    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = {k: v for k, v in request.query.items()}
        if request.can_read_body:
            raw = await request.read()
            ctype = request.headers.get("Content-Type", "")
            if "json" in ctype:
                params.update(json.loads(raw or b"{}"))
            else:
                for key, values in parse_qs(raw.decode()).items():
                    value: Any = values[0]
                    if key in ("blocks", "attachments", "metadata") and isinstance(value, str):
                        with contextlib.suppress(ValueError):
                            value = json.loads(value)
                    params[key] = value
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        auth = request.headers.get("Authorization", "")
        token = auth.split(" ", 1)[1] if auth.startswith("Bearer ") else str(params.get("token", ""))
        with self._lock:
            self.calls.append(Call(method, params, token, time.monotonic()))
            remaining = self.rate_limited.get(method, 0)
            if remaining:
                self.rate_limited[method] = remaining - 1
        if remaining:
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(self.retry_after)},
            )
        if token not in self.valid_tokens:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if method in self.failing:
            return web.json_response({"ok": False, "error": self.failing[method]})
        answer = self._answer(method, params, token)
        released = self._take_hold(method, params)
        if released is not None:  # applied; the answer waits (the caller may be gone by then)
            await asyncio.get_running_loop().run_in_executor(None, released.wait, 60)
        return web.json_response(answer)

    def _next_ts(self) -> str:
        if self.clock_ts:
            with self._lock:
                self._last_ts = max(round(time.time(), 6), round(self._last_ts + 0.000001, 6))
                return f"{self._last_ts:.6f}"
        return f"{1_700_000_000 + next(self._ts)}.000100"

    def _history(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Slack's listing: newest first (history, top level only) or the thread (replies, parent first)."""
        channel, parent = str(params.get("channel", "")), str(params.get("ts", ""))
        oldest = float(params.get("oldest") or 0)
        limit = max(1, min(int(params.get("limit") or 100), 1000))
        start = int(params.get("cursor") or 0)
        with_meta = str(params.get("include_all_metadata")).lower() in ("true", "1")
        rows = []
        with self._lock:
            stored = list(self.messages.items())
        for (ch, ts), msg in stored:
            thread = msg.get("thread_ts")
            if ch != channel or float(ts) <= oldest:
                continue
            if method == "conversations.history" and thread and thread != ts:
                continue
            if method == "conversations.replies" and parent not in (ts, thread):
                continue
            row: dict[str, Any] = {"type": "message", "ts": ts, "text": msg.get("text"), "bot_id": BOT_ID}
            if thread:
                row["thread_ts"] = thread
            if with_meta and isinstance(msg.get("metadata"), dict):
                row["metadata"] = msg["metadata"]
            rows.append(row)
        rows.sort(key=lambda r: float(r["ts"]), reverse=method == "conversations.history")
        more = start + limit < len(rows)
        return {
            "ok": True,
            "messages": rows[start : start + limit],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }

    def _answer(self, method: str, params: dict[str, Any], token: str) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": "Fake",
                "user": "acrcheck",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "apps.connections.open":
            if not token.startswith("xapp-"):
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"}
        if method == "users.info":
            user = str(params.get("user", ""))
            return {
                "ok": True,
                "user": {
                    "id": user,
                    "name": user.lower(),
                    "locale": self.locales.get(user, "en-US"),
                    "is_bot": False,
                },
            }
        if method == "chat.postMessage":
            ts = self._next_ts()
            with self._lock:
                self.messages[(str(params.get("channel")), ts)] = dict(params)
            return {
                "ok": True,
                "channel": params.get("channel"),
                "ts": ts,
                "message": {"text": params.get("text")},
            }
        if method == "chat.update":
            return {
                "ok": True,
                "channel": params.get("channel"),
                "ts": params.get("ts"),
                "text": params.get("text"),
            }
        if method in ("conversations.history", "conversations.replies"):
            return self._history(method, params)
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "files.info":
            info = self.files.get(str(params.get("file", "")))
            if info is None:
                return {"ok": False, "error": "file_not_found"}
            return {"ok": True, "file": info}
        return {"ok": True}

    async def _response(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.responses.append((request.match_info["rid"], body))
        return web.json_response({"ok": True})

    async def _file(self, request: web.Request) -> web.Response:
        fid = request.match_info["fid"]
        auth = request.headers.get("Authorization", "")
        with self._lock:
            self.file_downloads.append((fid, auth))
        if auth != f"Bearer {BOT_TOKEN}":
            return web.Response(status=403, text="forbidden")
        if fid not in self.file_contents:
            return web.Response(status=404)
        return web.Response(text=self.file_contents[fid], content_type="text/plain")
