"""Signed interactivity payloads with no usable action: 200, ignored, one debug line; over both transports."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.fakes.slack import FakeSlack
from tests.slack.conftest import BotRunner, click, post_diagnosis

UNUSABLE: list[Any] = [[], [{}], [{"action_id": ""}], ["not-an-object"], "not-a-list", None]


@pytest.mark.parametrize("actions", UNUSABLE, ids=["empty", "no-id", "blank-id", "string-item", "string", "null"])
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


def test_a_real_click_still_works_next_to_them(bot: BotRunner, fake_slack: FakeSlack) -> None:
    post, diag_id = post_diagnosis(bot, fake_slack)
    bot.send_interactive({**click(fake_slack, "acrcheck_helpful", diag_id), "actions": []})
    bot.send_interactive(click(fake_slack, "acrcheck_helpful", diag_id, channel=post["channel"]))
    text = fake_slack.wait_for(lambda: fake_slack.calls_of("chat.postEphemeral"))[0].params["text"]
    assert "vote was recorded" in text
