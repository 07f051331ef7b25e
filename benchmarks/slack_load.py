"""Benchmark: /acrcheck ack latency (single, bursts, under load) and passive-listener throughput.

Slack gives a slash command 3 s to be acked, and users see every millisecond of it. The
ack must wait for nothing but the signature check, parsing, the guard and the rate
limit: not for the live check, not for other commands' work. Three figures:

* single commands, one at a time;
* bursts of 60 commands sent at the same instant (a team hitting an outage together);
* new commands while 50 slow checks are still running.

The checks are made slow on purpose: the bot's DNS server is a loopback UDP socket that
never answers, so each check waits for its DNS timeout (``--dns-timeout``).

Everything is real except Slack: ``acrcheck serve`` runs in a child process (HTTP mode,
Starlette + uvicorn on 127.0.0.1), requests are signed with slack_sdk's SignatureVerifier,
and the fake Slack from tests/fakes/slack.py (aiohttp only) answers the Web API and
response_url. Needs only the runtime dependencies (no pytest).

    .venv/bin/python benchmarks/slack_load.py [--burst 60] [--bursts 5] [--events 2000]
        [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
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

from tests.fakes.slack import BOT_USER_ID, TEAM_ID, FakeSlack  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_ready import SECRET, serve_env  # noqa: E402

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


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies),
        "p50_ms": pct(latencies, 0.5) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "max_ms": max(latencies) * 1000,
    }


def show(label: str, figures: dict[str, float]) -> None:
    print(
        f"  {label}: n={figures['n']:.0f}  p50 {figures['p50_ms']:.1f} ms  "
        f"p99 {figures['p99_ms']:.1f} ms  max {figures['max_ms']:.1f} ms"
    )


async def post_once(port: int, request: bytes) -> tuple[int, str]:
    """One HTTP/1.1 request on a new connection, as Slack sends them; (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        raw = await reader.read()  # Connection: close, so the response ends at EOF
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body.decode("utf-8", "replace")


class Commands:
    """Signed ``/acrcheck REGISTRY`` requests, each with a unique registry and user.

    Requests are built and signed before the clock starts and sent with plain asyncio
    streams, so the figure is the bot's latency, not this client's (it shares the machine).
    """

    def __init__(self, bot: Bot, fake: FakeSlack) -> None:
        self.port = bot.port
        self.fake = fake
        self.sent = 0

    def request(self, tag: str) -> bytes:
        self.sent += 1
        body = command_body(self.fake, f"{tag}{self.sent:05d}", f"U{tag.upper()}{self.sent:05d}")
        return raw_request(self.port, body, "application/x-www-form-urlencoded")

    async def send(self, request: bytes) -> float:
        """Seconds from sending the request to having Slack's ack (the HTTP 200 with "Checking")."""
        t0 = time.perf_counter()
        status, text = await post_once(self.port, request)
        elapsed = time.perf_counter() - t0
        if status != 200 or "Checking" not in text:
            raise RuntimeError(f"unexpected ack: HTTP {status} {text[:200]}")
        return elapsed

    async def one(self, tag: str) -> float:
        return await self.send(self.request(tag))

    async def drain(self, timeout: float) -> None:
        """Wait until every check started so far has answered on its response_url."""
        deadline = time.monotonic() + timeout
        while len(self.fake.responses) < self.sent and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


async def single_latency(commands: Commands, count: int, pause: float) -> dict[str, float]:
    """One command at a time."""
    latencies: list[float] = []
    for _ in range(count):
        latencies.append(await commands.one("single"))
        await asyncio.sleep(pause)
    return summary(latencies)


async def burst_latency(commands: Commands, size: int, bursts: int, drain: float) -> dict[str, float]:
    """``size`` commands sent at the same instant, each on its own new connection; ``bursts`` times."""
    latencies: list[float] = []
    for _ in range(bursts):
        await commands.drain(drain)  # each burst meets an idle bot, as a burst after a quiet spell
        requests = [commands.request("burst") for _ in range(size)]
        latencies += await asyncio.gather(*(commands.send(r) for r in requests))
    return summary(latencies)


async def loaded_latency(commands: Commands, in_flight: int, probes: int, concurrency: int) -> dict[str, float]:
    """New commands acked while ``in_flight`` slow checks are still running."""
    await asyncio.gather(*(commands.send(commands.request("loadreg")) for _ in range(in_flight)))
    semaphore = asyncio.Semaphore(concurrency)

    async def probe() -> float:
        async with semaphore:
            return await commands.one("probereg")

    return summary(list(await asyncio.gather(*(probe() for _ in range(probes)))))


def raw_request(port: int, body: str, content_type: str) -> bytes:
    """A signed HTTP/1.1 POST to /slack/events, ready to send (``Connection: close``)."""
    head = [
        "POST /slack/events HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Content-Length: {len(body.encode())}",
        "Connection: close",
    ]
    head += [f"{name}: {value}" for name, value in signed(body, content_type).items()]
    return ("\r\n".join(head) + "\r\n\r\n" + body).encode()


async def passive_throughput(bot: Bot, fake: FakeSlack, events: int, concurrency: int) -> dict[str, Any]:
    errors = {n for n in range(events) if n % 10 == 0}  # 10 % registry errors, 90 % chatter
    requests = [
        raw_request(bot.port, event_body(REGISTRY_ERROR if n in errors else CHATTER, n), "application/json")
        for n in range(events)
    ]
    posts_before = len(fake.posts())
    semaphore = asyncio.Semaphore(concurrency)

    async def send(request: bytes) -> None:
        async with semaphore:
            status, text = await post_once(bot.port, request)
            if status != 200:
                raise RuntimeError(f"event not acked: HTTP {status} {text[:200]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(send(r) for r in requests))
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


async def command_figures(bot: Bot, fake: FakeSlack, args: argparse.Namespace) -> None:
    commands = Commands(bot, fake)
    drain = args.dns_timeout * 3 + 15
    # Warm-up: first-request costs (imports on first use, auth.test, DB connections) are not what we measure.
    for _ in range(3):
        await commands.one("warm")
    await commands.drain(drain)
    print(f"/acrcheck REGISTRY ack latency (HTTP, signed; checks slowed by a DNS black hole, {args.dns_timeout:g} s):")
    show("single commands, one at a time", await single_latency(commands, args.singles, 0.05))
    await commands.drain(drain)
    show(
        f"bursts of {args.burst} simultaneous commands x{args.bursts}",
        await burst_latency(commands, args.burst, args.bursts, drain),
    )
    await commands.drain(drain)
    show(
        f"{args.probes} commands at concurrency {args.concurrency} with {args.in_flight} checks in flight",
        await loaded_latency(commands, args.in_flight, args.probes, args.concurrency),
    )
    await commands.drain(drain)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--singles", type=int, default=50, help="commands sent one at a time")
    parser.add_argument("--burst", type=int, default=60, help="commands per simultaneous burst")
    parser.add_argument("--bursts", type=int, default=5)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--events", type=int, default=2000, help="0 skips the passive-listener figure")
    parser.add_argument("--dns-timeout", type=float, default=2.0)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()

    fake = FakeSlack().start()
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blackhole.bind(("127.0.0.1", 0))
    tmp = tempfile.TemporaryDirectory()
    dns_port = blackhole.getsockname()[1]
    check_deadline = args.dns_timeout * 3
    env = serve_env(
        fake,
        args.database_url or f"sqlite:///{tmp.name}/bench.db",
        ACRCHECK_DNS_SERVERS=json.dumps([f"127.0.0.1:{dns_port}"]),
        ACRCHECK_DNS_TIMEOUT=str(args.dns_timeout),
        ACRCHECK_PROBE_TIMEOUT="1.0",
        ACRCHECK_CHECK_DEADLINE=str(check_deadline),
        ACRCHECK_ARM_ENDPOINT="https://127.0.0.1:9",
        ACRCHECK_USER_RATE_PER_MINUTE="100000",
        ACRCHECK_CHANNEL_RATE_PER_MINUTE="100000",
    )
    bot = Bot(env)
    bot.start()
    try:
        database = "PostgreSQL" if (args.database_url or "").startswith("postgres") else "SQLite"
        print(f"acrcheck serve (HTTP mode, {database}) on {os.cpu_count()} cores")
        asyncio.run(command_figures(bot, fake, args))
        if args.events:
            thr = asyncio.run(passive_throughput(bot, fake, args.events, 32))
            print(f"passive listener, {thr['events']} signed message events (10 % registry errors), concurrency 32:")
            print(
                f"  acked {thr['acked_per_s']:.0f} events/s; fully processed {thr['processed_per_s']:.0f} events/s; "
                f"threaded replies {thr['replies']}/{thr['expected_replies']}"
            )
    finally:
        bot.stop()
        fake.stop()
        blackhole.close()
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
