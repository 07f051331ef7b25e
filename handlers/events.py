"""@mentions: a person asked, so the bot answers, whatever the channel's mode.

Channel modes govern what the bot says *unprompted*. In ``passive`` and ``mention-only``
channels a mention is answered in its thread. In an ``off`` channel the bot posts nothing
the channel sees, so the answer goes privately (ephemeral, in the thread) to the person who
asked. Only the operator's settings can silence mentions in a channel (``mentions: false``
in ``channels.<id>``); channel admins cannot, since ``/acrcheck config`` only sets the mode.

When the classifier is unsure or sees no registry problem, the answer says so and points
to ``/acrcheck REGISTRY``: silence after a direct question is the worst outcome.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.store import Store
from handlers import blocks, flows
from handlers.deps import deps_of

log = logging.getLogger("acrcheck.slack.events")


def register(app: AsyncApp) -> None:
    """Wire the app_mention listener."""
    app.event("app_mention")(on_mention)


async def on_mention(body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, context: Any) -> None:
    """Diagnose the text after the mention and answer in the thread."""
    deps = deps_of(context)
    channel = str(event.get("channel") or "")
    ts = str(event.get("ts") or "")
    user = str(event.get("user") or "")
    if not channel or not ts:
        return
    if event.get("bot_id") and event.get("bot_id") == context.get("bot_id"):
        return
    await deps.ack_first.settle()
    policy = await deps.policy(channel)
    if not policy.mentions:
        log.info("mention ignored: mentions are turned off for this channel in the settings")
        return
    if event.get("bot_id") and not policy.allow_bots:
        return
    event_id = str(body.get("event_id") or f"{channel}:{ts}:mention")
    if not await Store.run(deps.store.claim_event, event_id):
        log.info("duplicate delivery of %s ignored", event_id)
        return
    thread_ts = str(event.get("thread_ts") or ts)
    lang = await flows.user_lang(client, deps, user)
    refusal = await flows.rate_refusal(deps, user_id=user, channel_id=channel, lang=lang)
    if refusal:
        await flows.ephemeral(client, channel=channel, user=user, thread_ts=thread_ts, message=blocks.simple(refusal))
        return
    text = flows.strip_mentions(await flows.message_text(client, deps.settings, event))
    if not text:
        await flows.ephemeral(
            client, channel=channel, user=user, thread_ts=thread_ts, message=blocks.help_message(lang)
        )
        return
    diagnosis = flows.diagnose(text, lang)
    await flows.warn_secret(client, diagnosis, channel=channel, user=user, thread_ts=thread_ts, lang=lang)
    if policy.mode == "off":
        diag_id = await flows.save(deps, diagnosis, channel_id=channel, source_ts=ts, user_id=user, kind="paste")
        rendered = flows.render(deps, diagnosis, diag_id, lang=lang, live=False, explicit=True, threshold=0.0)
        await flows.ephemeral(client, channel=channel, user=user, thread_ts=thread_ts, message=rendered)
        return
    await flows.post_thread_reply(
        client,
        deps,
        diagnosis,
        channel=channel,
        source_ts=ts,
        thread_ts=thread_ts,
        user_id=user,
        lang=lang,
        threshold=policy.threshold,
        explicit=True,
    )
