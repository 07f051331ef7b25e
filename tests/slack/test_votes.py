"""One vote per person and diagnosis: over the HTTP app with signed clicks, and in the store on both databases."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from bot.service.feedback_export import export_feedback, voter_id
from bot.store import FEEDBACK_VOTE_INDEX, DiagnosisRecord, Store
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import BotRunner, click, post_diagnosis


def _export(bot: BotRunner) -> list[dict[str, Any]]:
    out = io.StringIO()
    export_feedback(bot.settings.database_url, out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds")


def _ephemerals(fake: FakeSlack) -> list[str]:
    return [str(c.params.get("text")) for c in fake.calls_of("chat.postEphemeral")]


def test_double_click_is_one_vote_and_a_later_click_replaces_it(bot: BotRunner, fake_slack: FakeSlack) -> None:
    post, diag_id = post_diagnosis(bot, fake_slack)
    first = time.time() - 200
    for n, (action, at) in enumerate(
        [("acrcheck_helpful", first), ("acrcheck_helpful", first + 60), ("acrcheck_not_helpful", first + 120)]
    ):
        bot.send_interactive(click(fake_slack, action, diag_id, channel=post["channel"], action_ts=at))
        fake_slack.wait_for(lambda n=n: len(fake_slack.calls_of("chat.postEphemeral")) > n)
    rows = _export(bot)
    assert len(rows) == 1, rows
    assert rows[0]["helpful"] is False and rows[0]["label"] is None
    assert rows[0]["predicted"] == "registry-public-access"
    assert rows[0]["created_at"] == _iso(first) and rows[0]["updated_at"] == _iso(first + 120)
    assert rows[0]["voter"] == voter_id("U0000009")
    texts = _ephemerals(fake_slack)
    assert "recorded" in texts[0] and "replaces your earlier one" in texts[2] and "not helpful" in texts[2]


def test_clicks_handled_out_of_order_keep_the_last_click(bot: BotRunner, fake_slack: FakeSlack) -> None:
    post, diag_id = post_diagnosis(bot, fake_slack)
    now = time.time()
    later = click(fake_slack, "acrcheck_not_helpful", diag_id, channel=post["channel"], action_ts=now - 1)
    earlier = click(fake_slack, "acrcheck_helpful", diag_id, channel=post["channel"], action_ts=now - 5)
    bot.send_interactive(later)
    fake_slack.wait_for(lambda: fake_slack.calls_of("chat.postEphemeral"))
    bot.send_interactive(earlier)  # a delayed delivery of the first click
    fake_slack.wait_for(lambda: len(fake_slack.calls_of("chat.postEphemeral")) >= 2)
    rows = _export(bot)
    assert len(rows) == 1 and rows[0]["helpful"] is False
    assert "not counted" in _ephemerals(fake_slack)[1]


def test_two_people_two_rows(bot: BotRunner, fake_slack: FakeSlack) -> None:
    post, diag_id = post_diagnosis(bot, fake_slack)
    for user in ("U0000011", "U0000012", "U0000011"):
        bot.send_interactive(click(fake_slack, "acrcheck_helpful", diag_id, channel=post["channel"], user=user))
    fake_slack.wait_for(lambda: len(fake_slack.calls_of("chat.postEphemeral")) >= 3)
    rows = _export(bot)
    assert sorted(r["voter"] for r in rows) == sorted({voter_id("U0000011"), voter_id("U0000012")})


# --- the store, on SQLite and PostgreSQL --------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no acrcheck tables at all (PostgreSQL: a new database, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'votes.db'}"
        return
    import psycopg

    server = request.getfixturevalue("pg_server_url")
    name = f"acrcheck_votes_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urllib.parse.urlunsplit(urllib.parse.urlsplit(server)._replace(path=f"/{name}"))
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _record(diag_id: str) -> DiagnosisRecord:
    return DiagnosisRecord(
        id=diag_id,
        channel_id="C1",
        source_ts="1.1",
        user_id="U1",
        kind="paste",
        registry="",
        cause="client-dns",
        confidence=0.9,
        lang="en",
        redacted_text="dial tcp: lookup myreg.azurecr.io: no such host",
        evidence=[],
    )


def test_store_vote_upsert(empty_db_url: str) -> None:
    store = Store.from_url(empty_db_url)
    try:
        record = _record("d1")
        assert store.vote(record, user_id="U1", helpful=True, at=100.0) == "new"
        assert store.vote(record, user_id="U1", helpful=True, at=110.0) == "replaced"
        assert store.vote(record, user_id="U1", helpful=False, at=105.0) == "stale"
        assert store.vote(record, user_id="U2", helpful=False, at=120.0) == "new"
        rows = list(store.iter_feedback())
        assert [(r["user_id"], r["helpful"], r["created_at"], r["updated_at"]) for r in rows] == [
            ("U1", True, 100.0, 110.0),
            ("U2", False, 120.0, 120.0),
        ]
        assert [r["user_id"] for r in store.iter_feedback(since=115.0)] == ["U2"]
    finally:
        store.dispose()


#: acrcheck_feedback as created before one vote per person (no updated_at, no unique index).
OLD_FEEDBACK_DDL = """
CREATE TABLE acrcheck_feedback (
    id {id_type},
    created_at FLOAT NOT NULL,
    diagnosis_id VARCHAR(32) NOT NULL,
    channel_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    cause VARCHAR(64) NOT NULL,
    helpful BOOLEAN NOT NULL,
    redacted_text TEXT NOT NULL,
    registry VARCHAR(255) NOT NULL,
    confidence FLOAT NOT NULL
)
"""


def _old_database(url: str, votes: list[tuple[float, str, str, bool]]) -> None:
    old = Store.from_url(url, create=False)
    id_type = "SERIAL PRIMARY KEY" if old.engine.dialect.name == "postgresql" else "INTEGER PRIMARY KEY AUTOINCREMENT"
    with old.engine.begin() as conn:
        conn.execute(text(OLD_FEEDBACK_DDL.format(id_type=id_type)))
        for created, diag, user, helpful in votes:
            conn.execute(
                text(
                    "INSERT INTO acrcheck_feedback (created_at, diagnosis_id, channel_id, user_id, cause, helpful,"
                    " redacted_text, registry, confidence) VALUES (:c, :d, 'C1', :u, 'client-dns', :h, 'x', '', 0.5)"
                ),
                {"c": created, "d": diag, "u": user, "h": helpful},
            )
    old.dispose()


def test_replicas_starting_together_migrate_once(empty_db_url: str) -> None:
    _old_database(empty_db_url, [(100.0 + n, "d1", f"U{n % 3}", n % 2 == 0) for n in range(30)])
    errors: list[BaseException] = []
    stores: list[Store] = []
    lock = threading.Lock()

    def start() -> None:
        try:
            store = Store.from_url(empty_db_url)
        except BaseException as exc:  # reported below
            with lock:
                errors.append(exc)
            return
        with lock:
            stores.append(store)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        rows = list(stores[0].iter_feedback())
        assert sorted((r["user_id"], r["updated_at"]) for r in rows) == [("U0", 127.0), ("U1", 128.0), ("U2", 129.0)]
    finally:
        for store in stores:
            store.dispose()


def test_existing_database_is_migrated_duplicates_collapse_to_the_latest(empty_db_url: str) -> None:
    votes = [  # (created_at, diagnosis, user, helpful): what per-click counting left behind
        (100.0, "d1", "U1", True),
        (130.0, "d1", "U1", False),
        (115.0, "d1", "U1", True),
        (140.0, "d1", "U2", True),
        (150.0, "d2", "U1", False),
        (160.0, "d2", "U1", False),
    ]
    _old_database(empty_db_url, votes)
    store = Store.from_url(empty_db_url)  # what a new version does at start
    try:
        rows = {(r["diagnosis_id"], r["user_id"]): r for r in store.iter_feedback()}
        assert sorted(rows) == [("d1", "U1"), ("d1", "U2"), ("d2", "U1")]
        assert rows[("d1", "U1")]["helpful"] is False and rows[("d1", "U1")]["updated_at"] == 130.0
        assert rows[("d2", "U1")]["updated_at"] == 160.0
        with store.engine.connect() as conn:
            indexes = {ix["name"]: ix for ix in inspect(conn).get_indexes("acrcheck_feedback")}
        assert indexes[FEEDBACK_VOTE_INDEX]["unique"]
        assert store.vote(_record("d1"), user_id="U1", helpful=True, at=200.0) == "replaced"
        assert len(list(store.iter_feedback())) == 3
    finally:
        store.dispose()
    again = Store.from_url(empty_db_url)  # a second start (or a second replica) changes nothing
    try:
        assert len(list(again.iter_feedback())) == 3
    finally:
        again.dispose()
