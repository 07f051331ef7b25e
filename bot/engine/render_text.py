"""Render a Diagnosis as terminal text or as the JSON contracts of the CLI.

The engine returns data objects; this module is the only place that decides how they
look outside Slack (Block Kit rendering lives with the Slack handlers).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from bot.engine.lang import localize_detail, localize_vantage
from bot.engine.models import Diagnosis, SimilarCase

_LABELS = {
    "en": {
        "cause": "Likely cause",
        "confidence": "confidence",
        "evidence": "Evidence",
        "fix": "Fix",
        "others": "Other candidates",
        "docs": "Docs",
        "silent": "Not a registry connectivity problem — the bot would stay silent in passive mode.",
        "self_check": "Check from your own machine (no install needed)",
        "ambiguous": "The text alone cannot decide between these causes",
        "decisive": "The check that decides",
        "similar": "Similar solved cases",
        "fixed_by": "fix:",
        "cause_was": "cause:",
    },
    "ja": {
        "cause": "考えられる原因",
        "confidence": "確信度",
        "evidence": "根拠",
        "fix": "対処",
        "others": "その他の候補",
        "docs": "ドキュメント",
        "silent": "レジストリの接続問題ではありません。パッシブ モードではボットは応答しません。",
        "self_check": "自分のマシンから確認 (インストール不要)",
        "ambiguous": "テキストだけではこれらの原因を判別できません",
        "decisive": "判別するためのチェック",
        "similar": "似た解決済みの事例",
        "fixed_by": "解決方法:",
        "cause_was": "原因:",
    },
}


def self_check_command(diagnosis: Diagnosis) -> str | None:
    """A one-line nslookup/curl for users who cannot install anything."""
    from bot.engine.classify import host_name, template_values

    values = template_values(diagnosis.facts)  # shell-safe shapes only
    # ``host`` is the registry as the paste names it, port included (harbor.corp:8443 answers there);
    # ``login_server`` only stands in when the host's shape was not safe to put in a command.
    endpoint = values.get("host") or values.get("login_server")
    if not endpoint:
        return None
    name = host_name(endpoint)
    port = endpoint[len(name) + 1 :]
    name = _API_HOSTS.get(name, name)
    target = f"{name}:{port}" if port and port != "443" else name
    if name.startswith("["):  # an IPv6 address: nothing to look up, and curl must not read [] as a glob
        return f"curl -g -sv --max-time 10 https://{target}/v2/ -o /dev/null"
    curl = f"curl -sv --max-time 10 https://{target}/v2/ -o /dev/null"
    if _is_address(name):
        return curl  # an address: nothing to look up
    return f"nslookup {name} && {curl}"


#: Names of a registry whose API answers at another host: Docker Hub's ``docker.io`` is an alias
#: in image names, its registry API is ``registry-1.docker.io``.
_API_HOSTS = {"docker.io": "registry-1.docker.io"}


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def render_text(diagnosis: Diagnosis) -> str:
    """Readable multi-line diagnosis for a terminal."""
    labels = _LABELS.get(diagnosis.lang, _LABELS["en"])
    lines: list[str] = []
    if diagnosis.cause == "unrelated":
        lines.append(labels["silent"])
    else:
        lines.append(
            f"{labels['cause']}: {diagnosis.title} [{diagnosis.cause}]  ({labels['confidence']} {diagnosis.confidence:.0%})"
        )
        if diagnosis.summary:
            lines.append(diagnosis.summary)
    for note in diagnosis.notes:
        lines.append(f"! {note}")
    lang = diagnosis.lang
    if diagnosis.ambiguous and diagnosis.candidates:
        lines.append("")
        lines.append(f"{labels['ambiguous']}:")
        for candidate in diagnosis.candidates:
            lines.append(f"  - {candidate.title} [{candidate.id}] ({candidate.confidence:.0%}): {candidate.tell}")
        if diagnosis.decisive_check:
            lines.append(f"{labels['decisive']}: {diagnosis.decisive_check.text}")
            if diagnosis.decisive_check.command:
                lines.append(f"  $ {diagnosis.decisive_check.command}")
    if diagnosis.evidence:
        lines.append("")
        lines.append(f"{labels['evidence']}:")
        for item in diagnosis.evidence:
            detail, vantage = localize_detail(item.detail, lang), localize_vantage(item.vantage, lang)
            lines.append(f"  - [{item.status}] {detail}  ({vantage})")
    if diagnosis.fix:
        lines.append("")
        lines.append(f"{labels['fix']}:")
        for number, step in enumerate(diagnosis.fix, 1):
            lines.append(f"  {number}. {step.text}")
            if step.command:
                lines.append(f"     $ {step.command}")
    check = self_check_command(diagnosis)
    if check and diagnosis.cause != "unrelated":
        lines.append("")
        lines.append(f"{labels['self_check']}:")
        lines.append(f"  $ {check}")
    others = [c for c in diagnosis.causes if c.id != diagnosis.cause][:3]
    if others and diagnosis.cause != "unrelated":
        lines.append("")
        lines.append(f"{labels['others']}: " + ", ".join(f"{c.id} ({c.confidence:.0%})" for c in others))
    if diagnosis.similar_cases and diagnosis.cause != "unrelated":
        lines.append("")
        lines.append(f"{labels['similar']}:")
        for case in diagnosis.similar_cases:
            lines.append(f"  - {similar_line(case, lang)}")
    if diagnosis.docs:
        lines.append("")
        lines.append(f"{labels['docs']}: " + " ".join(diagnosis.docs))
    return "\n".join(lines)


def similar_line(case: SimilarCase, lang: str) -> str:
    """'<title> — fix: <fix> (<url>)', or the cause the thread found when it names no fix (the
    library's fixes are sentences of their own: "Upgrade …", so no "fixed by" before them)."""
    labels = _LABELS.get(lang, _LABELS["en"])
    if case.fix:
        return f"{case.title} — {labels['fixed_by']} {case.fix} ({case.url})"
    return f"{case.title} — {labels['cause_was']} {case.evidence or case.cause} ({case.url})"


def fix_list(diagnosis: Diagnosis) -> list[str]:
    """Fix steps as plain strings ("what to do $ command"), the form every JSON output carries."""
    return [f"{step.text} $ {step.command}" if step.command else step.text for step in diagnosis.fix]


def fix_steps(diagnosis: Diagnosis) -> list[dict[str, Any]]:
    """Fix steps with their parts kept apart, for consumers that render them."""
    return [{"text": s.text, "command": s.command, "complete": s.complete} for s in diagnosis.fix]


def diagnosis_json(diagnosis: Diagnosis) -> dict[str, Any]:
    """The one-object JSON of ``acrcheck diagnose --json``."""
    return {
        "registry": diagnosis.facts.login_server or diagnosis.facts.registry_host,
        "cause": diagnosis.cause,
        "confidence": diagnosis.confidence,
        "reply": diagnosis.reply,
        "title": diagnosis.title,
        "summary": diagnosis.summary,
        "causes": [
            {
                "id": c.id,
                "confidence": c.confidence,
                "reasons": c.reasons,
                "supported_by": c.supported_by,
                "contradicted_by": c.contradicted_by,
            }
            for c in diagnosis.causes
        ],
        "facts": diagnosis.facts.to_dict(),
        "evidence": [e.to_dict() for e in diagnosis.evidence],
        "fix": fix_list(diagnosis),
        "fix_steps": fix_steps(diagnosis),
        "self_check": self_check_command(diagnosis),
        "docs": diagnosis.docs,
        "secret_redacted": diagnosis.secret_found,
        "lang": diagnosis.lang,
        "ambiguous": diagnosis.ambiguous,
        "answer_confidence": diagnosis.answer_confidence,
        "candidates": [
            {"id": c.id, "title": c.title, "confidence": c.confidence, "tells_apart": c.tell}
            for c in diagnosis.candidates
        ],
        "decisive_check": (
            {"text": diagnosis.decisive_check.text, "command": diagnosis.decisive_check.command}
            if diagnosis.decisive_check
            else None
        ),
        "similar_cases": [case.to_dict() for case in diagnosis.similar_cases],
    }


def diagnosis_jsonl(item_id: Any, diagnosis: Diagnosis) -> dict[str, Any]:
    """One line of ``acrcheck diagnose --jsonl`` (the contract the eval harness reads)."""
    return {
        "id": item_id,
        "cause": diagnosis.cause,
        "confidence": diagnosis.confidence,
        "reply": diagnosis.reply,
        "causes": [{"id": c.id, "confidence": c.confidence} for c in diagnosis.causes],
        "facts": diagnosis.facts.to_dict(),
        "fix": fix_list(diagnosis),
    }
