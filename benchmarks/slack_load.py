"""Benchmark: /acrcheck ack latency under load, and passive-listener throughput (HTTP mode).

Slack gives a slash command 3 s to be acked. The ack must not wait for the live check,
and 50 slow checks in flight must not slow the acks of new commands. The checks are made
slow on purpose: the bot's DNS server is a loopback UDP socket that never answers, so
each check waits for its DNS timeout (``--dns-timeout``, default 5 s).

Everything is real except Slack: the bot is the production AsyncApp behind Starlette and
uvicorn on 127.0.0.1, requests are signed with slack_sdk's SignatureVerifier, and the
fake Slack from tests/fakes/slack.py answers the Web API and response_url.

    .venv/bin/python benchmarks/slack_load.py [--in-flight 50] [--probes 200] [--events 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from slack_sdk.signature import SignatureVerifier  # noqa: E402

from tests.fakes.slack import BOT_TOKEN, BOT_USER_ID, TEAM_ID, FakeSlack  # noqa: E402

SECRET = "bench-signing-secret"
REGISTRY_ERROR = (
    'Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": denied: client with IP '
    "'203.0.113.9' is not allowed access. Refer https://aka.ms/acr/firewall"
)
CHATTER = "deploy of build 1234 finished, anyone up for lunch?"


class Bot:
    """``acrcheck serve`` in a child process (its own interpreter and GIL), HTTP mode."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        command = [sys.executable, "-m", "bot.cli.serve", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "WARNING"]
        self.proc = subprocess.Popen(command, cwd=REPO, env=self.env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", trust_env=False, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("acrcheck serve did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(15)


def signed(body: str, content_type: str) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body) or "",
    }


def command_body(fake: FakeSlack, registry: str, user: str) -> str:
    return urllib.parse.urlencode(
        {
            "team_id": TEAM_ID,
            "channel_id": "CBENCH01",
            "user_id": user,
            "command": "/acrcheck",
            "text": registry,
            "response_url": f"{fake.base_url}/response/{uuid.uuid4().hex[:8]}",
            "trigger_id": "1.2.3",
        }
    )


def event_body(text: str, n: int) -> str:
    return json.dumps(
        {
            "team_id": TEAM_ID,
            "api_app_id": "AAPP0001",
            "type": "event_callback",
            "event_id": f"EvB{n:08d}{uuid.uuid4().hex[:6]}",
            "event_time": int(time.time()),
            "event": {
                "type": "message",
                "channel": f"CB{n % 97:05d}",
                "channel_type": "channel",
                "user": f"UB{n % 101:05d}",
                "text": text,
                "ts": f"1690000000.{n:06d}",
            },
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        }
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def ack_latency(bot: Bot, fake: FakeSlack, in_flight: int, probes: int, concurrency: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{bot.port}/slack/events"
    ctype = "application/x-www-form-urlencoded"
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as client:
        # 1. Start the slow checks.
        bodies = [command_body(fake, f"loadreg{i:03d}", f"UL{i:05d}") for i in range(in_flight)]
        first = await asyncio.gather(*(client.post(url, content=b, headers=signed(b, ctype)) for b in bodies))
        assert all(r.status_code == 200 and "Checking" in r.text for r in first), first[0].text
        started = time.monotonic()
        # 2. Measure acks of new commands while those checks are still running.
        latencies: list[float] = []
        semaphore = asyncio.Semaphore(concurrency)

        async def probe(i: int) -> None:
            body = command_body(fake, f"probereg{i:04d}", f"UP{i:05d}")
            async with semaphore:
                t0 = time.perf_counter()
                response = await client.post(url, content=body, headers=signed(body, ctype))
                latencies.append(time.perf_counter() - t0)
                assert response.status_code == 200 and "Checking" in response.text

        await asyncio.gather(*(probe(i) for i in range(probes)))
        measured_for = time.monotonic() - started
        still_running = in_flight - len(fake.responses)
    return {
        "p50_ms": pct(latencies, 0.5) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "measured_s": measured_for,
        "in_flight_at_end": still_running,
    }


async def passive_throughput(bot: Bot, fake: FakeSlack, events: int, concurrency: int) -> dict[str, Any]:
    url = f"http://127.0.0.1:{bot.port}/slack/events"
    errors = {n for n in range(events) if n % 10 == 0}  # 10 % registry errors, 90 % chatter
    bodies = [event_body(REGISTRY_ERROR if n in errors else CHATTER, n) for n in range(events)]
    posts_before = len(fake.posts())
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(trust_env=False, timeout=30, limits=limits) as client:

        async def send(body: str) -> None:
            async with semaphore:
                response = await client.post(url, content=body, headers=signed(body, "application/json"))
                assert response.status_code == 200

        t0 = time.perf_counter()
        await asyncio.gather(*(send(b) for b in bodies))
        acked = time.perf_counter() - t0
        deadline = time.monotonic() + 120
        while len(fake.posts()) - posts_before < len(errors) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        processed = time.perf_counter() - t0
    return {
        "events": events,
        "acked_per_s": events / acked,
        "processed_per_s": events / processed,
        "replies": len(fake.posts()) - posts_before,
        "expected_replies": len(errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--dns-timeout", type=float, default=5.0)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()

    fake = FakeSlack().start()
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blackhole.bind(("127.0.0.1", 0))
    tmp = tempfile.TemporaryDirectory()
    dns_port = blackhole.getsockname()[1]
    check_deadline = args.dns_timeout * 3
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ACRCHECK_")) and "PROXY" not in k.upper()
    }
    env.update(
        {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "ACRCHECK_SLACK_API_URL": fake.api_url,
            "ACRCHECK_DATABASE_URL": args.database_url or f"sqlite:///{tmp.name}/bench.db",
            "ACRCHECK_DNS_SERVERS": json.dumps([f"127.0.0.1:{dns_port}"]),
            "ACRCHECK_DNS_TIMEOUT": str(args.dns_timeout),
            "ACRCHECK_PROBE_TIMEOUT": "1.0",
            "ACRCHECK_CHECK_DEADLINE": str(check_deadline),
            "ACRCHECK_ARM_ENDPOINT": "https://127.0.0.1:9",
            "ACRCHECK_AZURE_CREDENTIAL": "none",
            "ACRCHECK_USER_RATE_PER_MINUTE": "100000",
            "ACRCHECK_CHANNEL_RATE_PER_MINUTE": "100000",
            "PYTHONPATH": str(REPO),
        }
    )
    bot = Bot(env)
    bot.start()
    try:
        ack = asyncio.run(ack_latency(bot, fake, args.in_flight, args.probes, args.concurrency))
        print(
            f"/acrcheck ack latency with {args.in_flight} slow checks in flight "
            f"(DNS black hole, {args.dns_timeout:g} s timeout), {args.probes} signed requests, "
            f"concurrency {args.concurrency}:"
        )
        print(
            f"  p50 {ack['p50_ms']:.1f} ms  p99 {ack['p99_ms']:.1f} ms  max {ack['max_ms']:.1f} ms  "
            f"mean {ack['mean_ms']:.1f} ms  (measured over {ack['measured_s']:.2f} s; "
            f"{ack['in_flight_at_end']} of the first {args.in_flight} checks still running at the end)"
        )
        # Let the slow checks drain so they do not skew the throughput figure.
        deadline = time.monotonic() + check_deadline + 15
        while len(fake.responses) < args.in_flight + args.probes and time.monotonic() < deadline:
            time.sleep(0.1)
        thr = asyncio.run(passive_throughput(bot, fake, args.events, 32))
        print(f"passive listener, {thr['events']} signed message events (10 % registry errors), concurrency 32:")
        print(
            f"  acked {thr['acked_per_s']:.0f} events/s; "
            f"fully processed {thr['processed_per_s']:.0f} events/s; threaded replies {thr['replies']}/{thr['expected_replies']}"
        )
    finally:
        bot.stop()
        fake.stop()
        blackhole.close()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
