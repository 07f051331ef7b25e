"""Buttons on a diagnosis: re-run, show evidence, helpful / not helpful, mute for 24 h.

Each button carries only the stored diagnosis id; everything else (cause, redacted
text, evidence, registry) is read back from the database, so button values can never
smuggle user text or be forged into checking another host: a re-run re-applies the SSRF
guard and the channel allowlist of the channel the button was clicked in.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.store import DiagnosisRecord, Store
from handlers import blocks, flows
from handlers.deps import Deps, deps_of
from handlers.policy import PolicyError, guard_registry

log = logging.getLogger("acrcheck.slack.actions")

Ack = Callable[..., Awaitable[None]]
Respond = Callable[..., Awaitable[Any]]


def register(app: AsyncApp) -> None:
    """Wire one listener per button."""
    app.action(blocks.ACTION_RERUN)(on_rerun)
    app.action(blocks.ACTION_EVIDENCE)(on_evidence)
    app.action(blocks.ACTION_HELPFUL)(on_helpful)
    app.action(blocks.ACTION_NOT_HELPFUL)(on_not_helpful)
    app.action(blocks.ACTION_MUTE)(on_mute)


def _where(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """(channel, user, message ts, thread ts) of a click."""
    channel = str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")
    user = str((body.get("user") or {}).get("id") or "")
    message = body.get("message") or {}
    ts = str(message.get("ts") or (body.get("container") or {}).get("message_ts") or "")
    thread_ts = str(message.get("thread_ts") or "")
    return channel, user, ts, thread_ts


async def _record(
    body: dict[str, Any], action: dict[str, Any], deps: Deps, respond: Respond, lang: str
) -> DiagnosisRecord | None:
    record = await Store.run(deps.store.get_diagnosis, str(action.get("value") or ""))
    if record is None:
        await respond(response_type="ephemeral", replace_original=False, text=blocks.t(lang, "expired"))
    return record


async def _private(client: AsyncWebClient, respond: Respond, body: dict[str, Any], message: blocks.Rendered) -> None:
    """Ephemeral to the clicker: in the thread when we can, else through response_url."""
    channel, user, _ts, thread_ts = _where(body)
    if channel and user:
        try:
            kwargs: dict[str, Any] = {"channel": channel, "user": user, **message.kwargs()}
            if thread_ts:
                kwargs["thread_ts"] = thread_ts
            await client.chat_postEphemeral(**kwargs)
            return
        except SlackApiError as exc:
            log.info("chat.postEphemeral failed (%s); using response_url", exc.response.get("error"))
    await respond(response_type="ephemeral", replace_original=False, **message.kwargs())


async def on_rerun(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    client: AsyncWebClient,
    context: Any,
) -> None:
    """Run the live checks again and replace the diagnosis in place."""
    await ack()
    deps = deps_of(context)
    channel, user, ts, _thread = _where(body)
    lang = await flows.user_lang(client, deps, user)
    record = await _record(body, action, deps, respond, lang)
    if record is None:
        return
    refusal = await flows.rate_refusal(deps, user_id=user, channel_id=channel, lang=lang)
    if refusal:
        await _private(client, respond, body, blocks.simple(refusal))
        return
    policy = await deps.policy(channel)
    notes: list[str] = []
    try:
        if record.kind == "registry":
            target = guard_registry(record.registry, policy)
            diagnosis = await flows.live_registry(deps, target, policy, lang)
        else:
            diagnosis = flows.diagnose(record.redacted_text, lang)
            diagnosis, notes = await flows.live_paste(deps, diagnosis, policy, lang)
    except PolicyError as exc:
        await _private(
            client, respond, body, blocks.error_message(blocks.t(lang, "rerun_scope", reason=str(exc)), lang)
        )
        return
    except Exception as exc:
        log.warning("re-run failed: %s", type(exc).__name__, exc_info=exc)
        reason = flows.failure_reason(exc)
        await _private(client, respond, body, blocks.simple(blocks.t(lang, "check_failed", reason=reason)))
        return
    diag_id = await flows.save(
        deps,
        diagnosis,
        channel_id=channel,
        source_ts=record.source_ts,
        user_id=user,
        kind=record.kind,
        registry=record.registry,
    )
    live = record.kind == "registry" or (not notes and bool(diagnosis.evidence))
    rendered = flows.render(deps, diagnosis, diag_id, lang=lang, live=live, explicit=True, threshold=0.0, notes=notes)
    if body.get("response_url"):
        await respond(replace_original=True, **rendered.kwargs())
    elif channel and ts:
        await client.chat_update(channel=channel, ts=ts, **rendered.kwargs())
    if record.source_ts and channel:
        existing = await Store.run(deps.store.get_reply, channel, record.source_ts)
        if existing is not None and existing.reply_ts == ts:
            await Store.run(
                deps.store.set_reply,
                channel,
                record.source_ts,
                reply_ts=ts,
                cause=diagnosis.cause,
                diagnosis_id=diag_id,
            )


async def on_evidence(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    client: AsyncWebClient,
    context: Any,
) -> None:
    """Every evidence line, privately, each with where it was observed."""
    await ack()
    deps = deps_of(context)
    _channel, user, _ts, _thread = _where(body)
    lang = await flows.user_lang(client, deps, user)
    record = await _record(body, action, deps, respond, lang)
    if record is not None:
        similar = flows.diagnose(record.redacted_text, lang).similar_cases if record.redacted_text else []
        await _private(client, respond, body, blocks.evidence_message(record.evidence, lang, similar))


async def _feedback(
    helpful: bool,
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    client: AsyncWebClient,
    context: Any,
) -> None:
    await ack()
    deps = deps_of(context)
    _channel, user, _ts, _thread = _where(body)
    lang = await flows.user_lang(client, deps, user)
    record = await _record(body, action, deps, respond, lang)
    if record is None:
        return
    await Store.run(deps.store.add_feedback, record, user_id=user, helpful=helpful)
    await _private(client, respond, body, blocks.simple(blocks.t(lang, "thanks")))


async def on_helpful(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    client: AsyncWebClient,
    context: Any,
) -> None:
    """Record a positive label (cause id + redacted text)."""
    await _feedback(True, ack, body, action, respond, client, context)


async def on_not_helpful(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    client: AsyncWebClient,
    context: Any,
) -> None:
    """Record a negative label (cause id + redacted text)."""
    await _feedback(False, ack, body, action, respond, client, context)


async def on_mute(
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    respond: Respond,
    client: AsyncWebClient,
    context: Any,
) -> None:
    """Stop passive replies with this cause in this channel for 24 hours."""
    await ack()
    deps = deps_of(context)
    channel, user, _ts, _thread = _where(body)
    lang = await flows.user_lang(client, deps, user)
    record = await _record(body, action, deps, respond, lang)
    if record is None or not channel:
        return
    await Store.run(deps.store.mute, channel, record.cause, seconds=flows.MUTE_SECONDS, user_id=user)
    await _private(client, respond, body, blocks.simple(blocks.t(lang, "muted", cause=record.cause)))
