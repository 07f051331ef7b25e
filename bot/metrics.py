"""Prometheus metrics: what an operator needs to see that the bot works and why it does not.

All metrics live on prometheus-client's default registry (so the process and platform
collectors come for free) and are updated through the small ``record_*`` functions below,
which never raise: a metrics bug must not break a reply. Label values are bounded — cause
ids come from the knowledge base, check names and statuses from the engine, Slack methods
and error codes from Slack — so cardinality stays small whatever users paste.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, Info, generate_latest

log = logging.getLogger(__name__)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "exposition",
    "record_diagnosis",
    "record_evidence",
    "record_slack_call",
    "record_slack_error",
    "set_leader_source",
    "set_ready",
]

DIAGNOSES = Counter(
    "acrcheck_diagnoses_total",
    "Diagnoses made and stored, by top cause and kind (paste or registry).",
    ["cause", "kind"],
)
REPLIES = Counter(
    "acrcheck_slack_replies_total",
    "Messages the bot wrote to Slack (Web API writes that succeeded), by method.",
    ["method"],
)
SLACK_ERRORS = Counter(
    "acrcheck_slack_api_errors_total",
    "Slack Web API calls that failed, by method and Slack error code (or exception type).",
    ["method", "error"],
)
CHECKS = Counter(
    "acrcheck_checks_total",
    "Individual live checks run (dns, probe, arm, logs, ...), by result.",
    ["check", "result"],
)
CHECK_SECONDS = Histogram(
    "acrcheck_check_duration_seconds",
    "Wall time of individual live checks.",
    ["check"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0),
)
ARM_ERRORS = Counter(
    "acrcheck_arm_errors_total",
    "Azure Resource Manager failures seen by live checks, by finding (forbidden, throttled, error, ...).",
    ["finding"],
)
LEADER = Gauge("acrcheck_scheduler_leader", "1 while this replica leads the watch scheduler, else 0.")
READY = Gauge("acrcheck_ready", "1 while /readyz answers ready (Slack connected and database reachable).")
BUILD = Info("acrcheck_build", "Version of the running acrcheck.")

#: Slack methods that put something in front of a user.
WRITE_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral", "views.open"})
#: ARM findings that mean the bot could not read what it wanted.
ARM_ERROR_FINDINGS = frozenset({"arm.forbidden", "arm.throttled", "arm.error", "arm.no_credential"})

try:
    BUILD.info({"version": metadata.version("acrcheck")})
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    BUILD.info({"version": "unknown"})
LEADER.set(0)
READY.set(0)


def _field(item: Any, name: str) -> Any:
    """Evidence objects and their ``to_dict()`` form are both accepted."""
    if isinstance(item, Mapping):
        return item.get(name)
    return getattr(item, name, None)


def record_evidence(evidence: Iterable[Any]) -> None:
    """Count each live check once, with its result and duration; ARM failures separately."""
    try:
        for item in evidence:
            check = str(_field(item, "check") or "")
            if not check or check in ("text", "guard", "live"):
                continue  # read from the paste or refused before running: not a check
            result = str(_field(item, "status") or "unknown")
            CHECKS.labels(check=check, result=result).inc()
            duration_ms = float(_field(item, "duration_ms") or 0.0)
            if duration_ms > 0:
                CHECK_SECONDS.labels(check=check).observe(duration_ms / 1000.0)
            for finding in _field(item, "findings") or ():
                if finding in ARM_ERROR_FINDINGS:
                    ARM_ERRORS.labels(finding=finding.removeprefix("arm.")).inc()
    except Exception:  # pragma: no cover - metrics must never break a reply
        log.debug("could not record evidence metrics", exc_info=True)


def record_diagnosis(cause: str, kind: str, evidence: Iterable[Any] = ()) -> None:
    """One diagnosis stored (and so shown to someone), plus the checks behind it."""
    try:
        DIAGNOSES.labels(cause=cause or "unknown", kind=kind or "paste").inc()
    except Exception:  # pragma: no cover
        log.debug("could not record diagnosis metric", exc_info=True)
    record_evidence(evidence)


def record_slack_call(method: str) -> None:
    """A successful Web API call; only writes are counted as replies."""
    if method in WRITE_METHODS:
        REPLIES.labels(method=method).inc()


def record_slack_error(method: str, error: str) -> None:
    SLACK_ERRORS.labels(method=method, error=(error or "unknown")[:64]).inc()


def set_leader_source(is_leader: Callable[[], bool] | None) -> None:
    """Read scheduler leadership at scrape time (None: this replica runs no scheduler)."""
    if is_leader is None:
        LEADER.set_function(lambda: 0.0)
    else:
        LEADER.set_function(lambda: 1.0 if is_leader() else 0.0)


def set_ready(ready: bool) -> None:
    READY.set(1 if ready else 0)


def exposition() -> bytes:
    """The text format Prometheus scrapes."""
    return generate_latest()
