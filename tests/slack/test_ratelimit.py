"""Slack's 429 + Retry-After is honoured; the bot's own per-user/per-channel limits hold."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.fakes.slack import BOT_USER_ID, FakeSlack
from tests.slack.conftest import REGISTRY_ERROR, BotRunner, event_body, message_event


def test_slack_429_is_retried_after_retry_after(bot: BotRunner, fake_slack: FakeSlack) -> None:
    fake_slack.rate_limited["chat.postMessage"] = 1
    fake_slack.retry_after = 1
    bot.send_event(event_body(message_event(REGISTRY_ERROR)))
    fake_slack.wait_for(lambda: len(fake_slack.calls_of("chat.postMessage")) >= 2, timeout=15)
    first, second = fake_slack.calls_of("chat.postMessage")[:2]
    assert second.at - first.at >= 0.9  # waited for Retry-After
    assert second.params["thread_ts"] == first.params["thread_ts"]
    fake_slack.settle(0.5)
    assert len(fake_slack.calls_of("chat.postMessage")) == 2  # one 429 + one success, no duplicate


@pytest.fixture
def clear_of_minute_turn() -> None:
    """The limits count fixed one-minute windows (as Slack's own limits do), so a test whose
    actions straddle the turn of a minute sees two windows and no refusal: wait until enough
    of this minute is left for the whole exchange (CI once lost a run to exactly that)."""
    margin = 20.0
    left = 60.0 - time.time() % 60.0
    if left < margin:
        time.sleep(left + 0.05)


def test_per_user_limit(clear_of_minute_turn: None, bot_factory: Any, fake_slack: FakeSlack) -> None:
    runner = bot_factory("http", user_rate_per_minute=2)
    for _ in range(3):
        runner.send_event(event_body({**message_event(f"<@{BOT_USER_ID}> {REGISTRY_ERROR}"), "type": "app_mention"}))
    fake_slack.wait_for(lambda: len(fake_slack.posts()) >= 2)
    refusal = fake_slack.wait_for(
        lambda: [c for c in fake_slack.calls_of("chat.postEphemeral") if "minute" in c.params.get("text", "")]
    )
    assert refusal
    _elapsed, ack = runner.send_command("diagnose " + REGISTRY_ERROR)
    assert "minute" in str(ack)
    fake_slack.settle(0.4)
    assert len(fake_slack.posts()) == 2


def test_per_channel_limit_silences_passive(
    clear_of_minute_turn: None, bot_factory: Any, fake_slack: FakeSlack
) -> None:
    runner = bot_factory("http", channel_rate_per_minute=1)
    runner.send_event(event_body(message_event(REGISTRY_ERROR, user="U0000001")))
    runner.send_event(event_body(message_event(REGISTRY_ERROR, user="U0000002")))
    fake_slack.wait_for(lambda: fake_slack.posts())
    fake_slack.settle(0.5)
    assert len(fake_slack.posts()) == 1


def test_limit_shared_by_replicas_is_enforced_right_after_the_ack(
    clear_of_minute_turn: None, bot_factory: Any, fake_slack: FakeSlack
) -> None:
    """The ack counts this replica only (no database wait); the shared count follows at once and refuses."""
    first = bot_factory("http", user_rate_per_minute=2)
    second = bot_factory("http", settings=first.settings)  # same database: two replicas
    for rid in ("a1", "a2"):
        _elapsed, ack = first.send_command("diagnose " + REGISTRY_ERROR, response_id=rid)
        assert "Diagnosing" in str(ack)
    _elapsed, ack = second.send_command("diagnose " + REGISTRY_ERROR, response_id="b1")
    assert "Diagnosing" in str(ack)  # the second replica has seen only this one
    refusal = fake_slack.wait_for(lambda: [body for rid, body in fake_slack.responses if rid == "b1"])[0]
    assert "minute" in refusal["text"] and refusal["response_type"] == "ephemeral"
    fake_slack.wait_for(lambda: len([rid for rid, _ in fake_slack.responses if rid in ("a1", "a2")]) >= 2, timeout=30)
    fake_slack.settle(0.5)
    assert [body for rid, body in fake_slack.responses if rid == "b1"] == [refusal]  # and no diagnosis after it
