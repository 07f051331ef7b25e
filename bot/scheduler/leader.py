"""Leader election: exactly one process runs the scheduler at a time.

APScheduler 3 has no inter-process coordination (measured: two processes on one job store
run every job twice), so leadership is decided outside it:

* PostgreSQL: ``pg_try_advisory_lock`` on a dedicated connection that stays open. The lock
  lives as long as that session, so when the leader dies (even SIGKILL) PostgreSQL drops it
  as soon as the socket closes and a follower polling every ``poll`` seconds takes over.
  TCP keepalives bound the time a silently partitioned leader keeps it. The leader
  re-checks ``pg_locks`` every ``poll`` seconds and steps down the moment it cannot.
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
import socket
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

import psycopg
from sqlalchemy import text
from sqlalchemy.sql.elements import TextClause

__all__ = ["FileLockLeader", "Leadership", "PgAdvisoryLeader", "leadership_for", "make_owner_id"]

log = logging.getLogger(__name__)

LOCK_CLASS = 0x61637263  # "acrc"
LOCK_SCHEDULER = 1

Callback = Callable[[], Awaitable[None]]


def make_owner_id() -> str:
    """Unique per process and readable in the claim table (host, pid, random suffix)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


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
        """Sleep unless stopping; True means keep going."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        return not self._stopping.is_set()


class PgAdvisoryLeader(Leadership):
    """Session-level advisory lock on a dedicated, kept-open psycopg connection."""

    def __init__(self, dsn: str, *, owner: str, poll: float = 1.0, key: tuple[int, int] | None = None) -> None:
        super().__init__(owner, poll)
        self.dsn = libpq_url(dsn)
        self.key = key or (LOCK_CLASS, LOCK_SCHEDULER)
        self.backend_pid: int | None = None

    def fence(self) -> TextClause | None:
        if self.backend_pid is None:
            return text("1 = 0")
        return text(
            "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = :lk1 "
            "AND objid = :lk2 AND objsubid = 2 AND pid = :lpid AND granted)"
        ).bindparams(lk1=self.key[0], lk2=self.key[1], lpid=self.backend_pid)

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        keepalive = max(1, int(self.poll * 2))
        return await psycopg.AsyncConnection.connect(
            self.dsn,
            autocommit=True,
            connect_timeout=max(2, int(self.poll * 5)),
            keepalives=1,
            keepalives_idle=keepalive,
            keepalives_interval=keepalive,
            keepalives_count=3,
            application_name="acrcheck-scheduler",
        )

    async def _query_bool(self, conn: psycopg.AsyncConnection[Any], sql: str) -> bool:
        cur = await asyncio.wait_for(conn.execute(sql, self.key), timeout=max(2.0, self.poll * 3))
        row = await cur.fetchone()
        return bool(row and row[0])

    async def run(self, on_elected: Callback, on_demoted: Callback) -> None:
        while not self._stopping.is_set():
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                conn = await self._connect()
                while not await self._query_bool(conn, "SELECT pg_try_advisory_lock(%s, %s)"):
                    if not await self._sleep(self.poll):
                        return
                cur = await conn.execute("SELECT pg_backend_pid()")
                row = await cur.fetchone()
                self.backend_pid = int(row[0]) if row else None
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
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            if not await self._sleep(self.poll):
                return

    async def _step_down(self, on_demoted: Callback) -> None:
        if self.is_leader:
            self.is_leader = False
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
