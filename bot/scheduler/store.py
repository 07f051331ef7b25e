"""Database tables for watches, their last state, slot claims and the leader epoch.

SQLAlchemy 2 Core on one URL: SQLite for a single process, PostgreSQL when replicas share
the database. Nothing here is pickled (unlike APScheduler 3's job store) and nothing needs
APScheduler to read it, so any replica can answer ``/acrcheck watches`` while only the
leader schedules.

The claim table is the double-post guard: a ``(job_key, slot)`` row is inserted with
``ON CONFLICT DO NOTHING`` before anything is posted, and the Slack actions a run decided on
are journaled in that row so a new leader resumes an interrupted run instead of redoing it,
and so the leader itself retries a run whose Slack actions failed transiently (``planned``
claims of earlier slots are finished before a watch's next slot; see ``adopt_unfinished``).
Writes that matter are *fenced*: on PostgreSQL they only succeed while the writer's leader
session still holds the advisory lock (see ``leader.py``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    create_engine,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement, TextClause

from bot.scheduler.drift import Observation

Fence = ColumnElement[bool] | TextClause

__all__ = ["Claim", "Store", "WatchRow", "WatchState", "sqlalchemy_url", "store_for_url"]

metadata = MetaData()
_DDL_LOCK_KEY = 0x61637263_00000001  # "acrc" + 1: serialises CREATE TABLE across replicas

watches = Table(
    "acr_watches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("registry", String(100), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("schedule", String(64), nullable=False),
    Column("source", String(16), nullable=False),  # "config" (settings file) | "slack" (command)
    Column("created_by", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("registry", "channel", name="uq_acr_watches_registry_channel"),
)

watch_state = Table(
    "acr_watch_state",
    metadata,
    Column("watch_id", Integer, primary_key=True),
    Column("status_ts", String(32)),  # Slack ts of the status message edited in place
    Column("status_text", Text),  # what that message says now (edit only when this changes)
    Column("observation", Text),  # JSON Observation of the last run (the drift baseline)
    Column("since", DateTime(timezone=True)),  # when the current status began
    Column("error_streak", Integer, nullable=False, default=0),
    Column("last_slot", BigInteger),
)

claims = Table(
    "acr_watch_claims",
    metadata,
    Column("job_key", String(80), primary_key=True),  # "watch:<id>" | "digest:<channel>"
    Column("slot", BigInteger, primary_key=True),  # fire time, Unix seconds
    Column("owner", String(128), nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),  # "claimed" | "planned" | "done" | "failed"
    Column("plan", Text),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
)

leader_epochs = Table(
    "acr_scheduler_leader",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
    Column("holder", String(128), nullable=False),
    Column("since", DateTime(timezone=True), nullable=False),
)


_OPEN = ("claimed", "planned")  # claim states that are not finished ("done" / "failed")


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class WatchRow:
    id: int
    registry: str
    channel: str
    schedule: str
    source: str
    created_by: str | None


@dataclass(slots=True)
class WatchState:
    watch_id: int
    status_ts: str | None = None
    status_text: str | None = None
    observation: Observation | None = None
    since: datetime | None = None
    error_streak: int = 0
    last_slot: int | None = None


@dataclass(slots=True)
class Claim:
    """A won claim. ``plan`` is set when a previous owner already decided what to post."""

    job_key: str
    slot: int
    plan: dict[str, Any] | None
    resumed: bool


def sqlalchemy_url(url: str) -> str:
    """Settings use libpq-style ``postgresql://``; SQLAlchemy needs the psycopg 3 driver named."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _pg_connect_args(url: str) -> dict[str, Any]:
    """Pool connections of a leader cut off mid-transaction must not hold claim rows for hours.

    Row locks of an orphaned transaction would block the next leader's claims until the
    server's TCP keepalive (two hours by default) ends the session. Transactions here are
    short and never span an ``await``, so 30 s idle in a transaction means the client is gone.
    A URL that sets ``options`` itself is left alone.
    """
    args: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3}
    if "options=" not in url:
        args["options"] = (
            "-c idle_in_transaction_session_timeout=30000 "
            "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"
        )
    return args


class Store:
    """All scheduler reads and writes; sync (called through ``asyncio.to_thread`` by the runner)."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = sqlalchemy_url(url)
        if engine is None:
            kwargs: dict[str, Any] = {"pool_pre_ping": True}
            if self.url.startswith("sqlite"):
                kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            else:
                kwargs.update(pool_size=10, max_overflow=20, connect_args=_pg_connect_args(self.url))
            engine = create_engine(self.url, **kwargs)
        self.engine = engine
        self.is_postgres = engine.dialect.name == "postgresql"

    def create_all(self) -> None:
        """Create missing tables; on PostgreSQL serialised so replicas starting together don't race."""
        with self.engine.begin() as conn:
            if self.is_postgres:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _DDL_LOCK_KEY})
            metadata.create_all(conn)

    def dispose(self) -> None:
        self.engine.dispose()

    # --- watches -------------------------------------------------------------------

    def _insert(self, table: Table) -> Any:
        return postgresql.insert(table) if self.is_postgres else sqlite.insert(table)

    def upsert_watch(
        self, registry: str, channel: str, schedule: str, *, source: str, created_by: str | None = None
    ) -> tuple[WatchRow, bool]:
        """Add a watch or change its schedule; returns the row and whether it is new."""
        registry = registry.lower()
        with self.engine.begin() as conn:
            existing = conn.execute(
                select(watches).where(watches.c.registry == registry, watches.c.channel == channel)
            ).first()
            if existing is not None:
                conn.execute(
                    update(watches)
                    .where(watches.c.id == existing.id)
                    .values(schedule=schedule, source=source if source == "slack" else existing.source)
                )
                row = conn.execute(select(watches).where(watches.c.id == existing.id)).one()
                return _watch(row), False
            stmt = (
                self._insert(watches)
                .values(
                    registry=registry,
                    channel=channel,
                    schedule=schedule,
                    source=source,
                    created_by=created_by,
                    created_at=now_utc(),
                )
                .on_conflict_do_nothing(index_elements=["registry", "channel"])
            )
            conn.execute(stmt)
            row = conn.execute(
                select(watches).where(watches.c.registry == registry, watches.c.channel == channel)
            ).one()
            return _watch(row), True

    def remove_watch(self, registry: str, channel: str) -> bool:
        with self.engine.begin() as conn:
            row = conn.execute(
                select(watches.c.id).where(watches.c.registry == registry.lower(), watches.c.channel == channel)
            ).first()
            if row is None:
                return False
            conn.execute(delete(watch_state).where(watch_state.c.watch_id == row.id))
            conn.execute(delete(watches).where(watches.c.id == row.id))
            return True

    def list_watches(self, channel: str | None = None, *, schedule: str | None = None) -> list[WatchRow]:
        stmt = select(watches).order_by(watches.c.channel, watches.c.registry)
        if channel is not None:
            stmt = stmt.where(watches.c.channel == channel)
        if schedule is not None:
            stmt = stmt.where(watches.c.schedule == schedule)
        with self.engine.connect() as conn:
            return [_watch(r) for r in conn.execute(stmt)]

    def watches_without_state(self) -> list[WatchRow]:
        """Watches never run yet (just added): the leader gives them a first run promptly."""
        stmt = (
            select(watches)
            .outerjoin(watch_state, watch_state.c.watch_id == watches.c.id)
            .where(watch_state.c.watch_id.is_(None))
        )
        with self.engine.connect() as conn:
            return [_watch(r) for r in conn.execute(stmt)]

    def schedules(self) -> set[str]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(select(watches.c.schedule).distinct())}

    def channels(self) -> list[str]:
        with self.engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(select(watches.c.channel).distinct()))

    def sync_config_watches(self, specs: Iterable[tuple[str, str, str]]) -> tuple[int, int]:
        """Make the settings file's watches present; drop config watches no longer declared.

        Watches added with the Slack command are left alone: the file is not the only source.
        Returns (added, removed).
        """
        wanted = {(r.lower(), c): s for r, c, s in specs}
        added = 0
        for (registry, channel), schedule in wanted.items():
            _, created = self.upsert_watch(registry, channel, schedule, source="config", created_by="settings")
            added += created
        removed = 0
        for row in self.list_watches():
            if row.source == "config" and (row.registry, row.channel) not in wanted:
                removed += self.remove_watch(row.registry, row.channel)
        return added, removed

    # --- state ---------------------------------------------------------------------

    def get_states(self, watch_ids: Sequence[int]) -> dict[int, WatchState]:
        out: dict[int, WatchState] = {}
        if not watch_ids:
            return out
        with self.engine.connect() as conn:
            for start in range(0, len(watch_ids), 500):
                chunk = list(watch_ids[start : start + 500])
                for r in conn.execute(select(watch_state).where(watch_state.c.watch_id.in_(chunk))):
                    out[r.watch_id] = WatchState(
                        watch_id=r.watch_id,
                        status_ts=r.status_ts,
                        status_text=r.status_text,
                        observation=Observation.from_dict(json.loads(r.observation)) if r.observation else None,
                        since=_utc(r.since),
                        error_streak=r.error_streak or 0,
                        last_slot=r.last_slot,
                    )
        return out

    # --- leadership ----------------------------------------------------------------

    def bump_epoch(self, holder: str, name: str = "scheduler") -> int:
        """Start a new leadership term; claims from older terms become resumable."""
        with self.engine.begin() as conn:
            stmt = self._insert(leader_epochs).values(name=name, epoch=1, holder=holder, since=now_utc())
            stmt = stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={"epoch": leader_epochs.c.epoch + 1, "holder": holder, "since": now_utc()},
            )
            conn.execute(stmt)
            return int(conn.execute(select(leader_epochs.c.epoch).where(leader_epochs.c.name == name)).scalar_one())

    # --- claims --------------------------------------------------------------------

    def claim_many(
        self,
        job_keys: Sequence[str],
        slot: int,
        *,
        owner: str,
        epoch: int,
        fence: Fence | None,
        allow_takeover: bool,
    ) -> dict[str, Claim]:
        """Win ``(job_key, slot)`` rows; keys missing from the result belong to another run.

        The multi-row INSERT … ON CONFLICT DO NOTHING RETURNING is the exactly-once gate
        (one statement per 500 keys, so a 1,000-registry sweep claims in two round trips).
        ``allow_takeover`` lets a newly elected leader adopt unfinished claims of an *older*
        leadership term (the previous leader died mid-run); their journaled plan, if any, is
        returned so the run resumes rather than re-posting.
        """
        won: dict[str, Claim] = {}
        with self.engine.begin() as conn:
            if fence is not None and not conn.execute(select(fence)).scalar():
                return won
            for start in range(0, len(job_keys), 500):
                chunk = list(job_keys[start : start + 500])
                rows = [
                    {"job_key": k, "slot": slot, "owner": owner, "epoch": epoch, "state": "claimed",
                     "claimed_at": now_utc()}
                    for k in chunk
                ]  # fmt: skip
                stmt = (
                    self._insert(claims)
                    .values(rows)
                    .on_conflict_do_nothing(index_elements=["job_key", "slot"])
                    .returning(claims.c.job_key)
                )
                for (key,) in conn.execute(stmt):
                    won[key] = Claim(key, slot, None, resumed=False)
                rest = [k for k in chunk if k not in won]
                if not allow_takeover or not rest:
                    continue
                take = (
                    update(claims)
                    .where(
                        claims.c.job_key.in_(rest),
                        claims.c.slot == slot,
                        claims.c.state.in_(_OPEN),
                        claims.c.epoch < epoch,
                    )
                    .values(owner=owner, epoch=epoch, claimed_at=now_utc())
                    .returning(claims.c.job_key, claims.c.plan)
                )
                for key, plan in conn.execute(take):
                    won[key] = Claim(key, slot, json.loads(plan) if plan else None, resumed=True)
        return won

    def save_plan(
        self,
        claim: Claim,
        plan: dict[str, Any],
        *,
        owner: str,
        fence: Fence | None,
        state: WatchState | None,
        done: bool = False,
    ) -> bool:
        """Journal the decided Slack actions and the new baseline in one transaction.

        ``done`` closes the claim in the same transaction when there is nothing to post
        (the common, quiet case: one commit per watch per run).

        After this commits, a crash can only lead to *resuming* these actions, never to
        recomputing a diff against the already-advanced baseline (which would lose the post)
        or against the old one (which would post twice).
        """
        with self.engine.begin() as conn:
            cond = and_(
                claims.c.job_key == claim.job_key,
                claims.c.slot == claim.slot,
                claims.c.owner == owner,
                claims.c.state.in_(_OPEN),
            )
            if fence is not None:
                cond = and_(cond, fence)
            values: dict[str, Any] = {"plan": json.dumps(plan), "state": "planned"}
            if done:
                values.update(state="done", done_at=now_utc())
            res = conn.execute(update(claims).where(cond).values(**values))
            if res.rowcount != 1:
                conn.rollback()
                return False
            if state is not None:
                self._write_state(conn, state)
            return True

    def record_progress(
        self,
        claim: Claim,
        plan: dict[str, Any],
        *,
        owner: str,
        status_ts: tuple[int, str] | None = None,
        fence: Fence | None = None,
    ) -> bool:
        """Persist the plan's progress right away: an attempt about to leave, or a finished action.

        False when the claim is no longer this owner's (another leader adopted it) or, with
        ``fence``, when this process no longer holds the leader lock.
        """
        cond = and_(claims.c.job_key == claim.job_key, claims.c.slot == claim.slot, claims.c.owner == owner)
        if fence is not None:
            cond = and_(cond, fence)
        with self.engine.begin() as conn:
            res = conn.execute(update(claims).where(cond).values(plan=json.dumps(plan)))
            if res.rowcount != 1:
                return False
            if status_ts is not None:
                watch_id, ts = status_ts
                conn.execute(update(watch_state).where(watch_state.c.watch_id == watch_id).values(status_ts=ts))
            return True

    def adopt_unfinished(
        self,
        *,
        owner: str,
        epoch: int,
        fence: Fence | None,
        job_keys: Sequence[str] | None = None,
        before_slot: int | None = None,
    ) -> list[Claim]:
        """Take over ``planned`` claims left unfinished, oldest slot first.

        A claim is adoptable when it is this process's own (``owner``: a run whose Slack
        actions failed transiently, in this term or an earlier one) or belongs to an older
        leadership term (a dead leader's). Its baseline already advanced when the plan was
        saved, so the plan is the only record of what Slack still has to be told: the
        caller must run it before deciding anything newer for the same job. Claims without
        a plan (``claimed``) are not returned: nothing was decided, so nothing was lost.

        The caller guarantees no other run of these jobs is in flight in this process; the
        fence guarantees no other process leads.
        """
        cond = and_(claims.c.state == "planned", or_(claims.c.epoch < epoch, claims.c.owner == owner))
        if before_slot is not None:
            cond = and_(cond, claims.c.slot < before_slot)
        out: list[Claim] = []
        with self.engine.begin() as conn:
            if fence is not None and not conn.execute(select(fence)).scalar():
                return out
            chunks: list[list[str] | None] = (
                [None] if job_keys is None else [list(job_keys[i : i + 500]) for i in range(0, len(job_keys), 500)]
            )
            for chunk in chunks:
                where = cond if chunk is None else and_(cond, claims.c.job_key.in_(chunk))
                take = (
                    update(claims)
                    .where(where)
                    .values(owner=owner, epoch=epoch)
                    .returning(claims.c.job_key, claims.c.slot, claims.c.plan)
                )
                for key, slot, plan in conn.execute(take):
                    out.append(Claim(key, int(slot), json.loads(plan) if plan else None, resumed=True))
        out.sort(key=lambda c: (c.slot, c.job_key))
        return out

    def pending_job_keys(self, *, owner: str, epoch: int) -> list[str]:
        """Jobs with a ``planned`` claim that ``adopt_unfinished`` would return (a cheap read)."""
        stmt = (
            select(claims.c.job_key)
            .where(claims.c.state == "planned", or_(claims.c.epoch < epoch, claims.c.owner == owner))
            .distinct()
        )
        with self.engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(stmt))

    def fail_claim(
        self,
        claim: Claim,
        plan: dict[str, Any],
        *,
        owner: str,
        fence: Fence | None,
        forget_status_of: int | None = None,
    ) -> bool:
        """Give up on a plan: close the claim as ``failed`` so later slots are no longer held up.

        ``forget_status_of`` clears the stored status text of that watch (its status edit
        never reached Slack), so the next run edits the status message again instead of
        believing it already says the new text.
        """
        with self.engine.begin() as conn:
            cond = and_(
                claims.c.job_key == claim.job_key,
                claims.c.slot == claim.slot,
                claims.c.owner == owner,
                claims.c.state.in_(_OPEN),
            )
            if fence is not None:
                cond = and_(cond, fence)
            res = conn.execute(
                update(claims).where(cond).values(plan=json.dumps(plan), state="failed", done_at=now_utc())
            )
            if res.rowcount != 1:
                conn.rollback()
                return False
            if forget_status_of is not None:
                conn.execute(
                    update(watch_state).where(watch_state.c.watch_id == forget_status_of).values(status_text=None)
                )
            return True

    def finish(self, claim: Claim, *, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(claims)
                .where(claims.c.job_key == claim.job_key, claims.c.slot == claim.slot, claims.c.owner == owner)
                .values(state="done", done_at=now_utc())
            )

    def save_state(self, state: WatchState) -> None:
        with self.engine.begin() as conn:
            self._write_state(conn, state)

    def _write_state(self, conn: Any, state: WatchState) -> None:
        values = {
            "status_ts": state.status_ts,
            "status_text": state.status_text,
            "observation": json.dumps(state.observation.to_dict()) if state.observation else None,
            "since": state.since,
            "error_streak": state.error_streak,
            "last_slot": state.last_slot,
        }
        stmt = self._insert(watch_state).values(watch_id=state.watch_id, **values)
        conn.execute(stmt.on_conflict_do_update(index_elements=["watch_id"], set_=values))

    def claims_for(self, job_key_prefix: str = "") -> list[tuple[str, int, str, str]]:
        """(job_key, slot, owner, state) rows; used by tests and the admin listing."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(claims.c.job_key, claims.c.slot, claims.c.owner, claims.c.state)
                .where(claims.c.job_key.startswith(job_key_prefix))
                .order_by(claims.c.slot)
            )
            return [(r[0], r[1], r[2], r[3]) for r in rows]

    def prune_claims(self, older_than: timedelta = timedelta(days=3)) -> int:
        cutoff = int((now_utc() - older_than).timestamp())
        with self.engine.begin() as conn:
            return conn.execute(delete(claims).where(claims.c.slot < cutoff)).rowcount or 0

    def count_watches(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(watches)).scalar_one())


def _watch(row: Any) -> WatchRow:
    return WatchRow(row.id, row.registry, row.channel, row.schedule, row.source, row.created_by)


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def store_for_url(url: str) -> Store:
    """One Store (one connection pool) per database URL per process, tables created once."""
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = Store(url)
            store.create_all()
            _stores[url] = store
        return store
