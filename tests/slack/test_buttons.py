"""Buttons and the message shortcut, over both transports."""

from __future__ import annotations

import io
import json
from typing import Any

from bot.diagnose import diagnose
from bot.service.feedback_export import export_feedback
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import (
    ADMIN,
    REGISTRY_ERROR,
    BotRunner,
    click,
    event_body,
    message_event,
    needs_live,
    post_diagnosis,
)


def _click(fake: FakeSlack, action_id: str, value: str, channel: str, message_ts: str) -> dict[str, Any]:
    return click(fake, action_id, value, channel=channel, message_ts=message_ts)


def _diagnosis_post(bot: BotRunner, fake: FakeSlack) -> tuple[dict[str, Any], str]:
    post, diag_id = post_diagnosis(bot, fake)
    actions = next(b for b in post["blocks"] if b["type"] == "actions")
    ids = [e["action_id"] for e in actions["elements"]]
    assert ids == [
        "acrcheck_rerun",
        "acrcheck_evidence",
        "acrcheck_helpful",
        "acrcheck_not_helpful",
        "acrcheck_mute",
    ]
    return {"channel": post["channel"]}, diag_id


def test_feedback_is_stored_and_exported(bot: BotRunner, fake_slack: FakeSlack) -> None:
    event, diag_id = _diagnosis_post(bot, fake_slack)
    bot.send_interactive(_click(fake_slack, "acrcheck_helpful", diag_id, event["channel"], "1700000001.000100"))
    fake_slack.wait_for(lambda: fake_slack.calls_of("chat.postEphemeral"))
    other = click(fake_slack, "acrcheck_not_helpful", diag_id, channel=event["channel"], user="U0000010")
    bot.send_interactive(other)
    fake_slack.wait_for(lambda: len(fake_slack.calls_of("chat.postEphemeral")) >= 2)
    out = io.StringIO()
    assert export_feedback(bot.settings.database_url, out) == 2  # two people, one row each
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows[0]["label"] == "registry-public-access" and rows[0]["helpful"] is True
    assert rows[1]["label"] is None and rows[1]["predicted"] == "registry-public-access"
    assert "denied" in rows[0]["text"]
    assert rows[0]["voter"] != rows[1]["voter"]
    assert "U0000009" not in out.getvalue()  # voters are pseudonymous in the export


def test_show_evidence_is_ephemeral_with_vantage(bot: BotRunner, fake_slack: FakeSlack) -> None:
    event, diag_id = _diagnosis_post(bot, fake_slack)
    bot.send_interactive(_click(fake_slack, "acrcheck_evidence", diag_id, event["channel"], "1700000001.000100"))
    ephemeral = fake_slack.wait_for(lambda: fake_slack.calls_of("chat.postEphemeral"))[0].params
    assert ephemeral["user"] == "U0000009"
    shown = json.dumps(ephemeral["blocks"], ensure_ascii=False)
    assert "observed" in shown
    # the solved cases the engine cites for the stored paste follow the evidence (diagnosed off the event loop)
    cited = diagnose(REGISTRY_ERROR, lang="en").similar_cases
    assert ("Similar solved cases" in shown) == bool(cited)
    assert all(json.dumps(case.title, ensure_ascii=False)[1:-1] in shown for case in cited)


def test_mute_silences_cause_for_channel(bot: BotRunner, fake_slack: FakeSlack) -> None:
    event, diag_id = _diagnosis_post(bot, fake_slack)
    bot.send_interactive(click(fake_slack, "acrcheck_mute", diag_id, channel=event["channel"], user=ADMIN))
    fake_slack.wait_for(lambda: len(fake_slack.posts()) >= 2)  # the diagnosis, then the mute notice
    bot.send_event(event_body(message_event(REGISTRY_ERROR)))
    bot.send_event(event_body(message_event(REGISTRY_ERROR, channel="C0000777")))  # other channel: not muted
    fake_slack.wait_for(lambda: len(fake_slack.posts()) >= 3)
    fake_slack.settle(0.5)
    assert [p["channel"] for p in fake_slack.posts()] == [event["channel"], event["channel"], "C0000777"]


def test_unknown_diagnosis_id(bot: BotRunner, fake_slack: FakeSlack) -> None:
    bot.send_interactive(_click(fake_slack, "acrcheck_helpful", "nope", "C0000001", "1700000001.000100"))
    fake_slack.wait_for(lambda: fake_slack.responses)
    assert "too old" in fake_slack.responses[0][1]["text"]


def test_message_shortcut(bot: BotRunner, fake_slack: FakeSlack) -> None:
    payload = {
        "type": "message_action",
        "callback_id": "diagnose_message",
        "team": {"id": "T0000001"},
        "user": {"id": "U0000009"},
        "channel": {"id": "C0000001"},
        "api_app_id": "AAPP0001",
        "token": "legacy",
        "trigger_id": "1.2.3",
        "message_ts": "1500000000.000001",
        "message": {"type": "message", "user": "U0000001", "ts": "1500000000.000001", "text": REGISTRY_ERROR},
        "response_url": f"{fake_slack.base_url}/response/sc",
    }
    bot.send_interactive(payload)
    post = fake_slack.wait_for(lambda: fake_slack.posts())[0]
    assert post["thread_ts"] == "1500000000.000001"
    assert "registry-public-access" in json.dumps(post["blocks"])


def test_shortcut_falls_back_to_ephemeral_when_not_in_channel(bot: BotRunner, fake_slack: FakeSlack) -> None:
    fake_slack.failing["chat.postMessage"] = "not_in_channel"
    payload = {
        "type": "message_action",
        "callback_id": "diagnose_message",
        "team": {"id": "T0000001"},
        "user": {"id": "U0000009"},
        "channel": {"id": "C0000555"},
        "api_app_id": "AAPP0001",
        "token": "legacy",
        "trigger_id": "1.2.3",
        "message_ts": "1500000000.000002",
        "message": {"type": "message", "user": "U0000001", "ts": "1500000000.000002", "text": REGISTRY_ERROR},
        "response_url": f"{fake_slack.base_url}/response/sc2",
    }
    bot.send_interactive(payload)
    body = fake_slack.wait_for(lambda: fake_slack.responses)[0][1]
    assert body["response_type"] == "ephemeral" and body["blocks"]


@needs_live
def test_rerun_updates_in_place(bot: BotRunner, fake_slack: FakeSlack) -> None:
    event, diag_id = _diagnosis_post(bot, fake_slack)
    bot.send_interactive(_click(fake_slack, "acrcheck_rerun", diag_id, event["channel"], "1700000001.000100"))
    body = fake_slack.wait_for(lambda: fake_slack.responses, timeout=30)[0][1]
    assert body.get("replace_original") is True and body.get("blocks")
