"""Shared steps of every entry point: locale, snippets, diagnosis, guarded live checks, replies.

Messages, mentions, commands, shortcuts and buttons differ only in *when* they answer;
how a diagnosis is produced, guarded and posted is the same, so it lives here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot import diagnose as engine
from bot.config import Settings
from bot.engine.hostguard import RegistryTarget
from bot.engine.lang import detect_lang
from bot.engine.models import Diagnosis, SimilarCase
from bot.store import Store
from handlers import blocks
from handlers.deps import Deps
from handlers.policy import ChannelPolicy, guard_paste, within_rate

log = logging.getLogger("acrcheck.slack")

MAX_TEXT_CHARS = 40_000
MAX_SNIPPET_BYTES = 512 * 1024
MAX_SNIPPETS = 3
MUTE_SECONDS = 24 * 3600
_TEXT_FILETYPES = {
    "text",
    "txt",
    "log",
    "shell",
    "bash",
    "json",
    "yaml",
    "yml",
    "plain",
    "go",
    "python",
    "markdown",
}


# --- locale ----------------------------------------------------------------------------
async def user_lang(client: AsyncWebClient, deps: Deps, user_id: str | None, *, text: str | None = None) -> str:
    """The user's language from their Slack locale; memory, then DB, then users.info.

    Without a usable locale, a Japanese paste is answered in Japanese, anything else in the
    workspace's default language.
    """
    default = "ja" if text and detect_lang(text) == "ja" else deps.settings.lang
    if not user_id:
        return default
    locale = deps.cached_locale(user_id)
    if locale is None:
        locale = await Store.run(deps.store.get_locale, user_id)
        if locale is None:
            try:
                response = await client.users_info(user=user_id, include_locale=True)
                locale = str((response.get("user") or {}).get("locale") or "")
            except SlackApiError as exc:
                log.info("users.info failed for a user: %s", exc.response.get("error"))
                locale = ""
            await Store.run(deps.store.set_locale, user_id, locale)
        deps.remember_locale(user_id, locale)
    return blocks.lang_of(locale, default)


def quick_lang(deps: Deps, user_id: str | None) -> str:
    """Language without any I/O (for text that must go out inside the 3 s ack)."""
    locale = deps.cached_locale(user_id) if user_id else None
    return blocks.lang_of(locale, deps.settings.lang)


# --- Slack calls that must never break the flow -------------------------------------------------
async def react(client: AsyncWebClient, channel: str, ts: str, add: str, remove: str | None = None) -> None:
    """Best-effort reaction change (👀 → ✅/❌); reactions are decoration, not delivery."""
    if remove:
        with contextlib.suppress(SlackApiError):
            await client.reactions_remove(channel=channel, timestamp=ts, name=remove)
    with contextlib.suppress(SlackApiError):
        await client.reactions_add(channel=channel, timestamp=ts, name=add)


async def ephemeral(
    client: AsyncWebClient,
    *,
    channel: str,
    user: str,
    message: blocks.Rendered,
    thread_ts: str | None = None,
) -> None:
    """Private message to one user; failures are logged, never raised at the user."""
    try:
        kwargs: dict[str, Any] = {"channel": channel, "user": user, **message.kwargs()}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        await client.chat_postEphemeral(**kwargs)
    except SlackApiError as exc:
        log.warning("chat.postEphemeral failed: %s", exc.response.get("error"))


async def warn_secret(
    client: AsyncWebClient,
    diagnosis: Diagnosis,
    *,
    channel: str,
    user: str | None,
    thread_ts: str | None,
    lang: str,
) -> None:
    """Tell the author privately to rotate what they pasted; the value itself is never sent."""
    if not diagnosis.secret_found or not user:
        return
    kinds = ", ".join(diagnosis.facts.secrets)
    await ephemeral(
        client,
        channel=channel,
        user=user,
        thread_ts=thread_ts,
        message=blocks.simple(blocks.t(lang, "secret", kinds=kinds)),
    )


# --- input ------------------------------------------------------------------------------
def _file_url_allowed(url: str, settings: Settings) -> bool:
    """The bot token is only ever sent to Slack's own file hosts (or the configured API host)."""
    parts = urlsplit(url)
    api = urlsplit(settings.slack_api_url)
    host = (parts.hostname or "").lower()
    if parts.scheme == api.scheme and host == (api.hostname or "").lower() and parts.port == api.port:
        return True
    return parts.scheme == "https" and (host == "slack.com" or host.endswith((".slack.com", ".slack-edge.com")))


def _is_text_file(info: dict[str, Any]) -> bool:
    if info.get("mode") == "snippet":
        return True
    mimetype = str(info.get("mimetype") or "")
    return mimetype.startswith("text/") or str(info.get("filetype") or "") in _TEXT_FILETYPES


async def snippet_text(client: AsyncWebClient, settings: Settings, files: list[dict[str, Any]]) -> str:
    """Text of shared snippets/text files (files.info, then url_private with the bot token)."""
    parts: list[str] = []
    for item in files[:MAX_SNIPPETS]:
        file_id = item.get("id")
        if not file_id:
            continue
        try:
            info = (await client.files_info(file=file_id)).get("file") or {}
        except SlackApiError as exc:
            log.info("files.info failed: %s", exc.response.get("error"))
            continue
        if not _is_text_file(info) or int(info.get("size") or 0) > MAX_SNIPPET_BYTES:
            continue
        url = str(info.get("url_private_download") or info.get("url_private") or "")
        if not url or not _file_url_allowed(url, settings):
            log.warning("refusing to fetch a file from a non-Slack host")
            continue
        text = await _download(url, client.token or "", settings)
        if text:
            parts.append(text)
    return "\n".join(parts)


async def _download(url: str, token: str, settings: Settings) -> str:
    """GET a private file, following at most 3 redirects and only to allowed hosts."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
        for _ in range(4):
            async with session.get(url, headers={"Authorization": f"Bearer {token}"}, allow_redirects=False) as resp:
                if resp.status in (301, 302, 303, 307, 308):
                    url = urljoin(url, resp.headers.get("Location", ""))
                    if not _file_url_allowed(url, settings):
                        return ""
                    continue
                if resp.status != 200:
                    log.info("file download returned HTTP %s", resp.status)
                    return ""
                data = await resp.content.read(MAX_SNIPPET_BYTES + 1)
                return data[:MAX_SNIPPET_BYTES].decode("utf-8", errors="replace")
    return ""


async def message_text(client: AsyncWebClient, settings: Settings, message: dict[str, Any]) -> str:
    """What to diagnose in a message: its text plus any shared text snippets."""
    text = str(message.get("text") or "")
    files = message.get("files") or []
    if files:
        snippets = await snippet_text(client, settings, files)
        if snippets:
            text = f"{text}\n{snippets}" if text else snippets
    return text[:MAX_TEXT_CHARS]


def strip_mentions(text: str) -> str:
    """Drop ``<@U…>`` mentions so the bot's own name does not feed the classifier."""
    return re.sub(r"<@[A-Z0-9]+(?:\|[^>]*)?>", " ", text).strip()


# --- diagnosis ----------------------------------------------------------------------------
def diagnose(text: str, lang: str) -> Diagnosis:
    """Offline classification (engine, < 1 ms)."""
    return engine.diagnose(text, lang=lang)


async def similar_cases(text: str, lang: str) -> list[SimilarCase]:
    """The solved cases cited for a stored paste, diagnosed again in a worker thread.

    A stored paste may be long: its diagnosis (tens of ms) must not hold the event loop that
    acknowledges every other click and event.
    """
    if not text:
        return []
    diagnosis = await asyncio.to_thread(diagnose, text, lang)
    return diagnosis.similar_cases


def channel_settings(settings: Settings, policy: ChannelPolicy) -> Settings:
    """Settings for live checks in a channel: its subscription allowlist, when it has one."""
    if policy.subscriptions:
        return settings.model_copy(update={"subscriptions": list(policy.subscriptions)})
    return settings


def _deadline(settings: Settings) -> float:
    return settings.check_deadline + 10.0


async def live_registry(deps: Deps, target: RegistryTarget, policy: ChannelPolicy, lang: str) -> Diagnosis:
    """Full live check of a registry that already passed the guard and the allowlist."""
    settings = channel_settings(deps.settings, policy)
    return await asyncio.wait_for(
        engine.check_registry(target.login_server, settings, lang=lang), timeout=_deadline(settings)
    )


async def live_paste(deps: Deps, diagnosis: Diagnosis, policy: ChannelPolicy, lang: str) -> tuple[Diagnosis, list[str]]:
    """Live checks for a paste, only when every host in it passes the guard.

    The engine receives the *redacted* text, so a secret never reaches the network code.
    Returns the (possibly unchanged) diagnosis and user-facing notes about skipped checks.
    """
    targets, refusals = guard_paste(diagnosis, policy)
    if refusals:
        log.info("live checks skipped for a paste: %d host(s) refused", len(refusals))
        return diagnosis, [blocks.t(lang, "refused_hosts", reasons="; ".join(refusals))]
    if not targets:
        return diagnosis, []
    settings = channel_settings(deps.settings, policy)
    live = await asyncio.wait_for(
        engine.diagnose_live(diagnosis.redacted_text, settings, lang=lang), timeout=_deadline(settings)
    )
    return live, []


def failure_reason(exc: BaseException) -> str:
    """A short, safe reason for a failed check (no stack trace, no exception text from inputs)."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "it took too long"
    return f"internal error ({type(exc).__name__})"


def _rate_text(deps: Deps, scope: str | None, lang: str) -> str | None:
    if scope == "user":
        return blocks.t(lang, "rate_user", n=deps.settings.user_rate_per_minute)
    if scope == "channel":
        return blocks.t(lang, "rate_channel", n=deps.settings.channel_rate_per_minute)
    return None


def quick_rate_refusal(deps: Deps, *, user_id: str, channel_id: str, lang: str) -> str | None:
    """This replica's count, without I/O: what a slash command's ack decides on."""
    scope = deps.rate_window.within(deps.settings, user_id=user_id, channel_id=channel_id)
    return _rate_text(deps, scope, lang)


async def shared_rate_refusal(deps: Deps, *, user_id: str, channel_id: str, lang: str) -> str | None:
    """The counters shared by every replica (database); for commands, counted after the ack."""
    scope = await Store.run(within_rate, deps.settings, deps.store, user_id=user_id, channel_id=channel_id)
    return _rate_text(deps, scope, lang)


async def rate_refusal(deps: Deps, *, user_id: str, channel_id: str, lang: str) -> str | None:
    """None when within limits, else the user-facing refusal text (this replica, then all of them)."""
    refusal = quick_rate_refusal(deps, user_id=user_id, channel_id=channel_id, lang=lang)
    if refusal:
        return refusal
    return await shared_rate_refusal(deps, user_id=user_id, channel_id=channel_id, lang=lang)


async def save(
    deps: Deps,
    diagnosis: Diagnosis,
    *,
    channel_id: str,
    source_ts: str,
    user_id: str,
    kind: str,
    registry: str = "",
) -> str:
    """Persist what the buttons need; only redacted text and evidence are stored."""
    return await Store.run(
        deps.store.save_diagnosis,
        channel_id=channel_id,
        source_ts=source_ts,
        user_id=user_id,
        kind=kind,
        registry=registry or diagnosis.facts.login_server or diagnosis.facts.registry or "",
        cause=diagnosis.cause,
        confidence=diagnosis.confidence,
        lang=diagnosis.lang,
        redacted_text=diagnosis.redacted_text,
        evidence=[e.to_dict() for e in diagnosis.evidence],
    )


def render(
    deps: Deps,
    diagnosis: Diagnosis,
    diag_id: str,
    *,
    lang: str,
    live: bool,
    explicit: bool,
    threshold: float,
    notes: list[str] | None = None,
) -> blocks.Rendered:
    return blocks.diagnosis_message(
        diagnosis,
        diag_id=diag_id,
        lang=lang,
        vantage=deps.settings.vantage_name,
        live=live,
        explicit=explicit,
        threshold=threshold,
        notes=notes,
    )


def _metadata(diag_id: str, diagnosis: Diagnosis) -> dict[str, Any]:
    """Tag our posts so they can be found and audited later (never the text itself)."""
    return {
        "event_type": "acr_diagnosis",
        "event_payload": {"diagnosis_id": diag_id, "cause": diagnosis.cause},
    }


async def post_thread_reply(
    client: AsyncWebClient,
    deps: Deps,
    diagnosis: Diagnosis,
    *,
    channel: str,
    source_ts: str,
    thread_ts: str,
    user_id: str,
    lang: str,
    threshold: float,
    explicit: bool,
    live: bool = False,
    notes: list[str] | None = None,
    claim: bool = True,
) -> str | None:
    """Reply in the source message's thread, at most once per source message.

    The reply-map row is the claim: two replicas (or a mention and an edit) racing on the
    same message insert the same primary key and only one posts. Returns the reply ts.
    """
    diag_id = await save(deps, diagnosis, channel_id=channel, source_ts=source_ts, user_id=user_id, kind="paste")
    if claim:
        won = await Store.run(
            deps.store.claim_reply,
            channel,
            source_ts,
            thread_ts=thread_ts,
            cause=diagnosis.cause,
            diagnosis_id=diag_id,
        )
        if not won:
            log.info("reply already claimed for a message; skipping")
            return None
    await react(client, channel, source_ts, "eyes")
    message = render(
        deps, diagnosis, diag_id, lang=lang, live=live, explicit=explicit, threshold=threshold, notes=notes
    )
    try:
        response = await client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            metadata=_metadata(diag_id, diagnosis),
            **message.kwargs(),
        )
    except SlackApiError as exc:
        log.warning("chat.postMessage failed: %s", exc.response.get("error"))
        if claim:
            await Store.run(deps.store.drop_reply, channel, source_ts)
        await react(client, channel, source_ts, "x", remove="eyes")
        raise
    reply_ts = str(response.get("ts") or "")
    if claim:
        await Store.run(
            deps.store.set_reply,
            channel,
            source_ts,
            reply_ts=reply_ts,
            cause=diagnosis.cause,
            diagnosis_id=diag_id,
        )
    await post_overflow(client, message, channel=channel, thread_ts=thread_ts, lang=lang)
    await react(client, channel, source_ts, "white_check_mark", remove="eyes")
    return reply_ts


async def post_overflow(
    client: AsyncWebClient, message: blocks.Rendered, *, channel: str, thread_ts: str, lang: str
) -> None:
    """Evidence that did not fit goes to follow-up messages in the same thread."""
    for extra in blocks.overflow_messages(message.overflow, lang):
        try:
            await client.chat_postMessage(channel=channel, thread_ts=thread_ts, **extra.kwargs())
        except SlackApiError as exc:
            log.warning("follow-up evidence post failed: %s", exc.response.get("error"))
            return
