"""Minimal fake Slack Web API for scheduler tests and the sweep benchmark.

stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) answering ``/api/chat.postMessage``
and ``/api/chat.update`` like Slack, recording every call. ``rate_limit(method, n)`` makes
the next ``n`` calls of a method answer 429 with ``Retry-After``; ``outage(status)`` makes
every call answer that HTTP status (e.g. 500) until ``outage(None)``; ``latency`` adds a
delay per call (the benchmark's realistic Slack). Separate from tests/fakes/slack.py on purpose.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


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
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # --- control -----------------------------------------------------------------------

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                if "json" in (self.headers.get("Content-Type") or ""):
                    params = json.loads(raw or "{}")
                else:
                    params = dict(parse_qsl(raw))
                method = self.path.rsplit("/", 1)[-1]
                status, body, headers = fake.handle(method, params)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
        self._ts = other._ts
        self._lock = other._lock
        return self

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
                ts = f"{1700000000 + next(self._ts)}.000100"
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
            self.calls.append(Call(method, params, 200))
            return 200, {"ok": True}, {}
