"""Benchmark: status codes for N hostile or malformed requests to ``POST /slack/events``.

The real HTTP app (signature check, payload guard, Bolt, every handler) over the ASGI
interface, with the fake Slack on loopback and a DNS server that never answers (nothing
leaves 127.0.0.1). Bodies are real Slack payloads (events, slash command, button click,
modal submission, url_verification) mutated at random — truncated, bytes flipped, a field
replaced by another JSON type, wrapped in an array, non-UTF-8 bytes, lone surrogates, deep
nesting, broken ``payload=`` forms — plus random bytes, each sent unsigned, with a forged or
stale signature, and correctly signed, under random content types. Prints the status codes
per kind of signature, and how many ERROR lines and tracebacks were logged.

    .venv/bin/python benchmarks/hostile_requests.py [--requests 2000] [--seed 12]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import random
import socket
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.config import Settings  # noqa: E402
from bot.service.http_app import build_http_app  # noqa: E402
from bot.store import Store  # noqa: E402
from handlers.app import build_app  # noqa: E402
from tests.fakes.slack import BOT_TOKEN, TEAM_ID, FakeSlack  # noqa: E402

SECRET = "bench-signing-secret-0123456789"
JSON, FORM = "application/json", "application/x-www-form-urlencoded"
CONTENT_TYPES = [JSON, FORM, "text/plain", "", "application/json; charset=utf-8", "multipart/form-data", "x/y"]


def templates(response_url: str) -> list[tuple[dict[str, Any], str]]:
    event = {"token": "t", "team_id": TEAM_ID, "api_app_id": "A1", "type": "event_callback", "event_id": "Ev1",
             "event_time": 1, "authorizations": [{"team_id": TEAM_ID, "user_id": "UBOT0001", "is_bot": True}]}  # fmt: skip
    # fmt: off
    return [
        ({**event, "event": {"type": "message", "channel": "C1", "user": "U1", "ts": "1.1", "channel_type": "channel",
          "text": "denied: client with IP '203.0.113.9' is not allowed access"}}, JSON),
        ({**event, "event": {"type": "app_mention", "channel": "C1", "user": "U1", "ts": "1.2", "text": "<@UBOT0001> help"}},
         JSON),
        ({"token": "t", "challenge": "abc", "type": "url_verification"}, JSON),
        ({"command": "/acrcheck", "text": "help", "user_id": "U1", "channel_id": "C1", "team_id": TEAM_ID,
          "response_url": response_url, "trigger_id": "1.2"}, FORM),
        ({"type": "block_actions", "team": {"id": TEAM_ID}, "user": {"id": "U1"}, "channel": {"id": "C1"},
          "trigger_id": "1.2", "response_url": response_url, "container": {"type": "message", "message_ts": "1.1", "channel_id": "C1"},
          "actions": [{"action_id": "acrcheck_helpful", "block_id": "b", "type": "button", "value": "1"}]}, "payload"),
        ({"type": "view_submission", "team": {"id": TEAM_ID}, "user": {"id": "U1"},
          "view": {"id": "V1", "callback_id": "acrcheck_paste", "type": "modal", "state": {"values": {}}}}, "payload"),
    ]
    # fmt: on


def encode(payload: Any, kind: str) -> tuple[bytes, str]:
    if kind == JSON:
        return json.dumps(payload).encode(), JSON
    if kind == FORM:
        return urllib.parse.urlencode(payload if isinstance(payload, dict) else {"x": payload}).encode(), FORM
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode(), FORM


def random_json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(7 if depth < 3 else 5)
    if pick == 0:
        return None
    if pick == 1:
        return rng.random() < 0.5
    if pick == 2:
        return rng.randrange(-(10**6), 10**6)
    if pick == 3:
        return "".join(rng.choice("ab\x00é\u2028{") for _ in range(5))
    if pick == 4:
        return rng.random() * 1e308
    if pick == 5:
        return [random_json(rng, depth + 1)]
    return {"k": random_json(rng, depth + 1)}


def mutate(rng: random.Random, payload: dict[str, Any], kind: str) -> tuple[bytes, str, str]:
    """(body, content type, mutation name)."""
    body, ctype = encode(payload, kind)
    how = rng.choice(["truncate", "flip", "retype", "retype_nested", "wrap", "latin1", "surrogate", "deep",
                      "broken_form", "random", "empty", "none"])  # fmt: skip
    if how == "truncate":
        body = body[: rng.randrange(len(body))]
    elif how == "flip":
        data = bytearray(body)
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        body = bytes(data)
    elif how in ("retype", "retype_nested"):
        target = payload
        nested = [v for v in payload.values() if isinstance(v, dict)]
        if how == "retype_nested" and nested:
            target = rng.choice(nested)
        clone = json.loads(json.dumps(payload))
        key = rng.choice(list(target))
        holder = clone if target is payload else next(v for v in clone.values() if v == target)
        holder[key] = random_json(rng)
        body, ctype = encode(clone, kind)
    elif how == "wrap":
        body = json.dumps([payload]).encode() if kind != FORM else urllib.parse.urlencode({"payload": "[1]"}).encode()
    elif how == "latin1":
        body = body.replace(b"a", b"\xe9", 1)
    elif how == "surrogate":
        body = body.replace(b'"U1"', b'"\\ud800"', 1) if b'"U1"' in body else b'{"type": "\\udfff"}'
    elif how == "deep":
        n = rng.randrange(1000, 200_000)
        body = b"[" * n + b"]" * n
    elif how == "broken_form":
        body, ctype = b"payload=%7B" + body[:20], FORM
    elif how == "random":
        body = rng.randbytes(rng.randrange(1, 300))
    elif how == "empty":
        body = b""
    if rng.random() < 0.3:
        ctype = rng.choice(CONTENT_TYPES)
    return body, ctype, how


def signature(body: bytes, *, secret: str = SECRET, ts: str | None = None) -> dict[str, str]:
    ts = ts or str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0
        self.tracebacks = 0
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.tracebacks += record.exc_info is not None or "Traceback" in record.getMessage()
        if len(self.samples) < 5:
            lines = [ln for ln in record.getMessage().splitlines() if ln.strip()]
            self.samples.append(f"{record.name}: {lines[0][:100]} … {lines[-1][:150]}")


async def run(requests: int, seed: int, tmp: Path) -> None:
    slack = FakeSlack().start()
    blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blackhole.bind(("127.0.0.1", 0))
    settings = Settings(
        slack_bot_token=BOT_TOKEN, slack_signing_secret=SECRET, slack_api_url=slack.api_url,
        database_url=f"sqlite:///{tmp / 'bench.db'}", dns_servers=[f"127.0.0.1:{blackhole.getsockname()[1]}"],
        dns_timeout=0.2, probe_timeout=0.2, check_deadline=1.0, arm_endpoint="https://127.0.0.1:9",
        azure_credential="none", user_rate_per_minute=100000, channel_rate_per_minute=100000,
    )  # fmt: skip
    store = Store.from_url(settings.database_url)
    app = build_http_app(build_app(settings, store), oauth=False)
    errors = Errors()
    logging.getLogger().addHandler(errors)
    logging.getLogger().setLevel(logging.WARNING)
    rng = random.Random(seed)
    bases = templates(f"{slack.base_url}/response/bench")
    codes: dict[str, Counter[int]] = {k: Counter() for k in ("unsigned", "forged", "stale", "signed")}
    mutations: Counter[str] = Counter()
    started = time.perf_counter()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://acrcheck.bench") as client:
        for _ in range(requests):
            payload, kind = rng.choice(bases)
            body, ctype, how = mutate(rng, payload, kind)
            mutations[how] += 1
            how_signed = rng.choice(list(codes))
            headers = {"Content-Type": ctype}
            if how_signed == "signed":
                headers.update(signature(body))
            elif how_signed == "forged":
                headers.update(signature(body, secret="guess"))
            elif how_signed == "stale":
                headers.update(signature(body, ts=str(int(time.time()) - 3600)))
            try:
                response = await client.post("/slack/events", content=body, headers=headers)
            except Exception:  # the app raised instead of answering: a server uvicorn would turn into 500
                codes[how_signed][500] += 1
                continue
            codes[how_signed][response.status_code] += 1
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending, timeout=15)
    elapsed = time.perf_counter() - started
    logging.getLogger().removeHandler(errors)
    slack.stop()
    store.dispose()
    blackhole.close()
    total = Counter[int]()
    for counter in codes.values():
        total.update(counter)
    print(f"{requests} requests in {elapsed:.1f}s (seed {seed}); mutations: {dict(sorted(mutations.items()))}")
    for name, counter in codes.items():
        print(f"  {name:9s} {sum(counter.values()):5d}: {dict(sorted(counter.items()))}")
    print(f"  all       {requests:5d}: {dict(sorted(total.items()))}")
    print(f"5xx: {sum(n for code, n in total.items() if code >= 500)}; ERROR log lines: {errors.count}; "
          f"tracebacks: {errors.tracebacks}")  # fmt: skip
    for sample in errors.samples:
        print("  e.g.", sample)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acrcheck-hostile-") as tmp:
        asyncio.run(run(args.requests, args.seed, Path(tmp)))


if __name__ == "__main__":
    main()
