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
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
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


# --- SIGTERM with scheduled posts in flight, two replicas on PostgreSQL ----------------------


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh database on TEST_PG_URL's server (127.0.0.0/8 only), dropped afterwards."""
    import psycopg

    admin = os.environ.get("TEST_PG_URL")
    if not admin:
        pytest.skip("TEST_PG_URL not set (PostgreSQL replicas)")
    parts = urllib.parse.urlsplit(admin)
    if not (parts.hostname or "").startswith("127.") and parts.hostname != "localhost":
        pytest.skip("TEST_PG_URL must point at 127.0.0.0/8")
    name = f"acrcheck_ship_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


WATCHED = [("contosoreg", "C0000001"), ("fabrikamreg", "C0000002")]


def _leader_pid(pg_url: str) -> int | None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        try:
            row = conn.execute("SELECT holder FROM acr_scheduler_leader").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
    return int(str(row[0]).split(":")[1]) if row else None


def _claims(pg_url: str) -> list[tuple[str, int, str, str]]:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        rows = conn.execute("SELECT job_key, slot, owner, state FROM acr_watch_claims ORDER BY slot").fetchall()
    return [(str(r[0]), int(r[1]), str(r[2]), str(r[3])) for r in rows]


def test_sigterm_lets_scheduled_posts_in_flight_finish_before_leadership_is_released(
    fake_slack: ScopedFakeSlack, tmp_path: Path, blackhole_dns: int, pg_database: str
) -> None:
    """Issue 12: SIGTERM released leadership first and cancelled the posts after ~1.5 s; a rolling
    update then double-posted. Now the leader keeps leading until its post is answered and recorded."""
    fake_slack.clock_ts = True
    held = fake_slack.hold(lambda method, params: method == "chat.postMessage" and "metadata" in params)
    watches = json.dumps([{"registry": r, "channel": c, "schedule": "every 6s"} for r, c in WATCHED])
    ports = [free_port(), free_port()]
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"serve{i}.log" for i in range(2)]
    try:
        for port, log in zip(ports, logs, strict=True):
            env = _env(fake_slack, tmp_path, blackhole_dns, port)
            env.update(
                ACRCHECK_DATABASE_URL=pg_database, ACRCHECK_WATCHES=watches, ACRCHECK_SHUTDOWN_GRACE="10",
                ACRCHECK_CHECK_DEADLINE="1", ACRCHECK_WATCH_LEADER_POLL="0.2", ACRCHECK_WATCH_TAKEOVER_GRACE="0.3",
                ACRCHECK_WATCH_SYNC_INTERVAL="0.5", ACRCHECK_WATCH_SLACK_MIN_INTERVAL="0",
            )  # fmt: skip
            with log.open("wb") as sink:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "bot.cli.main", "serve", "--host", "127.0.0.1"],
                    cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT,
                ))  # fmt: skip
        assert held.wait(40), "no scheduled post reached Slack: " + logs[0].read_text() + logs[1].read_text()
        pid = _leader_pid(pg_database)
        victim = next(p for p in procs if p.pid == pid)
        index = procs.index(victim)
        started = time.monotonic()
        victim.send_signal(signal.SIGTERM)
        wait_until(lambda: not _ready(ports[index]), timeout=5)  # draining: /readyz 503 (or closed)
        # The post is still unanswered: the leader is alive and still leads (nobody could resume it).
        assert victim.poll() is None, logs[index].read_text()
        assert _leader_pid(pg_database) == pid
        fake_slack.release()
        code = victim.wait(timeout=20)
        elapsed = time.monotonic() - started
        other = procs[1 - index]
        wait_until(lambda: _leader_pid(pg_database) == other.pid, timeout=15)
        wait_until(lambda: all(state == "done" for *_, state in _claims(pg_database)), timeout=15)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    output = logs[index].read_text()
    assert code == 0, output
    assert elapsed < 10, f"drain took {elapsed:.1f}s"
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    stopped = [r["msg"] for r in records if "in-flight task(s) finished" in r["msg"]]
    assert stopped and stopped[-1].endswith(", 0 cancelled)") and "(0 in-flight" not in stopped[-1], output
    assert not [r for r in records if r["level"] == "ERROR"], output
    # One status message per watch, the held one recorded by the leader that sent it.
    posted = [p["metadata"]["event_payload"] for p in fake_slack.posts() if "metadata" in p]
    assert sorted((p["job"], p["slot"], p.get("op")) for p in posted) == sorted(
        {(p["job"], p["slot"], p.get("op")) for p in posted}
    ), posted
    assert len({p["job"] for p in posted if p.get("op") == "status"}) == len(WATCHED)
    held_payload = (fake_slack.held_params or {})["metadata"]["event_payload"]
    [owner] = [o for job, slot, o, _ in _claims(pg_database) if (job, slot) == (held_payload["job"], held_payload["slot"])]
    assert f":{pid}:" in owner
    assert not fake_slack.calls_of("conversations.history"), "nobody should have had to search"
