"""The Slack bot's own Web API client (replies, not scheduled posts) never posts a reply twice.

slack_sdk's stock connection-error retry resends ``chat.postMessage`` after the server closed
the connection without an answer — when Slack may already have applied the message. The bot's
client resends a post only when its connection never opened.
"""

from __future__ import annotations

import pytest
from fake_slack import FakeSlack

from bot.config import Settings
from handlers.app import make_client


async def test_a_reply_whose_answer_was_lost_is_not_posted_again(fake_slack: FakeSlack) -> None:
    settings = Settings(slack_api_url=fake_slack.api_url, slack_bot_token="xoxb-test")
    dropped = fake_slack.drop(lambda method, params: method == "chat.postMessage")
    client = make_client(settings)
    with pytest.raises(Exception):  # noqa: B017 - the lost answer surfaces as the transport's error
        await client.chat_postMessage(channel="C1", text="diagnosis", thread_ts="1.0")
    assert dropped.is_set()
    assert len(fake_slack.posts()) == 1, "the reply was sent again after Slack applied it"


async def test_other_calls_are_still_retried_after_a_lost_answer(fake_slack: FakeSlack) -> None:
    settings = Settings(slack_api_url=fake_slack.api_url, slack_bot_token="xoxb-test")
    client = make_client(settings)
    posted = await client.chat_postMessage(channel="C1", text="checking…")
    fake_slack.drop(lambda method, params: method == "chat.update")
    answer = await client.chat_update(channel="C1", ts=posted["ts"], text="edited")  # idempotent: retried
    assert answer["ok"]
    assert len(fake_slack.updates()) == 2
