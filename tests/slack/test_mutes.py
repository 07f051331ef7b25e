"""Mute: channel admins by default (the rule of /acrcheck config), announced to the channel, listed, undone."""

from __future__ import annotations

from typing import Any

from tests.fakes.slack import FakeSlack
from tests.slack.conftest import ADMIN, REGISTRY_ERROR, BotRunner, click, event_body, message_event, post_diagnosis

CAUSE = "registry-public-access"
MEMBER = "U0000009"


def _mute(bot: BotRunner, fake: FakeSlack, user: str) -> dict[str, Any]:
    post, diag_id = post_diagnosis(bot, fake)
    payload = click(fake, "acrcheck_mute", diag_id, channel=post["channel"], user=user, thread_ts=post["thread_ts"])
    bot.send_interactive(payload)
    return post


def _paste_is_answered(bot: BotRunner, fake: FakeSlack) -> bool:
    before = len(fake.posts())
    bot.send_event(event_body(message_event(REGISTRY_ERROR)))
    fake.settle(0.5)
    return len(fake.posts()) > before


def test_member_mute_refused_by_default(bot: BotRunner, fake_slack: FakeSlack) -> None:
    _mute(bot, fake_slack, MEMBER)
    refusal = fake_slack.wait_for(lambda: fake_slack.calls_of("chat.postEphemeral"))[0].params
    assert refusal["user"] == MEMBER
    assert "Only channel admins" in refusal["text"] and f"<@{ADMIN}>" in refusal["text"]
    assert len(fake_slack.posts()) == 1  # no announcement
    assert _paste_is_answered(bot, fake_slack)  # and nothing was muted


def test_admin_mute_is_announced_with_who_what_and_until(bot: BotRunner, fake_slack: FakeSlack) -> None:
    post = _mute(bot, fake_slack, ADMIN)
    notice = fake_slack.wait_for(lambda: fake_slack.posts()[1:])[0]
    assert notice["channel"] == post["channel"]
    assert notice["thread_ts"] == post["thread_ts"] and notice["reply_broadcast"] in (True, "true", "1")
    assert f"<@{ADMIN}>" in notice["text"] and f"`{CAUSE}`" in notice["text"] and "<!date^" in notice["text"]
    assert f"/acrcheck unmute {CAUSE}" in notice["text"]
    assert not _paste_is_answered(bot, fake_slack)


def test_members_can_mute_when_the_setting_allows_it(bot_factory: Any, fake_slack: FakeSlack) -> None:
    runner = bot_factory("http", members_can_mute=True)
    _mute(runner, fake_slack, MEMBER)
    notice = fake_slack.wait_for(lambda: fake_slack.posts()[1:])[0]
    assert f"<@{MEMBER}>" in notice["text"]
    assert not _paste_is_answered(runner, fake_slack)


def test_config_lists_active_mutes(bot: BotRunner, fake_slack: FakeSlack) -> None:
    _elapsed, ack = bot.send_command("config")
    assert "*mutes*: none" in str(ack)
    _mute(bot, fake_slack, ADMIN)
    fake_slack.wait_for(lambda: fake_slack.posts()[1:])
    _elapsed, ack = bot.send_command("config", user=MEMBER)  # anyone may look
    assert f"`{CAUSE}` until <!date^" in str(ack) and f"(by <@{ADMIN}>)" in str(ack)


def test_unmute(bot: BotRunner, fake_slack: FakeSlack) -> None:
    _mute(bot, fake_slack, ADMIN)
    fake_slack.wait_for(lambda: fake_slack.posts()[1:])
    _elapsed, ack = bot.send_command(f"unmute {CAUSE}", user=MEMBER)
    assert "Only channel admins" in str(ack) and ack.get("response_type") == "ephemeral"
    assert not _paste_is_answered(bot, fake_slack)  # still muted
    _elapsed, ack = bot.send_command(f"unmute `{CAUSE}`", user=ADMIN)
    assert ack.get("response_type") == "in_channel"  # the channel sees who ended it
    assert f"<@{ADMIN}> unmuted `{CAUSE}`" in str(ack)
    assert _paste_is_answered(bot, fake_slack)
    _elapsed, ack = bot.send_command("config")
    assert "*mutes*: none" in str(ack)
    _elapsed, ack = bot.send_command(f"unmute {CAUSE}", user=ADMIN)
    assert "is not muted" in str(ack) and ack.get("response_type") == "ephemeral"
    _elapsed, ack = bot.send_command("unmute <script>", user=ADMIN)
    assert "Give the cause to unmute" in str(ack) and "<script>" not in str(ack)


def test_mute_notice_uses_response_url_where_the_bot_is_not_a_member(bot: BotRunner, fake_slack: FakeSlack) -> None:
    post, diag_id = post_diagnosis(bot, fake_slack)
    fake_slack.failing["chat.postMessage"] = "not_in_channel"
    bot.send_interactive(click(fake_slack, "acrcheck_mute", diag_id, channel=post["channel"], user=ADMIN))
    body = fake_slack.wait_for(lambda: fake_slack.responses)[0][1]
    assert body["response_type"] == "in_channel" and body["replace_original"] is False
    assert f"<@{ADMIN}> muted `{CAUSE}`" in body["text"]


def test_mute_in_an_off_channel_is_announced_in_the_thread_only(bot: BotRunner, fake_slack: FakeSlack) -> None:
    """An ``off`` channel sees nothing unprompted: the notice is not broadcast to it."""
    post, diag_id = post_diagnosis(bot, fake_slack)
    _elapsed, ack = bot.send_command("config mode off", user=ADMIN)
    assert "off" in str(ack)
    bot.send_interactive(
        click(fake_slack, "acrcheck_mute", diag_id, channel=post["channel"], user=ADMIN, thread_ts=post["thread_ts"])
    )
    notice = fake_slack.wait_for(lambda: fake_slack.posts()[1:])[0]
    assert notice["thread_ts"] == post["thread_ts"] and f"<@{ADMIN}> muted `{CAUSE}`" in notice["text"]
    assert notice.get("reply_broadcast") in (None, False, "false", "0")


def test_mute_clicked_on_a_private_answer_is_announced_privately(bot: BotRunner, fake_slack: FakeSlack) -> None:
    """A click on an ephemeral answer: the notice goes back through response_url, not to the channel."""
    post, diag_id = post_diagnosis(bot, fake_slack)
    payload = click(fake_slack, "acrcheck_mute", diag_id, channel=post["channel"], user=ADMIN)
    payload["container"]["is_ephemeral"] = True
    del payload["message"]  # Slack sends no message for a click on an ephemeral one
    bot.send_interactive(payload)
    body = fake_slack.wait_for(lambda: fake_slack.responses)[0][1]
    assert body["response_type"] == "ephemeral" and body["replace_original"] is False
    assert f"<@{ADMIN}> muted `{CAUSE}`" in body["text"]
    fake_slack.settle(0.3)
    assert len(fake_slack.posts()) == 1  # the diagnosis only: nothing posted to the channel
    assert not _paste_is_answered(bot, fake_slack)  # the mute itself holds
