"""A leader cut off from PostgreSQL *silently* (dead node, network partition) is replaced quickly.

The leader process reaches PostgreSQL only through a loopback TCP relay; freezing the relay
stops forwarding in both directions without closing anything (no FIN, no RST), which is
what a dead node or a partition looks like to the server. Before the fix the server kept
the orphaned session, and with it the advisory lock, for its default TCP keepalive time
(two hours). Now the lock session carries server-side limits, so the server frees the lock
within seconds, a follower takes over, and the old leader, which stepped down on its own
failed heartbeat, posts nothing after losing the lock.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from fake_slack import FakeSlack
from replica_harness import INTERVAL, done_slots, leader, spawn, stop_all, wait_until

from bot.scheduler.leader import LOCK_CLASS, LOCK_SCHEDULER
from bot.scheduler.store import Store

pytestmark = pytest.mark.postgres


class FreezableRelay:
    """127.0.0.1 relay to ``target``; ``freeze()`` makes every connection silent but open."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self._sockets.append(client)
            if self.frozen.is_set():
                continue  # accepted by the kernel, never answered: a connect attempt just hangs
            upstream = socket.create_connection(self.target)
            self._sockets.append(upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if self.frozen.is_set():
                self.closed.wait()  # swallow it and everything after, closes included
                return
            if not data:
                with_suppressed(lambda: dst.shutdown(socket.SHUT_WR))
                return
            try:
                dst.sendall(data)
            except OSError:
                return

    def freeze(self) -> None:
        self.frozen.set()

    def close(self) -> None:
        self.closed.set()
        self.server.close()
        for sock in self._sockets:
            with_suppressed(sock.close)


def with_suppressed(fn: Callable[[], object]) -> None:
    with contextlib.suppress(OSError):
        fn()


def lock_holder(pg_url: str) -> int | None:
    """Backend pid holding the scheduler's advisory lock in this database, if any."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s "
            "AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())",
            (LOCK_CLASS, LOCK_SCHEDULER),
        ).fetchone()
    return int(row[0]) if row else None


def scheduler_sessions(pg_url: str) -> int:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'acrcheck-scheduler' "
            "AND datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def via(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@127.0.0.1:{port}" if user else f"127.0.0.1:{port}"))


def test_silently_partitioned_leader_is_replaced_and_posts_nothing_after(
    pg_url: str, pg_store: Store, fake_slack: FakeSlack, replica_env: Path, tmp_path: Path
) -> None:
    target = urlsplit(pg_url)
    relay = FreezableRelay((target.hostname or "127.0.0.1", target.port or 5432))
    old_slack = FakeSlack().share_messages(fake_slack).start()  # the old leader's calls, kept apart
    procs = []
    try:
        [old] = spawn(1, via(pg_url, relay.port), old_slack, replica_env, tmp_path, name="partitioned")
        procs.append(old)
        wait_until(lambda: (leader(pg_store) or (0, ":0"))[1].split(":")[1] == str(old.pid), 15, "first leader")
        wait_until(lambda: len(done_slots(pg_store)) == 3, 15, "a first sweep")
        [new] = spawn(1, pg_url, fake_slack, replica_env, tmp_path, name="standby")
        procs.append(new)
        wait_until(lambda: scheduler_sessions(pg_url) >= 2, 15, "a follower polling the lock")
        old_backend = lock_holder(pg_url)
        assert old_backend is not None

        wait_until(lambda: 1.2 <= time.time() % INTERVAL <= 1.5, 5, "a quiet moment between runs")
        relay.freeze()
        frozen_at = time.time()
        lock_lost_at = elected_at = 0.0
        deadline = frozen_at + 30
        while time.time() < deadline and not elected_at:
            now = time.time()
            if not lock_lost_at and lock_holder(pg_url) != old_backend:
                lock_lost_at = now
            holder = (leader(pg_store) or (0, ":0"))[1]
            if holder.split(":")[1] == str(new.pid):
                elected_at = now
            time.sleep(0.05)
        assert elected_at, "no follower took over within 30 s of the partition"
        takeover = elected_at - frozen_at
        elected_slot = int(elected_at // INTERVAL * INTERVAL)
        wait_until(lambda: all(max(v) >= elected_slot + 2 * INTERVAL for v in done_slots(pg_store).values()),
                   15, "the new leader running slots")  # fmt: skip
    finally:
        if procs:
            procs[0].send_signal(signal.SIGKILL)  # its database calls hang on the frozen relay
            procs[0].wait(timeout=5)
        stop_all(procs[1:])
        relay.close()
        old_slack.stop()

    print(f"takeover {takeover:.1f}s after the partition (lock freed after {lock_lost_at - frozen_at:.1f}s)")
    assert takeover < 20, f"takeover took {takeover:.1f}s"
    assert lock_lost_at and lock_lost_at <= elected_at
    late = [c for c in old_slack.calls if c.at >= lock_lost_at]
    assert not late, f"the deposed leader still called Slack: {late}"
    assert "leadership released" in (tmp_path / "partitioned0.log").read_text()  # it stepped down itself
    assert fake_slack.replies(), "the new leader posted nothing"

    # no alert twice across both leaders, one status message per watch
    per_slot: Counter[tuple[str, int]] = Counter()
    top: Counter[str] = Counter()
    for call in old_slack.posts() + fake_slack.posts():
        payload = call.params["metadata"]["event_payload"]
        if call.params.get("thread_ts"):
            per_slot[(payload["job"], payload["slot"])] += 1
        else:
            top[payload["job"]] += 1
    assert all(n == 1 for n in per_slot.values()), per_slot
    assert all(n == 1 for n in top.values()), top
