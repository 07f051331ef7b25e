"""Message shortcut "Diagnose with acrcheck": any message, old ones included.

This is the reliable path for what passive listening missed (threshold, mode, lost
events: Slack does not replay events after an outage). The answer goes to the message's
thread; if the bot cannot post there (not a member), the user gets it privately through
the shortcut's response_url instead of an error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handlers import blocks, flows
from handlers.deps import deps_of

log = logging.getLogger("acrcheck.slack.shortcuts")

CALLBACK_ID = "diagnose_message"


def register(app: AsyncApp) -> None:
    """Wire the message shortcut."""
    app.message_shortcut(CALLBACK_ID)(on_diagnose_message)


async def on_diagnose_message(
    ack: Callable[..., Awaitable[None]],
    body: dict[str, Any],
    respond: Callable[..., Awaitable[Any]],
    client: AsyncWebClient,
    context: Any,
) -> None:
    """Ack, then diagnose the chosen message and answer in its thread."""
    await ack()
    deps = deps_of(context)
    await deps.ack_first.settle()
    message = body.get("message") or {}
    channel = str((body.get("channel") or {}).get("id") or "")
    user = str((body.get("user") or {}).get("id") or "")
    ts = str(message.get("ts") or body.get("message_ts") or "")
    thread_ts = str(message.get("thread_ts") or ts)
    lang = await flows.user_lang(client, deps, user)
    refusal = await flows.rate_refusal(deps, user_id=user, channel_id=channel, lang=lang)
    if refusal:
        await respond(response_type="ephemeral", text=refusal)
        return
    text = flows.strip_mentions(await flows.message_text(client, deps.settings, message))
    if not text:
        await respond(response_type="ephemeral", text=blocks.t(lang, "unrelated"))
        return
    diagnosis = flows.diagnose(text, lang)
    author = message.get("user")
    await flows.warn_secret(client, diagnosis, channel=channel, user=author, thread_ts=thread_ts, lang=lang)
    policy = await deps.policy(channel)
    try:
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
            claim=False,  # asked for explicitly: answer even if a passive reply exists
        )
    except SlackApiError:
        diag_id = await flows.save(deps, diagnosis, channel_id=channel, source_ts=ts, user_id=user, kind="paste")
        rendered = flows.render(deps, diagnosis, diag_id, lang=lang, live=False, explicit=True, threshold=0.0)
        await respond(response_type="ephemeral", **rendered.kwargs())
