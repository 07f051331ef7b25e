"""Several real scheduler processes on one PostgreSQL: one post per slot, even across SIGKILL.

Each process is ``python -m bot.scheduler.runner`` with the scripted registry side. Every
registry's status flips each slot, so every slot after the first must produce exactly one
thread reply per watch; posts carry ``{job, slot}`` metadata so duplicates are visible.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from fake_slack import FakeSlack
from replica_harness import INTERVAL, WATCHES, check_exactly_once, done_slots, leader, spawn, stop_all, wait_until

from bot.scheduler.store import Store

pytestmark = pytest.mark.postgres


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
