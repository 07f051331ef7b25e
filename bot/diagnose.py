"""The engine's public entry points: text or a registry in, Diagnosis out.

Slack handlers, the CLI and the scheduler call only these functions, so the engine
stays ignorant of where the text came from or where the answer goes.
"""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING

from bot.engine.classify import classify, rerank
from bot.engine.extract import Extraction, extract
from bot.engine.hostguard import RegistryTarget, UnsafeTarget, registry_target
from bot.engine.lang import resolve_lang
from bot.engine.models import VANTAGE_PASTE, Diagnosis, Evidence, Status
from bot.engine.probe_report import parse_probe_report
from bot.engine.scrub import scrub_diagnosis

if TYPE_CHECKING:  # settings (pydantic-settings) are imported only by the live entry points
    from bot.config import Settings

log = logging.getLogger(__name__)


def preload() -> None:
    """Load the knowledge base and the learned layer now, and keep the garbage collector off them.

    A process that answers (a CLI call, ``--jsonl``, the server) keeps both for its whole life:
    some 40,000 lists and dicts that the cyclic collector would otherwise scan again and again
    (measured A/B: a one-line CLI answer, median 234 -> 191 ms). ``gc.freeze()`` moves everything allocated so
    far into the permanent generation. Only the entry points call this, once, before answering:
    freezing is a decision for the process, not for a library call.
    """
    from bot.engine.knowledge import default_knowledge
    from bot.engine.learned import default_learned

    default_knowledge()
    default_learned()
    gc.freeze()


def diagnose(text: str, *, lang: str | None = None, cite: bool = True) -> Diagnosis:
    """Offline diagnosis of a pasted error: normalise, redact, extract facts, classify.

    The reply is in ``lang``, or in the paste's own language when none is given; ``cite``
    adds similar solved cases from the library (batch callers that never show them skip it). A pasted
    ``acrcheck probe`` report is read as evidence from the user's machine and re-ranks the
    causes, still without any network access.
    """
    extraction = extract(text)
    lang = resolve_lang(lang, extraction.text)
    diagnosis = classify(extraction, lang=lang, cite=cite)
    if "acrcheck-probe v1" in extraction.text:
        login_server, evidence = parse_probe_report(extraction.text)
        if evidence and login_server:
            ranked = rerank(diagnosis, evidence, registry=login_server, lang=lang, extraction=extraction)
            diagnosis = _keep_cited(diagnosis, ranked)
    return scrub_diagnosis(diagnosis, extraction.secret_values)


def _keep_cited(text_diagnosis: Diagnosis, ranked: Diagnosis) -> Diagnosis:
    """Live evidence re-ranks the causes; the solved cases cited for the text stay if they still fit."""
    ranked.similar_cases = [c for c in text_diagnosis.similar_cases if c.cause == ranked.cause]
    return ranked


def paste_target(extraction: Extraction) -> RegistryTarget | None:
    """The Azure registry a paste is about, if any, after the SSRF guard."""
    facts = extraction.facts
    for candidate in (facts.login_server, *facts.data_endpoints, *facts.privatelink_hosts):
        if not candidate:
            continue
        try:
            return registry_target(candidate)
        except UnsafeTarget:
            continue
    return None


async def check_registry(
    registry: str, settings: Settings, *, lang: str = "en", client_ip: str | None = None
) -> Diagnosis:
    """Full live check of one registry (``/acrcheck myreg``, ``acrcheck check``, watches).

    ``client_ip`` is a client's egress IP to test against the registry's IP rules
    (``acrcheck check --client-ip``). Raises ``UnsafeTarget`` for anything that is not an
    Azure registry endpoint.
    """
    from bot.checks.run import run_checks

    target = registry_target(registry)
    evidence = await run_checks(target, settings, client_ip=client_ip)
    return scrub_diagnosis(rerank(None, evidence, registry=target.login_server, lang=lang))


async def diagnose_live(text: str, settings: Settings, *, lang: str | None = None) -> Diagnosis:
    """Diagnose a paste, then run the live checks its top hypotheses call for and re-rank."""
    from bot.checks.run import run_checks

    extraction = extract(text)
    lang = resolve_lang(lang, extraction.text)
    diagnosis = classify(extraction, lang=lang)
    target = paste_target(extraction)
    if target is None:
        diagnosis.evidence.append(
            Evidence(
                "live",
                "paste",
                VANTAGE_PASTE,
                Status.SKIPPED,
                "no Azure registry endpoint in the paste, so no live check was run",
            )
        )
        return scrub_diagnosis(diagnosis, extraction.secret_values)
    hypotheses = [c.id for c in diagnosis.causes[:3] if c.id != "unrelated"] or None
    extra: list[str] = []
    for host in (*extraction.facts.data_endpoints, *extraction.facts.privatelink_hosts):
        try:
            extra.append(registry_target(host).host or host)
        except UnsafeTarget:
            continue
    evidence = await run_checks(
        target, settings, client_ip=extraction.facts.client_ip, hypotheses=hypotheses, paste_hosts=extra
    )
    ranked = rerank(diagnosis, evidence, registry=target.login_server, lang=lang, extraction=extraction)
    return scrub_diagnosis(_keep_cited(diagnosis, ranked), extraction.secret_values)


def diagnose_live_sync(text: str, *, lang: str | None = None, settings: Settings | None = None) -> Diagnosis:
    """Blocking wrapper for the CLI."""
    import asyncio

    from bot.config import load_settings

    return asyncio.run(diagnose_live(text, settings or load_settings(), lang=lang))


def check_registry_sync(
    registry: str, *, lang: str = "en", settings: Settings | None = None, client_ip: str | None = None
) -> Diagnosis:
    """Blocking wrapper for the CLI."""
    import asyncio

    from bot.config import load_settings

    return asyncio.run(check_registry(registry, settings or load_settings(), lang=lang, client_ip=client_ip))
