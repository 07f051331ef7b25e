"""``/acrcheck watch | watches | unwatch`` through handlers.watch."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.config import ChannelSettings, Settings
from bot.scheduler.store import store_for_url
from handlers.watch import handle_watch_command

ADMIN = "UADMIN"


@pytest.fixture
def settings(make_settings: Callable[..., Settings], sqlite_url: str) -> Settings:
    return make_settings(
        sqlite_url,
        "http://127.0.0.1:1/api/",
        channels={"CLOCKED1": ChannelSettings(admins=[ADMIN], registries=["allowedreg"])},
        admins=[ADMIN],
    )


def run(
    settings: Settings, sub: str, args: str, *, user: str = ADMIN, channel: str = "CHAN0001"
) -> tuple[str, bool]:
    return handle_watch_command(
        sub, args, user_id=user, channel_id=channel, settings=settings, is_admin=lambda u, c: u == ADMIN
    )


def test_watch_list_unwatch(settings: Settings) -> None:
    text, ephemeral = run(settings, "watch", "MyRegistry every 30m <#CPLATFORM|platform>")
    assert not ephemeral and "Now watching *myregistry* in <#CPLATFORM>, every 30m" in text
    text, _ = run(settings, "watch", "myregistry.azurecr.io daily 09:00 Europe/Paris <#CPLATFORM>")
    assert "Updated the watch" in text and "daily 09:00 Europe/Paris" in text
    text, ephemeral = run(settings, "watches", "", channel="CPLATFORM")
    assert ephemeral and "*myregistry*: daily 09:00 Europe/Paris, not checked yet" in text
    text, ephemeral = run(settings, "unwatch", "myregistry <#CPLATFORM>")
    assert not ephemeral and "Stopped watching *myregistry*" in text
    text, ephemeral = run(settings, "watches", "", channel="CPLATFORM")
    assert ephemeral and "No registries are watched" in text
    assert store_for_url(settings.database_url).count_watches() == 0


def test_only_admins_change_watches(settings: Settings) -> None:
    text, ephemeral = run(settings, "watch", "myregistry", user="UNOBODY")
    assert ephemeral and "Only admins of <#CHAN0001>" in text and f"<@{ADMIN}>" in text
    run(settings, "watch", "myregistry")
    text, ephemeral = run(settings, "unwatch", "myregistry", user="UNOBODY")
    assert ephemeral and "Only admins" in text
    text, _ = run(settings, "watches", "", user="UNOBODY")  # anyone may list
    assert "*myregistry*" in text


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ("169.254.169.254", "IP addresses are not accepted"),
        ("localhost", ""),
        ("https://evil.example.com/v2/", ""),
        ("myregistry weekly", "don't understand"),
        ("myregistry every 1m", "too frequent"),
        ("myregistry #ops", "autocomplete"),
        ("", "Name the registry"),
    ],
)
def test_bad_input_is_explained(settings: Settings, args: str, fragment: str) -> None:
    text, ephemeral = run(settings, "watch", args)
    assert ephemeral and "Usage:" in text and fragment in text
    assert store_for_url(settings.database_url).count_watches() == 0


def test_channel_allowlist_applies(settings: Settings) -> None:
    text, ephemeral = run(settings, "watch", "otherreg", channel="CLOCKED1")
    assert ephemeral and "not on <#CLOCKED1>'s list" in text
    text, ephemeral = run(settings, "watch", "allowedreg", channel="CLOCKED1")
    assert not ephemeral


def test_unwatch_unknown_and_unknown_subcommand(settings: Settings) -> None:
    text, ephemeral = run(settings, "unwatch", "nosuchreg")
    assert ephemeral and "is not watched" in text
    text, ephemeral = run(settings, "watchez", "")
    assert ephemeral and "Unknown subcommand" in text
