"""bot.store on SQLite and PostgreSQL: claims are exclusive, overrides/mutes/locales/rate windows work."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.store import Store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'store.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_fresh_url")
    store = Store.from_url(url)
    yield store
    store.dispose()


def test_claim_event_is_exclusive_across_threads(store: Store) -> None:
    wins: list[bool] = []
    lock = threading.Lock()

    def claim() -> None:
        other = Store(store.engine)
        result = other.claim_event("Ev-race")
        with lock:
            wins.append(result)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wins.count(True) == 1
    assert store.claim_event("Ev-race") is False
    assert store.claim_event("Ev-other") is True


def test_reply_claim_and_map(store: Store) -> None:
    assert store.claim_reply("C1", "1.1", thread_ts="1.1", cause="auth", diagnosis_id="d1")
    assert not store.claim_reply("C1", "1.1", thread_ts="1.1", cause="auth", diagnosis_id="d2")
    store.set_reply("C1", "1.1", reply_ts="2.2", cause="client-dns", diagnosis_id="d3")
    reply = store.get_reply("C1", "1.1")
    assert reply is not None and reply.reply_ts == "2.2" and reply.cause == "client-dns"
    store.drop_reply("C1", "1.1")
    assert store.get_reply("C1", "1.1") is None


def test_overrides_mutes_locales(store: Store) -> None:
    store.set_override("C1", "mode", "off", user_id="U1")
    store.set_override("C1", "mode", "passive", user_id="U1")
    store.set_override("C1", "threshold", "0.7")
    assert store.overrides("C1") == {"mode": "passive", "threshold": "0.7"}
    store.mute("C1", "auth", seconds=60)
    assert store.is_muted("C1", "auth") and not store.is_muted("C1", "client-dns")
    store.mute("C1", "auth", seconds=-1)
    assert not store.is_muted("C1", "auth")
    store.set_locale("U1", "ja-JP")
    assert store.get_locale("U1") == "ja-JP"
    assert store.get_locale("U1", now=10**12) is None  # expired


def test_rate_window(store: Store) -> None:
    now = 1_000_000.0
    assert all(store.hit_rate("user:U1", 3, now=now) for _ in range(3))
    assert not store.hit_rate("user:U1", 3, now=now)
    assert store.hit_rate("user:U1", 3, now=now + 60)  # next minute


def test_diagnosis_and_feedback(store: Store) -> None:
    diag_id = store.save_diagnosis(
        channel_id="C1",
        source_ts="1.1",
        user_id="U1",
        kind="paste",
        registry="r.azurecr.io",
        cause="auth",
        confidence=0.8,
        lang="en",
        redacted_text="password=[REDACTED]",
        evidence=[{"check": "text", "vantage": "from the user's paste"}],
    )
    record = store.get_diagnosis(diag_id)
    assert record is not None and record.evidence[0]["check"] == "text"
    assert store.vote(record, user_id="U2", helpful=False) == "new"
    rows = list(store.iter_feedback())
    assert rows[0]["cause"] == "auth" and rows[0]["helpful"] is False
    store.purge(now=10**12)
    assert store.claim_event("fresh")
