"""Exactly-once scheduled posts through a crash at any instant of the post, and a SIGTERM drain.

Three real runner processes share one PostgreSQL and the fake Slack (over loopback). The
leader dies at a precise point of posting one message:

* crash points inside the process (``bot.scheduler.crashpoints``: SIGKILL by itself) — after
  the plan was saved, just before the request leaves, right after Slack answered (answer not
  yet recorded), right after the answer was recorded;
* Slack applied the message but the answer never arrived: the fake Slack applies the post,
  holds the answer, and the test SIGKILLs the leader meanwhile.

A follower takes over and resumes the plan; every (watch, slot) must end up posted exactly
once: zero duplicates, zero missed. The SIGTERM test holds a post's answer, sends SIGTERM, and
checks the leader keeps leadership until the post is answered and recorded, then exits.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_slack import FakeSlack
from replica_harness import (
    INTERVAL,
    WATCHES,
    check_exactly_once,
    check_exactly_once_through_crash,
    claim_rows,
    done_slots,
    leader,
    leader_pid,
    spawn,
    stop_all,
    wait_until,
)

from bot.scheduler.store import Store

pytestmark = pytest.mark.postgres

REPLICAS = 3


def _is_reply(method: str, params: dict[str, Any]) -> bool:
    return method == "chat.postMessage" and bool(params.get("thread_ts"))


def _is_status_post(method: str, params: dict[str, Any]) -> bool:
    return method == "chat.postMessage" and not params.get("thread_ts")


def _crash_slot(store: Store, pid: int, crashed_at: float) -> int:
    """The slot the dead leader was working on: its latest claim (else the wall clock's)."""
    mine = [r["slot"] for r in claim_rows(store) if f":{pid}:" in r["owner"]]
    return max(mine) if mine else int(crashed_at // INTERVAL * INTERVAL)


def held_call_ts(slack: FakeSlack) -> str:
    """The ts Slack gave the held (or dropped) message."""
    call = slack.held_call
    assert call is not None
    [ts] = [ts for (_, ts), params in slack.messages.items() if params.get("metadata") == call.params["metadata"]]
    return ts


def _victim(procs: list[subprocess.Popen[bytes]], pid: int) -> subprocess.Popen[bytes]:
    return next(p for p in procs if p.pid == pid)


def _finish_after(store: Store, slot: int, procs: list[subprocess.Popen[bytes]]) -> None:
    """Let the survivors run two more slots after ``slot`` (and three in all) on every watch, then
    stop them (SIGTERM)."""
    try:
        wait_until(
            lambda: len(done_slots(store)) == len(WATCHES)
            and all(max(v) >= slot + 2 * INTERVAL and len(v) >= 3 for v in done_slots(store).values()),
            30,
            "two more slots after the crash",
        )
    finally:
        stop_all(procs)


def _resumed_actions(store: Store, op: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(claim, action) of each ``op`` action attempted twice: the successor searched for it (``found``).

    Besides the one the crash cut short, posts to other channels may have been in flight too.
    """
    return [
        (row, action)
        for row in claim_rows(store)
        for action in (row["plan"] or {}).get("actions", [])
        if action["op"] == op and "found" in action
    ]


def _the_resumed_action(store: Store, op: str, job: str, slot: int) -> dict[str, Any]:
    found = [a for row, a in _resumed_actions(store, op) if (row["job"], row["slot"]) == (job, slot)]
    assert len(found) == 1, claim_rows(store)
    return found[0]


# (crash point, its occurrence, the op being posted when it fires, whether the post exists then).
# Posts in order: slot 1 = three status messages, slot 2 = per watch a status edit and a reply.
CRASH_POINTS = [
    ("after_plan", 4, "reply", False),  # plan of slot 2 saved, nothing sent
    ("before_post", 4, "reply", False),  # attempt journaled, request not sent
    ("after_post", 2, "status", True),  # Slack answered a status post, answer not recorded
    ("after_post", 4, "reply", True),  # ... a reply
    ("after_record", 4, "reply", False),  # status edit recorded, reply not started
]


@pytest.mark.parametrize(("point", "nth", "op", "posted"), CRASH_POINTS, ids=[f"{p}@{n}" for p, n, *_ in CRASH_POINTS])
def test_sigkill_at_a_crash_point_posts_exactly_once(
    point: str, nth: int, op: str, posted: bool, pg_url: str, pg_store: Store, fake_slack: FakeSlack,
    replica_env: Path, tmp_path: Path,
) -> None:  # fmt: skip
    flag = tmp_path / "crashed"
    env = {"ACRCHECK_TEST_CRASH_AT": f"{point}@{nth}", "ACRCHECK_TEST_CRASH_FLAG": str(flag)}
    procs = spawn(REPLICAS, pg_url, fake_slack, replica_env, tmp_path, env=env)
    try:
        wait_until(flag.exists, 40, f"a replica reaching {point}@{nth}")
        crashed_at = time.time()
        dead = wait_until(lambda: [p for p in procs if p.poll() is not None], 5, "the crashed replica to exit")
        assert [p.returncode for p in dead] == [-signal.SIGKILL], [p.returncode for p in dead]
        wait_until(lambda: leader_pid(pg_store) not in (None, dead[0].pid), 10, "a new leader")
    except BaseException:
        stop_all(procs)
        raise
    crash_slot = _crash_slot(pg_store, dead[0].pid, crashed_at)
    _finish_after(pg_store, crash_slot, procs)

    check_exactly_once_through_crash(pg_store, fake_slack, crash_slot=crash_slot, dead_pid=dead[0].pid)
    if point in ("before_post", "after_post"):  # the attempt was journaled: the successor looked first
        resumed = _resumed_actions(pg_store, op)
        assert any((action["found"] is not None) is posted for _, action in resumed), resumed
        assert all(str(dead[0].pid) not in row["owner"] for row, _ in resumed)
        assert len(fake_slack.lookups()) >= len(resumed)
    else:  # nothing had left: resumed without a search
        assert not fake_slack.lookups()


@pytest.mark.parametrize("op", ["reply", "status"])
def test_sigkill_after_slack_applied_but_before_the_answer(
    op: str, pg_url: str, pg_store: Store, fake_slack: FakeSlack, replica_env: Path, tmp_path: Path
) -> None:
    """The message exists in Slack; its answer never reaches the leader, which dies waiting."""
    match: Callable[[str, dict[str, Any]], bool] = _is_reply if op == "reply" else _is_status_post
    held = fake_slack.hold(match, applied=True)
    procs = spawn(REPLICAS, pg_url, fake_slack, replica_env, tmp_path)
    try:
        assert held.wait(40), "no post reached the fake Slack"
        pid = leader_pid(pg_store)
        assert pid is not None
        victim = _victim(procs, pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=5)
        fake_slack.release()  # the answer goes nowhere: its caller is gone
        wait_until(lambda: leader_pid(pg_store) not in (None, pid), 10, "a new leader")
    except BaseException:
        stop_all(procs)
        raise
    held_call = fake_slack.held_call
    assert held_call is not None
    payload = held_call.params["metadata"]["event_payload"]
    _finish_after(pg_store, int(payload["slot"]), procs)

    check_exactly_once_through_crash(pg_store, fake_slack, crash_slot=int(payload["slot"]), dead_pid=pid)
    action = _the_resumed_action(pg_store, op, payload["job"], int(payload["slot"]))
    assert action["found"] == held_call_ts(fake_slack), action  # the successor found the very message
    [row] = [r for r in claim_rows(pg_store) if (r["job"], r["slot"]) == (payload["job"], payload["slot"])]
    assert str(pid) not in row["owner"]  # and finished the claim


def test_connection_lost_after_slack_applied_is_not_reposted(
    pg_url: str, pg_store: Store, fake_slack: FakeSlack, replica_env: Path, tmp_path: Path
) -> None:
    """No crash: Slack applied a reply and the connection dropped. slack_sdk would resend it;
    the poster must not, and the sweep's retry finds the message instead of posting again."""
    dropped = fake_slack.drop(_is_reply)
    procs = spawn(1, pg_url, fake_slack, replica_env, tmp_path)
    try:
        assert dropped.wait(40), "no reply reached the fake Slack"
        held_call = fake_slack.held_call
        assert held_call is not None
        slot = int(held_call.params["metadata"]["event_payload"]["slot"])
    except BaseException:
        stop_all(procs)
        raise
    _finish_after(pg_store, slot, procs)
    check_exactly_once(pg_store, fake_slack, min_slots=3)
    action = _the_resumed_action(pg_store, "reply", str(held_call.params["metadata"]["event_payload"]["job"]), slot)
    assert action["found"] == held_call_ts(fake_slack)


def test_sigterm_finishes_posts_in_flight_before_releasing_leadership(
    pg_url: str, pg_store: Store, fake_slack: FakeSlack, replica_env: Path, tmp_path: Path
) -> None:
    held = fake_slack.hold(_is_reply, applied=True)  # Slack is slow to answer this one
    procs = spawn(REPLICAS, pg_url, fake_slack, replica_env, tmp_path, env={"ACRCHECK_SHUTDOWN_GRACE": "10"})
    try:
        assert held.wait(40), "no reply reached the fake Slack"
        term = leader(pg_store)
        assert term is not None
        pid = int(term[1].split(":")[1])
        victim = _victim(procs, pid)
        log = tmp_path / f"runner{procs.index(victim)}.log"
        signalled = time.monotonic()
        victim.send_signal(signal.SIGTERM)
        wait_until(
            lambda: "draining" in log.read_text() or victim.poll() is not None or leader(pg_store) != term,
            5,
            "the leader to react to SIGTERM",
        )
        # The post is still unanswered: the leader must still be alive and still lead.
        assert victim.poll() is None, log.read_text()
        assert leader(pg_store) == term
        fake_slack.release()
        code = victim.wait(timeout=15)
        elapsed = time.monotonic() - signalled
        wait_until(lambda: leader_pid(pg_store) not in (None, pid), 10, "a new leader")
    except BaseException:
        stop_all(procs)
        raise
    held_call = fake_slack.held_call
    assert held_call is not None
    payload = held_call.params["metadata"]["event_payload"]
    _finish_after(pg_store, int(payload["slot"]), procs)

    output = log.read_text()
    assert code == 0, output
    assert elapsed < 10, f"drain took {elapsed:.1f}s"
    stopped = [line for line in output.splitlines() if "in-flight task(s) finished" in line]
    assert stopped and ", 0 cancelled" in stopped[-1] and "(0 in-flight" not in stopped[-1], output
    # The draining leader recorded its own post: nobody had to look for it, nothing twice.
    [row] = [r for r in claim_rows(pg_store) if r["job"] == payload["job"] and r["slot"] == int(payload["slot"])]
    assert str(pid) in row["owner"] and row["state"] == "done", row
    check_exactly_once(pg_store, fake_slack, min_slots=3)
    assert not fake_slack.lookups()
