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


def delivery(store: Store, slack: FakeSlack) -> dict[str, Any]:
    """Every decided post against the fake Slack, from the journal (what crashes can break).

    * ``duplicates``: posts of one (job, slot, op) beyond the first;
    * ``lost``: a post a saved plan decided on that is not in Slack, or a plan never finished;
    * ``skipped``: runs a leader claimed and died on before deciding anything (``claimed``,
      no plan): nothing was posted or decided and the baseline did not move, so the watch's
      next run reports whatever changed — by design, not a lost post. Listed with their owner.
    """
    posts: Counter[tuple[str, int, str]] = Counter()
    for call in slack.posts():
        payload = (call.params.get("metadata") or {}).get("event_payload") or {}
        op = payload.get("op") or ("reply" if call.params.get("thread_ts") else "status")
        posts[(str(payload.get("job")), int(payload.get("slot") or 0), str(op))] += 1
    lost: list[tuple[str, int, str]] = []
    skipped: list[dict[str, Any]] = []
    for row in claim_rows(store):
        plan = row["plan"]
        if row["state"] == "claimed" and plan is None:
            skipped.append(row)
            continue
        if row["state"] != "done" or plan is None:
            lost.append((row["job"], row["slot"], row["state"]))
            continue
        for action in plan["actions"]:
            # a status action is an in-place edit unless it had to post (then it was journaled)
            posted = action["op"] != "status" or "sent_at" in action or "found" in action
            if posted and not action.get("error") and posts[(row["job"], row["slot"], action["op"])] == 0:
                lost.append((row["job"], row["slot"], action["op"]))
    return {
        "duplicates": sum(n - 1 for n in posts.values() if n > 1),
        "duplicate_keys": sorted(k for k, n in posts.items() if n > 1),
        "lost": lost,
        "skipped": skipped,
    }


def check_exactly_once_through_crash(store: Store, slack: FakeSlack, *, crash_slot: int, dead_pid: int) -> None:
    """After a leader died in ``crash_slot``: nothing twice, nothing decided lost, and service goes on.

    Only runs of the dead leader in its own slot may be skipped (see :func:`delivery`); from
    two slots after the crash every watch runs every slot and, the status flipping each
    slot, replies exactly once per slot.
    """
    result = delivery(store, slack)
    assert result["duplicates"] == 0, result["duplicate_keys"]
    assert result["lost"] == [], result["lost"]
    for row in result["skipped"]:
        assert row["slot"] == crash_slot and f":{dead_pid}:" in row["owner"], row
    replies, top = post_counts(slack)
    tops = Counter(job for job, _ in top.elements())
    assert sorted(tops) == sorted(f"watch:{i}" for i in range(1, len(WATCHES) + 1)), top
    assert all(n == 1 for n in tops.values()), top
    slots = done_slots(store)
    assert len(slots) == len(WATCHES), slots
    for job, job_slots in slots.items():
        later = sorted(s for s in job_slots if s >= crash_slot + 2 * INTERVAL)
        assert later and later == list(range(later[0], later[-1] + 1, INTERVAL)), (job, job_slots)
        assert later[0] == crash_slot + 2 * INTERVAL, (job, job_slots)
        for s in later:
            assert replies[(job, s)] == 1, (job, s, replies)


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
    result = delivery(store, slack)
    assert result["duplicates"] == 0 and result["lost"] == [] and result["skipped"] == [], result


def make_world(store: Store, state: Path, *, check_delay: float = 0.6) -> Path:
    world = World()
    world.flip_interval = INTERVAL
    world.check_delay = check_delay
    for name, channel in WATCHES:
        world.add(name)
        store.upsert_watch(name, channel, f"every {INTERVAL}s", source="slack")
    world.save(state)
    return state
