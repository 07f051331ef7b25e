"""Another channel's watches (registry names and health) are listed only for its admins."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.config import Settings
from handlers.watch import handle_watch_command

ADMIN = "UADMIN"


@pytest.fixture
def settings(make_settings: Callable[..., Settings], sqlite_url: str) -> Settings:
    return make_settings(sqlite_url, "http://127.0.0.1:1/api/", admins=[ADMIN])


def run(settings: Settings, sub: str, args: str, *, user: str, channel: str) -> tuple[str, bool]:
    return handle_watch_command(
        sub, args, user_id=user, channel_id=channel, settings=settings, is_admin=lambda u, c: u == ADMIN
    )


def test_listing_another_channel_needs_its_admin(settings: Settings) -> None:
    run(settings, "watch", "secretreg", user=ADMIN, channel="CPRIVATE")
    text, ephemeral = run(settings, "watches", "<#CPRIVATE|private>", user="UNOBODY", channel="CPUBLIC")
    assert ephemeral and "secretreg" not in text and "Only admins of <#CPRIVATE>" in text
    text, _ = run(settings, "watches", "<#CPRIVATE|private>", user=ADMIN, channel="CPUBLIC")
    assert "*secretreg*" in text
    text, _ = run(settings, "watches", "", user="UNOBODY", channel="CPRIVATE")  # in the channel itself
    assert "*secretreg*" in text
