"""Signed interactivity payloads with no usable action: 200, ignored, one debug line; over both transports."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.fakes.slack import FakeSlack
from tests.slack.conftest import BotRunner, click, post_diagnosis

#: Well-formed clicks without a usable action: acknowledged and ignored.
UNUSABLE: list[Any] = [[], [{}], [{"action_id": ""}], None]
#: Wrong JSON types are malformed (issue 12): 400 over HTTP; in Socket Mode the envelope is acked.
MALFORMED: list[Any] = [["not-an-object"], "not-a-list"]


@pytest.mark.parametrize("actions", UNUSABLE, ids=["empty", "no-id", "blank-id", "null"])
def test_click_without_usable_action_is_acked_and_ignored(
    bot: BotRunner, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture, actions: Any
) -> None:
    caplog.set_level(logging.DEBUG, logger="acrcheck.slack.actions")
    payload = click(fake_slack, "acrcheck_helpful", "whatever", actions=[])
    payload["actions"] = actions
    answer = bot.send_interactive(payload)
    if bot.mode == "http":
        assert answer == 200
    else:
        assert answer.get("envelope_id")  # the envelope was acked
    fake_slack.settle(0.4)
    connecting = {"auth.test", "apps.connections.open"}
    assert [c.method for c in fake_slack.calls if c.method not in connecting] == [] and fake_slack.responses == []
    assert any("no usable action" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


@pytest.mark.parametrize("actions", MALFORMED, ids=["string-item", "string"])
def test_click_with_malformed_actions_is_refused_or_acked(bot: BotRunner, fake_slack: FakeSlack, actions: Any) -> None:
    payload = click(fake_slack, "acrcheck_helpful", "whatever", actions=[])
    payload["actions"] = actions
    answer = bot.send_interactive(payload)
    if bot.mode == "http":
        assert answer == 400
    else:
        assert answer.get("envelope_id")
    fake_slack.settle(0.4)
    connecting = {"auth.test", "apps.connections.open"}
    assert [c.method for c in fake_slack.calls if c.method not in connecting] == [] and fake_slack.responses == []


def test_a_real_click_still_works_next_to_them(bot: BotRunner, fake_slack: FakeSlack) -> None:
    post, diag_id = post_diagnosis(bot, fake_slack)
    bot.send_interactive({**click(fake_slack, "acrcheck_helpful", diag_id), "actions": []})
    bot.send_interactive(click(fake_slack, "acrcheck_helpful", diag_id, channel=post["channel"]))
    text = fake_slack.wait_for(lambda: fake_slack.calls_of("chat.postEphemeral"))[0].params["text"]
    assert "vote was recorded" in text
