"""A scripted registry side for scheduler tests: a config reader and a check function.

The scheduler takes these as injected callables (the real checks are tested elsewhere).
Configurations are real ``bot.checks.azure.RegistryConfig`` objects, so drift comes from
real config diffs. State lives in a JSON file (``FAKE_REGISTRY_STATE``) so a test can
change the world while scheduler subprocesses run; in-process tests use ``World``.

State format::

    {"check_delay": 0.0, "flip_interval": 0,
     "registries": {"reg1": {"exists": true, "status": "healthy", "config": {...}}}}

``flip_interval`` > 0 makes every registry's status alternate with the slot parity, so
every slot produces exactly one change reply (the multi-process tests count those).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from bot.checks.azure import PrivateEndpointConnection, RegistryConfig, Replication
from bot.config import Settings
from bot.engine.models import Diagnosis, Evidence, Facts, Status


def make_config(name: str, **overrides: Any) -> RegistryConfig:
    """A Premium registry locked to one IP range; overrides use RegistryConfig field names."""
    values: dict[str, Any] = {
        "name": name,
        "login_server": f"{name}.azurecr.io",
        "location": "westeurope",
        "sku": "Premium",
        "public_network_access": "Enabled",
        "default_action": "Deny",
        "ip_rules": ("203.0.113.0/24",),
        "bypass_options": "AzureServices",
        "bypass_for_tasks": True,
        "data_endpoint_enabled": True,
        "data_endpoint_host_names": (f"{name}.westeurope.data.azurecr.io",),
        "replications": (Replication(region="westeurope"),),
        "private_endpoints": (PrivateEndpointConnection(name="pe-1", status="Approved"),),
        "provisioning_state": "Succeeded",
    }
    values.update(overrides)
    for key in ("ip_rules", "data_endpoint_host_names"):
        values[key] = tuple(values[key])
    values["replications"] = tuple(
        r if isinstance(r, Replication) else Replication(region=str(r)) for r in values["replications"]
    )
    values["private_endpoints"] = tuple(
        p if isinstance(p, PrivateEndpointConnection) else PrivateEndpointConnection(name=p[0], status=p[1])
        for p in values["private_endpoints"]
    )
    return RegistryConfig(**values)


def diagnosis(status: str, *, failing: dict[str, str] | None = None) -> Diagnosis:
    """What the engine would return: cause id, title, FAIL evidence for each failing check."""
    evidence = [
        Evidence(check=key.split(":", 1)[0], target=key.split(":", 1)[1], vantage="test", status=Status.FAIL,
                 detail=detail)
        for key, detail in (failing or {}).items()
    ]  # fmt: skip
    title = "" if status == "healthy" else f"Problem {status}"
    return Diagnosis(
        cause=status, confidence=1.0, reply=False, causes=[], facts=Facts(), title=title,
        summary="" if status == "healthy" else f"details of {status}", evidence=evidence,
    )  # fmt: skip


class World:
    """In-process scripted world; ``read``/``check`` match the scheduler's injected signatures."""

    def __init__(self) -> None:
        self.registries: dict[str, dict[str, Any]] = {}
        self.check_delay = 0.0
        self.flip_interval = 0
        self.reads = 0
        self.checks = 0

    def add(self, name: str, *, status: str = "healthy", **config: Any) -> None:
        self.registries[name] = {"exists": True, "status": status, "config": config, "failing": {}}

    async def read(self, names: list[str], settings: Settings) -> dict[str, RegistryConfig | None]:
        self.reads += 1
        out: dict[str, RegistryConfig | None] = {}
        for name in names:
            entry = self.registries.get(name)
            out[name] = make_config(name, **entry["config"]) if entry and entry["exists"] else None
        return out

    async def check(self, registry: str, config: Any, settings: Settings) -> Diagnosis:
        self.checks += 1
        entry = self.registries[registry]
        status = str(entry["status"])
        if self.flip_interval:  # decided when the check starts, i.e. inside the slot being run
            status = (
                "healthy" if int(time.time() // self.flip_interval) % 2 == 0 else "firewall_ip_not_allowed"
            )
        if self.check_delay:
            await asyncio.sleep(self.check_delay)
        return diagnosis(status, failing=entry.get("failing") or {})

    def save(self, path: Path) -> None:
        data = {
            "check_delay": self.check_delay,
            "flip_interval": self.flip_interval,
            "registries": self.registries,
        }
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> World:
        data = json.loads(path.read_text())
        world = cls()
        world.check_delay = data.get("check_delay", 0.0)
        world.flip_interval = data.get("flip_interval", 0)
        world.registries = data["registries"]
        return world


def _world() -> World:
    return World.load(Path(os.environ["FAKE_REGISTRY_STATE"]))


async def read(names: list[str], settings: Settings) -> dict[str, RegistryConfig | None]:
    """Subprocess entry (``--reader tests/scheduler/fake_registry.py:read``)."""
    return await _world().read(names, settings)


async def check(registry: str, config: Any, settings: Settings) -> Diagnosis:
    """Subprocess entry (``--check tests/scheduler/fake_registry.py:check``)."""
    return await _world().check(registry, config, settings)
