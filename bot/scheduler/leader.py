"""Leader election: exactly one process runs the scheduler at a time.

APScheduler 3 has no inter-process coordination (measured: two processes on one job store
run every job twice), so leadership is decided outside it:

* PostgreSQL: ``pg_try_advisory_lock`` on a dedicated connection that stays open. The lock
  lives as long as that session, so when the leader dies (even SIGKILL) PostgreSQL drops it
  as soon as the socket closes and a follower polling every ``poll`` seconds takes over.
  A leader whose node dies or is cut off *silently* (no FIN/RST) would otherwise keep the
  lock until the server's own TCP keepalives notice (2+ hours by default), so the session
  is opened with server-side limits derived from ``poll`` (``session_limits``): the server
  ends it once no heartbeat arrived for ``idle_session_timeout`` (PostgreSQL 14+) and
  probes the peer with short keepalives. The leader re-checks ``pg_locks`` every ``poll``
  seconds, each check bounded by ``heartbeat_timeout``; when a check fails or times out it
  steps down at once (without waiting for psycopg's query cancellation, which needs the
  dead link too), well before the server can release the lock to someone else.
* SQLite: one host, so an ``flock`` on a file next to the database is enough; an in-memory
  database has a single process by definition.

``fence()`` returns a SQL condition that is true only while this process's session holds
the lock; the store adds it to claim writes so a deposed leader's writes fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import psycopg
from sqlalchemy import text
from sqlalchemy.sql.elements import TextClause

__all__ = [
    "FileLockLeader",
    "Leadership",
    "PgAdvisoryLeader",
    "heartbeat_timeout",
    "leadership_for",
    "make_owner_id",
    "session_limits",
]

log = logging.getLogger(__name__)

LOCK_CLASS = 0x61637263  # "acrc"
LOCK_SCHEDULER = 1

Callback = Callable[[], Awaitable[None]]


def make_owner_id() -> str:
    """Unique per process and readable in the claim table (host, pid, random suffix)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def heartbeat_timeout(poll: float) -> float:
    """How long one lock check may take before the leader gives up on its session."""
    return max(2.0, poll * 3)


def session_limits(poll: float) -> dict[str, int]:
    """Server-side limits for the lock session (all user-settable, passed as ``-c`` options).

    * ``idle_session_timeout``: the server ends the session (releasing the lock) when no
      query arrived for this long. A healthy session runs one every ``poll`` seconds (the
      heartbeat while leading, the lock attempt while following), and a leader steps down
      by itself after ``poll + heartbeat_timeout`` without an answer, so 4× that (at least
      10 s) never trips a live leader yet frees the lock of a dead or cut-off one quickly.
    * ``tcp_keepalives_*`` / ``tcp_user_timeout``: the server also notices a dead peer at
      the TCP level instead of after the kernel default of two hours.
    """
    idle_ms = int(max(10.0, 4 * (poll + heartbeat_timeout(poll))) * 1000)
    ka_idle = max(2, round(poll * 5))
    ka_interval = max(1, round(poll * 2))
    return {
        "idle_session_timeout": idle_ms,
        "idle_in_transaction_session_timeout": idle_ms,
        "tcp_keepalives_idle": ka_idle,
        "tcp_keepalives_interval": ka_interval,
        "tcp_keepalives_count": 3,
        "tcp_user_timeout": idle_ms,
    }


_UNKNOWN_SETTING = re.compile(r'unrecognized configuration parameter "([a-z_]+)"')


def libpq_url(url: str) -> str:
    """psycopg wants ``postgresql://``; settings may carry SQLAlchemy's ``+psycopg`` form."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class Leadership:
    """Base: subclasses call ``_elected``/``_demoted`` around the time they hold leadership."""

    def __init__(self, owner: str, poll: float) -> None:
        self.owner = owner
        self.poll = poll
        self.is_leader = False
        self._stopping = asyncio.Event()

    def fence(self) -> TextClause | None:
        return None

    async def run(self, on_elected: Callback, on_demoted: Callback) -> None:  # pragma: no cover
        raise NotImplementedError

    def stop(self) -> None:
        self._stopping.set()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; True means keep going.

        ``asyncio.timeout`` rather than ``wait_for``: on Python 3.11 the latter runs the wait in
        a task of its own, which a shutdown drain would count as work in flight.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return not self._stopping.is_set()


class PgAdvisoryLeader(Leadership):
    """Session-level advisory lock on a dedicated, kept-open psycopg connection."""

    def __init__(self, dsn: str, *, owner: str, poll: float = 1.0, key: tuple[int, int] | None = None) -> None:
        super().__init__(owner, poll)
        self.dsn = libpq_url(dsn)
        self.key = key or (LOCK_CLASS, LOCK_SCHEDULER)
        self.backend_pid: int | None = None
        self.limits = session_limits(poll)
        self.user_timeout_ms = self.limits["tcp_user_timeout"]  # client side too
        self.query_timeout = heartbeat_timeout(poll)
        self._abandoned: set[asyncio.Task[Any]] = set()

    def fence(self) -> TextClause | None:
        if self.backend_pid is None:
            return text("1 = 0")
        return text(
            "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = :lk1 "
            "AND objid = :lk2 AND objsubid = 2 AND pid = :lpid AND granted)"
        ).bindparams(lk1=self.key[0], lk2=self.key[1], lpid=self.backend_pid)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        keepalive = max(1, int(self.poll * 2))
        while True:
            options = " ".join(f"-c {name}={value}" for name, value in self.limits.items())
            try:
                return await psycopg.AsyncConnection.connect(
                    self.dsn,
                    autocommit=True,
                    connect_timeout=max(2, int(self.poll * 5)),
                    keepalives=1,
                    keepalives_idle=keepalive,
                    keepalives_interval=keepalive,
                    keepalives_count=3,
                    tcp_user_timeout=self.user_timeout_ms,
                    application_name="acrcheck-scheduler",
                    options=options,
                )
            except psycopg.OperationalError as exc:
                # An older server (idle_session_timeout is 14+, tcp_user_timeout 12+): drop
                # the setting it does not know and keep the rest.
                match = _UNKNOWN_SETTING.search(str(exc))
                if match is None or match.group(1) not in self.limits:
                    raise
                log.warning("PostgreSQL does not support %s; the scheduler lock session runs without it",
                            match.group(1))  # fmt: skip
                del self.limits[match.group(1)]

    async def _fetch(self, conn: psycopg.AsyncConnection[Any], sql: str, params: Any) -> Any:
        cur = await conn.execute(sql, params)
        row = await cur.fetchone()
        return row[0] if row else None

    async def _ask(self, conn: psycopg.AsyncConnection[Any], sql: str, params: Any = None) -> Any:
        """First column of the first row, or ``TimeoutError`` after ``query_timeout`` seconds.

        On timeout the query task is abandoned, not awaited: cancelling it makes psycopg
        send a cancel request and wait for the server (up to ~10 s), which on a dead link
        only delays stepping down. ``_discard`` finishes it off in the background.
        """
        task = asyncio.ensure_future(self._fetch(conn, sql, params))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.query_timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            self._abandoned.add(task)
            raise TimeoutError(f"no answer from PostgreSQL within {self.query_timeout:.0f}s")
        return task.result()

    async def _discard(self, conn: psycopg.AsyncConnection[Any] | None) -> None:
        """Close a lock connection without waiting on the network (bounded to ~1 s)."""
        tasks, self._abandoned = self._abandoned, set()
        for task in tasks:
            # The first cancel makes psycopg try to cancel the query on the server; the
            # second interrupts that, and psycopg then closes the socket itself.
            for _ in range(2):
                if task.done():
                    break
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
            if task.done():
                if not task.cancelled():
                    task.exception()  # retrieved: nothing to report
            else:
                task.add_done_callback(lambda t: t.cancelled() or t.exception())
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), timeout=1.0)

    async def _query_bool(self, conn: psycopg.AsyncConnection[Any], sql: str) -> bool:
        return bool(await self._ask(conn, sql, self.key))

    async def run(self, on_elected: Callback, on_demoted: Callback) -> None:
        while not self._stopping.is_set():
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                conn = await self._connect()
                while not await self._query_bool(conn, "SELECT pg_try_advisory_lock(%s, %s)"):
                    if not await self._sleep(self.poll):
                        return
                pid = await self._ask(conn, "SELECT pg_backend_pid()")
                self.backend_pid = int(pid) if pid is not None else None
                self.is_leader = True
                log.info("scheduler leadership acquired by %s (backend pid %s)", self.owner, self.backend_pid)
                await on_elected()
                while await self._sleep(self.poll):
                    held = await self._query_bool(
                        conn,
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
                        "AND objid = %s AND objsubid = 2 AND pid = pg_backend_pid() AND granted)",
                    )
                    if not held:
                        raise RuntimeError("advisory lock no longer held")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost, PG restart, timeout: step down, retry
                log.warning("scheduler leadership check failed (%s); retrying", exc)
            finally:
                await self._step_down(on_demoted)
                await self._discard(conn)
            if not await self._sleep(self.poll):
                return

    async def _step_down(self, on_demoted: Callback) -> None:
        if self.is_leader:
            self.is_leader = False  # first: sweeps check this before every Slack action
            self.backend_pid = None
            log.info("scheduler leadership released by %s", self.owner)
            await on_demoted()


class FileLockLeader(Leadership):
    """SQLite: ``flock`` next to the database file; in-memory databases always lead."""

    def __init__(self, lock_path: Path | None, *, owner: str, poll: float = 1.0) -> None:
        super().__init__(owner, poll)
        self.lock_path = lock_path
        self._handle: IO[str] | None = None

    def _try_lock(self) -> bool:
        if self.lock_path is None:
            return True
        handle = self.lock_path.open("a")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._handle = handle
        return True

    async def run(self, on_elected: Callback, on_demoted: Callback) -> None:
        while not self._try_lock():
            if not await self._sleep(self.poll):
                return
        self.is_leader = True
        try:
            await on_elected()
            await self._stopping.wait()
        finally:
            self.is_leader = False
            await on_demoted()
            if self._handle is not None:
                self._handle.close()  # releases the flock
                self._handle = None


def leadership_for(database_url: str, *, owner: str, poll: float) -> Leadership:
    """Pick the election mechanism that matches the database."""
    if database_url.startswith(("postgresql", "postgres:")):
        return PgAdvisoryLeader(database_url, owner=owner, poll=poll)
    path: Path | None = None
    if database_url.startswith("sqlite:///") and ":memory:" not in database_url:
        path = Path(database_url.removeprefix("sqlite:///") + ".leader")
    return FileLockLeader(path, owner=owner, poll=poll)
