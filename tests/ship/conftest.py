"""Fixtures for the shipping tests: a fake Slack that reports scopes, a bot server in a thread.

Only loopback is contacted: the fake Slack, fake ARM, the bot's own port, and an unused
loopback port standing in for an unreachable database.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from bot.config import Settings  # noqa: E402
from tests.fakes.slack import BOT_TOKEN, FakeSlack  # noqa: E402

SIGNING_SECRET = "ship-signing-secret-0123456789"


class ScopedFakeSlack(FakeSlack):
    """The shared fake Slack, plus the ``x-oauth-scopes`` header real Slack sends on every answer."""

    def __init__(self) -> None:
        super().__init__()
        self.scopes: list[str] | None = None  # None: do not send the header

    async def _api(self, request: web.Request) -> web.Response:
        response = await super()._api(request)
        if self.scopes is not None:
            response.headers["x-oauth-scopes"] = ",".join(self.scopes)
        return response


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's SLACK_*/ACRCHECK_*/AZURE_* variables and proxies must not leak into tests."""
    for key in list(os.environ):
        if key.startswith(("SLACK_", "ACRCHECK_", "AZURE_")) or "PROXY" in key.upper():
            monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def fake_slack() -> Iterator[ScopedFakeSlack]:
    fake = ScopedFakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _reset_fake(request: pytest.FixtureRequest) -> None:
    if "fake_slack" in request.fixturenames:
        fake = request.getfixturevalue("fake_slack")
        fake.reset()
        fake.scopes = None
        fake.valid_tokens = {BOT_TOKEN, "xapp-1-test-token"}


@pytest.fixture(scope="session")
def blackhole_dns() -> Iterator[int]:
    """A UDP port that never answers: DNS lookups time out, offline."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unused_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    return free_port()


def bot_settings(fake: FakeSlack, tmp_path: Path, dns_port: int, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake.api_url,
        "database_url": f"sqlite:///{tmp_path / 'bot.db'}",
        "dns_servers": [f"127.0.0.1:{dns_port}"],
        "dns_timeout": 0.3,
        "probe_timeout": 0.3,
        "check_deadline": 2.0,
        "arm_endpoint": "https://127.0.0.1:9",
        "azure_credential": "none",
        "port": free_port(),
        "shutdown_grace": 5.0,
        "user_rate_per_minute": 1000,
        "channel_rate_per_minute": 1000,
    }
    values.update(overrides)
    return Settings(**values)


class ServerThread:
    """``bot.service.server.serve`` on its own loop in a thread, stopped through its Shutdown object."""

    def __init__(self, settings: Settings) -> None:
        from bot.service.server import Shutdown

        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.shutdown: Shutdown | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="acrcheck-serve", daemon=True)
        self.base = f"http://127.0.0.1:{settings.port}"

    def _run(self) -> None:
        from bot.service.server import Shutdown, serve

        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.shutdown = Shutdown()
            await serve(self.settings, host="127.0.0.1", port=self.settings.port, shutdown=self.shutdown,
                        install_signals=False)  # fmt: skip

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # surfaced by the test
            self.error = exc
        finally:
            self.loop.close()

    def start(self) -> ServerThread:
        self.thread.start()
        wait_until(lambda: self._get("/healthz") == 200 or self.error is not None or not self.thread.is_alive())
        assert self.error is None, self.error
        return self

    def _get(self, path: str) -> int | None:
        try:
            return httpx.get(self.base + path, timeout=2, trust_env=False).status_code
        except httpx.HTTPError:
            return None

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=5, trust_env=False)

    def stop(self) -> None:
        if self.shutdown is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.shutdown.trigger)
        self.thread.join(30)


def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0
