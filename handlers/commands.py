"""``/acrcheck``: live checks, paste diagnosis, help, channel config and watches.

The ack goes out first, always within Slack's 3 s, carrying either the refusal (bad
argument, not allowed, rate limited: ephemeral, saying what is accepted) or "checking…".
Nothing before it waits for other commands' work: parsing, the guard and this replica's
rate count are in memory, and the channel policy is a cached read on threads of its own.
Only then are the limits shared by all replicas counted (database) and the slow live
check run; results arrive through ``respond`` (the command's response_url), so the bot
needs no channel membership to answer.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.engine.normalize import slack_links_to_text
from bot.store import Store
from handlers import blocks, flows, notices
from handlers.deps import Deps, deps_of
from handlers.policy import (
    OVERRIDE_KEYS,
    PolicyError,
    admin_mentions,
    guard_registry,
    is_admin,
    may_mute,
    parse_override,
)

log = logging.getLogger("acrcheck.slack.commands")

COMMAND = "/acrcheck"
USAGE = {
    "en": (
        "Accepted: `/acrcheck REGISTRY` (a registry name such as `myregistry`, or an endpoint such as "
        "`myregistry.azurecr.io`), `/acrcheck diagnose ERROR TEXT`, `/acrcheck config`, "
        "`/acrcheck unmute CAUSE`, `/acrcheck help`."
    ),
    "ja": (
        "使い方: `/acrcheck レジストリ名`（`myregistry` のような名前、または `myregistry.azurecr.io` の"
        "ようなエンドポイント）、`/acrcheck diagnose エラー文`、`/acrcheck config`、"
        "`/acrcheck unmute 原因ID`、`/acrcheck help`。"
    ),
}
WATCH_SUBCOMMANDS = ("watch", "watches", "unwatch")
#: Cause ids are taxonomy ids: lower-case words joined by hyphens.
CAUSE_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

Ack = Callable[..., Awaitable[None]]
Respond = Callable[..., Awaitable[Any]]


def register(app: AsyncApp) -> None:
    """Wire the slash command."""
    app.command(COMMAND)(on_command)


def _refusal(lang: str, message: str) -> dict[str, Any]:
    """An ephemeral refusal. ``message`` is mrkdwn: callers escape any user-supplied part."""
    rendered = blocks.simple(blocks.t(lang, "error", message=f"{message}\n{USAGE.get(lang, USAGE['en'])}"))
    return {"response_type": "ephemeral", **rendered.kwargs()}


async def on_command(ack: Ack, command: dict[str, Any], respond: Respond, client: AsyncWebClient, context: Any) -> None:
    """Dispatch on the first word of the command text."""
    deps = deps_of(context)
    # The manifest asks Slack to escape command text (should_escape), so channels arrive as
    # <#C…|name> for `watch`; links are turned back into what the user typed before any guard.
    text = slack_links_to_text(str(command.get("text") or "")).strip()
    user = str(command.get("user_id") or "")
    channel = str(command.get("channel_id") or "")
    lang = flows.quick_lang(deps, user)
    head, _, rest = text.partition(" ")
    sub = head.lower()
    rest = rest.strip()
    if sub in ("", "help", "-h", "--help"):
        await ack(response_type="ephemeral", **blocks.help_message(lang).kwargs())
    elif sub == "diagnose":
        await _diagnose(ack, respond, client, deps, rest, user=user, channel=channel, lang=lang)
    elif sub == "config":
        await _config(ack, deps, rest, user=user, channel=channel, lang=lang)
    elif sub == "unmute":
        await _unmute(ack, deps, rest, user=user, channel=channel, lang=lang)
    elif sub in WATCH_SUBCOMMANDS:
        await ack()
        await deps.ack_first.settle()
        await _watch(respond, deps, sub, rest, user=user, channel=channel, lang=lang)
    elif rest:
        await ack(**_refusal(lang, f"`{blocks.escape(blocks.truncate(text, 80))}` is not one registry."))
    else:
        await _check(ack, respond, client, deps, head, user=user, channel=channel, lang=lang)


async def _over_shared_limit(respond: Respond, deps: Deps, *, user: str, channel: str, lang: str) -> bool:
    """After the ack: the limits shared by all replicas; over them, the "checking…" becomes the refusal."""
    refusal = await flows.shared_rate_refusal(deps, user_id=user, channel_id=channel, lang=lang)
    if refusal:
        await respond(response_type="ephemeral", replace_original=True, **blocks.simple(refusal).kwargs())
    return refusal is not None


async def _check(
    ack: Ack,
    respond: Respond,
    client: AsyncWebClient,
    deps: Deps,
    value: str,
    *,
    user: str,
    channel: str,
    lang: str,
) -> None:
    """Guard, allowlist, rate limit, ack "checking…", then the live check."""
    policy = await deps.policy(channel)
    try:
        target = guard_registry(value, policy)
    except PolicyError as exc:
        await ack(**_refusal(lang, blocks.escape(str(exc))))
        return
    refusal = flows.quick_rate_refusal(deps, user_id=user, channel_id=channel, lang=lang)
    if refusal:
        await ack(response_type="ephemeral", **blocks.simple(refusal).kwargs())
        return
    checking = blocks.t(
        lang,
        "checking",
        name=target.login_server,
        vantage=deps.settings.vantage_name,
        secs=round(deps.settings.check_deadline),
    )
    await ack(response_type="ephemeral", text=checking)
    await deps.ack_first.settle()
    if await _over_shared_limit(respond, deps, user=user, channel=channel, lang=lang):
        return
    lang = await flows.user_lang(client, deps, user)
    try:
        diagnosis = await flows.live_registry(deps, target, policy, lang)
    except Exception as exc:  # the user gets a sentence, operators get the log
        log.warning("live check of %s failed: %s", target.login_server, type(exc).__name__, exc_info=exc)
        await respond(response_type="ephemeral", text=blocks.t(lang, "check_failed", reason=flows.failure_reason(exc)))
        return
    diag_id = await flows.save(
        deps,
        diagnosis,
        channel_id=channel,
        source_ts="",
        user_id=user,
        kind="registry",
        registry=target.login_server,
    )
    message = flows.render(deps, diagnosis, diag_id, lang=lang, live=True, explicit=True, threshold=0.0)
    await respond(response_type="in_channel", **message.kwargs())
    for extra in blocks.overflow_messages(message.overflow, lang):
        await respond(response_type="in_channel", replace_original=False, **extra.kwargs())


async def _diagnose(
    ack: Ack,
    respond: Respond,
    client: AsyncWebClient,
    deps: Deps,
    text: str,
    *,
    user: str,
    channel: str,
    lang: str,
) -> None:
    """Diagnose pasted text; live checks only if every host in it passes the guard."""
    if not text:
        await ack(**_refusal(lang, "Give the error text after `diagnose`."))
        return
    refusal = flows.quick_rate_refusal(deps, user_id=user, channel_id=channel, lang=lang)
    if refusal:
        await ack(response_type="ephemeral", **blocks.simple(refusal).kwargs())
        return
    await ack(response_type="ephemeral", text=blocks.t(lang, "diagnosing"))
    await deps.ack_first.settle()
    if await _over_shared_limit(respond, deps, user=user, channel=channel, lang=lang):
        return
    lang = await flows.user_lang(client, deps, user, text=text)
    policy = await deps.policy(channel)
    diagnosis = flows.diagnose(text[: flows.MAX_TEXT_CHARS], lang)
    if diagnosis.secret_found:  # via response_url: works even where the bot is not a member
        kinds = ", ".join(diagnosis.facts.secrets)
        await respond(response_type="ephemeral", replace_original=False, text=blocks.t(lang, "secret", kinds=kinds))
    notes: list[str] = []
    live = False
    if diagnosis.cause not in ("unrelated",):
        try:
            diagnosis, notes = await flows.live_paste(deps, diagnosis, policy, lang)
            live = not notes and bool(diagnosis.evidence)
        except Exception as exc:
            log.warning("live checks of a paste failed: %s", type(exc).__name__, exc_info=exc)
            notes = [blocks.t(lang, "check_failed", reason=flows.failure_reason(exc))]
    diag_id = await flows.save(deps, diagnosis, channel_id=channel, source_ts="", user_id=user, kind="paste")
    message = flows.render(deps, diagnosis, diag_id, lang=lang, live=live, explicit=True, threshold=0.0, notes=notes)
    await respond(response_type="in_channel", **message.kwargs())


async def _config(ack: Ack, deps: Deps, rest: str, *, user: str, channel: str, lang: str) -> None:
    """Show the channel's effective settings, or let an admin change one."""
    policy = await deps.policy(channel)
    if not rest:
        mutes = await deps.run_for_ack(deps.store.active_mutes, channel)
        lines = [
            f"*mode*: `{policy.mode}`",
            f"*mentions*: `{'on' if policy.mentions else 'off (settings)'}`",
            f"*threshold*: `{policy.threshold:g}`",
            f"*allow-bots*: `{'on' if policy.allow_bots else 'off'}`",
            f"*registries*: {', '.join(policy.registries) or 'any'}",
            f"*subscriptions*: {', '.join(policy.subscriptions) or 'default'}",
            notices.mutes_line(lang, mutes),
        ]
        await ack(response_type="ephemeral", **blocks.simple("\n".join(lines)).kwargs())
        return
    key, _, value = rest.partition(" ")
    if not is_admin(deps.settings, user, channel):
        who = admin_mentions(deps.settings, channel)
        await ack(**_refusal(lang, f"Only channel admins can change settings here; ask {who}."))
        return
    try:
        stored_key, stored_value = parse_override(key, value)
    except PolicyError as exc:
        await ack(**_refusal(lang, f"{blocks.escape(str(exc))} (keys: {', '.join(k.replace('_', '-') for k in OVERRIDE_KEYS)})"))
        return
    await Store.run(deps.store.set_override, channel, stored_key, stored_value, user_id=user)
    deps.forget_policy(channel)
    shown = stored_key.replace("_", "-")
    await ack(response_type="ephemeral", text=f"Set *{shown}* to `{stored_value}` for this channel.")


async def _unmute(ack: Ack, deps: Deps, rest: str, *, user: str, channel: str, lang: str) -> None:
    """End a mute before it expires; the channel sees who did it (same permission as muting)."""
    cause = rest.strip().strip("`").lower()
    if not CAUSE_ID.fullmatch(cause):
        mutes = await deps.run_for_ack(deps.store.active_mutes, channel)
        text = f"{notices.t(lang, 'unmute_usage')}\n{notices.mutes_line(lang, mutes)}"
        await ack(response_type="ephemeral", **blocks.simple(text).kwargs())
        return
    if not may_mute(deps.settings, user, channel):
        refusal = notices.t(lang, "unmute_refused", who=admin_mentions(deps.settings, channel))
        await ack(response_type="ephemeral", **blocks.simple(refusal).kwargs())
        return
    if not await deps.run_for_ack(deps.store.unmute, channel, cause):
        mutes = await deps.run_for_ack(deps.store.active_mutes, channel)
        text = f"{notices.t(lang, 'not_muted', cause=cause)}\n{notices.mutes_line(lang, mutes)}"
        await ack(response_type="ephemeral", **blocks.simple(text).kwargs())
        return
    log.info("cause %s unmuted in a channel", cause)
    await ack(response_type="in_channel", text=notices.t(deps.settings.lang, "unmuted", user=user, cause=cause))


async def _watch(respond: Respond, deps: Deps, sub: str, args: str, *, user: str, channel: str, lang: str) -> None:
    """Delegate to the scheduler's command handler, if this deployment has it."""
    try:
        module = importlib.import_module("handlers.watch")
        handle = module.handle_watch_command
    except (ImportError, AttributeError):
        await respond(response_type="ephemeral", text=blocks.t(lang, "watches_unavailable"))
        return
    settings = deps.settings

    def admin_check(user_id: str, channel_id: str) -> bool:
        return is_admin(settings, user_id, channel_id)

    try:
        text, is_ephemeral = await asyncio.to_thread(
            handle, sub, args, user_id=user, channel_id=channel, settings=settings, is_admin=admin_check
        )
    except Exception as exc:
        log.warning("watch command failed: %s", type(exc).__name__, exc_info=exc)
        await respond(response_type="ephemeral", text=blocks.t(lang, "check_failed", reason=flows.failure_reason(exc)))
        return
    await respond(response_type="ephemeral" if is_ephemeral else "in_channel", text=text)
