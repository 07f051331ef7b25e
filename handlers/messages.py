"""Passive listening: one catch-all ``message`` listener that acks everything.

Per-pattern listeners would leave unmatched messages un-acked in Socket Mode, and Slack
would retry them (bolt-python #1249), so every message lands here and is acked by Bolt
before this function runs. It stays silent unless the text is a registry problem above
the channel's threshold, the cause is not muted, and the rate limits allow it. Each Slack
delivery is claimed by ``event_id`` in the database, so retries, restarts and replicas
answer once.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.engine.models import Diagnosis
from bot.store import Store
from handlers import flows
from handlers.deps import Deps, deps_of
from handlers.policy import ChannelPolicy

log = logging.getLogger("acrcheck.slack.messages")

#: Subtypes that never carry a paste worth diagnosing.
IGNORED_SUBTYPES = frozenset(
    {
        "message_deleted",
        "message_replied",
        "channel_join",
        "channel_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "channel_archive",
        "channel_unarchive",
        "group_join",
        "group_leave",
        "pinned_item",
        "unpinned_item",
        "ekm_access_denied",
        "me_message",
        "reminder_add",
        "assistant_app_thread",
    }
)


def register(app: AsyncApp) -> None:
    """Wire the catch-all message listener."""
    app.event("message")(on_message)


def _is_own(message: dict[str, Any], context: Any) -> bool:
    bot_id = context.get("bot_id")
    bot_user = context.get("bot_user_id")
    return bool((bot_id and message.get("bot_id") == bot_id) or (bot_user and message.get("user") == bot_user))


def _is_bot(message: dict[str, Any]) -> bool:
    return bool(message.get("bot_id")) or message.get("subtype") == "bot_message"


def _mentions_bot(text: str, context: Any) -> bool:
    bot_user = context.get("bot_user_id")
    return bool(bot_user and f"<@{bot_user}" in text)


def _wants_reply(diagnosis: Diagnosis, policy: ChannelPolicy, *, direct: bool) -> bool:
    if diagnosis.cause in ("unrelated", "healthy"):
        return direct
    if direct:
        return True
    return diagnosis.reply and diagnosis.answer_confidence >= policy.threshold


async def on_message(body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
    """Diagnose a channel message (or an edit of one) and maybe answer in its thread."""
    subtype = event.get("subtype")
    if subtype in IGNORED_SUBTYPES or subtype == "bot_add":
        return
    if subtype == "message_changed":
        await on_edit(body, event, client, context)
        return
    if _is_own(event, context):
        return
    deps = deps_of(context)
    channel = str(event.get("channel") or "")
    raw = str(event.get("text") or "")
    if not channel or _mentions_bot(raw, context):
        return  # the app_mention copy of this message is answered by handlers.events
    await deps.ack_first.settle()
    direct = event.get("channel_type") == "im"
    policy = await deps.policy(channel)
    if not direct and policy.mode != "passive":
        return
    if _is_bot(event) and not policy.allow_bots:
        return
    text = await flows.message_text(client, deps.settings, event)
    if not text.strip():
        return
    diagnosis = flows.diagnose(text, deps.settings.lang)
    wants = _wants_reply(diagnosis, policy, direct=direct)
    if not wants and not diagnosis.secret_found:
        return
    event_id = str(body.get("event_id") or f"{channel}:{event.get('ts')}")
    if not await Store.run(deps.store.claim_event, event_id):
        log.info("duplicate delivery of %s ignored", event_id)
        return
    await _answer(client, deps, diagnosis, text, event, policy, wants=wants, direct=direct)


async def _answer(
    client: AsyncWebClient,
    deps: Deps,
    diagnosis: Diagnosis,
    text: str,
    message: dict[str, Any],
    policy: ChannelPolicy,
    *,
    wants: bool,
    direct: bool,
) -> None:
    channel = str(message.get("channel") or policy.channel_id)
    ts = str(message.get("ts") or "")
    thread_ts = str(message.get("thread_ts") or ts)
    user = message.get("user")
    lang = await flows.user_lang(client, deps, user, text=text)
    if lang != diagnosis.lang:
        diagnosis = flows.diagnose(text, lang)
    await flows.warn_secret(client, diagnosis, channel=channel, user=user, thread_ts=thread_ts, lang=lang)
    if not wants:
        return
    if not direct and await Store.run(deps.store.is_muted, channel, diagnosis.cause):
        log.info("cause %s muted in a channel; staying silent", diagnosis.cause)
        return
    refusal = await flows.rate_refusal(deps, user_id=str(user or ""), channel_id=channel, lang=lang)
    if refusal:
        log.info("rate limit reached; passive reply skipped")
        return
    await flows.post_thread_reply(
        client,
        deps,
        diagnosis,
        channel=channel,
        source_ts=ts,
        thread_ts=thread_ts,
        user_id=str(user or ""),
        lang=lang,
        threshold=policy.threshold,
        explicit=direct,
    )


async def on_edit(body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
    """Re-diagnose an edited message; update our reply only when the diagnosis changed."""
    message = dict(event.get("message") or {})
    previous = event.get("previous_message") or {}
    if _is_own(message, context) or (message.get("text") == previous.get("text") and not message.get("files")):
        return
    deps = deps_of(context)
    channel = str(event.get("channel") or "")
    message.setdefault("channel", channel)
    source_ts = str(message.get("ts") or "")
    if not channel or not source_ts or _mentions_bot(str(message.get("text") or ""), context):
        return
    await deps.ack_first.settle()
    direct = event.get("channel_type") == "im"
    policy = await deps.policy(channel)
    if not direct and policy.mode != "passive":
        return
    if _is_bot(message) and not policy.allow_bots:
        return
    existing = await Store.run(deps.store.get_reply, channel, source_ts)
    text = await flows.message_text(client, deps.settings, message)
    diagnosis = flows.diagnose(text, deps.settings.lang)
    wants = _wants_reply(diagnosis, policy, direct=direct)
    if existing is None and not wants and not diagnosis.secret_found:
        return
    if existing is not None and existing.cause == diagnosis.cause and not diagnosis.secret_found:
        return  # same diagnosis: leave the reply alone (no edit noise)
    event_id = str(body.get("event_id") or f"{channel}:{source_ts}:edit")
    if not await Store.run(deps.store.claim_event, event_id):
        return
    if existing is None:
        await _answer(client, deps, diagnosis, text, message, policy, wants=wants, direct=direct)
        return
    user = message.get("user")
    lang = await flows.user_lang(client, deps, user, text=text)
    if lang != diagnosis.lang:
        diagnosis = flows.diagnose(text, lang)
    await flows.warn_secret(client, diagnosis, channel=channel, user=user, thread_ts=existing.thread_ts, lang=lang)
    if existing.cause == diagnosis.cause or not existing.reply_ts:
        return
    diag_id = await flows.save(
        deps, diagnosis, channel_id=channel, source_ts=source_ts, user_id=str(user or ""), kind="paste"
    )
    rendered = flows.render(
        deps, diagnosis, diag_id, lang=lang, live=False, explicit=direct, threshold=policy.threshold
    )
    await client.chat_update(channel=channel, ts=existing.reply_ts, **rendered.kwargs())
    await Store.run(
        deps.store.set_reply,
        channel,
        source_ts,
        reply_ts=existing.reply_ts,
        cause=diagnosis.cause,
        diagnosis_id=diag_id,
    )
