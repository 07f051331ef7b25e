"""The knowledge base: one YAML card per cause, plus the signal vocabulary, ready to match.

A *signal* (``knowledge/signals.yaml``) names an error phenomenon — "DNS lookup timed
out", "x509 unknown authority" — by the phrases tools print for it. A *card*
(``knowledge/<cause-id>.yaml``) recognises its cause with rules over signals and extracted
facts, lists the live findings that confirm or rule it out, and carries fix templates and
docs in English and Japanese. Adding a cause or a phrasing is therefore a YAML edit.

Loading is fast because the YAML is validated (``bot.engine.knowledge_schema``, pydantic) only
when it changed: the validated knowledge is kept as JSON
in a cache file named by the SHA-256 of every YAML file and of the schema module. The cache is
read from, and written to, the first usable place of: ``$ACRCHECK_CACHE_DIR``, the
``__pycache__`` folder next to the cards (writable in a checkout; filled at image build time),
the user cache directory (``$XDG_CACHE_HOME/acrcheck`` or ``~/.cache/acrcheck``). Nothing needs
to be writable: without a usable cache the knowledge is validated and compiled in memory. A
cache can never be stale, since any change to a card or to the schema changes its name (and
writing a new one deletes that folder's caches of earlier contents); a
cache that cannot be read or does not hold what it should is ignored and rebuilt. Trust: a
cache file is trusted like the installed code next to it (it holds the fix commands, and its
signal patterns, validated when it was written, are compiled only when first needed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.engine.keywords import KeywordScanner

#: Keys a rule may test in ``facts:``; each maps to a derived fact of the paste.
FACT_KEYS = {
    "registry_class",  # acr | public | private | none
    "target_ip_scope",  # private | public | loopback | link-local | other, and docker-bridge (172.17.0.0/16) beside private
    "dns_server_scope",
    "status",  # HTTP status codes (ints)
    "tool",
    "has",  # fact names that must be present
    "lacks",  # fact names that must be absent
    "host_kinds",  # login_server | data_endpoint | privatelink | blob | data_cdn | malformed | lookalike | public_lookalike | ...
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
        "dns.cname_loop",
        "dns.chain_too_long",
        "dns.pe_record_missing",
        "dns.pe_record_wrong",
        "dns.pe_ip_match",
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
        "probe.tls_expired",
        "probe.tls_not_yet_valid",
        "probe.redirect",
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
        "arm.permission_missing",
        "logs.permission_missing",
        "logs.failed_logins",
        "logs.no_events",
        "logs.skipped",
    ]
)



class KnowledgeError(ValueError):
    """A card or signal file is invalid; the message names the file and the field."""


# --- The knowledge as the engine uses it: plain objects, built from validated data -------------


@dataclass(frozen=True, slots=True)
class LocalText:
    """A string in English and Japanese."""

    en: str
    ja: str

    def get(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


@dataclass(frozen=True, slots=True)
class Condition:
    """When a rule applies. All listed parts must hold."""

    signals: list[str] = field(default_factory=list)
    any_signals: list[str] = field(default_factory=list)
    not_signals: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    context: str = "registry"  # "registry" | "any"


@dataclass(frozen=True, slots=True)
class Rule:
    """A scored reason to suspect a cause."""

    when: Condition
    score: float
    reason: LocalText
    #: signals whose rules in this card say this rule's reason more precisely (``classify`` leaves
    #: this reason out when one of those rules holds; the score still counts)
    quiet_with: tuple[str, ...] = ()


def rules_saying(rules: Sequence[Any], name: str, *, besides: int) -> list[int]:
    """Positions of the positive rules, other than ``besides``, that require signal ``name``: the
    rules whose reason makes a ``quiet_with: [name]`` rule's reason redundant. Works on the schema's
    rules and the engine's alike (both have ``score`` and ``when.signals``)."""
    return [j for j, other in enumerate(rules) if j != besides and other.score > 0 and name in other.when.signals]


@dataclass(frozen=True, slots=True)
class LiveRules:
    """Live findings (from ``bot.checks.run``) that confirm or rule out the cause, with weights."""

    confirm: dict[str, float] = field(default_factory=dict)
    rule_out: dict[str, float] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)
    #: Paste signals naming the context this cause is about (an Azure service, a task, a cluster):
    #: when the paste names it and the live configuration supports the cause, the context selects it.
    context: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class FixStepTemplate:
    """A fix step; ``{registry}``-style placeholders are filled with extracted values.

    Live facts fill them too (``bot.engine.rerank``): ``requires`` shows the step only when all
    those values are known, ``unless`` hides it when any is (a generic step that live facts make
    precise), and ``each`` repeats it for every item of a live list (one command per missing DNS
    record, per private endpoint connection…), the item's fields joining the values. ``lead``
    moves the step to the front when it holds for the paste: one card covers several sub-cases
    (throttling, a missing tag, an outage), and the one the paste shows comes first.
    """

    text: LocalText
    command: str | None = None
    when: Condition | None = None
    requires: list[str] = field(default_factory=list)
    unless: list[str] = field(default_factory=list)
    each: str | None = None
    lead: Condition | None = None


@dataclass(frozen=True, slots=True)
class Decider:
    """The one check that confirms or rules out this cause when the text cannot decide."""

    text: LocalText
    command: str | None = None


@dataclass(frozen=True, slots=True)
class Card:
    """One cause of the taxonomy."""

    id: str
    title: LocalText
    summary: LocalText
    tell: LocalText | None = None  # what tells this cause apart from the ones it is confused with
    #: ``title`` / ``summary`` / ``tell`` when the failing registry is not Azure's (None: the Azure texts)
    title_elsewhere: LocalText | None = None
    summary_elsewhere: LocalText | None = None
    tell_elsewhere: LocalText | None = None
    decide: Decider | None = None
    #: the deciding check for a registry that is not Azure's (None: ``decide``, minus Azure-only commands)
    decide_elsewhere: Decider | None = None
    base_score: float = 0.0
    recognise: list[Rule] = field(default_factory=list)
    live: LiveRules = field(default_factory=LiveRules)
    fix: list[FixStepTemplate] = field(default_factory=list)
    #: the fix for a registry that is known not to be Azure's (empty: ``fix`` serves every registry)
    fix_elsewhere: list[FixStepTemplate] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    symptoms: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Signal:
    """An error phenomenon recognised by the phrases that print it (keywords lowercased)."""

    id: str
    any: list[str]
    all: list[str] = field(default_factory=list)
    pattern: str | None = None
    tool: str | None = None
    registry_context: bool = False
    registry_class: str | None = None  # see knowledge_schema.Signal.registry_class
    masks: list[str] = field(default_factory=list)  # see knowledge_schema.Signal.masks
    implies: list[str] = field(default_factory=list)  # see knowledge_schema.Signal.implies
    description: str = ""


def _text(data: dict[str, Any]) -> LocalText:
    return LocalText(data["en"], data["ja"])


def _condition(data: dict[str, Any] | None) -> Condition | None:
    if data is None:
        return None
    return Condition(
        list(data["signals"]), list(data["any_signals"]), list(data["not_signals"]), dict(data["facts"]), data["context"]
    )


def _optional_text(data: dict[str, Any] | None) -> LocalText | None:
    return _text(data) if data else None


def _decider(data: dict[str, Any] | None) -> Decider | None:
    return Decider(_text(data["text"]), data["command"]) if data is not None else None


def _fix_step(data: dict[str, Any]) -> FixStepTemplate:
    return FixStepTemplate(
        _text(data["text"]),
        data["command"],
        _condition(data["when"]),
        list(data["requires"]),
        list(data["unless"]),
        data["each"],
        _condition(data["lead"]),
    )


def card_from_data(data: dict[str, Any]) -> Card:
    """A card from its validated data (``knowledge_schema.Card.model_dump()``)."""
    return Card(
        id=data["id"],
        title=_text(data["title"]),
        summary=_text(data["summary"]),
        tell=_optional_text(data["tell"]),
        title_elsewhere=_optional_text(data.get("title_elsewhere")),
        summary_elsewhere=_optional_text(data.get("summary_elsewhere")),
        tell_elsewhere=_optional_text(data.get("tell_elsewhere")),
        decide=_decider(data["decide"]),
        decide_elsewhere=_decider(data.get("decide_elsewhere")),
        base_score=data["base_score"],
        recognise=[
            Rule(_condition(r["when"]), r["score"], _text(r["reason"]), tuple(r["quiet_with"]))  # type: ignore[arg-type]
            for r in data["recognise"]
        ],
        live=LiveRules(
            dict(data["live"]["confirm"]),
            dict(data["live"]["rule_out"]),
            list(data["live"]["checks"]),
            list(data["live"]["context"]),
        ),
        fix=[_fix_step(f) for f in data["fix"]],
        fix_elsewhere=[_fix_step(f) for f in data["fix_elsewhere"]],
        docs=list(data["docs"]),
        symptoms=list(data["symptoms"]),
    )


def signal_from_data(data: dict[str, Any]) -> Signal:
    """A signal from its validated data (``knowledge_schema.Signal.model_dump()``)."""
    return Signal(**data)


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

    __slots__ = (
        "_pattern",
        "all",
        "all_set",
        "any",
        "id",
        "implies",
        "masks",
        "pattern_source",
        "registry_class",
        "registry_context",
        "tool",
    )

    def __init__(self, signal: Signal) -> None:
        self.id = signal.id
        self.any = tuple(signal.any)
        self.all = tuple(signal.all)
        self.all_set = frozenset(signal.all)
        self.pattern_source = signal.pattern or None
        self._pattern: re.Pattern[str] | None = None
        self.tool = signal.tool
        self.registry_context = signal.registry_context
        self.registry_class = signal.registry_class
        self.masks = tuple(signal.masks)
        self.implies = tuple(signal.implies)

    @property
    def pattern(self) -> re.Pattern[str] | None:
        """The regex, compiled the first time one of the signal's keywords is in a paste: most
        signals never get that far in a one-shot process, and compiling every pattern at load
        was a twentieth of a one-shot ``acrcheck diagnose``. (The YAML's validation compiled it
        once already, so it is known to compile.)"""
        if self._pattern is None and self.pattern_source:
            self._pattern = _compile_for_lowercase(self.pattern_source)
        return self._pattern


#: Commands that only work against an Azure registry: Azure's CLI and acrcheck's own live checks.
AZURE_ONLY_COMMANDS = ("az ", "acrcheck ")


def azure_only_command(command: str) -> bool:
    """The command runs Azure's CLI or an acrcheck live check anywhere in it: it cannot help with
    another registry (a card's ``fix_elsewhere`` may not hold one, a deciding check drops it)."""
    return any(word in command for word in AZURE_ONLY_COMMANDS)


def _keywords(signals: list[Signal]) -> set[str]:
    return {k for s in signals for k in (*s.any, *s.all)}


class KnowledgeBase:
    """All cards and signals, validated and cross-checked."""

    def __init__(self, cards: dict[str, Card], signals: list[Signal]) -> None:
        self.cards = cards
        self.signals = [CompiledSignal(s) for s in signals]
        self.signal_ids = {s.id for s in signals}
        self.signal_by_id = {s.id: s for s in self.signals}
        #: the signals that can mask others (``Signal.masks``), checked after every scan
        self.maskers = [s for s in self.signals if s.masks]
        #: signal id -> the signals it implies (``Signal.implies``), added after masking
        self.implications = {s.id: s.implies for s in self.signals if s.implies}
        #: each signal's place in the vocabulary, which orders a paste's signals
        self.signal_position = {s.id: position for position, s in enumerate(self.signals)}
        #: the class of registry a signal implies (``Signal.registry_class``), for the few that say one
        self.implied_class = {s.id: s.registry_class for s in self.signals if s.registry_class}
        self.scanner = KeywordScanner(_keywords(signals))
        # keyword -> positions of the signals it can trigger, so a scan touches only candidates
        self.by_keyword: dict[str, list[int]] = {}
        for position, sig in enumerate(self.signals):
            for keyword in sig.any:
                self.by_keyword.setdefault(keyword, []).append(position)

    def card(self, cause_id: str) -> Card:
        return self.cards[cause_id]

    def warm(self) -> KnowledgeBase:
        """Compile everything compiled lazily (a server does it before it reports ready)."""
        self.scanner.automaton()
        for signal in self.signals:
            _ = signal.pattern
        return self


# --- Loading, through the compiled cache ---------------------------------------------------------

#: Bump when the cache's layout changes (the schema module's own text is hashed too).
CACHE_FORMAT = 9
_SCHEMA_SOURCE = Path(__file__).with_name("knowledge_schema.py")


def _sources(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def content_digest(directory: Path) -> str:
    """SHA-256 of the cache format, the schema module and every YAML file (name and bytes)."""
    digest = hashlib.sha256(f"acrcheck-knowledge-{CACHE_FORMAT}\0".encode())
    for path in [_SCHEMA_SOURCE, *_sources(directory)]:
        data = path.read_bytes()
        digest.update(f"{path.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def cache_dirs(directory: Path) -> list[Path]:
    """Where a compiled knowledge base may be read from or written to, in order."""
    places: list[Path] = []
    if os.environ.get("ACRCHECK_CACHE_DIR"):
        places.append(Path(os.environ["ACRCHECK_CACHE_DIR"]))
    places.append(directory / "__pycache__")
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not base:
        with contextlib.suppress(RuntimeError, KeyError):  # no home directory (service accounts)
            base = str(Path.home() / ".cache")
    if base:
        places.append(Path(base) / "acrcheck")
    return places


def _cache_prefix(directory: Path) -> str:
    """``knowledge-<key of the cards' folder>-``: caches of other card folders sharing a cache
    directory (``ACRCHECK_CACHE_DIR``, ``~/.cache/acrcheck``) have other names and are left alone."""
    with contextlib.suppress(OSError, RuntimeError):
        directory = directory.resolve()
    return f"knowledge-{hashlib.sha256(str(directory).encode()).hexdigest()[:12]}-"


def _cache_name(directory: Path, digest: str) -> str:
    return f"{_cache_prefix(directory)}{digest[:32]}.json"


#: A cache file of the format before the folder key (``knowledge-<32 hex>.json``): never read again.
_UNKEYED_CACHE = re.compile(r"knowledge-[0-9a-f]{32}\.json")


def _remove_earlier_caches(place: Path, current: str, earlier: Callable[[str], bool]) -> None:
    """Delete the files of ``place`` that ``earlier`` names as this cache's earlier contents (one
    per edit piled up), ``current`` kept.

    Best effort: a file that cannot be listed or deleted (another process's, read-only) stays.
    """
    with contextlib.suppress(OSError):
        for path in place.iterdir():
            if path.name != current and earlier(path.name):
                with contextlib.suppress(OSError):
                    path.unlink()


#: A temporary cache file older than this was left by a process killed while writing it.
STALE_TEMPORARY_SECONDS = 3600


def _remove_stale_temporaries(place: Path) -> None:
    """Delete the ``tmp*.tmp`` files that writers killed mid-write left in a cache folder.

    Best effort, and only files an hour old: a younger one may be another process's write in progress.
    """
    import time

    cutoff = time.time() - STALE_TEMPORARY_SECONDS
    with contextlib.suppress(OSError):
        for path in place.glob("tmp*.tmp"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()


def _read_cache(directory: Path, digest: str) -> dict[str, Any] | None:
    for place in cache_dirs(directory):
        try:
            data = json.loads((place / _cache_name(directory, digest)).read_text(encoding="utf-8"))
        except (OSError, ValueError, RuntimeError):
            continue
        if isinstance(data, dict) and data.get("digest") == digest and data.get("format") == CACHE_FORMAT:
            return data
    return None


def write_cache_file(places: list[Path], name: str, payload: bytes, earlier: Callable[[str], bool]) -> Path | None:
    """Write ``payload`` as ``name`` in the first of ``places`` that takes it, and clear that
    place's stale temporaries and the caches ``earlier`` names (the same cache's older contents);
    ``None`` when no place takes it.

    Atomic: a temporary file renamed over the cache, so a reader (another replica, a process
    started meanwhile) never sees half a cache. Shared by the cards' and the learned layer's caches.
    """
    import tempfile

    for place in places:
        temporary: Path | None = None
        try:
            place.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("wb", dir=place, delete=False, suffix=".tmp") as handle:
                temporary = Path(handle.name)
                handle.write(payload)
            os.chmod(temporary, 0o644)
            os.replace(temporary, place / name)
        except OSError:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    temporary.unlink()
            continue
        _remove_stale_temporaries(place)
        _remove_earlier_caches(place, name, earlier)
        return place / name
    return None


def _write_cache(directory: Path, digest: str, data: dict[str, Any]) -> Path | None:
    """Write the cache to the first place that takes it, removing that place's older caches of
    the same cards; None when no place takes it."""
    prefix = _cache_prefix(directory)
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return write_cache_file(
        cache_dirs(directory),
        _cache_name(directory, digest),
        payload,
        lambda name: name.endswith(".json") and (name.startswith(prefix) or bool(_UNKEYED_CACHE.fullmatch(name))),
    )


def compile_knowledge(directory: Path) -> dict[str, Any]:
    """Validate the YAML (pydantic): the cacheable form."""
    from bot.engine.knowledge_schema import validate_knowledge

    return validate_knowledge(directory)


def _from_cache_data(data: dict[str, Any]) -> KnowledgeBase:
    cards = {cid: card_from_data(card) for cid, card in data["cards"].items()}
    signals = [signal_from_data(s) for s in data["signals"]]
    return KnowledgeBase(cards, signals)


def load_knowledge(
    directory: Path | str | None = None, taxonomy_ids: set[str] | None = None, *, use_cache: bool = True
) -> KnowledgeBase:
    """Load every card and the signal file from ``directory`` (default: the packaged ``knowledge``)."""
    directory = packaged_knowledge_dir() if directory is None else Path(directory)
    digest = content_digest(directory) if use_cache else ""
    data = _read_cache(directory, digest) if use_cache else None
    kb: KnowledgeBase | None = None
    if data is not None:
        try:
            kb = _from_cache_data(data)
        except (KeyError, TypeError, ValueError):
            kb = None  # a cache that does not hold what it should: rebuild it
    if kb is None:
        data = {"format": CACHE_FORMAT, "digest": digest, **compile_knowledge(directory)}
        kb = _from_cache_data(data)
        if use_cache:
            _write_cache(directory, digest, data)
    if taxonomy_ids is not None:
        missing = taxonomy_ids - set(kb.cards)
        extra = set(kb.cards) - taxonomy_ids
        if missing or extra:
            raise KnowledgeError(f"cards do not match the taxonomy: missing {sorted(missing)}, extra {sorted(extra)}")
    return kb


def packaged_knowledge_dir() -> Path:
    """The ``knowledge`` package folder (cards and signals), without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("knowledge")
    if spec is None or not spec.submodule_search_locations:
        raise KnowledgeError("the knowledge package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@lru_cache(maxsize=1)
def default_knowledge() -> KnowledgeBase:
    """The packaged knowledge base, loaded once per process."""
    return load_knowledge()
