"""Buttons on a diagnosis: re-run, show evidence, helpful / not helpful, mute for 24 h.

Each button carries only the stored diagnosis id; everything else (cause, redacted
text, evidence, registry) is read back from the database, so button values can never
smuggle user text or be forged into checking another host: a re-run re-applies the SSRF
guard and the channel allowlist of the channel the button was clicked in.

A vote is one per person and diagnosis (a later click replaces the earlier one). A mute
silences a cause for the whole channel, so by default only the channel's admins may set
one (the rule of ``/acrcheck config``; ``members_can_mute`` opens it to everyone), and the
channel is told who muted which cause until when. Signed payloads without a usable action
(an empty ``actions`` list, say) are acknowledged and ignored by :class:`UnusableActionGuard`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.store import DiagnosisRecord, Store
from handlers import blocks, flows, notices
from handlers.deps import Deps, deps_of
from handlers.policy import PolicyError, admin_mentions, guard_registry, may_mute

log = logging.getLogger("acrcheck.slack.actions")

Ack = Callable[..., Awaitable[None]]
Respond = Callable[..., Awaitable[Any]]


#: Slack's ``action_ts`` is trusted as the click time only this close to our clock.
CLICK_CLOCK_SKEW_SECONDS = 300.0
_INTERACTIVE_WITH_ACTIONS = frozenset({"block_actions", "interactive_message"})


def register(app: AsyncApp) -> None:
    """Wire one listener per button (the guard against unusable clicks is :func:`install_guard`)."""
    app.action(blocks.ACTION_RERUN)(on_rerun)
    app.action(blocks.ACTION_EVIDENCE)(on_evidence)
    app.action(blocks.ACTION_HELPFUL)(on_helpful)
    app.action(blocks.ACTION_NOT_HELPFUL)(on_not_helpful)
    app.action(blocks.ACTION_MUTE)(on_mute)


class UnusableActionGuard(AsyncMiddleware):
    """A signed click payload with no usable action gets 200 and nothing else.

    Slack never sends one, but a signed, well-formed ``block_actions`` with an empty
    ``actions`` list (or actions without an ``action_id``) must not go further: Bolt builds
    every listener's and function middleware's arguments by indexing into it, and the
    IndexError became an HTTP 500. This is a class middleware (no such arguments), installed
    before every function middleware by :func:`install_guard`; it logs one debug line.
    """

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        body = req.body
        if body.get("type") in _INTERACTIVE_WITH_ACTIONS:
            actions = body.get("actions")
            first = actions[0] if isinstance(actions, list) and actions else None
            action_id = first.get("action_id") if isinstance(first, dict) else None
            if first is None or (body.get("type") == "block_actions" and not (isinstance(action_id, str) and action_id)):
                log.debug("ignored a %s payload with no usable action", body.get("type"))
                return BoltResponse(status=200, body="")
        return await next()

    @property
    def name(self) -> str:
        return "UnusableActionGuard"


def install_guard(app: AsyncApp) -> None:
    """Add :class:`UnusableActionGuard`; call before any ``app.use(function)``."""
    app.use(UnusableActionGuard())


def click_time(action: dict[str, Any], *, now: float | None = None) -> float:
    """When the person clicked: Slack's ``action_ts`` when it is sane, else now."""
    now = time.time() if now is None else now
    try:
        at = float(str(action.get("action_ts") or ""))
    except ValueError:
        return now
    if not math.isfinite(at) or abs(at - now) > CLICK_CLOCK_SKEW_SECONDS:
        return now
    return at


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
    await deps.ack_first.settle()
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
    await deps.ack_first.settle()
    _channel, user, _ts, _thread = _where(body)
    lang = await flows.user_lang(client, deps, user)
    record = await _record(body, action, deps, respond, lang)
    if record is not None:
        similar = await flows.similar_cases(record.redacted_text, lang)
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
    await deps.ack_first.settle()
    _channel, user, _ts, _thread = _where(body)
    lang = await flows.user_lang(client, deps, user)
    record = await _record(body, action, deps, respond, lang)
    if record is None:
        return
    outcome = await Store.run(
        deps.store.vote, record, user_id=user, helpful=helpful, at=click_time(action)
    )
    if outcome == "stale":
        text = notices.t(lang, "vote_stale")
    else:
        text = notices.vote_text(lang, helpful=helpful, replaced=outcome == "replaced")
    await _private(client, respond, body, blocks.simple(text))


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
    """Stop passive replies with this cause in this channel for 24 hours, and say so to the channel."""
    await ack()
    deps = deps_of(context)
    await deps.ack_first.settle()
    channel, user, _ts, _thread = _where(body)
    lang = await flows.user_lang(client, deps, user)
    record = await _record(body, action, deps, respond, lang)
    if record is None or not channel:
        return
    if not may_mute(deps.settings, user, channel):
        refusal = notices.t(lang, "mute_refused", who=admin_mentions(deps.settings, channel))
        await _private(client, respond, body, blocks.simple(refusal))
        return
    until = await Store.run(deps.store.mute, channel, record.cause, seconds=flows.MUTE_SECONDS, user_id=user)
    log.info("cause %s muted in a channel for %ds", record.cause, flows.MUTE_SECONDS)
    text = notices.muted_text(deps.settings.lang, user=user, cause=record.cause, until=until)
    policy = await deps.policy(channel)
    await _announce(client, respond, body, text, to_channel=policy.mode != "off")


def _clicked_in_private(body: dict[str, Any]) -> bool:
    """The button was on an ephemeral answer (an ``off`` channel's reply to a mention, say)."""
    return bool((body.get("container") or {}).get("is_ephemeral"))


async def _announce(
    client: AsyncWebClient, respond: Respond, body: dict[str, Any], text: str, *, to_channel: bool
) -> None:
    """Tell who muted what: in the clicked message's thread, and in the channel when ``to_channel``.

    An ``off`` channel sees nothing unprompted from the bot, so there the notice stays in the
    thread. A click on a private (ephemeral) answer has no message the channel sees: the
    notice goes back privately through response_url, where the answer was. Where the bot is
    not a member (answers to ``/acrcheck`` come through response_url), response_url posts it
    instead, in the channel only when ``to_channel``.
    """
    if _clicked_in_private(body):
        await respond(response_type="ephemeral", replace_original=False, text=text)
        return
    channel, _user, ts, thread_ts = _where(body)
    if channel and (thread_ts or ts):
        try:
            await client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts or ts,
                text=text,
                unfurl_links=False,
                reply_broadcast=True if to_channel else None,  # None: the parameter is not sent
            )
            return
        except SlackApiError as exc:
            log.info("chat.postMessage failed (%s); using response_url", exc.response.get("error"))
    await respond(response_type="in_channel" if to_channel else "ephemeral", replace_original=False, text=text)
