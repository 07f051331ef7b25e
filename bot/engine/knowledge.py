"""Load and validate the knowledge base: one YAML card per cause, plus the signal vocabulary.

A *signal* (``knowledge/signals.yaml``) names an error phenomenon — "DNS lookup timed
out", "x509 unknown authority" — by the phrases tools print for it. A *card*
(``knowledge/<cause-id>.yaml``) recognises its cause with rules over signals and extracted
facts, lists the live findings that confirm or rule it out, and carries fix templates and
docs in English and Japanese. Adding a cause or a phrasing is therefore a YAML edit.
Everything is validated at load; a bad card fails naming the file and the field.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

#: Keys a rule may test in ``facts:``; each maps to a derived fact of the paste.
FACT_KEYS = {
    "registry_class",  # acr | public | private | none
    "target_ip_scope",  # private | public | loopback
    "dns_server_scope",
    "status",  # HTTP status codes (ints)
    "tool",
    "has",  # fact names that must be present
    "lacks",  # fact names that must be absent
    "host_kinds",  # login_server | data_endpoint | privatelink | blob | data_cdn | malformed | lookalike | ...
    "lookup_kinds",  # kinds of the host a DNS lookup failed for (+ "single_label")
    "checkhealth",  # check-health error codes
    "canipull",  # canipull outcomes: dns_failed | identity_failed | pull_denied | ok
}


#: Findings that live checks emit (``bot.checks.run``); ``user.<finding>`` is the same seen from the user's machine.
FINDINGS = frozenset(
    [
        "dns.ok",
        "dns.nxdomain",
        "dns.servfail",
        "dns.noanswer",
        "dns.timeout",
        "dns.privatelink_chain",
        "dns.private_answer",
        "dns.public_answer",
        "dns.privatelink_public_answer",
        "dns.data_endpoint_missing",
        "probe.reachable",
        "probe.denied",
        "probe.forbidden_other",
        "probe.anonymous",
        "probe.server_error",
        "probe.timeout",
        "probe.refused",
        "probe.reset",
        "probe.tls_untrusted",
        "probe.tls_intercepted",
        "probe.tls_name_mismatch",
        "probe.data_endpoint_blocked",
        "proxy.eof",
        "proxy.forbidden",
        "proxy.auth_required",
        "proxy.unreachable",
        "proxy.error",
        "proxy.ok",
        "arm.found",
        "arm.not_found",
        "arm.forbidden",
        "arm.throttled",
        "arm.error",
        "arm.no_credential",
        "arm.public_access_disabled",
        "arm.default_deny",
        "arm.ip_not_allowed",
        "arm.ip_allowed",
        "arm.tasks_bypass_off",
        "arm.trusted_services_off",
        "arm.pe_pending",
        "arm.pe_rejected",
        "arm.pe_disconnected",
        "arm.pe_approved",
        "arm.data_endpoint_enabled",
        "arm.data_endpoint_disabled",
        "arm.not_premium",
        "arm.provisioning_failed",
        "logs.failed_logins",
        "logs.no_events",
        "logs.skipped",
    ]
)


class LocalText(BaseModel):
    """A string in English and Japanese."""

    model_config = ConfigDict(extra="forbid")
    en: str
    ja: str

    def get(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


class Condition(BaseModel):
    """When a rule applies. All listed parts must hold."""

    model_config = ConfigDict(extra="forbid")
    signals: list[str] = Field(default_factory=list)
    any_signals: list[str] = Field(default_factory=list)
    not_signals: list[str] = Field(default_factory=list)
    facts: dict[str, Any] = Field(default_factory=dict)
    context: Literal["registry", "any"] = "registry"

    @field_validator("facts")
    @classmethod
    def _known_fact_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - FACT_KEYS
        if unknown:
            raise ValueError(f"unknown fact key(s) {sorted(unknown)}; known: {sorted(FACT_KEYS)}")
        for key, allowed in value.items():
            if not isinstance(allowed, list):
                raise ValueError(f"facts.{key} must be a list")
        return value


class Rule(BaseModel):
    """A scored reason to suspect a cause."""

    model_config = ConfigDict(extra="forbid")
    when: Condition
    score: float = Field(ge=-20, le=20)
    reason: LocalText


class LiveRules(BaseModel):
    """Live findings (from ``bot.checks.run``) that confirm or rule out the cause, with weights."""

    model_config = ConfigDict(extra="forbid")
    confirm: dict[str, float] = Field(default_factory=dict)
    rule_out: dict[str, float] = Field(default_factory=dict)
    checks: list[str] = Field(default_factory=list)  # which live checks decide it: dns, probe, arm, logs

    @field_validator("confirm", "rule_out")
    @classmethod
    def _known_findings(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            if name.removeprefix("user.") not in FINDINGS:
                raise ValueError(f"unknown live finding '{name}'")
        return value

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, value: list[str]) -> list[str]:
        unknown = set(value) - {"dns", "probe", "arm", "logs"}
        if unknown:
            raise ValueError(f"unknown check(s) {sorted(unknown)}")
        return value


class FixStepTemplate(BaseModel):
    """A fix step; ``{registry}``-style placeholders are filled with extracted values."""

    model_config = ConfigDict(extra="forbid")
    text: LocalText
    command: str | None = None
    when: Condition | None = None  # show only when it applies


class Card(BaseModel):
    """One cause of the taxonomy."""

    model_config = ConfigDict(extra="forbid")
    id: str
    title: LocalText
    summary: LocalText
    base_score: float = 0.0
    recognise: list[Rule] = Field(default_factory=list)
    live: LiveRules = Field(default_factory=LiveRules)
    fix: list[FixStepTemplate] = Field(default_factory=list)
    docs: list[str] = Field(default_factory=list)
    symptoms: list[str] = Field(default_factory=list)  # which symptoms of the guide this card covers

    @field_validator("docs")
    @classmethod
    def _https_docs(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith("https://"):
                raise ValueError(f"doc link must be https: {url}")
        return value


class Signal(BaseModel):
    """An error phenomenon recognised by the phrases that print it."""

    model_config = ConfigDict(extra="forbid")
    id: str
    any: list[str] = Field(min_length=1)
    all: list[str] = Field(default_factory=list)
    pattern: str | None = None
    tool: str | None = None  # this signal also names the tool that printed the text
    registry_context: bool = False  # this phenomenon only happens around container registries
    description: str = ""

    @model_validator(mode="after")
    def _lowercase_and_compile(self) -> Signal:
        self.any = [k.lower() for k in self.any]
        self.all = [k.lower() for k in self.all]
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from exc
        return self


class KnowledgeError(ValueError):
    """A card or signal file is invalid; the message names the file and the field."""


_ESCAPE = re.compile(r"\\.")


def _compile_for_lowercase(pattern: str) -> re.Pattern[str]:
    """Compile a signal pattern for the lowercased text it always runs on.

    Without uppercase letters (escapes such as ``\\S`` aside) the pattern matches lowercase text
    the same with or without ``re.IGNORECASE``, and is several times faster without: CPython's
    regex engine skips ahead on literal prefixes only when matching case-sensitively.
    """
    if any(c.isupper() for c in _ESCAPE.sub("", pattern)):
        return re.compile(pattern, re.IGNORECASE)
    return re.compile(pattern)


class CompiledSignal:
    """A signal ready for matching: keywords first (cheap), then the optional regex."""

    __slots__ = ("all", "all_set", "any", "id", "pattern", "registry_context", "tool")

    def __init__(self, signal: Signal) -> None:
        self.id = signal.id
        self.any = tuple(signal.any)
        self.all = tuple(signal.all)
        self.all_set = frozenset(signal.all)
        self.pattern = _compile_for_lowercase(signal.pattern) if signal.pattern else None
        self.tool = signal.tool
        self.registry_context = signal.registry_context


def _trie_pattern(words: list[str]) -> str:
    """A regex matching any of ``words`` as a character trie (one pass, longest match first)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


class KeywordScanner:
    """Finds every signal keyword in a text in one regex pass instead of one scan per keyword.

    A lookahead at each position captures the longest keyword starting there; keywords that
    are prefixes of it start at the same place and are added from a precomputed map.
    """

    def __init__(self, keywords: set[str]) -> None:
        ordered = sorted(keywords)
        self.pattern = re.compile("(?=(" + _trie_pattern(ordered) + "))") if ordered else None
        self.prefixes = {k: tuple(p for p in ordered if p != k and k.startswith(p)) for k in ordered}

    def scan(self, text: str) -> set[str]:
        if self.pattern is None:
            return set()
        found: set[str] = set()
        for match in self.pattern.finditer(text):
            word = match.group(1)
            if word and word not in found:
                found.add(word)
                found.update(self.prefixes.get(word, ()))
        return found


class KnowledgeBase:
    """All cards and signals, validated and cross-checked."""

    def __init__(self, cards: dict[str, Card], signals: list[Signal]) -> None:
        self.cards = cards
        self.signals = [CompiledSignal(s) for s in signals]
        self.signal_ids = {s.id for s in signals}
        self.scanner = KeywordScanner({k for s in signals for k in (*s.any, *s.all)})
        # keyword -> positions of the signals it can trigger, so a scan touches only candidates
        self.by_keyword: dict[str, list[int]] = {}
        for position, sig in enumerate(self.signals):
            for keyword in sig.any:
                self.by_keyword.setdefault(keyword, []).append(position)

    def card(self, cause_id: str) -> Card:
        return self.cards[cause_id]


def _format_error(path: Path, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        location = ".".join(str(p) for p in err["loc"])
        parts.append(f"{path.name}: field '{location}': {err['msg']}")
    return "; ".join(parts)


def _read_yaml(path: Path) -> Any:
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"{path.name}: not valid YAML: {exc}") from exc


def _check_signal_refs(path: Path, card: Card, known: set[str]) -> None:
    def check(cond: Condition | None, where: str) -> None:
        if cond is None:
            return
        for field_name in ("signals", "any_signals", "not_signals"):
            for name in getattr(cond, field_name):
                if name not in known:
                    raise KnowledgeError(f"{path.name}: field '{where}.{field_name}': unknown signal '{name}'")

    for i, rule in enumerate(card.recognise):
        check(rule.when, f"recognise.{i}.when")
    for i, step in enumerate(card.fix):
        check(step.when, f"fix.{i}.when")


def load_knowledge(directory: Path | None = None, taxonomy_ids: set[str] | None = None) -> KnowledgeBase:
    """Load every card and the signal file from ``directory`` (default: the packaged ``knowledge``)."""
    if directory is None:
        directory = Path(str(resources.files("knowledge")))
    signals_path = directory / "signals.yaml"
    raw_signals = _read_yaml(signals_path)
    if not isinstance(raw_signals, list):
        raise KnowledgeError(f"{signals_path.name}: expected a list of signals")
    signals: list[Signal] = []
    for i, item in enumerate(raw_signals):
        try:
            signals.append(Signal.model_validate(item))
        except ValidationError as exc:
            raise KnowledgeError(f"{_format_error(signals_path, exc)} (signal #{i})") from exc
    ids = [s.id for s in signals]
    duplicates = {x for x in ids if ids.count(x) > 1}
    if duplicates:
        raise KnowledgeError(f"{signals_path.name}: duplicate signal ids {sorted(duplicates)}")
    known = set(ids)

    cards: dict[str, Card] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "signals.yaml":
            continue
        data = _read_yaml(path)
        try:
            card = Card.model_validate(data)
        except ValidationError as exc:
            raise KnowledgeError(_format_error(path, exc)) from exc
        if card.id != path.stem:
            raise KnowledgeError(f"{path.name}: field 'id': '{card.id}' does not match the file name")
        _check_signal_refs(path, card, known)
        cards[card.id] = card
    if taxonomy_ids is not None:
        missing = taxonomy_ids - set(cards)
        extra = set(cards) - taxonomy_ids
        if missing or extra:
            raise KnowledgeError(f"cards do not match the taxonomy: missing {sorted(missing)}, extra {sorted(extra)}")
    return KnowledgeBase(cards, signals)


@lru_cache(maxsize=1)
def default_knowledge() -> KnowledgeBase:
    """The packaged knowledge base, loaded once per process."""
    return load_knowledge()
