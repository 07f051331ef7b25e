"""@mentions by channel mode: answered everywhere; privately in `off` channels; silenced only by the settings."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.slack import BOT_USER_ID, FakeSlack
from tests.slack.conftest import ADMIN, REGISTRY_ERROR, BotRunner, event_body, message_event

ASKER = "U0000042"


def _mention(runner: BotRunner, channel: str) -> dict[str, Any]:
    event = {**message_event(f"<@{BOT_USER_ID}> {REGISTRY_ERROR}", channel=channel, user=ASKER), "type": "app_mention"}
    runner.send_event(event_body(event))
    return event


def test_mention_in_off_channel_is_answered_privately(bot: BotRunner, fake_slack: FakeSlack) -> None:
    _elapsed, ack = bot.send_command("config mode off", user=ADMIN)
    assert "off" in str(ack)
    event = _mention(bot, "C0000001")
    answer = fake_slack.wait_for(lambda: fake_slack.calls_of("chat.postEphemeral"))[0].params
    assert answer["user"] == ASKER and answer["channel"] == "C0000001" and answer["thread_ts"] == event["ts"]
    assert "registry-public-access" in json.dumps(answer["blocks"])
    fake_slack.settle(0.5)
    assert fake_slack.posts() == [] and fake_slack.calls_of("reactions.add") == []  # nothing the channel sees


def test_mention_in_off_channel_from_settings(bot_factory: Any, fake_slack: FakeSlack) -> None:
    runner = bot_factory("http", channels={"C0000003": {"mode": "off"}})
    _mention(runner, "C0000003")
    answer = fake_slack.wait_for(lambda: fake_slack.calls_of("chat.postEphemeral"))[0].params
    assert answer["user"] == ASKER and answer["blocks"]
    assert fake_slack.posts() == []


def test_mentions_turned_off_by_the_settings_are_ignored(bot_factory: Any, fake_slack: FakeSlack) -> None:
    runner = bot_factory("http", channels={"C0000004": {"mode": "passive", "mentions": False}})
    _mention(runner, "C0000004")
    fake_slack.settle(0.6)
    assert fake_slack.posts() == [] and fake_slack.calls_of("chat.postEphemeral") == []
    _elapsed, ack = runner.send_command("config", channel="C0000004")
    assert "*mentions*: `off (settings)`" in str(ack)


def test_channel_admins_cannot_turn_mentions_off(bot: BotRunner) -> None:
    _elapsed, ack = bot.send_command("config mentions off", user=ADMIN)
    assert "settable keys" in str(ack)


def test_mention_in_mention_only_channel_is_answered_in_the_thread(bot_factory: Any, fake_slack: FakeSlack) -> None:
    runner = bot_factory("http", channels={"C0000002": {"mode": "mention-only"}})
    event = _mention(runner, "C0000002")
    post = fake_slack.wait_for(lambda: fake_slack.posts())[0]
    assert post["channel"] == "C0000002" and post["thread_ts"] == event["ts"]
