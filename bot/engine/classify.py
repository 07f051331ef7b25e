"""Rank causes for a paste (and re-rank them with live evidence).

Scoring is deliberately simple and inspectable: each card's rules add their scores when
their conditions hold over the extracted facts and signals; ``unrelated`` competes with a
base score, so a paste with no registry evidence stays silent. Confidence is a softmax
over the scores. Live findings then add or subtract the weights a card lists under
``live``. Everything a cause needs lives in its card; this module has no cause-specific code.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from bot.engine.extract import Extraction
from bot.engine.knowledge import Card, Condition, KnowledgeBase, default_knowledge
from bot.engine.models import VANTAGE_PASTE, CauseScore, Diagnosis, Evidence, Facts, FixStep, Status

UNRELATED = "unrelated"
HEALTHY = "healthy"
#: Softmax temperature: higher spreads confidence across candidates.
TEMPERATURE = 1.6
#: A reply needs at least this much confidence in the top cause (passive mode default).
REPLY_CONFIDENCE = 0.40
#: Live check: a cause needs this score to beat "healthy".
HEALTHY_SCORE = 2.5
MAX_CAUSES = 5

_PRESENCE_FIELDS = {
    "registry",
    "login_server",
    "client_ip",
    "target_ip",
    "dns_server",
    "proxy",
    "region",
    "data_endpoints",
    "privatelink_hosts",
    "blob_hosts",
    "correlation_ids",
    "tool",
    "registry_host",
    "kubernetes",
}


def _present(facts: Facts, name: str) -> bool:
    if name not in _PRESENCE_FIELDS:
        return False
    return bool(getattr(facts, name))


class _Compiled:
    """A card condition prepared for fast evaluation (sets instead of lists)."""

    __slots__ = ("any_signals", "context", "facts", "not_signals", "signals")

    def __init__(self, cond: Condition) -> None:
        self.context = cond.context == "registry"
        self.signals = frozenset(cond.signals)
        self.any_signals = frozenset(cond.any_signals)
        self.not_signals = frozenset(cond.not_signals)
        self.facts = tuple((k, tuple(v), frozenset(str(a) for a in v)) for k, v in cond.facts.items())


#: id(condition) -> (the condition, its compiled form). The condition is kept with its entry, so
#: its id cannot be reused by another condition (of another knowledge base) while the entry lives.
_COMPILED: dict[int, tuple[Condition, _Compiled]] = {}


def _compiled(cond: Condition) -> _Compiled:
    entry = _COMPILED.get(id(cond))
    if entry is None or entry[0] is not cond:
        entry = _COMPILED[id(cond)] = (cond, _Compiled(cond))
    return entry[1]


def holds(cond: Condition, ex: Extraction, signals: set[str] | frozenset[str]) -> bool:
    """Whether a card condition holds for an extraction."""
    return _holds(_compiled(cond), ex, signals)


def _holds(c: _Compiled, ex: Extraction, signals: set[str] | frozenset[str]) -> bool:
    if c.context and not ex.registry_context:
        return False
    if c.signals and not c.signals <= signals:
        return False
    if c.any_signals and c.any_signals.isdisjoint(signals):
        return False
    if c.not_signals and not c.not_signals.isdisjoint(signals):
        return False
    for key, names, allowed in c.facts:
        if key == "has":
            if not all(_present(ex.facts, name) for name in names):
                return False
        elif key == "lacks":
            if any(_present(ex.facts, name) for name in names):
                return False
        elif allowed.isdisjoint(ex.derived.get(key, ())):
            return False
    return True


def _softmax(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    top = max(scores.values())
    weights = {k: math.exp((v - top) / TEMPERATURE) for k, v in scores.items()}
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()}


class _Values(dict[str, str]):
    """Template values; a missing one becomes a visible placeholder and marks the step incomplete."""

    def __init__(self, known: dict[str, str]) -> None:
        super().__init__(known)
        self.missing = False

    def __missing__(self, key: str) -> str:
        self.missing = True
        return f"<{key.replace('_', '-')}>"


#: Shapes a value must have before it goes into a command the user will paste into a shell.
#: Anything else (``$(...)``, quotes, spaces, backticks) falls back to the <placeholder>.
_SAFE = {
    "host": re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::\d{1,5})?"),
    "name": re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}"),
    "ip": re.compile(r"[0-9a-fA-F.:]{2,45}"),
    "proxy": re.compile(r"(?:https?://)?(?:[A-Za-z0-9._~-]{1,128}:\[REDACTED\]@)?[A-Za-z0-9.\[\]:-]{1,253}/?"),
    "region": re.compile(r"[a-z0-9]{2,30}"),
    "k8s": re.compile(r"[a-z0-9][a-z0-9.-]{0,252}"),
}
_VALUE_SHAPE = {
    "registry": "host",
    "login_server": "host",
    "host": "host",
    "data_endpoint": "host",
    "data_host": "host",
    "privatelink_host": "host",
    "blob_host": "host",
    "client_ip": "ip",
    "target_ip": "ip",
    "dns_server": "ip",
    "target": "host",
    "target_port": "name",
    "proxy": "proxy",
    "region": "region",
    "resource_group": "host",
    "node": "k8s",
    "namespace": "k8s",
}


def _safe_value(key: str, value: str) -> bool:
    shape = _SAFE[_VALUE_SHAPE.get(key, "host")]
    return shape.fullmatch(value) is not None


def template_values(facts: Facts) -> dict[str, str]:
    """The user's own values that fix templates may use (only shell-safe shapes)."""
    values: dict[str, str] = {}
    host = facts.registry_host.split(":")[0] if facts.registry_host else None
    if facts.registry:
        values["registry"] = facts.registry
    elif host:
        values["registry"] = host
    if facts.login_server:
        values["login_server"] = facts.login_server
    elif host:
        values["login_server"] = host
    if host:
        values["host"] = facts.registry_host or host
    elif facts.login_server:
        values["host"] = facts.login_server
    simple = {
        "client_ip": facts.client_ip,
        "target_ip": facts.target_ip,
        "dns_server": facts.dns_server.rsplit(":", 1)[0].strip("[]") if facts.dns_server else None,
        "proxy": facts.proxy,
        "region": facts.region,
        "privatelink_host": facts.privatelink_hosts[0] if facts.privatelink_hosts else None,
        "blob_host": facts.blob_hosts[0] if facts.blob_hosts else None,
        "node": facts.kubernetes.get("node"),
        "namespace": facts.kubernetes.get("namespace"),
        "resource_group": facts.resource_group,
    }
    values.update({k: v for k, v in simple.items() if v})
    if facts.data_endpoints:
        values["data_endpoint"] = facts.data_endpoints[0]
    elif facts.registry and facts.region:
        values["data_endpoint"] = f"{facts.registry}.{facts.region}.data.{(facts.login_server or '.azurecr.io').split('.', 1)[1]}"
    if facts.target_ip:
        port = facts.ports[0] if facts.ports else 443
        values["target"] = f"{facts.target_ip}:{port}"
        values["target_port"] = str(port)
    data_host = next(iter(facts.data_endpoints + facts.blob_hosts), None) or next(
        (h.host for h in facts.hosts if h.kind == "data_cdn"), None
    )
    if data_host:
        values["data_host"] = data_host
    if facts.target_ip and ":" in facts.target_ip:  # IPv6 needs brackets next to a port
        values["target"] = f"[{facts.target_ip}]:{values['target_port']}"
    return {k: v for k, v in values.items() if _safe_value(k, v)}


def _render(template: str, values: _Values) -> str:
    return template.format_map(values)  # C speed; a missing key goes through _Values.__missing__


def render_fix(
    card: Card, ex: Extraction | None, facts: Facts, lang: str, *, known: dict[str, str] | None = None
) -> list[FixStep]:
    """Fill a card's fix templates with the user's values (generic placeholders otherwise)."""
    known = template_values(facts) if known is None else known
    signals = set(facts.signals)
    steps: list[FixStep] = []
    for step in card.fix:
        if step.when is not None and (ex is None or not holds(step.when, ex, signals)):
            continue
        values = _Values(known)
        text = _render(step.text.get(lang), values)
        command = _render(step.command, values) if step.command else None
        steps.append(FixStep(text=text, command=command, complete=not values.missing))
    return steps


class _RuleTable:
    """Every card's rules, precompiled, with an index from signal to the rules that need it.

    Most rules need a signal the paste does not have; the index lets ``classify`` look only
    at the rules that can hold (plus those that need no signal), in the cards' own order.
    """

    __slots__ = ("by_signal", "cards", "rules", "unconditional")

    def __init__(self, kb: KnowledgeBase) -> None:
        self.cards = [(card.id, card.base_score) for card in kb.cards.values()]
        self.rules: list[tuple[int, float, _Compiled, Any]] = []
        self.by_signal: dict[str, list[int]] = {}
        unconditional: list[int] = []
        for card_position, card in enumerate(kb.cards.values()):
            for rule in card.recognise:
                c = _compiled(rule.when)
                position = len(self.rules)
                self.rules.append((card_position, rule.score, c, rule.reason))
                if c.signals:  # all of them are needed: any one of them is a sufficient key
                    self.by_signal.setdefault(min(c.signals), []).append(position)
                elif c.any_signals:
                    for name in c.any_signals:
                        self.by_signal.setdefault(name, []).append(position)
                else:
                    unconditional.append(position)
        self.unconditional = tuple(unconditional)


def _rule_table(kb: KnowledgeBase) -> _RuleTable:
    """The rule table of a knowledge base, built once and cached on it (the hot loop of classify)."""
    table = getattr(kb, "_rule_table", None)
    if table is None:
        table = _RuleTable(kb)
        kb._rule_table = table  # type: ignore[attr-defined]
    return table


def classify(ex: Extraction, *, lang: str = "en", kb: KnowledgeBase | None = None) -> Diagnosis:
    """Rank every cause for an extraction and decide whether the bot should reply."""
    kb = kb or default_knowledge()
    signals = frozenset(ex.facts.signals)
    table = _rule_table(kb)
    candidates = set(table.unconditional)
    for name in signals:
        candidates.update(table.by_signal.get(name, ()))
    card_scores = [base for _, base in table.cards]
    card_reasons: list[list[str]] = [[] for _ in table.cards]
    known: dict[str, str] | None = None  # the user's values, computed once when a reason needs them
    values: _Values | None = None
    rules = table.rules
    for position in sorted(candidates):  # the cards' own order, so reasons keep theirs
        card_position, rule_score, c, reason = rules[position]
        if not _holds(c, ex, signals):
            continue
        card_scores[card_position] += rule_score
        if rule_score > 0:
            if values is None:
                known = template_values(ex.facts)
                values = _Values(known)
            card_reasons[card_position].append(_render(reason.get(lang), values))
    scores: dict[str, float] = {}
    reasons: dict[str, list[str]] = {}
    for (card_id, _), score, why in zip(table.cards, card_scores, card_reasons, strict=True):
        if score > 0:
            scores[card_id] = score
            reasons[card_id] = why
    scores.setdefault(UNRELATED, 0.01)
    return _build(kb, ex, ex.facts, scores, reasons, {}, {}, lang, text=ex.text, known=known)


def _build(
    kb: KnowledgeBase,
    ex: Extraction | None,
    facts: Facts,
    scores: dict[str, float],
    reasons: dict[str, list[str]],
    supported: dict[str, list[str]],
    contradicted: dict[str, list[str]],
    lang: str,
    *,
    text: str = "",
    evidence: list[Evidence] | None = None,
    live: bool = False,
    known: dict[str, str] | None = None,
) -> Diagnosis:
    confidence = _softmax(scores)
    ranked = sorted(scores, key=lambda k: (-scores[k], k))
    causes = [
        CauseScore(
            id=cid,
            confidence=round(confidence[cid], 3),
            score=round(scores[cid], 2),
            reasons=reasons.get(cid, []),
            supported_by=supported.get(cid, []),
            contradicted_by=contradicted.get(cid, []),
        )
        for cid in ranked[:MAX_CAUSES]
    ]
    top = ranked[0]
    top_conf = confidence[top]
    registry_context = ex.registry_context if ex is not None else True
    reply = top not in (UNRELATED, HEALTHY) and registry_context and top_conf >= REPLY_CONFIDENCE
    notes: list[str] = []
    if facts.secrets:
        notes.append(
            "A secret was found in the paste and redacted; rotate it."
            if lang != "ja"
            else "貼り付けに秘密情報が含まれていたため伏せました。すぐにローテーションしてください。"
        )
    diagnosis = Diagnosis(
        cause=top,
        confidence=round(top_conf, 3),
        reply=reply,
        causes=causes,
        facts=facts,
        lang=lang,
        redacted_text=text,
        notes=notes,
        evidence=list(evidence or []),
    )
    if top in kb.cards:
        card = kb.card(top)
        diagnosis.title = card.title.get(lang)
        diagnosis.summary = card.summary.get(lang)
        diagnosis.fix = render_fix(card, ex, facts, lang, known=known)
        diagnosis.docs = list(card.docs)
    elif top == HEALTHY:
        diagnosis.title = "No problem found" if lang != "ja" else "問題は見つかりませんでした"
        diagnosis.summary = (
            "Every check passed from the bot's network."
            if lang != "ja"
            else "ボットのネットワークからのチェックはすべて成功しました。"
        )
    if not live and ex is not None:
        diagnosis.evidence = text_evidence(diagnosis)
    return diagnosis


def text_evidence(diagnosis: Diagnosis) -> list[Evidence]:
    """The reasons behind the top causes, as evidence observed in the user's paste."""
    out: list[Evidence] = []
    target = diagnosis.facts.registry_host or diagnosis.facts.login_server or "paste"
    for cause in diagnosis.causes[:3]:
        for reason in cause.reasons:
            out.append(
                Evidence(
                    check="text",
                    target=target,
                    vantage=VANTAGE_PASTE,
                    status=Status.WARN,
                    detail=reason,
                    data={"cause": cause.id},
                )
            )
    return out


def _findings(evidence: Iterable[Evidence]) -> dict[str, list[Evidence]]:
    found: dict[str, list[Evidence]] = {}
    for item in evidence:
        for name in item.findings:
            found.setdefault(name, []).append(item)
    return found


def rerank(
    diagnosis: Diagnosis | None,
    evidence: list[Evidence],
    *,
    registry: str,
    lang: str = "en",
    kb: KnowledgeBase | None = None,
    extraction: Extraction | None = None,
) -> Diagnosis:
    """Combine text scores (if any) with live findings, and say what supports or contradicts each cause."""
    kb = kb or default_knowledge()
    findings = _findings(evidence)
    scores: dict[str, float] = {}
    reasons: dict[str, list[str]] = {}
    if diagnosis is not None:
        for cause in diagnosis.causes:
            if cause.id != UNRELATED:
                scores[cause.id] = cause.score
                reasons[cause.id] = list(cause.reasons)
        facts = diagnosis.facts
    else:
        facts = Facts(registry=registry.split(".")[0], login_server=registry if "." in registry else None)
        facts.registry_host = facts.login_server
    supported: dict[str, list[str]] = {}
    contradicted: dict[str, list[str]] = {}
    for card in kb.cards.values():
        if card.id == UNRELATED:
            continue
        delta = 0.0
        hypothesis = card.id in scores
        for name, weight in card.live.confirm.items():
            items = findings.get(name)
            if not items:
                continue
            # A healthy observation (dns.ok, probe.reachable) can support a hypothesis the text
            # raised, but never creates one: only problems found live can.
            if not hypothesis and all(e.status == Status.OK for e in items):
                continue
            delta += weight
            supported.setdefault(card.id, []).extend(_describe(items))
        for name, weight in card.live.rule_out.items():
            if name in findings:
                delta -= weight
                contradicted.setdefault(card.id, []).extend(_describe(findings[name]))
        if delta or card.id in scores:
            scores[card.id] = scores.get(card.id, 0.0) + delta
    scores = {k: v for k, v in scores.items() if v > 0}
    # Healthy only while everything a client touches (DNS, endpoints) passed; control-plane
    # failures (ARM, logs) are shown as evidence but do not make a reachable registry unhealthy.
    failed = [e for e in evidence if e.status == Status.FAIL and e.check in ("dns", "probe", "tls")]
    if not failed:
        scores[HEALTHY] = HEALTHY_SCORE if diagnosis is None else 0.5
    elif not scores:
        # Something failed that no card explains: never call that healthy. Say the checks failed
        # from where they ran and let the evidence speak (the bot's own network is then the client).
        scores["client-firewall"] = 0.5
        reasons.setdefault("client-firewall", []).append(
            f"{len(failed)} live check(s) failed from {failed[0].vantage} and no more specific cause matched."
        )
    _fill_live_facts(facts, evidence)
    combined = (diagnosis.evidence if diagnosis is not None else []) + list(evidence)
    return _build(
        kb,
        extraction,
        facts,
        scores,
        reasons,
        supported,
        contradicted,
        lang,
        text=diagnosis.redacted_text if diagnosis else "",
        evidence=combined,
        live=True,
    )


def _describe(items: list[Evidence]) -> list[str]:
    return [f"{e.check} {e.target}: {e.detail} ({e.vantage})" for e in items]


def _fill_live_facts(facts: Facts, evidence: list[Evidence]) -> None:
    """Let live data fill values the fix templates need (the client IP ACR saw, regions)."""
    for item in evidence:  # the data endpoint that failed is the one the fix must name
        if {"probe.data_endpoint_blocked", "dns.data_endpoint_missing"} & set(item.findings):
            facts.data_endpoints = [item.target, *[h for h in facts.data_endpoints if h != item.target]]
            facts.region = facts.region or item.target.split(".")[1]
            break
    for item in evidence:
        data: dict[str, Any] = item.data or {}
        if not facts.client_ip and isinstance(data.get("client_ip"), str):
            facts.client_ip = data["client_ip"]
        if not facts.region and isinstance(data.get("region"), str):
            facts.region = data["region"]
        if not facts.data_endpoints and isinstance(data.get("data_endpoints"), list):
            facts.data_endpoints = [str(x) for x in data["data_endpoints"]]
        resource_id = data.get("resource_id")
        if not facts.resource_group and isinstance(resource_id, str) and "/resourceGroups/" in resource_id:
            facts.resource_group = resource_id.split("/resourceGroups/", 1)[1].split("/", 1)[0]
        if not facts.region and isinstance(data.get("location"), str) and data["location"]:
            facts.region = data["location"]
        if not facts.proxy and isinstance(data.get("proxy"), str) and data["proxy"]:
            facts.proxy = data["proxy"]
        if item.check == "probe" and ".data." in item.target and item.target not in facts.data_endpoints:
            facts.data_endpoints.append(item.target)
        if not facts.region and ".data." in item.target:
            facts.region = item.target.split(".")[1]
