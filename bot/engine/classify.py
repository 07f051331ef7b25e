"""Rank causes for a paste, and render the fix of the top cause.

Scoring is deliberately simple and inspectable: each card's rules add their scores when
their conditions hold over the extracted facts and signals; ``unrelated`` competes with a
base score, so a paste with no registry evidence stays silent. Confidence is a softmax
over the scores. Live findings then re-rank (:mod:`bot.engine.rerank`) and live facts fill
the fix (:mod:`bot.engine.live_facts`). Everything a cause needs lives in its card; this module
has no cause-specific code.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from bot.engine.extract import Extraction
from bot.engine.hosts import intended_login_server
from bot.engine.knowledge import Card, Condition, KnowledgeBase, azure_only_command, default_knowledge, rules_saying
from bot.engine.learned import Consultation, Learned, default_learned
from bot.engine.live_facts import LiveFacts
from bot.engine.models import (
    VANTAGE_PASTE,
    Candidate,
    CauseScore,
    DecisiveCheck,
    Diagnosis,
    Evidence,
    Facts,
    FixStep,
    Status,
)

UNRELATED = "unrelated"
HEALTHY = "healthy"
#: Softmax temperature: higher spreads confidence across candidates.
TEMPERATURE = 1.6
#: A reply needs at least this much confidence in the top cause (passive mode default).
REPLY_CONFIDENCE = 0.40
#: Live check: a cause needs this score to beat "healthy".
HEALTHY_SCORE = 2.5
MAX_CAUSES = 5
#: An ``unrelated`` rule scoring this much (context: any) says "another tool's error" (npm, kubectl...).
ANOTHER_TOOL_SCORE = 4.0

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
    "host": re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[(?=[0-9a-fA-F.]{0,44}:)[0-9a-fA-F:.]{2,45}\])(?::\d{1,5})?"),
    "name": re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}"),
    "ip": re.compile(r"[0-9a-fA-F.:]{2,45}"),
    "proxy": re.compile(r"(?:https?://)?(?:[A-Za-z0-9._~-]{1,128}:\[REDACTED\]@)?[A-Za-z0-9.\[\]:-]{1,253}/?"),
    "region": re.compile(r"[a-z0-9]{2,30}"),
    "k8s": re.compile(r"[a-z0-9][a-z0-9.-]{0,252}"),
    "rg": re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,89}"),
    "pe": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}"),
    "id": re.compile(r"/subscriptions/[A-Za-z0-9][A-Za-z0-9/._-]{0,600}"),
    "list": re.compile(r"[A-Za-z0-9.:/*_-]+(?:, [A-Za-z0-9.:/*_-]+){0,63}"),
    "flag": re.compile(r"[A-Za-z0-9=_-]{1,64}"),
    "text": re.compile(r"[^$`;|&<>\\\n\r]{1,400}"),
    "repository": re.compile(r"[a-z0-9][a-z0-9._/-]{0,600}"),
    "tag": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"),
}
#: Values only ever shown in step text, never put into a command (they may hold shell characters).
_TEXT_ONLY = frozenset({"cert_issuer", "cert_validity", "redirect_location", "broken_chain"})
_VALUE_SHAPE = {
    "registry": "host",
    "repository": "repository",
    "tag": "tag",
    "login_server": "host",
    "host": "host",
    "host_port": "host",
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
    "pod": "k8s",
    # live facts (bot.engine.live_facts)
    "subscription": "name",
    "registry_id": "id",
    "location": "region",
    "public_network_access": "name",
    "default_action": "name",
    "bypass_options": "name",
    "ip_rules": "list",
    "data_regions": "list",
    "data_endpoints": "list",
    "failing_data_endpoints": "list",
    "storage_tags": "list",
    "failing_data_endpoint": "host",
    "data_region": "region",
    "zone_resource_group": "rg",
    "bot_ip": "ip",
    "record_fqdn": "host",
    "record_name": "host",
    "record_zone": "host",
    "record_ip": "ip",
    "record_actual": "ip",
    "record_pe": "pe",
    "pe_connection": "pe",
    "pe_name": "pe",
    "pe_status": "name",
    "pe_id": "id",
    "pe_subnet_id": "id",
    "pe_resource_group": "rg",
    "cert_host": "host",
    "privatelink_public": "host",
    "cert_issuer": "text",
    "cert_validity": "text",
    "redirect_location": "text",
    "broken_chain": "text",
    **dict.fromkeys(
        ("live_arm", "live_data_endpoints", "live_records", "data_endpoints_disabled", "public_access_disabled",
         "default_deny", "tasks_bypass_off", "trusted_services_off", "client_ip_not_allowed", "bot_is_client",
         "client_unknown"),
        "flag",
    ),
}  # fmt: skip


def _safe_value(key: str, value: str) -> bool:
    shape = _SAFE[_VALUE_SHAPE.get(key, "host")]
    return shape.fullmatch(value) is not None


def host_name(endpoint: str) -> str:
    """The host of ``host[:port]``, IPv6 literals kept whole (``[fd00::5]:5000`` -> ``[fd00::5]``)."""
    if endpoint.startswith("["):
        return endpoint.split("]", 1)[0] + "]"
    return endpoint.split(":", 1)[0]


#: Host kinds of an ACR name that cannot exist as written (a doubled or misspelt suffix).
_MISNAMED_ACR = frozenset({"lookalike", "malformed"})


def template_values(facts: Facts) -> dict[str, str]:
    """The user's own values that fix templates may use (only shell-safe shapes)."""
    values: dict[str, str] = {}
    host = host_name(facts.registry_host) if facts.registry_host else None
    literal = host is not None and host.startswith("[")  # an IPv6 address: no registry or login server name
    if facts.registry:
        values["registry"] = facts.registry
    elif host and not literal:
        values["registry"] = host
    if facts.login_server:
        values["login_server"] = facts.login_server
    elif host and not literal:
        values["login_server"] = host
    if host:
        values["host"] = facts.registry_host or host
        if not literal:
            values["host_name"] = host  # what a lookup takes: no port
    elif facts.login_server:
        values["host"] = facts.login_server
    if "host" in values:
        values["host_port"] = values["host"] if ":" in values["host"] else values["host"] + ":443"
    simple = {
        "client_ip": facts.client_ip,
        "target_ip": facts.target_ip,
        "dns_server": facts.dns_server.rsplit(":", 1)[0].strip("[]") if facts.dns_server else None,
        "proxy": facts.proxy,
        "region": facts.region,
        "privatelink_host": facts.privatelink_hosts[0] if facts.privatelink_hosts else None,
        "blob_host": facts.blob_hosts[0] if facts.blob_hosts else None,
        "node": facts.kubernetes.get("node"),
        "pod": facts.kubernetes.get("pod"),
        "namespace": facts.kubernetes.get("namespace"),
        "resource_group": facts.resource_group,
        "repository": facts.repository,
        "tag": facts.tag,
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
    intended = next((h.registry for h in facts.hosts if h.kind == "public_lookalike" and h.registry), None)
    if intended:  # the well-known registry a misspelt host stands for (ghrc.io -> ghcr.io)
        values["intended"] = intended
    typo = next((h for h in facts.hosts if h.host == host and h.kind in _MISNAMED_ACR and h.registry), None)
    if typo is not None and typo.registry and not facts.registry:  # myreg.azurecr.com: az acr takes "myreg"
        values["registry"] = typo.registry
        values["intended"] = intended_login_server(typo.registry, typo.cloud)
    if facts.target_ip and ":" in facts.target_ip:  # IPv6 needs brackets next to a port
        values["target"] = f"[{facts.target_ip}]:{values['target_port']}"
    return {k: v for k, v in values.items() if _safe_value(k, v)}


def _render(template: str, values: _Values) -> str:
    return template.format_map(values)  # C speed; a missing key goes through _Values.__missing__


def not_azure(ex: Extraction | None) -> bool:
    """The paste names the failing registry and it is not an Azure registry (Docker Hub, GHCR,
    a self-hosted one): ``az acr`` commands cannot help there."""
    if ex is None:
        return False
    kinds = ex.derived.get("registry_class", ())
    return "acr" not in kinds and bool({"public", "private"} & set(kinds))


def render_fix(
    card: Card,
    ex: Extraction | None,
    facts: Facts,
    lang: str,
    live: LiveFacts | None = None,
    *,
    known: dict[str, str] | None = None,
) -> list[FixStep]:
    """Fill a card's fix templates with live facts, else the user's values, else placeholders.

    Live values win over values read from the paste (ARM knows every replica region; the paste
    shows one). ``requires`` / ``unless`` / ``each`` on a step (see ``FixStepTemplate``) choose
    between a generic text-only step and the precise live one, and repeat a step per item.
    ``known``: the user's values when the caller has them already (computed once per paste).
    """
    known = template_values(facts) if known is None else known
    lists: dict[str, list[dict[str, str]]] = {}
    if live is not None:
        known = {**known, **{k: v for k, v in live.values.items() if _safe_value(k, v)}}
        lists = live.lists
    signals = set(facts.signals)
    steps: list[FixStep] = []
    templates = card.fix_elsewhere if card.fix_elsewhere and live is None and not_azure(ex) else card.fix
    if ex is not None and any(t.lead is not None for t in templates):  # the sub-case the paste shows first
        templates = sorted(templates, key=lambda t: t.lead is None or not holds(t.lead, ex, signals))
    for step in templates:
        if step.when is not None and (ex is None or not holds(step.when, ex, signals)):
            continue
        if any(name not in known for name in step.requires) or any(name in known for name in step.unless):
            continue
        items: list[dict[str, str]] = [{}]
        if step.each is not None:
            items = [{k: v for k, v in item.items() if _safe_value(k, v)} for item in lists.get(step.each, [])]
        for item in items:
            merged = {**known, **item}
            values = _Values(merged)
            text = _render(step.text.get(lang), values)
            command_values = _Values({k: v for k, v in merged.items() if k not in _TEXT_ONLY})
            command = _render(step.command, command_values) if step.command else None
            steps.append(FixStep(text=text, command=command, complete=not (values.missing or command_values.missing)))
    return steps


class _RuleTable:
    """Every card's rules, precompiled, with an index from signal to the rules that need it.

    Most rules need a signal the paste does not have; the index lets ``classify`` look only
    at the rules that can hold (plus those that need no signal), in the cards' own order.
    """

    __slots__ = ("another_tool", "by_signal", "cards", "quieted_by", "rules", "unconditional")

    def __init__(self, kb: KnowledgeBase) -> None:
        self.cards = [(card.id, card.base_score) for card in kb.cards.values()]
        self.rules: list[tuple[int, float, _Compiled, Any]] = []
        self.by_signal: dict[str, list[int]] = {}
        #: rule position -> the positions of the same card's rules that say its reason better
        #: (``quiet_with``): when one of those holds, its reason is left out
        self.quieted_by: dict[int, frozenset[int]] = {}
        unconditional: list[int] = []
        for card_position, card in enumerate(kb.cards.values()):
            first = len(self.rules)
            for offset, rule in enumerate(card.recognise):
                c = _compiled(rule.when)
                position = len(self.rules)
                if rule.quiet_with:
                    self.quieted_by[position] = frozenset(
                        first + j for name in rule.quiet_with for j in rules_saying(card.recognise, name, besides=offset)
                    )
                self.rules.append((card_position, rule.score, c, rule.reason))
                if c.signals:  # all of them are needed: any one of them is a sufficient key
                    self.by_signal.setdefault(min(c.signals), []).append(position)
                elif c.any_signals:
                    for name in c.any_signals:
                        self.by_signal.setdefault(name, []).append(position)
                else:
                    unconditional.append(position)
        self.unconditional = tuple(unconditional)
        #: the ``unrelated`` card's rules that name another tool's error whatever the context
        self.another_tool = tuple(
            position
            for position, (card_position, score, c, _) in enumerate(self.rules)
            if self.cards[card_position][0] == UNRELATED and score >= ANOTHER_TOOL_SCORE and not c.context
        )


def _rule_table(kb: KnowledgeBase) -> _RuleTable:
    """The rule table of a knowledge base, built once and cached on it (the hot loop of classify)."""
    table = getattr(kb, "_rule_table", None)
    if table is None:
        table = _RuleTable(kb)
        kb._rule_table = table  # type: ignore[attr-defined]
    return table


#: Stands for "the packaged learned layer" in ``classify(learned=...)``.
DEFAULT_LEARNED: Any = object()


def classify(
    ex: Extraction,
    *,
    lang: str = "en",
    kb: KnowledgeBase | None = None,
    learned: Learned | Any | None = DEFAULT_LEARNED,
    cite: bool = True,
) -> Diagnosis:
    """Rank every cause for an extraction and decide whether the bot should reply.

    ``learned=None`` scores with the cards' rules alone (the benchmark's baseline); by
    default the packaged learned layer adds what it learned from the case library.
    ``cite=False`` skips looking up similar solved cases (batch use that never shows them).
    """
    kb = kb or default_knowledge()
    if learned is DEFAULT_LEARNED:
        learned = default_learned()
    consulted: Consultation | None = None
    table = _rule_table(kb)
    signals = frozenset(ex.facts.signals)  # the context flip below changes no signal
    if learned is not None and not ex.registry_context and "error_marker" in signals:
        # No registry word or tool was recognised; real cases that read like this paste may still
        # all be registry failures (a phrasing no signal knows yet), and then it is one too --
        # unless the paste is plainly another tool's error (kubectl to its API server, npm, git...).
        consulted = learned.consult(ex)
        if learned.registry_like(
            consulted.votes, consulted.hits, mentions_registry="registry_mention" in signals
        ) and not _another_tools_error(table, ex, signals):
            ex = dataclasses.replace(ex, registry_context=True)
    candidates = set(table.unconditional)
    for name in signals:
        candidates.update(table.by_signal.get(name, ()))
    card_scores = [base for _, base in table.cards]
    card_reasons: list[list[str]] = [[] for _ in table.cards]
    known: dict[str, str] | None = None  # the user's values, computed once when a reason needs them
    values: _Values | None = None
    rules = table.rules
    held = [position for position in sorted(candidates) if _holds(rules[position][2], ex, signals)]
    quieted_by = table.quieted_by
    held_set = frozenset(held) if quieted_by else frozenset()
    for position in held:  # the cards' own order, so reasons keep theirs
        card_position, rule_score, _, reason = rules[position]
        card_scores[card_position] += rule_score
        if rule_score > 0:
            better = quieted_by.get(position)
            if better and better & held_set:  # a more precise rule of this card says it
                continue
            if values is None:
                known = template_values(ex.facts)
                values = _Values(known)
            card_reasons[card_position].append(_render(reason.get(lang), values))
    scores: dict[str, float] = {}
    reasons: dict[str, list[str]] = {}
    for (card_id, _), score, why in zip(table.cards, card_scores, card_reasons, strict=True):
        if score != 0:  # negative scores too: the library's vote is added before filtering
            scores[card_id] = score
            reasons[card_id] = why
    if learned is not None and (consulted is not None or not _rules_sure(scores, learned.sure_margin)):
        if consulted is None:
            consulted = learned.consult(ex)
        _blend(consulted.votes, consulted.shares, learned, kb, scores, reasons, lang)
    if learned is not None and learned.confusions:
        learned.add_runner_ups(scores)
    scores = {k: v for k, v in scores.items() if v > 0}
    scores.setdefault(UNRELATED, 0.01)
    known = template_values(ex.facts) if known is None else known  # once: the fix and the deciding check
    diagnosis = _build(kb, ex, ex.facts, scores, reasons, {}, {}, lang, text=ex.text, known=known)
    _weigh_ambiguity(diagnosis, kb, ex, lang, known, consulted.votes if consulted is not None else None)
    if learned is not None and cite and diagnosis.reply:
        causes = [c.id for c in diagnosis.candidates] or [diagnosis.cause]
        if consulted is not None:
            ranks, hits = consulted.ranks, consulted.hits
        else:  # the rules were sure: the layer was not consulted
            ranks, hits = learned.index.ranks(ex), []
        diagnosis.similar_cases = learned.similar(ranks, causes, ex.text, hits=hits)
    return diagnosis


def _another_tools_error(table: _RuleTable, ex: Extraction, signals: frozenset[str]) -> bool:
    """One of the ``unrelated`` card's strong rules holds: the paste is another tool's error."""
    rules = table.rules
    return any(_holds(rules[position][2], ex, signals) for position in table.another_tool)


def _rules_sure(scores: dict[str, float], margin: float) -> bool:
    """The rules lead by ``margin`` or more: the library's vote could not change the answer."""
    ranked = sorted((max(v, 0.0) for v in scores.values()), reverse=True)
    return len(ranked) > 0 and ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0) >= margin


_LEARNED_REASON = {
    "en": "Real cases of “{title}” in the case library read like this paste ({pct} of the closest ones).",
    "ja": "事例ライブラリにある「{title}」の実例がこの貼り付けとよく似ています (最も近い事例の {pct})。",
}


def _blend(
    votes: dict[str, float],
    neighbours: dict[str, float],
    learned: Learned,
    kb: KnowledgeBase,
    scores: dict[str, float],
    reasons: dict[str, list[str]],
    lang: str,
) -> None:
    """Add the library's vote to the rules' scores: rules explain, real cases generalise.

    The reason shown is the nearest cases' share (``neighbours``), which a user can check
    against the cited cases; the vote also holds the linear model's estimate.
    """
    for cause, share in votes.items():
        if cause not in kb.cards:
            continue
        weight = learned.unrelated_blend if cause == UNRELATED else learned.blend
        scores[cause] = scores.get(cause, 0.0) + weight * share
        closest = neighbours.get(cause, 0.0)
        if cause != UNRELATED and closest >= 0.3:
            text = _LEARNED_REASON["ja" if lang == "ja" else "en"]  # names the cause: one line per cause
            title = kb.card(cause).title.get(lang)
            reasons.setdefault(cause, []).append(text.format(title=title, pct=f"{closest:.0%}"))


#: A registry failure is ambiguous when the top cause is below this confidence, or the next
#: cause has at least ``AMBIGUITY_RATIO`` of its confidence; candidates need ``CANDIDATE_RATIO``.
AMBIGUOUS_BELOW = 0.6
AMBIGUITY_RATIO = 0.6
CANDIDATE_RATIO = 0.25
MAX_CANDIDATES = 3
#: ... and also when the runner-up holds this share of the learned vote (real cases like it were solved both ways).
SPLIT_VOTE = 0.2
#: ... provided the rules leave the runner-up in the race (at this share of the top cause's confidence).
SPLIT_RATIO = 0.15
#: ... and when the nearest real cases are scattered (the top cause holds under half of their vote)
#: while the top cause's confidence is under this.
SCATTERED_BELOW = 0.75


def _weigh_ambiguity(
    diagnosis: Diagnosis,
    kb: KnowledgeBase,
    ex: Extraction,
    lang: str,
    known: dict[str, str] | None = None,
    votes: dict[str, float] | None = None,
) -> None:
    """Name the open candidates when the text shows a registry failure but cannot decide.

    A pasted registry failure is always answered (never "unrelated" because no rule was
    sure): the reply then lists the two or three candidates, what tells each apart, and the
    one check that decides, taken from the leading candidate's card. The text cannot decide
    when the scores are close, or when the real cases nearest to it were solved both ways:
    the runner-up holds ``SPLIT_VOTE`` of the neighbours' vote (``votes``) and the rules left it
    within ``SPLIT_RATIO`` of the top cause, or no cause holds half of the vote while the top
    cause's confidence is under ``SCATTERED_BELOW``.
    """
    top = diagnosis.cause
    if top in (UNRELATED, HEALTHY) or top not in kb.cards or not ex.registry_context:
        return
    others = [c for c in diagnosis.causes if c.id not in (top, UNRELATED, HEALTHY) and c.id in kb.cards]
    candidates = [c for c in others if c.confidence >= CANDIDATE_RATIO * diagnosis.confidence][: MAX_CANDIDATES - 1]
    split = (
        votes is not None
        and bool(others)
        and votes.get(others[0].id, 0.0) >= SPLIT_VOTE
        and others[0].confidence >= SPLIT_RATIO * diagnosis.confidence
    )
    # The nearest cases were solved many ways (none holds half of them) and the rules are not sure either.
    scattered = (
        votes is not None and bool(votes) and votes.get(top, 0.0) < 0.5 and diagnosis.confidence < SCATTERED_BELOW
    )
    if scattered:
        candidates = others[: MAX_CANDIDATES - 1]
    elif split and others[0] not in candidates:
        candidates = [others[0], *candidates][: MAX_CANDIDATES - 1]
    if candidates and (
        split
        or scattered
        or diagnosis.confidence < AMBIGUOUS_BELOW
        or candidates[0].confidence >= AMBIGUITY_RATIO * diagnosis.confidence
    ):
        diagnosis.ambiguous = True
        elsewhere = not_azure(ex)
        for cause in [diagnosis.causes[0], *candidates]:
            card = kb.card(cause.id)
            told = (card.tell_elsewhere or card.summary_elsewhere) if elsewhere else None
            told = told or card.tell or card.summary
            tell = told.get(lang)
            diagnosis.candidates.append(Candidate(cause.id, card.title.get(lang), cause.confidence, tell))
        top_card = kb.card(top)
        decider = (top_card.decide_elsewhere or top_card.decide) if elsewhere else top_card.decide
        if decider is not None:
            values = _Values(template_values(ex.facts) if known is None else known)
            command = _render(decider.command, values) if decider.command else None
            if command and elsewhere and azure_only_command(command):
                command = None  # Azure's CLI and acrcheck's live checks cannot look at another registry
            diagnosis.decisive_check = DecisiveCheck(_render(decider.text.get(lang), values), command)
    # The text shows a registry failure (its top cause beats "unrelated"): answer it.
    diagnosis.reply = True


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
    live_facts: LiveFacts | None = None,
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
        elsewhere = not_azure(ex)
        title = card.title_elsewhere if card.title_elsewhere and elsewhere else card.title
        diagnosis.title = title.get(lang)
        summary = card.summary_elsewhere if card.summary_elsewhere and elsewhere else card.summary
        diagnosis.summary = summary.get(lang)
        diagnosis.fix = render_fix(card, ex, facts, lang, live_facts, known=known)
        # The cards' documents are Azure's: noise for a Docker Hub, GHCR or self-hosted failure.
        diagnosis.docs = [] if elsewhere else list(card.docs)
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
    shown: set[str] = set()
    for position, cause in enumerate(diagnosis.causes[:3]):
        if cause.id == UNRELATED and position:  # "No error in the message" under a registry cause confuses
            continue
        for reason in cause.reasons:
            if reason in shown:  # two causes' rules may say the same thing: a reply never repeats a line
                continue
            shown.add(reason)
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


def rerank(diagnosis: Diagnosis | None, evidence: list[Evidence], **kwargs: Any) -> Diagnosis:
    """Re-rank with live evidence: see :mod:`bot.engine.rerank` (kept importable from here)."""
    from bot.engine.rerank import rerank as _rerank

    return _rerank(diagnosis, evidence, **kwargs)
