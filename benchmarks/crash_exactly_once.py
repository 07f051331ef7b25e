"""Benchmark: duplicates and missed posts over many crashes of the scheduler leader.

Three real runner processes (``python -m bot.scheduler.runner``) on one PostgreSQL database,
three watches on a 2 s schedule whose status flips every slot (so every slot posts a reply),
the fake Slack over loopback. For each kill point, ``--runs`` times: start the replicas, kill
the leader at that point, let the survivors run two more slots, stop them with SIGTERM, and
account for every post the journal decided on (``replica_harness.delivery``): duplicates per
(watch, slot, op) in the fake Slack, decided posts lost, and runs skipped because the leader
died before deciding anything (no baseline moved; the watch's next run reports the change).
Kill points:

* ``after_plan`` / ``before_post`` / ``after_post`` / ``after_record``: the leader SIGKILLs
  itself there (``bot.scheduler.crashpoints``), on a status post or a reply;
* ``applied_no_answer``: Slack applies a post and never answers; the leader is SIGKILLed;
* ``sigterm_in_flight``: Slack holds a post's answer; the leader gets SIGTERM, the answer
  comes 0.5 s later (the drain must finish and record it, then hand over).

    TEST_PG_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/crash_exactly_once.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "scheduler"))

from fake_slack import FakeSlack  # noqa: E402
from replica_harness import (  # noqa: E402
    INTERVAL,
    WATCHES,
    delivery,
    done_slots,
    leader,
    leader_pid,
    make_world,
    spawn,
    stop_all,
    wait_until,
)

from bot.scheduler.store import Store  # noqa: E402

# name -> (crash point (ACRCHECK_TEST_CRASH_AT) or None, what the fake Slack holds or None)
POINTS: dict[str, tuple[str | None, str | None]] = {
    "after_plan@4 (reply)": ("after_plan@4", None),
    "before_post@4 (reply)": ("before_post@4", None),
    "before_post@2 (status)": ("before_post@2", None),
    "after_post@4 (reply)": ("after_post@4", None),
    "after_post@2 (status)": ("after_post@2", None),
    "after_record@4 (status edit recorded, reply next)": ("after_record@4", None),
    "applied_no_answer (reply)": (None, "reply"),
    "applied_no_answer (status)": (None, "status"),
    "sigterm_in_flight (reply)": (None, "sigterm"),
}


def _match(kind: str) -> Any:
    if kind == "status":
        return lambda method, params: method == "chat.postMessage" and not params.get("thread_ts")
    return lambda method, params: method == "chat.postMessage" and bool(params.get("thread_ts"))


def one_run(name: str, crash: str | None, hold: str | None, pg_url: str, workdir: Path) -> dict[str, Any]:
    store = Store(pg_url)
    store.create_all()
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE acr_watches, acr_watch_state, acr_watch_claims, acr_scheduler_leader RESTART IDENTITY"
        )
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    state = make_world(store, run_dir / "world.json")
    slack = FakeSlack().start()
    env: dict[str, str] = {"ACRCHECK_SHUTDOWN_GRACE": "10"}
    flag = run_dir / "crashed"
    if crash:
        env.update(ACRCHECK_TEST_CRASH_AT=crash, ACRCHECK_TEST_CRASH_FLAG=str(flag))
    held = slack.hold(_match(hold), applied=True) if hold else None
    procs = spawn(3, pg_url, slack, state, run_dir, env=env)
    result: dict[str, Any] = {"point": name}
    try:
        if crash:
            wait_until(flag.exists, 40, f"a replica reaching {crash}")
            at = time.time()
            wait_until(lambda: any(p.poll() is not None for p in procs), 5, "the crash")
        else:
            assert held is not None and held.wait(40), "no post reached the fake Slack"
            at = time.time()
            pid = leader_pid(store)
            victim = next(p for p in procs if p.pid == pid)
            if hold == "sigterm":
                term = leader(store)
                victim.send_signal(signal.SIGTERM)
                log = run_dir / f"runner{procs.index(victim)}.log"
                wait_until(lambda: "draining" in log.read_text() or victim.poll() is not None, 5, "draining")
                result["kept_leadership"] = victim.poll() is None and leader(store) == term
                time.sleep(0.5)  # Slack is slow to answer: the drain must wait for it
                slack.release()
                victim.wait(timeout=15)
                last = [ln for ln in log.read_text().splitlines() if "in-flight task(s) finished" in ln]
                found = re.search(r"\((\d+) in-flight task\(s\) finished, (\d+) cancelled\)", last[-1] if last else "")
                result["drain"] = f"{found.group(1)} finished, {found.group(2)} cancelled" if found else "no summary"
                result["exit"] = victim.returncode
            else:
                victim.send_signal(signal.SIGKILL)
                victim.wait(timeout=5)
                slack.release()
        slot = int(at // INTERVAL * INTERVAL)
        wait_until(
            lambda: len(done_slots(store)) == len(WATCHES)
            and all(max(v) >= slot + 2 * INTERVAL and len(v) >= 3 for v in done_slots(store).values()),
            40,
            "two more slots",
        )
    finally:
        stop_all(procs)
        slack.stop()
    verdict = delivery(store, slack)
    result.update(
        duplicates=verdict["duplicates"], lost=len(verdict["lost"]), skipped=len(verdict["skipped"]),
        lookups=len(slack.lookups()),
    )  # fmt: skip
    store.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="kills per kill point")
    parser.add_argument("--pg", default=os.environ.get("TEST_PG_URL"), help="admin URL of a 127.0.0.1 PostgreSQL")
    parser.add_argument("--only", default="", help="substring of the kill points to run")
    args = parser.parse_args()
    if not args.pg:
        sys.exit("set TEST_PG_URL or pass --pg")
    name = f"acrcheck_crashbench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = args.pg.rpartition("/")
    pg_url = f"{base}/{name}"
    totals: Counter[str] = Counter()
    rows: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="acrcheck-crash-") as tmp:
            for point, (crash, hold) in POINTS.items():
                if args.only not in point:
                    continue
                for i in range(args.runs):
                    started = time.monotonic()
                    row = one_run(point, crash, hold, pg_url, Path(tmp))
                    row["seconds"] = round(time.monotonic() - started, 1)
                    rows.append(row)
                    totals["runs"] += 1
                    totals["duplicates"] += row["duplicates"]
                    totals["lost"] += row["lost"]
                    totals["skipped"] += row["skipped"]
                    print(f"{point:52s} run {i + 1}: {row}", flush=True)
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print()
    print(f"{'kill point':52s} {'kills':>5s} {'dup':>4s} {'lost':>5s} {'skipped':>7s}  notes")
    for point in POINTS:
        mine = [r for r in rows if r["point"] == point]
        if not mine:
            continue
        notes = ""
        if "drain" in mine[0]:
            notes = "drain: " + "; ".join(sorted({r["drain"] for r in mine})) + "; leadership kept while in flight: " + str(
                all(r["kept_leadership"] for r in mine)
            )
        print(f"{point:52s} {len(mine):5d} {sum(r['duplicates'] for r in mine):4d} "
              f"{sum(r['lost'] for r in mine):5d} {sum(r['skipped'] for r in mine):7d}  {notes}")  # fmt: skip
    print(f"total: {totals['runs']} kills, {totals['duplicates']} duplicate posts, {totals['lost']} decided posts lost, "
          f"{totals['skipped']} runs skipped (leader died before deciding; the next run covers them)")


if __name__ == "__main__":
    main()
