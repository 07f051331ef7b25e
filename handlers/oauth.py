"""Multi-workspace install: slack-sdk's SQLAlchemy stores on the bot's own database.

slack-sdk ships sync SQLAlchemy stores and async ones that need an async driver
(aiosqlite/asyncpg). Rather than add drivers, the sync stores run in a worker thread
behind the async interfaces Bolt's AsyncApp expects, on the same engine as bot.store.
"""

from __future__ import annotations

import asyncio
from logging import Logger
from typing import TYPE_CHECKING, Any

from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy.engine import Engine

from bot.config import Settings

if TYPE_CHECKING:  # the SQLAlchemy stores import sqlalchemy.ext.asyncio, which needs greenlet
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

#: Bot scopes requested at install; keep in sync with slack-manifest.yaml.
BOT_SCOPES = [
    "app_mentions:read",
    "channels:history",
    "groups:history",
    "im:history",
    "chat:write",
    "commands",
    "files:read",
    "reactions:write",
    "users:read",
]


class ThreadedInstallationStore(AsyncInstallationStore):
    """Async facade over the sync SQLAlchemy installation store."""

    def __init__(self, inner: SQLAlchemyInstallationStore) -> None:
        self.inner = inner

    @property
    def logger(self) -> Logger:
        return self.inner.logger

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.inner.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.inner.save_bot, bot)

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        return await asyncio.to_thread(
            self.inner.find_bot,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await asyncio.to_thread(
            self.inner.find_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(self.inner.delete_bot, enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await asyncio.to_thread(
            self.inner.delete_installation, enterprise_id=enterprise_id, team_id=team_id, user_id=user_id
        )

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)


class ThreadedStateStore(AsyncOAuthStateStore):
    """Async facade over the sync SQLAlchemy OAuth state store."""

    def __init__(self, inner: SQLAlchemyOAuthStateStore) -> None:
        self.inner = inner

    @property
    def logger(self) -> Logger:
        return self.inner.logger

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.inner.issue, *args, **kwargs)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.inner.consume, state)


def oauth_enabled(settings: Settings) -> bool:
    return bool(settings.slack_client_id and settings.slack_client_secret)


def oauth_settings(settings: Settings, engine: Engine) -> tuple[AsyncOAuthSettings, ThreadedInstallationStore]:
    """OAuth settings for AsyncApp; creates the slack_* tables if missing."""
    assert settings.slack_client_id and settings.slack_client_secret
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
    from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

    installations = SQLAlchemyInstallationStore(client_id=settings.slack_client_id, engine=engine)
    states = SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine)
    installations.create_tables()
    states.create_tables()
    store = ThreadedInstallationStore(installations)
    return (
        AsyncOAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret.get_secret_value(),
            scopes=BOT_SCOPES,
            installation_store=store,
            state_store=ThreadedStateStore(states),
            install_path="/slack/install",
            redirect_uri_path="/slack/oauth_redirect",
        ),
        store,
    )
