"""Minimal fake Slack Web API for scheduler tests and the sweep benchmark.

stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) answering ``/api/chat.postMessage``,
``/api/chat.update``, ``/api/conversations.history`` and ``/api/conversations.replies`` like
Slack (message ``ts`` from the wall clock, ``metadata`` returned with ``include_all_metadata``,
``oldest`` and cursor pages honoured), recording every call. ``rate_limit(method, n)`` makes
the next ``n`` calls of a method answer 429 with ``Retry-After``; ``outage(status)`` makes
every call answer that HTTP status (e.g. 500) until ``outage(None)``; ``latency`` adds a
delay per call (the benchmark's realistic Slack). Separate from tests/fakes/slack.py on purpose.

Crash tests place a failure precisely with ``hold(match, applied=…)``: the first call that
``match`` accepts is applied (or not) and then *held* — no answer — until ``release()``; the
test waits on ``held`` and kills the caller meanwhile. ``drop(match)`` applies the first
matching call and closes the connection without any answer (what a client sees when Slack
applied a message but the answer was lost on the way).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

Match = Callable[[str, dict[str, Any]], bool]
PAGE_MAX = 1000


class _Hold:
    """One armed fault: which call, whether it is applied first, and how to answer."""

    def __init__(self, match: Match, *, applied: bool, answer: bool) -> None:
        self.match = match
        self.applied = applied
        self.answer = answer  # False: close the connection without answering
        self.armed = True
        self.held = threading.Event()  # a matching call arrived (and was applied when ``applied``)
        self.released = threading.Event()
        self.call: Call | None = None


class _Clock:
    """Message timestamps: wall clock, strictly increasing, shared by ``share_messages`` twins."""

    def __init__(self) -> None:
        self.last = 0.0

    def next(self) -> str:
        self.last = max(round(time.time(), 6), round(self.last + 0.000001, 6))
        return f"{self.last:.6f}"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int
    at: float = field(default_factory=time.time)


class FakeSlack:
    """Start with ``FakeSlack().start()``; point ``slack_api_url`` at ``.api_url``."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.calls: list[Call] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> params
        self._limits: dict[str, tuple[int, int]] = {}
        self._outage: int | None = None
        self._lock = threading.Lock()
        self._clock = _Clock()
        self._hold: _Hold | None = None
        self._server: ThreadingHTTPServer | None = None

    # --- control -----------------------------------------------------------------------

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:  # slack_sdk reads conversations.* with GET and a query string
                self.do_POST()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                path, _, query = self.path.partition("?")
                params: dict[str, Any] = dict(parse_qsl(query))
                if "json" in (self.headers.get("Content-Type") or ""):
                    params.update(json.loads(raw or "{}"))
                else:
                    params.update(parse_qsl(raw))
                method = path.rsplit("/", 1)[-1]
                hold = fake._take_hold(method, params)
                if hold is not None:
                    if hold.applied:
                        status, body, headers = fake.handle(method, params)
                    hold.held.set()
                    hold.released.wait(60)
                    if not hold.applied:
                        status, body, headers = fake.handle(method, params)
                    if not hold.answer:
                        self.close_connection = True
                        return
                else:
                    status, body, headers = fake.handle(method, params)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                with contextlib.suppress(OSError):  # the caller may have died meanwhile
                    self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a caller killed mid-request (the crash tests do that on purpose)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def api_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def rate_limit(self, method: str, times: int, retry_after: int = 1) -> None:
        with self._lock:
            self._limits[method] = (times, retry_after)

    def share_messages(self, other: FakeSlack) -> FakeSlack:
        """Same workspace as ``other`` (messages, ts sequence), separate call log: two processes'
        calls told apart while an edit by one finds the message the other posted."""
        self.messages = other.messages
        self._clock = other._clock
        self._lock = other._lock
        return self

    def hold(self, match: Match, *, applied: bool = True) -> threading.Event:
        """Hold the answer to the first call ``match(method, params)`` accepts until ``release()``.

        ``applied``: Slack applies the call before holding (the message exists; only the answer
        is late), else only on release (the request is still on its way). Returns the event set
        once such a call arrived.
        """
        with self._lock:
            self._hold = _Hold(match, applied=applied, answer=True)
            return self._hold.held

    def drop(self, match: Match) -> threading.Event:
        """Apply the first call ``match`` accepts, then close the connection without answering."""
        with self._lock:
            self._hold = _Hold(match, applied=True, answer=False)
            self._hold.released.set()
            return self._hold.held

    def release(self) -> None:
        with self._lock:
            hold = self._hold
        if hold is not None:
            hold.released.set()

    @property
    def held_call(self) -> Call | None:
        with self._lock:
            return self._hold.call if self._hold is not None else None

    def _take_hold(self, method: str, params: dict[str, Any]) -> _Hold | None:
        with self._lock:
            hold = self._hold
            if hold is None or not hold.armed or not hold.match(method, params):
                return None
            hold.armed = False
            hold.call = Call(method, params, 200)
            return hold

    def outage(self, status: int | None = 500) -> None:
        """Answer every call with HTTP ``status`` (``internal_error``) until called with None."""
        with self._lock:
            self._outage = status

    def failed_calls(self) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.status >= 500]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.messages.clear()
            self._limits.clear()

    # --- views -------------------------------------------------------------------------

    def ok_calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.status == 200 and (method is None or c.method == method)]

    def posts(self, channel: str | None = None) -> list[Call]:
        return [
            c
            for c in self.ok_calls("chat.postMessage")
            if channel is None or c.params.get("channel") == channel
        ]

    def replies(self) -> list[Call]:
        return [c for c in self.posts() if c.params.get("thread_ts")]

    def top_level(self) -> list[Call]:
        return [c for c in self.posts() if not c.params.get("thread_ts")]

    def updates(self) -> list[Call]:
        return self.ok_calls("chat.update")

    def lookups(self) -> list[Call]:
        """conversations.history / conversations.replies calls (a resumed plan looking for its post)."""
        return [c for c in self.ok_calls() if c.method.startswith("conversations.")]

    # --- behaviour ---------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            if self._outage is not None:
                self.calls.append(Call(method, params, self._outage))
                return self._outage, {"ok": False, "error": "internal_error"}, {}
            left, retry_after = self._limits.get(method, (0, 1))
            if left > 0:
                self._limits[method] = (left - 1, retry_after)
                self.calls.append(Call(method, params, 429))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
            channel = str(params.get("channel", ""))
            if method == "chat.postMessage":
                ts = self._clock.next()
                self.messages[(channel, ts)] = dict(params)
                self.calls.append(Call(method, params, 200))
                return (
                    200,
                    {"ok": True, "channel": channel, "ts": ts, "message": {"text": params.get("text")}},
                    {},
                )
            if method == "chat.update":
                key = (channel, str(params.get("ts")))
                if key not in self.messages:
                    self.calls.append(Call(method, params, 0))  # 0: HTTP 200 but ok=false
                    return 200, {"ok": False, "error": "message_not_found"}, {}
                self.messages[key] = {**self.messages[key], "text": params.get("text")}
                self.calls.append(Call(method, params, 200))
                return 200, {"ok": True, "channel": channel, "ts": key[1]}, {}
            if method in ("conversations.history", "conversations.replies"):
                self.calls.append(Call(method, params, 200))
                return 200, self._conversation(method, channel, params), {}
            self.calls.append(Call(method, params, 200))
            return 200, {"ok": True}, {}

    def _conversation(self, method: str, channel: str, params: dict[str, Any]) -> dict[str, Any]:
        """Slack's shape: newest first, ``oldest`` exclusive, ``limit`` + ``next_cursor`` pages.

        History lists top-level messages only; replies lists the thread (parent first, as Slack
        does). Metadata is included only with ``include_all_metadata`` (as Slack does).
        """
        oldest = float(params.get("oldest") or 0)
        limit = max(1, min(int(params.get("limit") or 100), PAGE_MAX))
        start = int(params.get("cursor") or 0)
        with_meta = str(params.get("include_all_metadata")).lower() in ("true", "1")
        rows = []
        for (ch, ts), msg in self.messages.items():
            if ch != channel or float(ts) <= oldest:
                continue
            thread = msg.get("thread_ts")
            if method == "conversations.history" and thread and thread != ts:
                continue
            if method == "conversations.replies" and ts != params.get("ts") and thread != params.get("ts"):
                continue
            row: dict[str, Any] = {"type": "message", "ts": ts, "text": msg.get("text"), "bot_id": "BFAKE"}
            if thread:
                row["thread_ts"] = thread
            if with_meta and msg.get("metadata"):
                row["metadata"] = msg["metadata"]
            rows.append(row)
        rows.sort(key=lambda r: float(r["ts"]), reverse=method == "conversations.history")
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        return {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""},
        }
