"""SIGTERM on a real ``acrcheck serve`` process: stop taking events, finish the reply in flight.

Also checks the production log shape: with ``ACRCHECK_LOG_FORMAT=json`` every stderr line is
one JSON object, and no token appears anywhere in the output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx
from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack import BOT_TOKEN
from tests.ship.conftest import ROOT, SIGNING_SECRET, ScopedFakeSlack, free_port, wait_until


def _env(fake: ScopedFakeSlack, tmp_path: Path, dns_port: int, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ACRCHECK_")) and "PROXY" not in k.upper()}
    env.update(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "ACRCHECK_SLACK_API_URL": fake.api_url,
            "ACRCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "ACRCHECK_DNS_SERVERS": f"127.0.0.1:{dns_port}",
            "ACRCHECK_DNS_TIMEOUT": "0.5",
            "ACRCHECK_PROBE_TIMEOUT": "0.5",
            "ACRCHECK_CHECK_DEADLINE": "2.5",
            "ACRCHECK_ARM_ENDPOINT": "https://127.0.0.1:9",
            "ACRCHECK_PORT": str(port),
            "ACRCHECK_LOG_FORMAT": "json",
            "ACRCHECK_SHUTDOWN_GRACE": "15",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _slash_command(port: int, fake: ScopedFakeSlack, text: str, rid: str) -> httpx.Response:
    body = urllib.parse.urlencode(
        {
            "token": "legacy", "team_id": "T0000001", "team_domain": "fake", "channel_id": "C0000001",
            "channel_name": "general", "user_id": "U0000001", "user_name": "u", "command": "/acrcheck",
            "text": text, "api_app_id": "AAPP0001", "response_url": f"{fake.base_url}/response/{rid}",
            "trigger_id": "1.2.3",
        }
    )  # fmt: skip
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body) or "",
    }
    return httpx.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers, timeout=10,
                      trust_env=False)  # fmt: skip


def test_sigterm_finishes_in_flight_reply_and_refuses_new_events(
    fake_slack: ScopedFakeSlack, tmp_path: Path, blackhole_dns: int
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli.main", "serve", "--host", "127.0.0.1"],
            cwd=ROOT, env=_env(fake_slack, tmp_path, blackhole_dns, port), stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_until(lambda: proc.poll() is not None or _ready(port), timeout=30)
            assert proc.poll() is None, log.read_text()
            # A live check takes ~check_deadline (DNS is a black hole); SIGTERM arrives mid-check.
            ack = _slash_command(port, fake_slack, "myreg", "inflight")
            assert ack.status_code == 200
            assert not fake_slack.responses, "the check must still be running when SIGTERM arrives"
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            refused = _refused_after_sigterm(port, fake_slack)
            code = proc.wait(timeout=30)
            elapsed = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
    output = log.read_text()
    assert code == 0, output
    assert refused, "events sent after SIGTERM must be refused (503 or connection refused)"
    assert [rid for rid, _ in fake_slack.responses] == ["inflight"], output  # the in-flight reply was delivered
    assert elapsed < 15, f"shutdown took {elapsed:.1f}s"
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    non_json = [line for line in output.splitlines() if line.strip() and not line.startswith("{")]
    assert all(line.startswith("acrcheck: listening") for line in non_json), non_json
    assert {"ts", "level", "logger", "msg"} <= set(records[0])
    assert any("in-flight" in r["msg"] for r in records), output
    assert BOT_TOKEN not in output and SIGNING_SECRET not in output


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def _refused_after_sigterm(port: int, fake: ScopedFakeSlack) -> bool:
    """Within a second of SIGTERM, a new event is no longer taken (503 or no listener)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            if _slash_command(port, fake, "otherreg", "late").status_code == 503:
                return True
        except httpx.HTTPError:
            return True
        time.sleep(0.05)
    return False
