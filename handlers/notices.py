"""Texts for votes and mutes: what the voter sees, and what the channel sees about a mute.

Kept apart from :mod:`handlers.blocks` (diagnosis rendering). A mute silences a cause for
everyone in a channel, so its notices name who did it, which cause, and until when, with
Slack's date token so each reader sees the time in their own time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bot.store import MuteRecord
from handlers import blocks

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "voted": "Thanks, your vote was recorded: *{vote}*.",
        "revoted": "Thanks, your vote is now *{vote}* (it replaces your earlier one).",
        "vote_stale": "A newer vote of yours on this diagnosis is already recorded; this click was not counted.",
        "helpful": "helpful",
        "not_helpful": "not helpful",
        "mute_refused": "Only channel admins can mute a cause here; ask {who}.",
        "muted": (
            ":no_bell: <@{user}> muted `{cause}` in this channel until {until}: the bot will not answer "
            "pasted errors with this cause here. `/acrcheck unmute {cause}` ends it sooner."
        ),
        "unmuted": ":bell: <@{user}> unmuted `{cause}` in this channel: the bot answers pasted errors with this cause again.",
        "not_muted": "`{cause}` is not muted in this channel.",
        "unmute_usage": "Give the cause to unmute, e.g. `/acrcheck unmute client-dns`.",
        "unmute_refused": "Only channel admins can unmute a cause here; ask {who}.",
        "mutes": "*mutes*: {items}",
        "mute_item": "`{cause}` until {until} (by <@{user}>)",
        "mute_item_anon": "`{cause}` until {until}",
        "none": "none",
    },
    "ja": {
        "voted": "投票を記録しました: *{vote}*。ありがとうございます。",
        "revoted": "投票を *{vote}* に変更しました（以前の投票を置き換えます）。ありがとうございます。",
        "vote_stale": "この診断にはより新しい投票が記録済みのため、今回のクリックは数えていません。",
        "helpful": "役に立った",
        "not_helpful": "役に立たなかった",
        "mute_refused": "このチャンネルで原因をミュートできるのはチャンネル管理者だけです。{who} に依頼してください。",
        "muted": (
            ":no_bell: <@{user}> がこのチャンネルで `{cause}` を {until} までミュートしました。"
            "この原因の貼り付けエラーにはボットは応答しません。`/acrcheck unmute {cause}` で早く終了できます。"
        ),
        "unmuted": ":bell: <@{user}> がこのチャンネルで `{cause}` のミュートを解除しました。この原因にも再び応答します。",
        "not_muted": "`{cause}` はこのチャンネルでミュートされていません。",
        "unmute_usage": "解除する原因を指定してください。例: `/acrcheck unmute client-dns`",
        "unmute_refused": "このチャンネルでミュートを解除できるのはチャンネル管理者だけです。{who} に依頼してください。",
        "mutes": "*ミュート*: {items}",
        "mute_item": "`{cause}` {until} まで（<@{user}>）",
        "mute_item_anon": "`{cause}` {until} まで",
        "none": "なし",
    },
}


def t(lang: str, key: str, **values: object) -> str:
    """Translated notice (English when the language is missing)."""
    table = STRINGS.get(lang, STRINGS["en"])
    return table.get(key, STRINGS["en"][key]).format(**values)


def slack_time(unix: float) -> str:
    """``<!date^…>``: Slack shows it in the reader's time zone; the fallback is UTC."""
    fallback = datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(unix)}^{{date_short_pretty}} {{time}}|{fallback}>"


def vote_text(lang: str, *, helpful: bool, replaced: bool) -> str:
    vote = t(lang, "helpful" if helpful else "not_helpful")
    return t(lang, "revoted" if replaced else "voted", vote=vote)


def muted_text(lang: str, *, user: str, cause: str, until: float) -> str:
    return t(lang, "muted", user=user, cause=blocks.escape(cause), until=slack_time(until))


def mutes_line(lang: str, mutes: list[MuteRecord]) -> str:
    """The ``/acrcheck config`` line listing active mutes."""
    items = [
        t(
            lang,
            "mute_item" if m.muted_by else "mute_item_anon",
            cause=blocks.escape(m.cause),
            until=slack_time(m.until),
            user=m.muted_by,
        )
        for m in mutes
    ]
    return t(lang, "mutes", items="; ".join(items) if items else t(lang, "none"))
