"""Data objects the engine returns.

The engine knows nothing of Slack or terminals: extraction, classification and live
checks all produce these plain dataclasses, and renderers (text, JSON, Block Kit) turn
them into output. Dataclasses rather than pydantic models because the classifier must
handle thousands of messages a second and these are built on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Outcome of one live check."""

    OK = "ok"
    FAIL = "fail"
    WARN = "warn"
    SKIPPED = "skipped"


#: Vantage point for evidence read from the pasted text rather than measured.
VANTAGE_PASTE = "from the user's paste"


@dataclass(slots=True)
class IpFact:
    """An IP address seen in the paste, with its class and the role it plays there."""

    address: str
    scope: str  # "private" | "public" | "loopback" | "link-local" | "other"
    role: str = "unknown"  # "client" | "target" | "dns_server" | "proxy" | "unknown"
    port: int | None = None


@dataclass(slots=True)
class HostFact:
    """A host name seen in the paste and what kind of registry endpoint it is."""

    host: str
    kind: str  # "login_server" | "data_endpoint" | "privatelink" | "blob" | "geo" | "registry" | "other"
    registry: str | None = None  # short ACR name when the host belongs to an ACR registry
    cloud: str | None = None  # "AzureCloud" | "AzureChinaCloud" | "AzureUSGovernment"
    region: str | None = None
    port: int | None = None


@dataclass(slots=True)
class Facts:
    """Everything the extractor read from a paste. Values are already redacted."""

    registry: str | None = None
    login_server: str | None = None
    cloud: str | None = None
    region: str | None = None
    registry_host: str | None = None  # the failing registry host even when it is not ACR
    repository: str | None = None  # the image's repository on it (``team/web``), when the paste shows it
    tag: str | None = None  # ... and its tag (``1.4``)
    resource_group: str | None = None  # known only from a live ARM read
    hosts: list[HostFact] = field(default_factory=list)
    data_endpoints: list[str] = field(default_factory=list)
    privatelink_hosts: list[str] = field(default_factory=list)
    blob_hosts: list[str] = field(default_factory=list)
    other_registry_hosts: list[str] = field(default_factory=list)
    ips: list[IpFact] = field(default_factory=list)
    client_ip: str | None = None
    target_ip: str | None = None
    dns_server: str | None = None
    proxy: str | None = None
    ports: list[int] = field(default_factory=list)
    status_codes: list[int] = field(default_factory=list)
    tool: str | None = None
    checkhealth_codes: list[str] = field(default_factory=list)
    canipull: dict[str, Any] = field(default_factory=dict)
    correlation_ids: list[str] = field(default_factory=list)
    kubernetes: dict[str, str] = field(default_factory=dict)
    signals: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # kinds of secret that were redacted

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, dropping empty values so output stays readable.

        Hand-written rather than ``dataclasses.asdict`` (which deep-copies): this runs for
        every JSONL line.
        """
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if value is None or value == [] or value == {}:
                continue
            if name == "hosts":
                value = [{k: getattr(h, k) for k in h.__slots__ if getattr(h, k) is not None} for h in value]
            elif name == "ips":
                value = [{k: getattr(i, k) for k in i.__slots__ if getattr(i, k) is not None} for i in value]
            elif isinstance(value, list):
                value = list(value)
            elif isinstance(value, dict):
                value = dict(value)
            out[name] = value
        return out


@dataclass(slots=True)
class Evidence:
    """One observation: from the paste or from a live check, always with its vantage point.

    ``findings`` are machine-readable names (e.g. ``probe.denied``, ``arm.ip_not_allowed``)
    that knowledge cards reference in their ``live`` section to confirm or rule out a cause.
    """

    check: str  # "text" | "dns" | "probe" | "tls" | "arm" | "logs" | ...
    target: str
    vantage: str
    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    duration_ms: float = 0.0
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "target": self.target,
            "vantage": self.vantage,
            "status": str(self.status),
            "detail": self.detail,
            "duration_ms": round(self.duration_ms, 1),
            "findings": list(self.findings),
        }


@dataclass(slots=True)
class FixStep:
    """One step of a fix, rendered from a card template with the user's values."""

    text: str
    command: str | None = None
    complete: bool = True  # False when a placeholder had to stand in for an unknown value


@dataclass(slots=True)
class CauseScore:
    """A ranked hypothesis and the reasons behind it."""

    id: str
    confidence: float
    score: float
    reasons: list[str] = field(default_factory=list)  # why the text points here
    supported_by: list[str] = field(default_factory=list)  # live evidence for it
    contradicted_by: list[str] = field(default_factory=list)  # live evidence against it


@dataclass(slots=True)
class Candidate:
    """One of the causes an ambiguous paste leaves open, and what tells it apart."""

    id: str
    title: str
    confidence: float
    tell: str = ""


@dataclass(slots=True)
class DecisiveCheck:
    """The one check that decides between the candidates."""

    text: str
    command: str | None = None


@dataclass(slots=True)
class SimilarCase:
    """A solved public case from the library that resembles the paste."""

    id: str
    title: str
    url: str
    cause: str
    fix: str | None
    evidence: str | None
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "url": self.url,
            "cause": self.cause,
            "fix": self.fix,
            "why": self.evidence,
            "similarity": round(self.similarity, 3),
        }


@dataclass(slots=True)
class Diagnosis:
    """The engine's answer for one paste (and, when run, its live checks)."""

    cause: str  # top cause id, "unrelated", or "healthy" for a live check with nothing wrong
    confidence: float
    reply: bool  # would the bot answer in passive mode
    causes: list[CauseScore]
    facts: Facts
    title: str = ""
    summary: str = ""
    fix: list[FixStep] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    lang: str = "en"
    redacted_text: str = ""
    notes: list[str] = field(default_factory=list)  # e.g. "a secret was redacted"
    #: The text shows a registry failure but cannot decide between these causes.
    ambiguous: bool = False
    candidates: list[Candidate] = field(default_factory=list)
    decisive_check: DecisiveCheck | None = None
    similar_cases: list[SimilarCase] = field(default_factory=list)

    @property
    def secret_found(self) -> bool:
        return bool(self.facts.secrets)

    @property
    def answer_confidence(self) -> float:
        """Confidence in what the reply says: the top cause, or for an ambiguous paste that
        one of the named candidates is right (what a channel's reply threshold compares)."""
        if self.ambiguous and self.candidates:
            return round(min(1.0, sum(c.confidence for c in self.candidates)), 3)
        return self.confidence
