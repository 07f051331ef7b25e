"""A pasted secret is never echoed: not in any Web API call, response_url body or log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.fakes.slack import BOT_USER_ID, FakeSlack
from tests.slack.conftest import BotRunner, event_body, message_event

PASSWORD = "Zq9!vTr4-pL2mX7wKe"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhY3JjaGVjayIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlLXZhbHVlLWhlcmU"
SECRET_PASTE = (
    f"$ docker login contosoreg.azurecr.io -u contosoreg -p {PASSWORD}\n"
    f"Authorization: Bearer {JWT}\n"
    'Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": denied: client with IP '
    "'203.0.113.9' is not allowed access. Refer https://aka.ms/acr/firewall"
)
SECRETS = [PASSWORD, JWT, JWT.split(".")[1], JWT.split(".")[2]]


def _assert_clean(fake: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    sent = fake.outgoing_dump()
    for secret in SECRETS:
        assert secret not in sent
    for record in caplog.records:
        line = record.getMessage()
        for secret in SECRETS:
            assert secret not in line, (record.name, line[:200])
    assert caplog.records, "expected some log output at DEBUG"


def test_secret_in_passive_message(bot: BotRunner, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    event = message_event(SECRET_PASTE, user="USECRET1")
    bot.send_event(event_body(event))
    fake_slack.wait_for(lambda: fake_slack.posts())
    warning = fake_slack.wait_for(lambda: fake_slack.calls_of("chat.postEphemeral"))
    assert warning[0].params["user"] == "USECRET1"
    assert "rotate" in warning[0].params["text"]
    fake_slack.settle(0.4)
    _assert_clean(fake_slack, caplog)


def test_secret_in_mention_and_command(bot: BotRunner, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    bot.send_event(event_body({**message_event(f"<@{BOT_USER_ID}> {SECRET_PASTE}"), "type": "app_mention"}))
    fake_slack.wait_for(lambda: fake_slack.posts())
    bot.send_command("diagnose " + SECRET_PASTE.replace("\n", " "))
    fake_slack.wait_for(lambda: len(fake_slack.responses) >= 2, timeout=30)
    fake_slack.settle(0.4)
    _assert_clean(fake_slack, caplog)


def test_secret_in_feedback_and_evidence(
    bot_factory: Any, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = bot_factory("http")
    bot_event = message_event(SECRET_PASTE)
    runner.send_event(event_body(bot_event))
    post = fake_slack.wait_for(lambda: fake_slack.posts())[0]
    actions = next(b for b in post["blocks"] if b["type"] == "actions")
    diag_id = actions["elements"][0]["value"]
    assert PASSWORD not in diag_id
    for action_id in ("acrcheck_helpful", "acrcheck_evidence"):
        runner.send_interactive(_click(action_id, diag_id, bot_event["channel"]))
    fake_slack.wait_for(lambda: len(fake_slack.calls_of("chat.postEphemeral")) >= 3)
    assert runner.store is not None
    rows = list(runner.store.iter_feedback())
    assert rows and PASSWORD not in rows[0]["redacted_text"] and "[REDACTED]" in rows[0]["redacted_text"]
    _assert_clean(fake_slack, caplog)


def _click(action_id: str, value: str, channel: str) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": "T0000001"},
        "user": {"id": "U0000001"},
        "api_app_id": "AAPP0001",
        "token": "legacy",
        "trigger_id": "1.2.3",
        "channel": {"id": channel},
        "container": {"type": "message", "message_ts": "1700000001.000100", "channel_id": channel},
        "message": {"ts": "1700000001.000100", "thread_ts": "1690000000.000001", "text": "x"},
        "response_url": "http://127.0.0.1:1/response/unused",
        "actions": [{"action_id": action_id, "block_id": f"acrcheck:{value}", "value": value, "type": "button"}],
    }
