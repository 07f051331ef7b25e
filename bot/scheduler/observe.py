"""Turn a sweep's raw inputs (bulk ARM read + live check) into per-registry Observations.

The two inputs are injectable callables so the scheduler can be tested against a fake
registry side while production uses ``bot.checks.azure.read_registries_bulk`` (a few
Resource Graph calls for the whole sweep) and ``bot.diagnose.check_registry``. Throttling
(ARM 429 with Retry-After) is honoured here, once per sweep, instead of per registry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bot.config import Settings
from bot.engine.models import Diagnosis, Status
from bot.scheduler.drift import ERROR, HEALTHY, MISSING, Observation, snapshot_config

__all__ = [
    "CheckFn",
    "ConfigReader",
    "default_check",
    "default_reader",
    "observation_from",
    "read_configs",
    "retry_after_seconds",
]

log = logging.getLogger(__name__)

#: names -> {name: RegistryConfig | None}; None means "not found" (ARM 404 / absent from Resource Graph).
ConfigReader = Callable[[list[str], Settings], Awaitable[Mapping[str, Any]]]
#: (registry, its RegistryConfig or None, settings) -> Diagnosis of a live check.
CheckFn = Callable[[str, Any, Settings], Awaitable[Diagnosis]]

_MAX_RETRY_AFTER = 120.0


async def default_reader(names: list[str], settings: Settings) -> Mapping[str, Any]:
    """Production reader: Resource Graph in a few calls for the whole sweep."""
    from bot.checks.azure import read_registries_bulk

    return await read_registries_bulk(names, settings)


async def default_check(registry: str, config: Any, settings: Settings) -> Diagnosis:
    """Production check for a sweep: DNS and probes only, using the bulk-read configuration.

    The configuration already came from the sweep's Resource Graph read, so re-reading ARM
    per registry (what ``check_registry`` does for an interactive check) would turn a
    1,000-registry sweep into 1,000+ ARM calls. With the config we know the registry's real
    login server and its data endpoints, so those are probed too (a data endpoint missing
    from DNS shows up as a failing ``dns`` check). Without it (read failed) we fall back to
    the engine's full check.
    """
    if config is None:
        from bot.diagnose import check_registry

        full: Diagnosis = await check_registry(registry, settings)
        return full
    from bot.checks.run import run_checks
    from bot.engine.classify import rerank
    from bot.engine.hostguard import registry_target

    login_server = str(getattr(config, "login_server", "") or registry)
    target = registry_target(login_server)
    data_hosts = list(config.data_endpoints()) if hasattr(config, "data_endpoints") else []
    evidence = await run_checks(target, settings, hypotheses=["dns", "probe"], extra_hosts=data_hosts)
    return rerank(None, evidence, registry=target.login_server, lang=settings.lang)


def retry_after_seconds(exc: BaseException) -> float | None:
    """Seconds to wait if ``exc`` is a throttling error (ARM 429 / Retry-After), else None."""
    value = getattr(exc, "retry_after", None)
    if value is None:
        response = getattr(exc, "response", None)
        status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
        headers = getattr(response, "headers", None)
        if headers is not None:
            value = headers.get("Retry-After") or headers.get("retry-after")
        if value is None and status == 429:
            value = 5
    if value is None:
        return None
    try:
        return max(0.0, min(float(value), _MAX_RETRY_AFTER))
    except (TypeError, ValueError):
        return 5.0


async def read_configs(
    names: list[str], reader: ConfigReader, settings: Settings, *, attempts: int = 4
) -> Mapping[str, Any] | None:
    """Bulk-read configurations, waiting out ARM throttling; None when the read failed.

    None (unknown) is deliberately different from a ``None`` value per name (not found):
    a failed read must never make every watched registry look deleted.
    """
    if not names:
        return {}
    for attempt in range(1, attempts + 1):
        try:
            result = await reader(names, settings)
            return {str(k).lower(): v for k, v in result.items()}
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            wait = retry_after_seconds(exc)
            if wait is None or attempt == attempts:
                log.warning("bulk registry read failed (%s); configs unknown this run", exc)
                return None
            log.info("ARM throttled the bulk read; waiting %.1fs (Retry-After)", wait)
            await asyncio.sleep(wait)
    return None  # pragma: no cover


def observation_from(diagnosis: Diagnosis, config: Any) -> Observation:
    """Keep what matters for drift: status, title, failing checks (keys only), config."""
    cause = diagnosis.cause or ERROR
    status = HEALTHY if cause in (HEALTHY, "unrelated") else cause
    problems = {f"{ev.check}:{ev.target}": ev.detail[:300] for ev in diagnosis.evidence if ev.status == Status.FAIL}
    return Observation(
        status=status,
        title=diagnosis.title or ("" if status == HEALTHY else status),
        summary=diagnosis.summary,
        problems=problems,
        config=snapshot_config(config),
    )


def missing_observation() -> Observation:
    return Observation(status=MISSING, title="Registry not found")


def error_observation(exc: BaseException) -> Observation:
    return Observation(status=ERROR, title="The check could not run", summary=f"{type(exc).__name__}: {exc}"[:300])
