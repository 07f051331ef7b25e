"""Validation of the knowledge base: the YAML cards and signals checked against this schema.

Only a change to ``knowledge/`` (or to this module) needs it: ``bot.engine.knowledge`` keeps a
compiled copy of the validated knowledge keyed by the content hash of the YAML files and of
this module, and loads that copy without importing pydantic. A bad card fails here, naming
the file and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.engine.knowledge import FACT_KEYS, FINDINGS, KnowledgeError, azure_only_command, rules_saying


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
    #: Signals whose own rule in this card says the same thing more precisely: when a rule of this
    #: card that requires one of them holds, this rule's reason is left out of the evidence (its
    #: score still counts), so one observation is one line of evidence, not two.
    quiet_with: list[str] = Field(default_factory=list)


class LiveRules(BaseModel):
    """Live findings (from ``bot.checks.run``) that confirm or rule out the cause, with weights."""

    model_config = ConfigDict(extra="forbid")
    confirm: dict[str, float] = Field(default_factory=dict)
    rule_out: dict[str, float] = Field(default_factory=dict)
    checks: list[str] = Field(default_factory=list)  # which live checks decide it: dns, probe, arm, logs
    #: Paste signals naming the context this cause is about (an Azure service, a task, a cluster):
    #: when the paste names it and the live configuration supports the cause, the context selects it.
    context: list[str] = Field(default_factory=list)

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
    """A fix step; ``{registry}``-style placeholders are filled with extracted values.

    ``requires`` / ``unless`` / ``each``: see :class:`bot.engine.knowledge.FixStepTemplate`.
    """

    model_config = ConfigDict(extra="forbid")
    text: LocalText
    command: str | None = None
    when: Condition | None = None  # show only when it applies
    lead: Condition | None = None  # shown first when it holds (the step for this paste's sub-case)
    requires: list[str] = Field(default_factory=list)
    unless: list[str] = Field(default_factory=list)
    each: str | None = None


class Decider(BaseModel):
    """The one check that confirms or rules out this cause when the text cannot decide."""

    model_config = ConfigDict(extra="forbid")
    text: LocalText
    command: str | None = None


class Card(BaseModel):
    """One cause of the taxonomy."""

    model_config = ConfigDict(extra="forbid")
    id: str
    title: LocalText
    summary: LocalText
    tell: LocalText | None = None  # what tells this cause apart from the ones it is confused with
    #: ``title``, ``summary`` and ``tell`` for a registry that is not Azure's (no ACR suffixes, ARM or AcrPull)
    title_elsewhere: LocalText | None = None
    summary_elsewhere: LocalText | None = None
    tell_elsewhere: LocalText | None = None
    decide: Decider | None = None
    #: The deciding check when the failing registry is known not to be Azure's (``decide`` runs
    #: acrcheck or ``az``, which cannot look at Docker Hub or a self-hosted registry). None: ``decide``.
    decide_elsewhere: Decider | None = None
    base_score: float = 0.0
    recognise: list[Rule] = Field(default_factory=list)
    live: LiveRules = Field(default_factory=LiveRules)
    fix: list[FixStepTemplate] = Field(default_factory=list)
    #: The fix when the failing registry is known not to be an Azure registry (Docker Hub, GHCR, a
    #: self-hosted one): the same cause, without ``az acr`` commands that cannot apply. Empty: ``fix``.
    fix_elsewhere: list[FixStepTemplate] = Field(default_factory=list)
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
    #: The failing registry is not Azure's, whatever host the paste names or does not name (Google's
    #: Artifact Registry API, say): the reply then gives the fix that applies there, not ``az`` commands.
    registry_class: Literal["public", "private"] | None = None
    #: Signals whose words this one's phrases contain ("this error" holds an error word; docker's hint
    #: "check your internet connection or if you are behind a proxy" holds "proxy"): a masked signal
    #: is dropped when every occurrence of its words in the paste sits inside this signal's phrases.
    masks: list[str] = Field(default_factory=list)
    #: Signals this one is a case of, added whenever it holds (after masking): a failed login to a
    #: registry *is* a failed registry operation, so every rule that takes ``registry_op_failed``
    #: takes it without naming it. One level only: an implied signal implies nothing further.
    implies: list[str] = Field(default_factory=list)
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
        _check_quiet_with(path, card, i, rule, known)
    for i, step in enumerate(card.fix):
        check(step.when, f"fix.{i}.when")
        check(step.lead, f"fix.{i}.lead")
    for i, step in enumerate(card.fix_elsewhere):
        check(step.when, f"fix_elsewhere.{i}.when")
        check(step.lead, f"fix_elsewhere.{i}.lead")
        if step.command and azure_only_command(step.command):
            raise KnowledgeError(
                f"{path.name}: field 'fix_elsewhere.{i}.command': an Azure CLI or acrcheck command cannot fix "
                "another registry"
            )
    if card.decide_elsewhere and card.decide_elsewhere.command and azure_only_command(card.decide_elsewhere.command):
        raise KnowledgeError(
            f"{path.name}: field 'decide_elsewhere.command': an Azure CLI or acrcheck command cannot check "
            "another registry"
        )
    for name in card.live.context:
        if name not in known:
            raise KnowledgeError(f"{path.name}: field 'live.context': unknown signal '{name}'")


def _check_quiet_with(path: Path, card: Card, i: int, rule: Rule, known: set[str]) -> None:
    """``quiet_with`` names signals that another positive rule of the same card requires:
    otherwise nothing would say what this rule's silenced reason said."""
    if rule.quiet_with and rule.score <= 0:
        raise KnowledgeError(f"{path.name}: field 'recognise.{i}.quiet_with': a rule that shows no reason has none to quieten")
    for name in rule.quiet_with:
        if name not in known:
            raise KnowledgeError(f"{path.name}: field 'recognise.{i}.quiet_with': unknown signal '{name}'")
        if not rules_saying(card.recognise, name, besides=i):
            raise KnowledgeError(
                f"{path.name}: field 'recognise.{i}.quiet_with': no other rule of this card requires '{name}' "
                "and says it instead"
            )


def validate_knowledge(directory: Path) -> dict[str, Any]:
    """Validate every card and the signal file; return them as plain data (``model_dump``)."""
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
    for signal in signals:
        unknown = [m for m in signal.masks if m not in known or m == signal.id]
        if unknown:
            raise KnowledgeError(f"{signals_path.name}: signal '{signal.id}' masks unknown signals {unknown}")
        unknown = [m for m in signal.implies if m not in known or m == signal.id]
        if unknown:
            raise KnowledgeError(f"{signals_path.name}: signal '{signal.id}' implies unknown signals {unknown}")
    by_id = {s.id: s for s in signals}
    for signal in signals:
        chained = [m for m in signal.implies if by_id[m].implies]
        if chained:
            raise KnowledgeError(
                f"{signals_path.name}: signal '{signal.id}' implies {chained}, which imply others in turn:"
                " name every implied signal on the first one"
            )

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
    return {"signals": [s.model_dump() for s in signals], "cards": {cid: c.model_dump() for cid, c in cards.items()}}


