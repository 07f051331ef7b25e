"""Several real scheduler processes on one PostgreSQL: one post per slot, even across SIGKILL.

Each process is ``python -m bot.scheduler.runner`` with the scripted registry side. Every
registry's status flips each slot, so every slot after the first must produce exactly one
thread reply per watch; posts carry ``{job, slot}`` metadata so duplicates are visible.
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

import pytest
from fake_registry import World
from fake_slack import FakeSlack
from sqlalchemy import select

from bot.scheduler.store import Store, leader_epochs

pytestmark = pytest.mark.postgres

HERE = Path(__file__).parent
REPO = HERE.parent.parent
INTERVAL = 2
WATCHES = [("rega", "C1"), ("regb", "C1"), ("regc", "C2")]


def spawn(
    count: int, pg_url: str, slack: FakeSlack, state: Path, logs: Path, *, name: str = "runner"
) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACRCHECK_", "SLACK_"))}
    env.update(
        ACRCHECK_DATABASE_URL=pg_url,
        ACRCHECK_SLACK_API_URL=slack.api_url,
        SLACK_BOT_TOKEN="xoxb-test",
        FAKE_REGISTRY_STATE=str(state),
        PYTHONPATH=str(REPO),
    )
    fake = str(HERE / "fake_registry.py")
    cmd = [
        sys.executable, "-m", "bot.scheduler.runner", "--check", f"{fake}:check", "--reader", f"{fake}:read",
        "--poll", "0.2", "--grace", "0.5", "--sync", "0.5", "--slack-interval", "0",
    ]  # fmt: skip
    procs = []
    for i in range(count):
        out = (logs / f"{name}{i}.log").open("wb")
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT))
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


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def leader(store: Store) -> tuple[int, str] | None:
    with store.engine.connect() as conn:
        row = conn.execute(select(leader_epochs.c.epoch, leader_epochs.c.holder)).first()
    return (int(row[0]), str(row[1])) if row else None


def done_slots(store: Store) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for key, slot, _, state in store.claims_for("watch:"):
        if state == "done":
            out.setdefault(key, []).append(slot)
    return out


def check_exactly_once(store: Store, slack: FakeSlack, *, min_slots: int) -> None:
    slots = done_slots(store)
    assert len(slots) == len(WATCHES)
    per_slot: Counter[tuple[str, int]] = Counter()
    top: Counter[tuple[str, int]] = Counter()
    for call in slack.posts():
        payload = (call.params.get("metadata") or {}).get("event_payload") or {}
        key = (str(payload.get("job")), int(payload.get("slot") or 0))
        (per_slot if call.params.get("thread_ts") else top)[key] += 1
    assert all(n == 1 for n in per_slot.values()), per_slot  # no duplicate replies
    assert all(n == 1 for n in top.values()), top  # one status message per watch
    for job, job_slots in slots.items():
        job_slots.sort()
        assert len(job_slots) >= min_slots, (job, job_slots)
        assert job_slots == list(range(job_slots[0], job_slots[-1] + 1, INTERVAL)), (
            f"gap in {job}: {job_slots}"
        )
        assert top[(job, job_slots[0])] == 1
        # Status flips each slot, so each later slot replies exactly once. The second slot is
        # exempt: the first (catch-up) run may start its check after the slot boundary and so
        # already see the next slot's status (an artefact of the wall-clock fake, not of the bot).
        for s in job_slots[2:]:
            assert per_slot[(job, s)] == 1, (job, s, per_slot)


@pytest.fixture
def replica_env(pg_store: Store, fake_slack: FakeSlack, tmp_path: Path) -> Path:
    world = World()
    world.flip_interval = INTERVAL
    world.check_delay = 0.6
    for name, channel in WATCHES:
        world.add(name)
        pg_store.upsert_watch(name, channel, f"every {INTERVAL}s", source="slack")
    state = tmp_path / "world.json"
    world.save(state)
    return state


@pytest.mark.parametrize("replicas", [2, 3])
def test_replicas_post_once_per_slot(
    replicas: int, pg_url: str, pg_store: Store, fake_slack: FakeSlack, replica_env: Path, tmp_path: Path
) -> None:
    procs = spawn(replicas, pg_url, fake_slack, replica_env, tmp_path)
    try:
        wait_until(lambda: all(len(v) >= 4 for v in done_slots(pg_store).values()) and
                   len(done_slots(pg_store)) == len(WATCHES), 30, "four slots")  # fmt: skip
    finally:
        stop_all(procs)
    term = leader(pg_store)
    assert term is not None and term[0] == 1  # one term: nobody else led
    check_exactly_once(pg_store, fake_slack, min_slots=4)


def test_leader_killed_mid_run_is_replaced_without_double_post(
    pg_url: str, pg_store: Store, fake_slack: FakeSlack, replica_env: Path, tmp_path: Path
) -> None:
    procs = spawn(3, pg_url, fake_slack, replica_env, tmp_path)
    try:
        wait_until(lambda: len(done_slots(pg_store)) == len(WATCHES) and
                   all(len(v) >= 2 for v in done_slots(pg_store).values()), 30, "two slots")  # fmt: skip
        term, holder = leader(pg_store) or (0, "")
        pid = int(holder.split(":")[1])
        victim = next(p for p in procs if p.pid == pid)
        # land inside a run: checks take 0.6 s from the slot start
        wait_until(lambda: 0.2 <= time.time() % INTERVAL <= 0.35, 5, "mid-run moment")
        killed_at = time.time()
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=5)
        wait_until(lambda: (leader(pg_store) or (0, ""))[0] > term, 10, "a new leader")
        takeover = time.time() - killed_at
        killed_slot = int(killed_at // INTERVAL * INTERVAL)
        wait_until(lambda: all(max(v) >= killed_slot + 3 * INTERVAL for v in done_slots(pg_store).values()),
                   30, "three more slots")  # fmt: skip
    finally:
        stop_all(procs)
    assert takeover < 3.0, f"takeover took {takeover:.1f}s"
    check_exactly_once(pg_store, fake_slack, min_slots=5)
    owners = {owner for key, slot, owner, _ in pg_store.claims_for("watch:") if slot == killed_slot}
    assert owners and str(pid) not in {o.split(":")[1] for o in owners}  # the new leader finished it


def test_deposed_leader_cannot_claim(pg_url: str, pg_store: Store) -> None:
    """Fencing: a claim needs this session to hold the advisory lock right now."""
    from bot.scheduler.leader import PgAdvisoryLeader

    nobody = PgAdvisoryLeader(pg_url, owner="zombie")
    assert pg_store.claim_many(["watch:1"], 0, owner="zombie", epoch=9, fence=nobody.fence(),
                               allow_takeover=True) == {}  # fmt: skip
    assert pg_store.claims_for() == []
