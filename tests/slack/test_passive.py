"""Passive listening over both transports: silence on chatter, one threaded reply on errors."""

from __future__ import annotations

from typing import Any

from tests.fakes.slack import BOT_ID, BOT_USER_ID, FakeSlack
from tests.slack.conftest import REGISTRY_ERROR, BotRunner, event_body, message_event

CHATTER = [
    "morning all, standup in 5?",
    "the npm registry is slow today, npm ERR! network timeout at https://registry.npmjs.org/react",
    "lunch? :pizza:",
    "git push failed: remote: Permission to org/repo.git denied to someone.",
]


def test_no_reply_to_unrelated_messages(bot: BotRunner, fake_slack: FakeSlack) -> None:
    for text in CHATTER:
        status = bot.send_event(event_body(message_event(text)))
        assert status == 200 or isinstance(status, dict)
    fake_slack.settle(0.5)
    assert fake_slack.posts() == []
    assert fake_slack.calls_of("reactions.add") == []
    assert fake_slack.calls_of("chat.postEphemeral") == []


def test_registry_error_gets_one_threaded_reply(bot: BotRunner, fake_slack: FakeSlack) -> None:
    event = message_event(REGISTRY_ERROR)
    bot.send_event(event_body(event))
    fake_slack.wait_for(lambda: fake_slack.posts())
    fake_slack.wait_for(
        lambda: any(c.params.get("name") == "white_check_mark" for c in fake_slack.calls_of("reactions.add"))
    )
    post = fake_slack.posts()[0]
    assert post["channel"] == event["channel"]
    assert post["thread_ts"] == event["ts"]
    assert post["text"]  # fallback text always present
    assert 0 < len(post["blocks"]) <= 50
    reactions = [c.params["name"] for c in fake_slack.calls_of("reactions.add")]
    assert reactions[0] == "eyes"
    rendered = str(post["blocks"])
    assert "registry-public-access" in rendered
    assert "observed" in rendered  # evidence lines say where they were observed


def test_thread_message_replies_in_that_thread(bot: BotRunner, fake_slack: FakeSlack) -> None:
    event = message_event(REGISTRY_ERROR, thread_ts="1690000000.000001")
    bot.send_event(event_body(event))
    fake_slack.wait_for(lambda: fake_slack.posts())
    assert fake_slack.posts()[0]["thread_ts"] == "1690000000.000001"


def test_code_fenced_error_is_diagnosed(bot: BotRunner, fake_slack: FakeSlack) -> None:
    text = "anyone seen this?\n```\n" + REGISTRY_ERROR.replace("'", "&#39;") + "\n```"
    bot.send_event(event_body(message_event(text)))
    fake_slack.wait_for(lambda: fake_slack.posts())


def test_retries_do_not_duplicate(bot: BotRunner, fake_slack: FakeSlack) -> None:
    body = event_body(message_event(REGISTRY_ERROR))
    bot.send_event(body)
    for retry in (1, 2, 3):
        bot.send_event(body, retry_num=retry)
    fake_slack.wait_for(lambda: fake_slack.posts())
    fake_slack.settle(0.6)
    assert len(fake_slack.posts()) == 1


def test_own_messages_ignored(bot: BotRunner, fake_slack: FakeSlack) -> None:
    bot.send_event(event_body(message_event(REGISTRY_ERROR, user=BOT_USER_ID, bot_id=BOT_ID)))
    bot.send_event(event_body(message_event(REGISTRY_ERROR, user=BOT_USER_ID)))
    fake_slack.settle(0.5)
    assert fake_slack.posts() == []


def test_other_bots_only_when_allowed(bot_factory: Any, fake_slack: FakeSlack) -> None:
    quiet = bot_factory("http")
    ci_message = message_event(REGISTRY_ERROR, subtype="bot_message", bot_id="BCI00001", user=None)
    quiet.send_event(event_body(ci_message))
    fake_slack.settle(0.5)
    assert fake_slack.posts() == []
    loud = bot_factory("http", channels={"C0000001": {"allow_bots": True}}, database_url="sqlite://")
    loud.send_event(event_body(message_event(REGISTRY_ERROR, subtype="bot_message", bot_id="BCI00001", user=None)))
    fake_slack.wait_for(lambda: fake_slack.posts())


def test_mention_copy_of_message_is_skipped(bot: BotRunner, fake_slack: FakeSlack) -> None:
    bot.send_event(event_body(message_event(f"<@{BOT_USER_ID}> {REGISTRY_ERROR}")))
    fake_slack.settle(0.5)
    assert fake_slack.posts() == []


def test_modes_mention_only_and_off(bot_factory: Any, fake_slack: FakeSlack) -> None:
    runner = bot_factory("http", channels={"C0000002": {"mode": "mention-only"}, "C0000003": {"mode": "off"}})
    runner.send_event(event_body(message_event(REGISTRY_ERROR, channel="C0000002")))
    runner.send_event(event_body(message_event(REGISTRY_ERROR, channel="C0000003")))
    fake_slack.settle(0.5)
    assert fake_slack.posts() == []
    mention = {
        **message_event(f"<@{BOT_USER_ID}> {REGISTRY_ERROR}", channel="C0000002"),
        "type": "app_mention",
    }
    runner.send_event(event_body(mention))
    fake_slack.wait_for(lambda: fake_slack.posts())
    off_mention = {
        **message_event(f"<@{BOT_USER_ID}> {REGISTRY_ERROR}", channel="C0000003"),
        "type": "app_mention",
    }
    runner.send_event(event_body(off_mention))
    fake_slack.wait_for(lambda: fake_slack.calls_of("chat.postEphemeral"))  # answered privately (test_mentions.py)
    fake_slack.settle(0.5)
    assert len(fake_slack.posts()) == 1


def test_snippet_file_share(bot: BotRunner, fake_slack: FakeSlack) -> None:
    fake_slack.add_snippet("F0000001", "docker pull output:\n" + REGISTRY_ERROR)
    event = message_event("", subtype="file_share", files=[{"id": "F0000001"}])
    bot.send_event(event_body(event))
    fake_slack.wait_for(lambda: fake_slack.posts())
    assert fake_slack.calls_of("files.info")[0].params["file"] == "F0000001"
    assert fake_slack.file_downloads and fake_slack.file_downloads[0][1].startswith("Bearer ")


def test_edit_updates_reply_only_when_diagnosis_changes(bot: BotRunner, fake_slack: FakeSlack) -> None:
    original = message_event(REGISTRY_ERROR)
    bot.send_event(event_body(original))
    fake_slack.wait_for(lambda: fake_slack.posts())
    fake_slack.settle(0.3)

    def edit(new_text: str, old_text: str) -> dict[str, Any]:
        return {
            "type": "message",
            "subtype": "message_changed",
            "channel": original["channel"],
            "channel_type": "channel",
            "ts": "1690000999.000001",
            "hidden": True,
            "message": {**original, "text": new_text, "edited": {"user": original["user"], "ts": "1"}},
            "previous_message": {**original, "text": old_text},
        }

    # Same cause, different wording: no update.
    bot.send_event(event_body(edit(REGISTRY_ERROR + " (retried twice)", REGISTRY_ERROR)))
    fake_slack.settle(0.5)
    assert fake_slack.calls_of("chat.update") == []
    # Different cause: the reply is updated in place, not re-posted.
    dns_error = (
        'Error response from daemon: Get "https://contosoreg.azurecr.io/v2/": dial tcp: lookup '
        "contosoreg.azurecr.io on 127.0.0.53:53: server misbehaving"
    )
    bot.send_event(event_body(edit(dns_error, REGISTRY_ERROR)))
    fake_slack.wait_for(lambda: fake_slack.calls_of("chat.update"))
    update = fake_slack.calls_of("chat.update")[0].params
    assert update["ts"] == "" or update["ts"]  # the stored reply ts
    assert "client-dns" in str(update["blocks"])
    assert len(fake_slack.posts()) == 1


def test_mention_always_answers_even_when_unsure(bot: BotRunner, fake_slack: FakeSlack) -> None:
    mention = {**message_event(f"<@{BOT_USER_ID}> is our registry ok?"), "type": "app_mention"}
    bot.send_event(event_body(mention))
    fake_slack.wait_for(lambda: fake_slack.posts())
    post = fake_slack.posts()[0]
    assert post["thread_ts"] == mention["ts"]
    assert "/acrcheck" in str(post["blocks"])


def test_japanese_locale(bot: BotRunner, fake_slack: FakeSlack) -> None:
    fake_slack.locales["UJAPAN01"] = "ja-JP"
    bot.send_event(event_body(message_event(REGISTRY_ERROR, user="UJAPAN01")))
    fake_slack.wait_for(lambda: fake_slack.posts())
    assert "考えられる原因" in str(fake_slack.posts()[0]["blocks"])
    assert fake_slack.calls_of("users.info")[0].params.get("include_locale") in (True, "true", "1", 1)
