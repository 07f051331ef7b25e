"""Fixtures for the Slack bot tests: fake Slack, a bot runner for both transports, databases.

Only loopback is ever contacted: the fake Slack, the bot's own HTTP port, a black-hole
"DNS server" (a UDP socket that never answers, so live checks are slow but offline), and
the PostgreSQL server named by TEST_PG_URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from slack_sdk.signature import SignatureVerifier  # noqa: E402

from bot.config import Settings  # noqa: E402
from bot.store import Store  # noqa: E402
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN, BOT_USER_ID, TEAM_ID, FakeSlack  # noqa: E402

SIGNING_SECRET = "test-signing-secret-0123456789"
ADMIN = "UADMIN01"


def engine_has_live() -> bool:
    from bot import diagnose as engine

    return hasattr(engine, "check_registry") and hasattr(engine, "diagnose_live")


needs_live = pytest.mark.skipif(
    not engine_has_live(), reason="bot.diagnose.check_registry/diagnose_live not available yet"
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's SLACK_*/ACRCHECK_* variables must not leak into tests."""
    for key in list(os.environ):
        if key.startswith(("SLACK_", "ACRCHECK_")):
            monkeypatch.delenv(key, raising=False)
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _reset_fake(request: pytest.FixtureRequest) -> None:
    if "fake_slack" in request.fixturenames:
        request.getfixturevalue("fake_slack").reset()


@pytest.fixture(scope="session")
def blackhole_dns() -> Iterator[int]:
    """A UDP port that accepts queries and never answers: DNS lookups time out, offline."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    url = os.environ.get("TEST_PG_URL")
    if not url:
        pytest.skip("TEST_PG_URL not set")
    return url


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    import psycopg

    name = f"acrcheck_slack_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(pg_server_url)
    yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_fresh_url(pg_url: str) -> Iterator[str]:
    """pg_url with all acrcheck tables emptied before the test."""
    store = Store.from_url(pg_url)
    from bot.store import metadata

    with store.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    store.dispose()
    yield pg_url


def make_settings(fake: FakeSlack, db_url: str, dns_port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "database_url": db_url,
        "dns_servers": [f"127.0.0.1:{dns_port}"],
        "dns_timeout": 0.3,
        "probe_timeout": 0.3,
        "check_deadline": 2.0,
        "arm_endpoint": "https://127.0.0.1:9",
        "azure_credential": "none",
        "admins": [ADMIN],
        "user_rate_per_minute": 1000,
        "channel_rate_per_minute": 1000,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_factory(fake_slack: FakeSlack, tmp_path: Path, blackhole_dns: int) -> Any:
    def factory(db_url: str | None = None, **overrides: Any) -> Settings:
        return make_settings(fake_slack, db_url or f"sqlite:///{tmp_path / 'bot.db'}", blackhole_dns, **overrides)

    return factory


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def event_body(event: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "legacy",
        "team_id": TEAM_ID,
        "api_app_id": "AAPP0001",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
    }


_ts_counter = iter(range(1, 10**9))


def new_ts() -> str:
    return f"1690000000.{next(_ts_counter):06d}"


def message_event(
    text: str, *, channel: str = "C0000001", user: str | None = "U0000001", **extra: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": new_ts(),
        "channel_type": "channel",
        "team": TEAM_ID,
    }
    event.update(extra)
    return event


class BotRunner:
    """The real AsyncApp in a background loop, reachable over HTTP (signed) or Socket Mode."""

    def __init__(self, fake: FakeSlack, settings: Settings, mode: str) -> None:
        self.fake = fake
        self.settings = settings
        self.mode = mode
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"bot-{mode}", daemon=True)
        self.port = 0
        self.store: Store | None = None
        self._server: Any = None
        self._socket_handler: Any = None
        self._serve_task: Any = None
        self.verifier = SignatureVerifier(SIGNING_SECRET)
        self.http = httpx.Client(timeout=30, trust_env=False)
        self.stopped = False

    def start(self) -> BotRunner:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(20)
        return self

    async def _start(self) -> None:
        from bot.service.http_app import build_http_app
        from handlers.app import build_app

        self.store = Store.from_url(self.settings.database_url)
        app = build_app(self.settings, self.store)
        if self.mode == "http":
            import uvicorn

            sock = free_socket()
            self.port = sock.getsockname()[1]
            config = uvicorn.Config(build_http_app(app, oauth=False), log_level="warning", lifespan="off")
            self._server = uvicorn.Server(config)
            self._server.install_signal_handlers = lambda: None
            self._serve_task = asyncio.create_task(self._server.serve(sockets=[sock]))
            while not self._server.started:
                await asyncio.sleep(0.01)
        else:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            before = self.fake.socket_count
            self._socket_handler = AsyncSocketModeHandler(app, APP_TOKEN)
            await self._socket_handler.connect_async()
            for _ in range(500):
                if self.fake.socket_count > before:
                    break
                await asyncio.sleep(0.01)

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True

        async def _stop() -> None:
            if self._server is not None:
                self._server.should_exit = True
                await self._serve_task
            if self._socket_handler is not None:
                await self._socket_handler.close_async()
            # let background listener tasks finish their Web API calls
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if pending:
                await asyncio.wait(pending, timeout=5)

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if self.store is not None:
            self.store.dispose()
        self.http.close()

    # --- delivery ----------------------------------------------------------------------------
    def signed_headers(self, body: str, *, timestamp: int | None = None, content_type: str) -> dict[str, str]:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        return {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body) or "",
            "Content-Type": content_type,
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def post_raw(self, body: str, headers: dict[str, str]) -> httpx.Response:
        return self.http.post(self.url, content=body.encode(), headers=headers)

    def send_event(self, body: dict[str, Any], *, retry_num: int = 0) -> Any:
        if self.mode == "http":
            raw = json.dumps(body)
            headers = self.signed_headers(raw, content_type="application/json")
            if retry_num:
                headers["X-Slack-Retry-Num"] = str(retry_num)
                headers["X-Slack-Retry-Reason"] = "http_timeout"
            response = self.post_raw(raw, headers)
            return response.status_code
        envelope = self.fake.events_envelope(body, retry_attempt=retry_num)
        self.fake.send_envelope(envelope)
        return self.fake.wait_for(lambda: self._ack_for(str(envelope["envelope_id"])))

    def _ack_for(self, envelope_id: str) -> dict[str, Any] | None:
        for ack in list(self.fake.acks):
            if ack.get("envelope_id") == envelope_id:
                return ack
        return None

    def send_command(
        self, text: str, *, user: str = "U0000001", channel: str = "C0000001", response_id: str | None = None
    ) -> tuple[float, dict[str, Any]]:
        """Send /acrcheck; returns (seconds until ack, ack payload)."""
        rid = response_id or uuid.uuid4().hex[:8]
        command = {
            "token": "legacy",
            "team_id": TEAM_ID,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/acrcheck",
            "text": text,
            "api_app_id": "AAPP0001",
            "response_url": f"{self.fake.base_url}/response/{rid}",
            "trigger_id": "1.2.3",
        }
        started = time.perf_counter()
        if self.mode == "http":
            raw = urllib.parse.urlencode(command)
            response = self.post_raw(raw, self.signed_headers(raw, content_type="application/x-www-form-urlencoded"))
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text
            return elapsed, (response.json() if response.content else {})
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "type": "slash_commands",
            "accepts_response_payload": True,
            "payload": command,
        }
        self.fake.send_envelope(envelope)
        ack = self.fake.wait_for(lambda: self._ack_for(str(envelope["envelope_id"])))
        return time.perf_counter() - started, ack.get("payload") or {}

    def send_interactive(self, payload: dict[str, Any]) -> Any:
        if self.mode == "http":
            raw = urllib.parse.urlencode({"payload": json.dumps(payload)})
            response = self.post_raw(raw, self.signed_headers(raw, content_type="application/x-www-form-urlencoded"))
            return response.status_code
        envelope = {
            "envelope_id": str(uuid.uuid4()),
            "type": "interactive",
            "accepts_response_payload": False,
            "payload": payload,
        }
        self.fake.send_envelope(envelope)
        return self.fake.wait_for(lambda: self._ack_for(str(envelope["envelope_id"])))


@pytest.fixture(params=["http", "socket"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def bot_factory(fake_slack: FakeSlack, settings_factory: Any) -> Iterator[Any]:
    runners: list[BotRunner] = []

    def factory(mode: str = "http", settings: Settings | None = None, **overrides: Any) -> BotRunner:
        runner = BotRunner(fake_slack, settings or settings_factory(**overrides), mode).start()
        runners.append(runner)
        return runner

    yield factory
    for runner in runners:
        with contextlib.suppress(Exception):
            runner.stop()


@pytest.fixture
def bot(bot_factory: Any, transport: str) -> BotRunner:
    runner: BotRunner = bot_factory(transport)
    return runner


REGISTRY_ERROR = (
    'Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": denied: client with IP '
    "'203.0.113.9' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
)


def click(
    fake: FakeSlack,
    action_id: str,
    value: str,
    *,
    channel: str = "C0000001",
    user: str = "U0000009",
    message_ts: str = "1700000001.000100",
    thread_ts: str | None = None,
    action_ts: float | None = None,
    actions: list[Any] | None = None,
) -> dict[str, Any]:
    """A ``block_actions`` payload as Slack sends it when a button of ours is clicked."""
    message: dict[str, Any] = {"ts": message_ts, "text": "x"}
    if thread_ts:
        message["thread_ts"] = thread_ts
    action: dict[str, Any] = {"action_id": action_id, "block_id": f"acrcheck:{value}", "value": value, "type": "button"}
    if action_ts is not None:
        action["action_ts"] = f"{action_ts:.6f}"
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user},
        "api_app_id": "AAPP0001",
        "token": "legacy",
        "trigger_id": "1.2.3",
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "message": message,
        "response_url": f"{fake.base_url}/response/btn{uuid.uuid4().hex[:6]}",
        "actions": [action] if actions is None else actions,
    }


def post_diagnosis(bot: BotRunner, fake: FakeSlack, *, channel: str = "C0000001") -> tuple[dict[str, Any], str]:
    """Paste a registry error; returns (the posted reply, the diagnosis id its buttons carry)."""
    before = len(fake.posts())
    bot.send_event(event_body(message_event(REGISTRY_ERROR, channel=channel)))
    post = fake.wait_for(lambda: fake.posts()[before:])[0]
    actions = next(b for b in post["blocks"] if b["type"] == "actions")
    fake.settle(0.3)
    return post, str(actions["elements"][0]["value"])
