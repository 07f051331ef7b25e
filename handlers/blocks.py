"""Block Kit builders: a Diagnosis in, Slack message dicts out. No I/O here.

Kept apart from the handlers (Dispatch's split) so the limits can be enforced and
tested in one place: at most 50 blocks, 3,000 characters per section, 150 per header,
and a total well under Slack's undocumented ~13k ``msg_blocks_too_long`` cap. Whatever
does not fit (long evidence) is returned as ``overflow`` for a follow-up message in the
thread. Every message carries a plain ``text`` fallback. All user-derived strings are
mrkdwn-escaped, so a paste containing ``<!channel>`` cannot ping anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.engine.hosts import classify_host, registry_class_of
from bot.engine.lang import localize_detail, localize_vantage
from bot.engine.models import Diagnosis, Evidence, SimilarCase
from bot.engine.render_text import self_check_command

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_CONTEXT_TEXT = 2000
MAX_TOTAL = 11000  # sum of block text; Slack rejects ~13k
MAX_FALLBACK = 3000
EVIDENCE_IN_MAIN = 6  # lines shown in the diagnosis itself; the rest go to a follow-up

ACTION_RERUN = "acrcheck_rerun"
ACTION_EVIDENCE = "acrcheck_evidence"
ACTION_HELPFUL = "acrcheck_helpful"
ACTION_NOT_HELPFUL = "acrcheck_not_helpful"
ACTION_MUTE = "acrcheck_mute"
ACTION_IDS = (ACTION_RERUN, ACTION_EVIDENCE, ACTION_HELPFUL, ACTION_NOT_HELPFUL, ACTION_MUTE)

_STATUS_ICON = {
    "ok": ":white_check_mark:",
    "fail": ":x:",
    "warn": ":warning:",
    "skipped": ":heavy_minus_sign:",
}

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "likely_cause": "Likely cause",
        "confidence": "confidence",
        "fix": "Fix",
        "evidence": "Evidence",
        "docs": "Docs",
        "observed": "observed",
        "more_evidence": "{n} more evidence lines follow in the thread.",
        "evidence_cont": "Evidence (continued)",
        "rerun": "Re-run checks",
        "show_evidence": "Show evidence",
        "helpful": "Helpful",
        "not_helpful": "Not helpful",
        "mute": "Mute here for 24 h",
        "unsure": (
            "I'm not sure this is a registry network problem (confidence {pct}). "
            "Paste the full error, or run `/acrcheck REGISTRY` for a live check."
        ),
        "unrelated": (
            "This doesn't look like a container registry connectivity problem to me. "
            "If it is, paste the full error text, or run `/acrcheck REGISTRY` for a live check."
        ),
        "vantage_note": (
            "Live checks ran from {vantage}, not from your machine. Compare with "
            "`az acr check-health -n {name} --yes` run on the failing host."
        ),
        "paste_note": "Diagnosed from the text only. Run `/acrcheck {name}` for a live check from {vantage}.",
        "self_check": "From the failing machine (nothing to install): `{command}` — or run `acrcheck probe {name}` there and paste its report here.",
        "paste_note_elsewhere": (
            "Diagnosed from the text only. {name} is not an Azure registry, so acrcheck does not check it live; "
            "the command above checks it from the failing machine."
        ),
        "self_check_elsewhere": "From the failing machine (nothing to install): `{command}`",
        "healthy": "{name} looks healthy from {vantage}",
        "checking": "Checking `{name}` from {vantage}… (this can take up to {secs} s)",
        "diagnosing": "Diagnosing…",
        "secret": (
            ":warning: Your message contained what looks like a secret ({kinds}). "
            "I did not repeat it, but anyone in the channel can read the original: "
            "delete the message and rotate that credential now."
        ),
        "no_evidence": "No evidence was recorded for this diagnosis.",
        "error": ":warning: {message}",
        "rate_user": "You've asked for {n} checks in the last minute; please wait a minute and try again.",
        "rate_channel": "This channel has hit its limit of {n} bot answers a minute; try again shortly.",
        "check_failed": "The check could not finish: {reason}. Nothing was changed; try again later.",
        "muted": "Muted `{cause}` diagnoses in this channel for 24 hours.",
        "thanks": "Thanks, your feedback was recorded.",
        "expired": "This diagnosis is too old to act on; run `/acrcheck` again.",
        "watches_unavailable": "Scheduled watches are not available in this deployment.",
        "refused_hosts": "Live checks skipped: {reasons}",
        "rerun_scope": "Not allowed here: {reason}",
        "ambiguous": "The text alone cannot decide between these causes:",
        "decisive": "The check that decides",
        "similar": "Similar solved cases",
        "fixed_by": "fix:",
        "cause_was": "cause:",
    },
    "ja": {
        "likely_cause": "考えられる原因",
        "confidence": "確信度",
        "fix": "対処",
        "evidence": "根拠",
        "docs": "ドキュメント",
        "observed": "観測元",
        "more_evidence": "残り {n} 行の根拠はスレッドに続けて投稿します。",
        "evidence_cont": "根拠（続き）",
        "rerun": "再チェック",
        "show_evidence": "根拠を表示",
        "helpful": "役に立った",
        "not_helpful": "役に立たなかった",
        "mute": "このチャンネルで24時間ミュート",
        "unsure": (
            "レジストリのネットワーク問題かどうか確信がありません（確信度 {pct}）。"
            "エラー全文を貼るか、`/acrcheck レジストリ名` でライブチェックを実行してください。"
        ),
        "unrelated": (
            "コンテナーレジストリの接続問題ではないようです。そうであれば、エラー全文を貼るか "
            "`/acrcheck レジストリ名` でライブチェックを実行してください。"
        ),
        "vantage_note": (
            "ライブチェックは {vantage} から実行しました（あなたのマシンからではありません）。"
            "失敗しているホストで `az acr check-health -n {name} --yes` を実行して比較してください。"
        ),
        "paste_note": "貼り付けられたテキストのみから診断しました。{vantage} からのライブチェックは `/acrcheck {name}` で実行できます。",
        "self_check": "失敗しているマシンから確認 (インストール不要): `{command}` — または そのマシンで `acrcheck probe {name}` を実行し、結果をここに貼り付けてください。",
        "paste_note_elsewhere": (
            "貼り付けられたテキストのみから診断しました。{name} は Azure のレジストリではないため、acrcheck はライブチェックしません。"
            "失敗しているマシンで上のコマンドを実行して確認してください。"
        ),
        "self_check_elsewhere": "失敗しているマシンから確認 (インストール不要): `{command}`",
        "healthy": "{name} は {vantage} から見て正常です",
        "checking": "{vantage} から `{name}` をチェックしています…（最大 {secs} 秒）",
        "diagnosing": "診断しています…",
        "secret": (
            ":warning: あなたのメッセージにシークレットと思われるもの（{kinds}）が含まれていました。"
            "ボットは繰り返していませんが、元のメッセージはチャンネルの全員が読めます。"
            "メッセージを削除し、その資格情報を今すぐローテーションしてください。"
        ),
        "no_evidence": "この診断の根拠は記録されていません。",
        "error": ":warning: {message}",
        "rate_user": "直近1分間に {n} 回チェックしました。1分ほど待ってから再試行してください。",
        "rate_channel": "このチャンネルはボット応答の上限（1分あたり {n} 回）に達しました。少し待ってください。",
        "check_failed": "チェックを完了できませんでした: {reason}。何も変更していません。後で再試行してください。",
        "muted": "このチャンネルで `{cause}` の診断を24時間ミュートしました。",
        "thanks": "フィードバックを記録しました。ありがとうございます。",
        "expired": "この診断は古いため操作できません。`/acrcheck` をもう一度実行してください。",
        "watches_unavailable": "この環境では定期監視は利用できません。",
        "refused_hosts": "ライブチェックを省略しました: {reasons}",
        "rerun_scope": "ここでは許可されていません: {reason}",
        "ambiguous": "テキストだけではこれらの原因を判別できません:",
        "decisive": "判別するためのチェック",
        "similar": "似た解決済みの事例",
        "fixed_by": "解決方法:",
        "cause_was": "原因:",
    },
}

HELP = {
    "en": (
        "*acrcheck* troubleshoots Azure Container Registry network problems.\n"
        "• `/acrcheck REGISTRY` — live check of a registry (`myregistry` or `myregistry.azurecr.io`)\n"
        "• `/acrcheck diagnose ERROR TEXT` — diagnose a pasted error\n"
        "• `/acrcheck help` — this help\n"
        "• `/acrcheck config` — show this channel's settings; admins: "
        "`/acrcheck config mode passive|mention-only|off`, `/acrcheck config threshold 0.6`, "
        "`/acrcheck config allow-bots on|off`\n"
        "• `/acrcheck unmute CAUSE` — end a mute early (admins)\n"
        "• `/acrcheck watch REGISTRY SCHEDULE`, `/acrcheck watches`, `/acrcheck unwatch ID` — scheduled checks\n"
        "• Mention me with an error (in an `off` channel only you see the answer), or use the message "
        "shortcut *Diagnose with acrcheck* on any message."
    ),
    "ja": (
        "*acrcheck* は Azure Container Registry のネットワーク問題を調べます。\n"
        "• `/acrcheck レジストリ名` — レジストリのライブチェック（`myregistry` または `myregistry.azurecr.io`）\n"
        "• `/acrcheck diagnose エラー文` — 貼り付けたエラーを診断\n"
        "• `/acrcheck help` — このヘルプ\n"
        "• `/acrcheck config` — このチャンネルの設定を表示。管理者は "
        "`/acrcheck config mode passive|mention-only|off`、`/acrcheck config threshold 0.6`、"
        "`/acrcheck config allow-bots on|off`\n"
        "• `/acrcheck unmute 原因ID` — ミュートを早めに解除（管理者）\n"
        "• `/acrcheck watch レジストリ名 スケジュール`、`/acrcheck watches`、`/acrcheck unwatch ID` — 定期チェック\n"
        "• エラーを添えてメンションするか（`off` のチャンネルでは回答はあなたにだけ表示されます）、"
        "任意のメッセージでショートカット *Diagnose with acrcheck* を使ってください。"
    ),
}


@dataclass(slots=True)
class Rendered:
    """A message ready for chat.postMessage / respond: fallback text, blocks, and what did not fit."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    overflow: list[str] = field(default_factory=list)

    def kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def t(lang: str, key: str, **values: Any) -> str:
    """Translated UI string (English when the key or language is missing)."""
    table = STRINGS.get(lang, STRINGS["en"])
    template = table.get(key) or STRINGS["en"][key]
    return template.format(**values)


def lang_of(locale: str | None, default: str = "en") -> str:
    """Map a Slack locale (``ja-JP``) to a supported language."""
    if locale and locale.lower().startswith("ja"):
        return "ja"
    if locale and locale.lower().startswith("en"):
        return "en"
    return default


def escape(text: str) -> str:
    """mrkdwn-escape user-derived text (Slack's own three entities)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


def _code(text: str) -> str:
    """Inline code that survives backticks in the value."""
    return "`" + escape(text).replace("`", "ˋ") + "`"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, MAX_SECTION)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, MAX_CONTEXT_TEXT)}]}


def _header(text: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": truncate(text, MAX_HEADER), "emoji": True},
    }


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": truncate(text, 75), "emoji": True},
        "action_id": action_id,
        "value": value[:2000],
    }
    if style:
        button["style"] = style
    return button


def evidence_line(item: Evidence | dict[str, Any], lang: str) -> str:
    """One evidence line that always says where it was observed."""
    data = item.to_dict() if isinstance(item, Evidence) else item
    icon = _STATUS_ICON.get(str(data.get("status", "")), "•")
    check = escape(str(data.get("check", "")))
    target = str(data.get("target", ""))
    detail = escape(truncate(localize_detail(str(data.get("detail", "")), lang), 600))
    vantage = escape(localize_vantage(str(data.get("vantage", "")), lang) or "?")
    where = f"{t(lang, 'observed')}: {vantage}"
    target_part = f" {_code(truncate(target, 200))}" if target else ""
    return f"{icon} *{check}*{target_part} — {detail} _({where})_"


def _block_chars(block: dict[str, Any]) -> int:
    total = 0
    text = block.get("text")
    if isinstance(text, dict):
        total += len(str(text.get("text", "")))
    for element in block.get("elements", []) or []:
        if isinstance(element, dict):
            inner = element.get("text")
            total += len(str(inner.get("text", ""))) if isinstance(inner, dict) else len(str(inner or ""))
    return total


def fit(blocks: list[dict[str, Any]], priorities: list[int] | None = None) -> tuple[list[dict[str, Any]], int]:
    """Drop blocks until count and total size fit; returns (blocks, dropped).

    Lowest priority (highest number) goes first, later blocks before earlier ones, so a
    long fix list gives way before the evidence, and the buttons always stay.
    """
    ranks = list(priorities) if priorities is not None else [0 if b.get("type") == "actions" else 5 for b in blocks]
    kept = list(zip(ranks, blocks, strict=True))
    dropped = 0

    def over() -> bool:
        return len(kept) > MAX_BLOCKS or sum(_block_chars(b) for _r, b in kept) > MAX_TOTAL

    while over():
        candidates = [i for i, (rank, _b) in enumerate(kept) if rank > 0]
        if not candidates:
            break
        worst = max(candidates, key=lambda i: (kept[i][0], i))
        kept.pop(worst)
        dropped += 1
    return [b for _r, b in kept], dropped


def _chunks(lines: list[str], limit: int = MAX_SECTION - 100) -> list[str]:
    """Group lines into section-sized chunks."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        line = truncate(line, limit)
        if current and len(current) + 1 + len(line) > limit:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


def diagnosis_message(
    diagnosis: Diagnosis,
    *,
    diag_id: str,
    lang: str,
    vantage: str,
    live: bool,
    explicit: bool = False,
    threshold: float = 0.0,
    notes: list[str] | None = None,
) -> Rendered:
    """The reply for one diagnosis.

    ``explicit`` is True when a person asked (mention, command, shortcut): then an
    unsure or unrelated result is still answered, saying so and suggesting a live check.
    """
    facts = diagnosis.facts
    # A paste about Docker Hub, GHCR or a self-hosted registry: acrcheck's live checks and probe
    # refuse such hosts, so the reply must not offer them. The engine's own test (a look-alike or
    # malformed ACR name is still about ACR: /acrcheck checks the registry it meant).
    host = (facts.registry_host or "").split(":")[0]
    elsewhere = bool(host) and registry_class_of(classify_host(host).kind) != "acr"
    name = facts.registry or facts.login_server or (facts.registry_host if elsewhere else None) or "REGISTRY"
    pct = f"{round(diagnosis.confidence * 100)}%"
    vantage = localize_vantage(vantage, lang)
    blocks: list[dict[str, Any]] = []
    ranks: list[int] = []

    def add(block: dict[str, Any], rank: int) -> None:
        blocks.append(block)
        ranks.append(rank)

    healthy = diagnosis.cause == "healthy"
    unrelated = diagnosis.cause == "unrelated"
    unsure = not healthy and not unrelated and (not diagnosis.reply or diagnosis.answer_confidence < threshold)

    if healthy:
        title = ":white_check_mark: " + t(lang, "healthy", name=name, vantage=vantage)
    elif unrelated:
        title = ":mag: acrcheck"
    else:
        title = f":mag: {diagnosis.title or diagnosis.cause}"
    add(_header(title), 0)

    if unrelated:
        add(_section(t(lang, "unrelated")), 0)
    else:
        if diagnosis.summary:
            add(_section(escape(diagnosis.summary)), 1)
        if not healthy:
            cause_line = f"*{t(lang, 'likely_cause')}:* {_code(diagnosis.cause)} ({t(lang, 'confidence')} {pct})"
            others = [c for c in diagnosis.causes if c.id not in (diagnosis.cause, "healthy", "unrelated")][:2]
            if others:
                cause_line += "  ·  " + ", ".join(f"{_code(c.id)} {round(c.confidence * 100)}%" for c in others)
            add(_section(cause_line), 1)
        if unsure and explicit:
            add(_section(t(lang, "unsure", pct=pct)), 1)
        if diagnosis.ambiguous and diagnosis.candidates:
            add(_section(ambiguity_text(diagnosis, lang)), 1)
        if diagnosis.fix:
            lines = [f"*{t(lang, 'fix')}*"]
            for number, step in enumerate(diagnosis.fix, 1):
                lines.append(f"{number}. {escape(step.text)}")
                if step.command:
                    lines.append("```" + escape(step.command).replace("```", "ˋˋˋ") + "```")
            for index, chunk in enumerate(_chunks(lines)):
                add(_section(chunk), 2 if index == 0 else 4)

    evidence_lines = [evidence_line(item, lang) for item in diagnosis.evidence]
    overflow: list[str] = []
    if evidence_lines:
        shown = evidence_lines[:EVIDENCE_IN_MAIN]
        overflow = evidence_lines[EVIDENCE_IN_MAIN:]
        text = f"*{t(lang, 'evidence')}*\n" + "\n".join(shown)
        if len(text) > MAX_SECTION - 100:
            chunks = _chunks(shown)
            text = f"*{t(lang, 'evidence')}*\n" + chunks[0]
            overflow = [line for chunk in chunks[1:] for line in chunk.split("\n")] + overflow
        add(_section(text), 2)
        if overflow:
            add(_context(t(lang, "more_evidence", n=len(overflow))), 2)

    for note in [*(notes or []), *diagnosis.notes]:
        add(_context(escape(note)), 3)
    if diagnosis.docs:
        docs = " · ".join(f"<{d}>" for d in diagnosis.docs[:5] if d.startswith("https://"))
        if docs:
            add(_context(f"{t(lang, 'docs')}: {docs}"), 5)
    check_command = self_check_command(diagnosis)
    if check_command and not unrelated and not healthy:
        key = "self_check_elsewhere" if elsewhere and not live else "self_check"
        add(_context(t(lang, key, command=escape(check_command), name=escape(name))), 3)
    if live:
        add(_context(t(lang, "vantage_note", vantage=escape(vantage), name=escape(name))), 3)
    elif not unrelated:
        key = "paste_note_elsewhere" if elsewhere else "paste_note"
        add(_context(t(lang, key, vantage=escape(vantage), name=escape(name))), 3)

    add(
        {
            "type": "actions",
            "block_id": f"acrcheck:{diag_id}",
            "elements": [
                _button(t(lang, "rerun"), ACTION_RERUN, diag_id, "primary"),
                _button(t(lang, "show_evidence"), ACTION_EVIDENCE, diag_id),
                _button(t(lang, "helpful"), ACTION_HELPFUL, diag_id),
                _button(t(lang, "not_helpful"), ACTION_NOT_HELPFUL, diag_id),
                _button(t(lang, "mute"), ACTION_MUTE, diag_id, "danger"),
            ],
        },
        0,
    )
    blocks, _dropped = fit(blocks, ranks)

    if unrelated:
        fallback = t(lang, "unrelated")
    elif healthy:
        fallback = t(lang, "healthy", name=name, vantage=vantage)
    else:
        fallback = f"{diagnosis.title or diagnosis.cause} ({diagnosis.cause}, {pct}). {diagnosis.summary}"
    return Rendered(text=truncate(fallback, MAX_FALLBACK), blocks=blocks, overflow=overflow)


def ambiguity_text(diagnosis: Diagnosis, lang: str) -> str:
    """The open candidates, what tells each apart, and the one check that decides."""
    lines = [f"*{t(lang, 'ambiguous')}*"]
    for candidate in diagnosis.candidates:
        pct = f"{round(candidate.confidence * 100)}%"
        lines.append(f"• *{escape(candidate.title)}* {_code(candidate.id)} {pct}: {escape(candidate.tell)}")
    check = diagnosis.decisive_check
    if check is not None:
        lines.append(f"*{t(lang, 'decisive')}:* {escape(check.text)}")
        if check.command:
            lines.append("```" + escape(check.command).replace("```", "ˋˋˋ") + "```")
    return truncate("\n".join(lines), MAX_SECTION)


def similar_case_line(case: SimilarCase, lang: str) -> str:
    """'<link|title> — fix: …' for the "Show evidence" view."""
    title = escape(truncate(case.title, 150)).replace("|", "¦")
    link = f"<{case.url}|{title}>" if case.url.startswith("https://") and not set(case.url) & set("<>| ") else title
    if case.fix:
        return f"• {link} — {t(lang, 'fixed_by')} {escape(truncate(case.fix, 300))}"
    return f"• {link} — {t(lang, 'cause_was')} {escape(truncate(case.evidence or case.cause, 300))}"


def overflow_messages(lines: list[str], lang: str, *, max_messages: int = 3) -> list[Rendered]:
    """Follow-up messages for evidence that did not fit in the diagnosis."""
    messages: list[Rendered] = []
    chunks = _chunks(lines)
    per_message = 3  # sections per follow-up keeps each message far from the total cap
    for start in range(0, len(chunks), per_message):
        if len(messages) == max_messages:
            break
        part = chunks[start : start + per_message]
        blocks = [_context(f"*{t(lang, 'evidence_cont')}*")] + [_section(chunk) for chunk in part]
        messages.append(Rendered(text=t(lang, "evidence_cont"), blocks=blocks))
    return messages


def evidence_message(evidence: list[dict[str, Any]], lang: str, similar: list[SimilarCase] | None = None) -> Rendered:
    """Ephemeral "Show evidence": every line, within one message's limits, then similar solved cases."""
    if not evidence and not similar:
        return Rendered(text=t(lang, "no_evidence"), blocks=[_section(t(lang, "no_evidence"))])
    lines = [evidence_line(item, lang) for item in evidence]
    blocks: list[dict[str, Any]] = []
    ranks: list[int] = []
    if lines:
        blocks.append(_section(f"*{t(lang, 'evidence')}*"))
        ranks.append(0)
        for chunk in _chunks(lines):
            blocks.append(_section(chunk))
            ranks.append(2)
    if similar:
        cited = [similar_case_line(case, lang) for case in similar]
        blocks.append(_section(truncate(f"*{t(lang, 'similar')}*\n" + "\n".join(cited), MAX_SECTION)))
        ranks.append(1)
        lines += cited
    note = _context(t(lang, "more_evidence", n=len(lines)))  # reserves room for the note
    blocks, dropped = fit([*blocks, note], [*ranks, 0])
    if dropped:
        blocks[-1] = _context(t(lang, "more_evidence", n=dropped))
    else:
        blocks.pop()
    return Rendered(text=truncate("\n".join(lines), MAX_FALLBACK), blocks=blocks)


def simple(text: str) -> Rendered:
    """A one-section message (errors, confirmations)."""
    return Rendered(text=truncate(text, MAX_FALLBACK), blocks=[_section(text)])


def help_message(lang: str) -> Rendered:
    return simple(HELP.get(lang, HELP["en"]))


def error_message(message: str, lang: str) -> Rendered:
    """User-facing error: a sentence, never a stack trace."""
    return simple(t(lang, "error", message=escape(message)))
