"""Real scheduler processes on one PostgreSQL against the fake Slack, and how to judge them.

Shared by the multi-replica tests and ``benchmarks/crash_exactly_once.py``. Each replica is
``python -m bot.scheduler.runner`` with the scripted registry side (``fake_registry.py``);
every registry's status flips each slot, so every slot after the first produces exactly one
thread reply per watch, and every post carries ``{job, slot, op}`` metadata, so a duplicate
or a missed post is countable in the fake Slack.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fake_registry import World
from fake_slack import FakeSlack
from sqlalchemy import select

from bot.scheduler.store import Store, claims, leader_epochs

HERE = Path(__file__).parent
REPO = HERE.parent.parent
INTERVAL = 2
WATCHES = [("rega", "C1"), ("regb", "C1"), ("regc", "C2")]


def spawn(
    count: int,
    pg_url: str,
    slack: FakeSlack,
    state: Path,
    logs: Path,
    *,
    name: str = "runner",
    env: dict[str, str] | None = None,
) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` runner processes; ``env`` adds variables (crash points, grace)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ACRCHECK_", "SLACK_"))}
    base.update(
        ACRCHECK_DATABASE_URL=pg_url,
        ACRCHECK_SLACK_API_URL=slack.api_url,
        SLACK_BOT_TOKEN="xoxb-test",
        FAKE_REGISTRY_STATE=str(state),
        PYTHONPATH=str(REPO),
    )
    base.update(env or {})
    fake = str(HERE / "fake_registry.py")
    cmd = [
        sys.executable, "-m", "bot.scheduler.runner", "--check", f"{fake}:check", "--reader", f"{fake}:read",
        "--poll", "0.2", "--grace", "0.5", "--sync", "0.5", "--slack-interval", "0",
    ]  # fmt: skip
    procs = []
    for i in range(count):
        out = (logs / f"{name}{i}.log").open("wb")
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=base, stdout=out, stderr=subprocess.STDOUT))
    return procs


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def leader(store: Store) -> tuple[int, str] | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(leader_epochs.c.epoch, leader_epochs.c.holder)).first()
    return (int(row[0]), str(row[1])) if row else None


def leader_pid(store: Store) -> int | None:
    term = leader(store)
    return int(term[1].split(":")[1]) if term else None


def done_slots(store: Store) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for key, slot, _, state in store.claims_for("watch:"):
        if state == "done":
            out.setdefault(key, []).append(slot)
    return out


def claim_rows(store: Store) -> list[dict[str, Any]]:
    """Every watch claim with its journaled plan (what each action found, who finished it)."""
    import json

    with store.engine.connect() as conn:
        rows = conn.execute(
            select(claims.c.job_key, claims.c.slot, claims.c.owner, claims.c.state, claims.c.plan).order_by(
                claims.c.slot, claims.c.job_key
            )
        )
        return [
            {"job": r[0], "slot": int(r[1]), "owner": r[2], "state": r[3], "plan": json.loads(r[4]) if r[4] else None}
            for r in rows
        ]


def post_counts(slack: FakeSlack) -> tuple[Counter[tuple[str, int]], Counter[tuple[str, int]]]:
    """(replies, top-level posts) per (job, slot), from the metadata every post carries."""
    replies: Counter[tuple[str, int]] = Counter()
    top: Counter[tuple[str, int]] = Counter()
    for call in slack.posts():
        payload = (call.params.get("metadata") or {}).get("event_payload") or {}
        key = (str(payload.get("job")), int(payload.get("slot") or 0))
        (replies if call.params.get("thread_ts") else top)[key] += 1
    return replies, top


def judge(store: Store, slack: FakeSlack, *, min_slots: int) -> tuple[int, int]:
    """(duplicates, missed) over all watches and slots; see ``check_exactly_once`` for the rules."""
    slots = done_slots(store)
    replies, top = post_counts(slack)
    duplicates = sum(n - 1 for n in replies.values() if n > 1) + sum(n - 1 for n in top.values() if n > 1)
    missed = 0
    for job, job_slots in slots.items():
        job_slots.sort()
        expected = list(range(job_slots[0], job_slots[-1] + 1, INTERVAL))
        missed += len(set(expected) - set(job_slots))  # a slot nobody finished
        missed += int(sum(n for (j, _), n in top.items() if j == job) == 0)  # no status message at all
        # Status flips each slot, so each later slot replies exactly once. The second slot is
        # exempt: the first (catch-up) run may start its check after the slot boundary and so
        # already see the next slot's status (an artefact of the wall-clock fake, not of the bot).
        missed += sum(1 for s in job_slots[2:] if replies[(job, s)] == 0)
    missed += max(0, len(WATCHES) - len(slots)) * min_slots
    missed += sum(max(0, min_slots - len(v)) for v in slots.values())
    return duplicates, missed


def check_exactly_once(store: Store, slack: FakeSlack, *, min_slots: int) -> None:
    slots = done_slots(store)
    assert len(slots) == len(WATCHES), slots
    replies, top = post_counts(slack)
    assert all(n == 1 for n in replies.values()), replies  # no duplicate replies
    tops = Counter(job for job, _ in top.elements())
    assert all(n == 1 for n in tops.values()), top  # one status message per watch
    for job, job_slots in slots.items():
        job_slots.sort()
        assert len(job_slots) >= min_slots, (job, job_slots)
        assert job_slots == list(range(job_slots[0], job_slots[-1] + 1, INTERVAL)), f"gap in {job}: {job_slots}"
        assert top[(job, job_slots[0])] == 1
        for s in job_slots[2:]:
            assert replies[(job, s)] == 1, (job, s, replies)
    assert judge(store, slack, min_slots=min_slots) == (0, 0)


def make_world(store: Store, state: Path, *, check_delay: float = 0.6) -> Path:
    world = World()
    world.flip_interval = INTERVAL
    world.check_delay = check_delay
    for name, channel in WATCHES:
        world.add(name)
        store.upsert_watch(name, channel, f"every {INTERVAL}s", source="slack")
    world.save(state)
    return state
