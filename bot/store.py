"""Persistence for the Slack bot: one SQLAlchemy Core module, SQLite or PostgreSQL.

Everything the bot must remember across restarts and share between replicas lives
here: processed event ids (dedupe of Slack's retries), per-channel overrides set by
admins, feedback, mutes, diagnoses (so buttons can find what they act on), the map
from a source message to the bot's reply (for edits), a locale cache, and the
rate-limit counters. Claims use ``INSERT … ON CONFLICT DO NOTHING`` so that exactly
one replica wins, on both dialects, without locks.

Methods are synchronous; async handlers call them through :func:`asyncio.to_thread`
(see :meth:`Store.run`) so a slow database never blocks the event loop that acks.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    exists,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

P = ParamSpec("P")
T = TypeVar("T")
#: What a vote did: first vote of this person on the diagnosis, a change of it, or an out-of-order click.
VoteOutcome = Literal["new", "replaced", "stale"]

#: How long processed event ids are kept. Slack's last retry comes ~5 minutes after the first try.
EVENT_TTL_SECONDS = 24 * 3600
LOCALE_TTL_SECONDS = 24 * 3600

metadata = MetaData()

processed_events = Table(
    "acrcheck_processed_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("received_at", Float, nullable=False, index=True),
    Column("owner", String(64), nullable=False, default=""),
)

channel_overrides = Table(
    "acrcheck_channel_overrides",
    metadata,
    Column("channel_id", String(64), primary_key=True),
    Column("key", String(32), primary_key=True),
    Column("value", String(200), nullable=False),
    Column("updated_by", String(64), nullable=False, default=""),
    Column("updated_at", Float, nullable=False),
)

diagnoses = Table(
    "acrcheck_diagnoses",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("channel_id", String(64), nullable=False, default=""),
    Column("source_ts", String(32), nullable=False, default=""),
    Column("user_id", String(64), nullable=False, default=""),
    Column("kind", String(16), nullable=False),  # "paste" | "registry"
    Column("registry", String(255), nullable=False, default=""),
    Column("cause", String(64), nullable=False),
    Column("confidence", Float, nullable=False, default=0.0),
    Column("lang", String(8), nullable=False, default="en"),
    Column("redacted_text", Text, nullable=False, default=""),
    Column("evidence_json", Text, nullable=False, default="[]"),
)

replies = Table(
    "acrcheck_replies",
    metadata,
    Column("channel_id", String(64), primary_key=True),
    Column("source_ts", String(32), primary_key=True),
    Column("reply_ts", String(32), nullable=True),
    Column("thread_ts", String(32), nullable=False, default=""),
    Column("cause", String(64), nullable=False),
    Column("diagnosis_id", String(32), nullable=False),
    Column("updated_at", Float, nullable=False),
)

#: One vote per person and diagnosis: a later click replaces the earlier one (see :meth:`Store.vote`).
FEEDBACK_VOTE_INDEX = "uq_acrcheck_feedback_vote"

feedback = Table(
    "acrcheck_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Float, nullable=False),  # the person's first vote on this diagnosis
    Column("updated_at", Float, nullable=False, server_default=text("0")),  # their last change (click time)
    Column("diagnosis_id", String(32), nullable=False),
    Column("channel_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("cause", String(64), nullable=False),
    Column("helpful", Boolean, nullable=False),
    Column("redacted_text", Text, nullable=False),
    Column("registry", String(255), nullable=False, default=""),
    Column("confidence", Float, nullable=False, default=0.0),
)
vote_index = Index(FEEDBACK_VOTE_INDEX, feedback.c.diagnosis_id, feedback.c.user_id, unique=True)

mutes = Table(
    "acrcheck_mutes",
    metadata,
    Column("channel_id", String(64), primary_key=True),
    Column("cause", String(64), primary_key=True),
    Column("until", Float, nullable=False),
    Column("muted_by", String(64), nullable=False, default=""),
)

locales = Table(
    "acrcheck_locales",
    metadata,
    Column("user_id", String(64), primary_key=True),
    Column("locale", String(32), nullable=False),
    Column("fetched_at", Float, nullable=False),
)

rate_counters = Table(
    "acrcheck_rate_counters",
    metadata,
    Column("bucket", String(160), primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("hits", Integer, nullable=False),
)


@dataclass(slots=True)
class DiagnosisRecord:
    """What buttons need to act on an earlier diagnosis, without re-reading Slack."""

    id: str
    channel_id: str
    source_ts: str
    user_id: str
    kind: str
    registry: str
    cause: str
    confidence: float
    lang: str
    redacted_text: str
    evidence: list[dict[str, Any]]


@dataclass(slots=True)
class MuteRecord:
    """A cause muted in a channel: who muted it and until when (UNIX time)."""

    channel_id: str
    cause: str
    until: float
    muted_by: str


@dataclass(slots=True)
class ReplyRecord:
    """The bot's reply to one source message."""

    channel_id: str
    source_ts: str
    reply_ts: str | None
    thread_ts: str
    cause: str
    diagnosis_id: str


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run during a write and makes each commit one cheap append (no rollback journal)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(database_url: str) -> Engine:
    """Engine for a URL; in-memory SQLite shares one connection so all threads see one DB."""
    url = database_url
    if url.startswith(("postgresql://", "postgres://")):
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        memory = url in ("sqlite://", "sqlite:///:memory:")
        if memory:
            kwargs["poolclass"] = StaticPool
        engine = create_engine(url, **kwargs)
        if not memory:
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _vote_index_exists(conn: Connection) -> bool:
    return any(ix.get("name") == FEEDBACK_VOTE_INDEX for ix in inspect(conn).get_indexes(feedback.name))


def _collapse_duplicate_votes(conn: Connection) -> None:
    """Inside a transaction: add ``updated_at``, keep each person's latest vote, create the unique index."""
    columns = {column["name"] for column in inspect(conn).get_columns(feedback.name)}
    if "updated_at" not in columns:
        conn.exec_driver_sql(f"ALTER TABLE {feedback.name} ADD COLUMN updated_at FLOAT NOT NULL DEFAULT 0")
    conn.execute(update(feedback).where(feedback.c.updated_at == 0).values(updated_at=feedback.c.created_at))
    newer = feedback.alias("newer")
    later_vote = exists().where(
        newer.c.diagnosis_id == feedback.c.diagnosis_id,
        newer.c.user_id == feedback.c.user_id,
        (newer.c.updated_at > feedback.c.updated_at)
        | ((newer.c.updated_at == feedback.c.updated_at) & (newer.c.id > feedback.c.id)),
    )
    conn.execute(delete(feedback).where(later_vote))
    if not _vote_index_exists(conn):
        vote_index.create(conn)


class Store:
    """All bot state behind small, intention-revealing methods."""

    def __init__(self, engine: Engine, *, owner: str = "") -> None:
        self.engine = engine
        self.owner = owner or secrets.token_hex(4)
        self._dialect = engine.dialect.name

    @classmethod
    def from_url(cls, database_url: str, *, create: bool = True) -> Store:
        """Open (and by default create) the schema at ``database_url``."""
        store = cls(make_engine(database_url))
        if create:
            store.create_all()
        return store

    def create_all(self) -> None:
        """Create missing tables and bring older ones up to date; safe from several replicas at once."""
        try:
            metadata.create_all(self.engine)
        except Exception:
            # Two replicas racing on CREATE TABLE: the loser retries and finds the tables.
            time.sleep(0.2)
            metadata.create_all(self.engine)
        self._migrate_feedback_votes()

    def _migrate_feedback_votes(self) -> None:
        """Databases from before one-vote-per-person: collapse duplicate votes, then enforce it.

        Each step is idempotent and the whole runs in one transaction (serialised between
        replicas by an advisory lock on PostgreSQL, by the write lock on SQLite), so a
        replica killed half-way leaves either the old table or the migrated one. Of a
        person's several votes on one diagnosis the latest is kept, as a later click would
        have replaced it; ``updated_at`` starts as its vote time.
        """
        if self._has_vote_index():
            return
        for attempt in range(3):
            try:
                self._in_migration_transaction(_collapse_duplicate_votes)
                return
            except DBAPIError:
                # Another replica migrated first, or an older replica added a duplicate vote
                # between the clean-up and the index: look again, then redo both.
                if self._has_vote_index():
                    return
                if attempt == 2:
                    raise
                time.sleep(0.2)

    def _in_migration_transaction(self, step: Callable[[Connection], None]) -> None:
        """Run ``step`` in one transaction that DDL is part of, one migrating replica at a time."""
        if self._dialect == "sqlite":
            # pysqlite commits before DDL on its own; with autocommit on the driver and an
            # explicit BEGIN IMMEDIATE, SQLite's own transactional DDL and write lock apply.
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    step(conn)
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
            return
        with self.engine.begin() as conn:
            if self._dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('acrcheck_feedback_votes'))"))
            step(conn)

    def _has_vote_index(self) -> bool:
        with self.engine.connect() as conn:
            return _vote_index_exists(conn)

    def dispose(self) -> None:
        self.engine.dispose()

    @staticmethod
    async def run(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking store call off the event loop."""
        return await asyncio.to_thread(func, *args, **kwargs)

    # --- helpers -------------------------------------------------------------------
    def _insert(self, table: Table) -> Any:
        """Dialect-specific INSERT that supports ON CONFLICT."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        if self._dialect == "sqlite":
            return sqlite.insert(table)
        raise RuntimeError(f"unsupported database dialect {self._dialect!r} (use SQLite or PostgreSQL)")

    # --- processed events ------------------------------------------------------------
    def claim_event(self, event_id: str, *, now: float | None = None) -> bool:
        """True for exactly one caller per event id, across retries, restarts and replicas."""
        stmt = (
            self._insert(processed_events)
            .values(event_id=event_id, received_at=now or time.time(), owner=self.owner)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(processed_events.c.event_id)
        )
        # RETURNING yields a row only for the insert that happened (rowcount is unreliable here).
        with self.engine.begin() as conn:
            return conn.execute(stmt).first() is not None

    def release_event(self, event_id: str) -> None:
        """Forget a claim whose processing failed before anything was posted, so a retry can run."""
        with self.engine.begin() as conn:
            conn.execute(delete(processed_events).where(processed_events.c.event_id == event_id))

    def purge(self, *, now: float | None = None) -> None:
        """Drop expired event ids, mutes and rate windows; cheap and idempotent."""
        now = now or time.time()
        with self.engine.begin() as conn:
            conn.execute(delete(processed_events).where(processed_events.c.received_at < now - EVENT_TTL_SECONDS))
            conn.execute(delete(mutes).where(mutes.c.until < now))
            conn.execute(delete(rate_counters).where(rate_counters.c.minute < int(now // 60) - 2))

    # --- channel overrides -------------------------------------------------------------
    def set_override(self, channel_id: str, key: str, value: str, *, user_id: str = "") -> None:
        """Upsert one admin override (mode, threshold, allow_bots) for a channel."""
        stmt = self._insert(channel_overrides).values(
            channel_id=channel_id, key=key, value=value, updated_by=user_id, updated_at=time.time()
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["channel_id", "key"],
            set_={"value": value, "updated_by": user_id, "updated_at": time.time()},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def overrides(self, channel_id: str) -> dict[str, str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(channel_overrides.c.key, channel_overrides.c.value).where(
                    channel_overrides.c.channel_id == channel_id
                )
            )
            return {row.key: row.value for row in rows}

    # --- diagnoses ---------------------------------------------------------------------
    def save_diagnosis(
        self,
        *,
        channel_id: str,
        source_ts: str,
        user_id: str,
        kind: str,
        registry: str,
        cause: str,
        confidence: float,
        lang: str,
        redacted_text: str,
        evidence: list[dict[str, Any]],
    ) -> str:
        """Store a diagnosis and return its id (what buttons carry in their value)."""
        diag_id = secrets.token_hex(8)
        with self.engine.begin() as conn:
            conn.execute(
                diagnoses.insert().values(
                    id=diag_id,
                    created_at=time.time(),
                    channel_id=channel_id,
                    source_ts=source_ts,
                    user_id=user_id,
                    kind=kind,
                    registry=registry,
                    cause=cause,
                    confidence=confidence,
                    lang=lang,
                    redacted_text=redacted_text,
                    evidence_json=json.dumps(evidence, ensure_ascii=False),
                )
            )
        return diag_id

    def get_diagnosis(self, diag_id: str) -> DiagnosisRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(diagnoses).where(diagnoses.c.id == diag_id)).first()
        if row is None:
            return None
        return DiagnosisRecord(
            id=row.id,
            channel_id=row.channel_id,
            source_ts=row.source_ts,
            user_id=row.user_id,
            kind=row.kind,
            registry=row.registry,
            cause=row.cause,
            confidence=row.confidence,
            lang=row.lang,
            redacted_text=row.redacted_text,
            evidence=json.loads(row.evidence_json or "[]"),
        )

    # --- reply map -----------------------------------------------------------------------
    def claim_reply(self, channel_id: str, source_ts: str, *, thread_ts: str, cause: str, diagnosis_id: str) -> bool:
        """Reserve the single reply to a source message; False when another handler owns it."""
        stmt = (
            self._insert(replies)
            .values(
                channel_id=channel_id,
                source_ts=source_ts,
                reply_ts=None,
                thread_ts=thread_ts,
                cause=cause,
                diagnosis_id=diagnosis_id,
                updated_at=time.time(),
            )
            .on_conflict_do_nothing(index_elements=["channel_id", "source_ts"])
            .returning(replies.c.source_ts)
        )
        with self.engine.begin() as conn:
            return conn.execute(stmt).first() is not None

    def set_reply(
        self, channel_id: str, source_ts: str, *, reply_ts: str | None, cause: str, diagnosis_id: str
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(replies)
                .where(replies.c.channel_id == channel_id, replies.c.source_ts == source_ts)
                .values(reply_ts=reply_ts, cause=cause, diagnosis_id=diagnosis_id, updated_at=time.time())
            )

    def drop_reply(self, channel_id: str, source_ts: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(replies).where(replies.c.channel_id == channel_id, replies.c.source_ts == source_ts))

    def get_reply(self, channel_id: str, source_ts: str) -> ReplyRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(replies).where(replies.c.channel_id == channel_id, replies.c.source_ts == source_ts)
            ).first()
        if row is None:
            return None
        return ReplyRecord(
            channel_id=row.channel_id,
            source_ts=row.source_ts,
            reply_ts=row.reply_ts,
            thread_ts=row.thread_ts,
            cause=row.cause,
            diagnosis_id=row.diagnosis_id,
        )

    # --- feedback --------------------------------------------------------------------------
    def vote(self, record: DiagnosisRecord, *, user_id: str, helpful: bool, at: float | None = None) -> VoteOutcome:
        """Record one person's vote on a diagnosis; a later vote replaces their earlier one.

        ``at`` is when the person clicked (Slack's ``action_ts``); a click older than the
        stored vote is ignored, so two clicks handled out of order still leave the last one.
        Only the cause id and the REDACTED text are stored (never the raw paste).
        """
        at = time.time() if at is None else at
        stmt = self._insert(feedback).values(
            created_at=at,
            updated_at=at,
            diagnosis_id=record.id,
            channel_id=record.channel_id,
            user_id=user_id,
            cause=record.cause,
            helpful=helpful,
            redacted_text=record.redacted_text,
            registry=record.registry,
            confidence=record.confidence,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["diagnosis_id", "user_id"],
            set_={"helpful": stmt.excluded.helpful, "updated_at": stmt.excluded.updated_at},
            where=feedback.c.updated_at <= stmt.excluded.updated_at,
        ).returning(feedback.c.created_at)
        with self.engine.begin() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return "stale"
        return "new" if row.created_at == at else "replaced"

    def iter_feedback(self, *, since: float = 0.0) -> Iterator[dict[str, Any]]:
        """Votes changed at or after ``since``: one row per person and diagnosis, oldest change first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(feedback)
                .where(feedback.c.updated_at >= since)
                .order_by(feedback.c.updated_at, feedback.c.id)
            ).mappings()
            for row in rows:
                yield dict(row)

    # --- mutes -----------------------------------------------------------------------------
    def mute(self, channel_id: str, cause: str, *, seconds: float, user_id: str = "") -> float:
        until = time.time() + seconds
        stmt = self._insert(mutes).values(channel_id=channel_id, cause=cause, until=until, muted_by=user_id)
        stmt = stmt.on_conflict_do_update(
            index_elements=["channel_id", "cause"], set_={"until": until, "muted_by": user_id}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
        return until

    def active_mutes(self, channel_id: str, *, now: float | None = None) -> list[MuteRecord]:
        """Mutes still running in a channel, the soonest to end first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(mutes)
                .where(mutes.c.channel_id == channel_id, mutes.c.until > (now or time.time()))
                .order_by(mutes.c.until, mutes.c.cause)
            )
            return [MuteRecord(row.channel_id, row.cause, float(row.until), row.muted_by) for row in rows]

    def unmute(self, channel_id: str, cause: str, *, now: float | None = None) -> bool:
        """End a mute before it expires; False when that cause was not muted here."""
        with self.engine.begin() as conn:
            result = conn.execute(
                delete(mutes)
                .where(mutes.c.channel_id == channel_id, mutes.c.cause == cause)
                .returning(mutes.c.until)
            )
            return any(row.until > (now or time.time()) for row in result)

    def is_muted(self, channel_id: str, cause: str, *, now: float | None = None) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(mutes.c.until).where(mutes.c.channel_id == channel_id, mutes.c.cause == cause)
            ).first()
        return row is not None and row.until > (now or time.time())

    # --- locale cache ----------------------------------------------------------------------
    def get_locale(self, user_id: str, *, now: float | None = None) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(locales).where(locales.c.user_id == user_id)).first()
        if row is None or row.fetched_at < (now or time.time()) - LOCALE_TTL_SECONDS:
            return None
        return str(row.locale)

    def set_locale(self, user_id: str, locale: str) -> None:
        now = time.time()
        stmt = self._insert(locales).values(user_id=user_id, locale=locale, fetched_at=now)
        stmt = stmt.on_conflict_do_update(index_elements=["user_id"], set_={"locale": locale, "fetched_at": now})
        with self.engine.begin() as conn:
            conn.execute(stmt)

    # --- rate limits -----------------------------------------------------------------------
    def hit_rate(self, bucket: str, limit: int, *, now: float | None = None) -> bool:
        """Count one action in this minute's window; True while the bucket is within ``limit``.

        A fixed one-minute window in the shared database, so the limit holds across replicas.
        """
        minute = int((now or time.time()) // 60)
        stmt = self._insert(rate_counters).values(bucket=bucket, minute=minute, hits=1)
        stmt = stmt.on_conflict_do_update(
            index_elements=["bucket", "minute"], set_={"hits": rate_counters.c.hits + 1}
        ).returning(rate_counters.c.hits)
        with self.engine.begin() as conn:
            count = conn.execute(stmt).scalar_one()
        return int(count) <= limit
