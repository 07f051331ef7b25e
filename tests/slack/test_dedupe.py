"""One reply per Slack event across retries, restarts and two `acrcheck serve` processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from slack_sdk.signature import SignatureVerifier

from tests.fakes.slack import BOT_TOKEN, FakeSlack
from tests.slack.conftest import REGISTRY_ERROR, ROOT, SIGNING_SECRET, event_body, message_event


def test_restart_with_same_database(bot_factory: Any, fake_slack: FakeSlack, settings_factory: Any) -> None:
    settings = settings_factory()
    body = event_body(message_event(REGISTRY_ERROR))
    first = bot_factory("http", settings=settings)
    first.send_event(body)
    fake_slack.wait_for(lambda: fake_slack.posts())
    fake_slack.settle(0.3)
    first.stop()
    second = bot_factory("socket", settings=settings)  # new process state, other transport, same DB
    second.send_event(body, retry_num=1)
    third = bot_factory("http", settings=settings)
    third.send_event(body, retry_num=2)
    fake_slack.settle(0.6)
    assert len(fake_slack.posts()) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(fake: FakeSlack, db_url: str, port: int, dns_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "ACRCHECK_")) and "PROXY" not in key.upper()
    }
    env.update(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "ACRCHECK_SLACK_API_URL": fake.api_url,
            "ACRCHECK_DATABASE_URL": db_url,
            "ACRCHECK_DNS_SERVERS": json.dumps([f"127.0.0.1:{dns_port}"]),
            "ACRCHECK_ARM_ENDPOINT": "https://127.0.0.1:9",
            "PYTHONPATH": str(ROOT),
        }
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli.serve",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_healthy(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("serve did not become healthy")


def test_two_serve_processes_share_postgres(
    fake_slack: FakeSlack, pg_fresh_url: str, blackhole_dns: int, tmp_path: Path
) -> None:
    ports = [_free_port(), _free_port()]
    procs = [
        _serve(fake_slack, pg_fresh_url, port, blackhole_dns, tmp_path / f"serve{i}.log")
        for i, port in enumerate(ports)
    ]
    try:
        for i, (port, proc) in enumerate(zip(ports, procs, strict=True)):
            _wait_healthy(port, proc, tmp_path / f"serve{i}.log")
        verifier = SignatureVerifier(SIGNING_SECRET)
        bodies = [event_body(message_event(REGISTRY_ERROR)) for _ in range(5)]
        with httpx.Client(trust_env=False, timeout=10) as client:
            for body in bodies:
                raw = json.dumps(body)
                # The same delivery reaches both replicas, then Slack retries it three times.
                for attempt, port in enumerate([ports[0], ports[1], ports[1], ports[0]]):
                    ts = str(int(time.time()))
                    headers = {
                        "Content-Type": "application/json",
                        "X-Slack-Request-Timestamp": ts,
                        "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=raw) or "",
                    }
                    if attempt:
                        headers["X-Slack-Retry-Num"] = str(attempt)
                        headers["X-Slack-Retry-Reason"] = "http_timeout"
                    assert (
                        client.post(f"http://127.0.0.1:{port}/slack/events", content=raw, headers=headers).status_code
                        == 200
                    )
        fake_slack.wait_for(lambda: len(fake_slack.posts()) >= len(bodies), timeout=30)
        fake_slack.settle(1.0)
        posts = fake_slack.posts()
        assert len(posts) == len(bodies)
        assert sorted(p["thread_ts"] for p in posts) == sorted(b["event"]["ts"] for b in bodies)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
