"""/healthz, /readyz and /metrics in both transports, against the fake Slack."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import create_engine

from bot.service.health import Readiness
from tests.ship.conftest import (
    SIGNING_SECRET,
    ScopedFakeSlack,
    ServerThread,
    bot_settings,
    metric_value,
    unused_port,
    wait_until,
)

REGISTRY_ERROR = (
    'Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": denied: client with IP '
    "'203.0.113.9' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
)


def _signed_event(text: str) -> tuple[str, dict[str, str]]:
    body = json.dumps(
        {
            "token": "legacy",
            "team_id": "T0000001",
            "api_app_id": "AAPP0001",
            "type": "event_callback",
            "event_id": f"Ev{int(time.time() * 1e6)}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T0000001", "user_id": "UBOT0001", "is_bot": True}],
            "event": {
                "type": "message", "channel": "C0000001", "user": "U0000001", "text": text,
                "ts": f"{time.time():.6f}", "channel_type": "channel", "team": "T0000001",
            },
        }
    )  # fmt: skip
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body) or "",
    }
    return body, headers


def test_http_mode_health_ready_metrics(fake_slack: ScopedFakeSlack, tmp_path: Path, blackhole_dns: int) -> None:
    server = ServerThread(bot_settings(fake_slack, tmp_path, blackhole_dns)).start()
    try:
        assert server.get("/healthz").text == "ok"
        ready = wait_until(lambda: (r := server.get("/readyz")).status_code == 200 and r)
        assert ready.json() == {"ready": True, "slack": "connected", "database": "reachable"}
        assert fake_slack.calls_of("auth.test"), "readiness in HTTP mode is proven by auth.test"

        before = server.get("/metrics").text
        body, headers = _signed_event(REGISTRY_ERROR)
        assert httpx.post(server.base + "/slack/events", content=body, headers=headers, trust_env=False).status_code == 200
        fake_slack.wait_for(lambda: fake_slack.posts())
        after = wait_until(
            lambda: (t := server.get("/metrics").text)
            and metric_value(t, "acrcheck_slack_replies_total", method="chat.postMessage")
            > metric_value(before, "acrcheck_slack_replies_total", method="chat.postMessage")
            and t
        )
        cause = fake_slack.posts()[0]["metadata"]["event_payload"]["cause"]
        assert metric_value(after, "acrcheck_diagnoses_total", cause=cause, kind="paste") >= 1
        assert metric_value(after, "acrcheck_scheduler_leader") == 1.0  # SQLite: this process leads
        assert metric_value(after, "acrcheck_ready") == 1.0
        for name in ("acrcheck_checks_total", "acrcheck_check_duration_seconds", "acrcheck_arm_errors_total",
                     "acrcheck_slack_api_errors_total"):  # fmt: skip
            assert f"# TYPE {name}" in after
    finally:
        server.stop()
    assert not server.thread.is_alive()


def test_http_mode_not_ready_while_slack_rejects_the_token(
    fake_slack: ScopedFakeSlack, tmp_path: Path, blackhole_dns: int
) -> None:
    fake_slack.valid_tokens = {"xapp-1-test-token"}  # the bot token is refused: invalid_auth
    server = ServerThread(bot_settings(fake_slack, tmp_path, blackhole_dns)).start()
    try:
        response = wait_until(lambda: (r := server.get("/readyz")).json()["slack"] != "not connected yet" and r)
        assert response.status_code == 503
        assert response.json()["slack"] == "auth.test failed: invalid_auth"
        assert server.get("/healthz").status_code == 200  # liveness does not depend on Slack
        metrics = server.get("/metrics").text
        assert metric_value(metrics, "acrcheck_slack_api_errors_total", method="auth.test", error="invalid_auth") >= 1
    finally:
        server.stop()


def test_socket_mode_serves_ops_endpoints(fake_slack: ScopedFakeSlack, tmp_path: Path, blackhole_dns: int) -> None:
    settings = bot_settings(fake_slack, tmp_path, blackhole_dns, slack_app_token="xapp-1-test-token")
    server = ServerThread(settings).start()
    try:
        ready = wait_until(lambda: (r := server.get("/readyz")).status_code == 200 and r)
        assert ready.json()["slack"] == "connected"
        assert fake_slack.socket_count >= 1
        assert "acrcheck_ready 1.0" in server.get("/metrics").text
        assert httpx.post(server.base + "/slack/events", content=b"{}", trust_env=False).status_code in (404, 405)
    finally:
        server.stop()
    assert fake_slack.socket_count == 0 or wait_until(lambda: fake_slack.socket_count == 0, timeout=5)


async def test_not_ready_when_the_database_is_unreachable() -> None:
    engine = create_engine(f"postgresql+psycopg://acrcheck@127.0.0.1:{unused_port()}/acrcheck")

    async def connected() -> bool:
        return True

    readiness = Readiness(engine=engine, slack_probe=connected)
    ready, details = await readiness.report()
    assert not ready and details["slack"] == "connected"
    assert details["database"].startswith("unreachable (")
    readiness.draining = True
    assert (await readiness.report())[1]["slack"] == "shutting down"
    engine.dispose()


async def test_database_probe_is_bounded_and_cached() -> None:
    calls = 0

    class SlowEngine:
        def connect(self) -> None:
            nonlocal calls
            calls += 1
            time.sleep(5)

    readiness = Readiness(engine=SlowEngine())  # type: ignore[arg-type]
    import bot.service.health as health

    health_timeout = health.DB_TIMEOUT_SECONDS
    health.DB_TIMEOUT_SECONDS = 0.2
    try:
        started = time.monotonic()
        ok, detail = await readiness.database_ok()
        assert not ok and "no answer" in detail and time.monotonic() - started < 2
        await readiness.database_ok()  # cached: no second connection attempt piles up
        assert calls == 1
    finally:
        health.DB_TIMEOUT_SECONDS = health_timeout
        await asyncio.sleep(0)
