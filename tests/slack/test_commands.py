"""/acrcheck over both transports: help, refusals in the ack, config by admins, live check after ack."""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.slack import FakeSlack
from tests.slack.conftest import ADMIN, REGISTRY_ERROR, BotRunner, needs_live


def _responses(fake: FakeSlack) -> list[dict[str, Any]]:
    return [body for _rid, body in fake.responses]


def test_help(bot: BotRunner) -> None:
    _elapsed, ack = bot.send_command("help")
    assert "/acrcheck REGISTRY" in str(ack)
    _elapsed, ack = bot.send_command("")
    assert "/acrcheck REGISTRY" in str(ack)


def test_invalid_arguments_get_ephemeral_usage(bot: BotRunner, fake_slack: FakeSlack) -> None:
    for text in ("two registries", "http://myreg.azurecr.io", "my_reg!", "diagnose"):
        _elapsed, ack = bot.send_command(text)
        assert ack.get("response_type") == "ephemeral", ack
        assert "Accepted:" in str(ack), ack
    fake_slack.settle(0.3)
    assert _responses(fake_slack) == []


def test_config_requires_admin(bot: BotRunner, fake_slack: FakeSlack) -> None:
    _elapsed, ack = bot.send_command("config mode off", user="U0000001")
    assert "Only channel admins" in str(ack)
    assert f"<@{ADMIN}>" in str(ack) and "&lt;@" not in str(ack)  # a real mention, not escaped text
    _elapsed, ack = bot.send_command("config mode off", user=ADMIN)
    assert "mode" in str(ack) and "off" in str(ack)
    _elapsed, ack = bot.send_command("config threshold 2", user=ADMIN)
    assert "between 0 and 1" in str(ack)
    _elapsed, ack = bot.send_command("config", user="U0000001")
    assert "`off`" in str(ack)


def test_config_mode_stops_passive_replies(bot_factory: Any, fake_slack: FakeSlack) -> None:
    from tests.slack.conftest import event_body, message_event

    runner = bot_factory("http")
    runner.send_command("config mode mention-only", user=ADMIN)
    runner.send_event(event_body(message_event(REGISTRY_ERROR)))
    fake_slack.settle(0.5)
    assert fake_slack.posts() == []
    runner.send_command("config mode passive", user=ADMIN)
    runner.send_event(event_body(message_event(REGISTRY_ERROR)))
    fake_slack.wait_for(lambda: fake_slack.posts())


def test_watch_dispatch(bot: BotRunner, fake_slack: FakeSlack) -> None:
    bot.send_command("watches")
    fake_slack.wait_for(lambda: _responses(fake_slack))
    assert _responses(fake_slack)[0]["text"]


def test_diagnose_text(bot: BotRunner, fake_slack: FakeSlack) -> None:
    _elapsed, ack = bot.send_command("diagnose " + REGISTRY_ERROR)
    assert "Diagnosing" in str(ack)
    result = fake_slack.wait_for(
        lambda: [b for b in _responses(fake_slack) if b.get("response_type") == "in_channel"], timeout=30
    )
    assert "registry-public-access" in str(result[0]["blocks"])


@needs_live
def test_registry_check_acks_before_slow_check(bot_factory: Any, transport: str, fake_slack: FakeSlack) -> None:
    # DNS goes to a black hole: the check takes at least dns_timeout, the ack must not wait for it.
    runner = bot_factory(transport, dns_timeout=1.5, check_deadline=4.0)
    started = time.monotonic()
    elapsed, ack = runner.send_command("contosoreg")
    acked_at = time.monotonic()
    assert elapsed < 1.0, elapsed
    assert "Checking" in str(ack) and "contosoreg.azurecr.io" in str(ack)
    assert _responses(fake_slack) == []  # nothing yet: the check is still running
    result = fake_slack.wait_for(lambda: _responses(fake_slack), timeout=30)
    done_at = time.monotonic()
    assert done_at - acked_at > 0.5
    assert done_at - started >= 1.0
    assert result[0].get("response_type") in ("in_channel", "ephemeral")
    assert result[0].get("text")


@needs_live
def test_allowlist_refuses_other_registries(bot_factory: Any, fake_slack: FakeSlack) -> None:
    runner = bot_factory("http", channels={"C0000001": {"registries": ["contosoreg"]}})
    _elapsed, ack = runner.send_command("otherregistry")
    assert ack.get("response_type") == "ephemeral" and "not on this channel's list" in str(ack)
    _elapsed, ack = runner.send_command("contosoreg.azurecr.io")
    assert "Checking" in str(ack)


def test_escaped_links_in_command_text_are_read_as_typed(bot: BotRunner, fake_slack: FakeSlack) -> None:
    """The manifest sets should_escape: Slack sends links as <http://x|x>; the guard sees what the user typed."""
    _elapsed, ack = bot.send_command("<http://contosoreg.azurecr.io|contosoreg.azurecr.io>")
    assert "Checking" in str(ack) and "contosoreg.azurecr.io" in str(ack)
    _elapsed, ack = bot.send_command("<http://contosoreg.azurecr.io.evil.com|contosoreg.azurecr.io.evil.com>")
    assert ack.get("response_type") == "ephemeral" and "Checking" not in str(ack)
