"""Fixtures for scheduler tests: fake Slack, scripted registries, SQLite and PostgreSQL stores."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fake_registry import World
from fake_slack import FakeSlack
from pydantic import SecretStr

from bot.config import Settings, WatchSpec
from bot.scheduler.leader import FileLockLeader
from bot.scheduler.poster import Poster, make_slack_client
from bot.scheduler.store import Store
from bot.scheduler.sweep import Sweeper

HERE = Path(__file__).parent


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def make_settings(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """Settings built only from arguments: a developer's ACRCHECK_* environment must not leak in."""
    for key in list(os.environ):
        if key.startswith(("ACRCHECK_", "SLACK_")):
            monkeypatch.delenv(key, raising=False)

    def build(database_url: str, slack_api_url: str, watches: list[tuple[str, str, str]] | None = None,
              **extra: Any) -> Settings:  # fmt: skip
        return Settings(
            database_url=database_url,
            slack_api_url=slack_api_url,
            slack_bot_token=SecretStr("xoxb-test"),
            watches=[WatchSpec(registry=r, channel=c, schedule=s) for r, c, s in (watches or [])],
            **extra,
        )

    return build


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'acrcheck.db'}"


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    s = Store(sqlite_url)
    s.create_all()
    yield s
    s.dispose()


class AlwaysLeader(FileLockLeader):
    """Leadership without a lock, for driving sweeps directly in one process."""

    def __init__(self) -> None:
        super().__init__(None, owner="test-owner", poll=0.1)
        self.is_leader = True


@pytest.fixture
def make_sweeper(world: World, fake_slack: FakeSlack) -> Callable[..., Sweeper]:
    def build(store: Store, settings: Settings, *, min_interval: float = 0.0, epoch: int = 1) -> Sweeper:
        sweeper = Sweeper(
            store=store,
            leadership=AlwaysLeader(),
            settings=settings,
            poster=Poster(make_slack_client(settings), min_interval=min_interval),
            reader=world.read,
            check=world.check,
            concurrency=8,
            check_timeout=5,
        )
        sweeper.epoch = epoch
        return sweeper

    return build


# --- PostgreSQL ------------------------------------------------------------------------


def _with_db(url: str, db: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh database per test session on TEST_PG_URL; skipped when unset."""
    admin = os.environ.get("TEST_PG_URL")
    if not admin:
        pytest.skip("TEST_PG_URL not set (PostgreSQL multi-replica tests)")
    host = psycopg.conninfo.conninfo_to_dict(admin).get("host", "")
    if host not in ("127.0.0.1", "localhost") and not str(host).startswith("127."):
        pytest.skip("TEST_PG_URL must point at 127.0.0.0/8")
    name = f"acrcheck_sched_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_db(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    """Empty scheduler tables for each test (same database, truncated)."""
    s = Store(pg_url)
    s.create_all()
    with s.engine.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE acr_watches, acr_watch_state, acr_watch_claims, acr_scheduler_leader RESTART IDENTITY"
        )
    yield s
    s.dispose()


@pytest.fixture
def replica_env(pg_store: Store, tmp_path: Path) -> Path:
    """Three watches on a 2 s schedule whose status flips every slot (see replica_harness)."""
    from replica_harness import make_world

    return make_world(pg_store, tmp_path / "world.json")
