"""End-to-end live scenarios, as data (issue 13, item 5).

Each scenario in ``tests/live/scenarios/*.yaml`` describes a world — the registry as ARM returns
it (replicas, network rules, bypass switches, private endpoints and the DNS map of their NICs),
what DNS answers (privatelink chains, missing records, loops, failures), how the registry front
ends behave (deny, black hole, interception, expired certificates, redirects), a proxy, Resource
Graph throttling or missing permissions — plus, optionally, the error a user pasted. The full
product path runs over the loopback fakes (``diagnose_live`` for a paste, ``check_registry``
without one) and the scenario's ``expect`` is asserted: the top cause, evidence lines, findings,
and every value the fix must name (and must not name). A new shape is a new YAML entry, not code.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

from bot.checks.run import run_checks
from bot.diagnose import check_registry, diagnose_live, paste_target
from bot.engine.classify import classify
from bot.engine.extract import extract
from bot.engine.hostguard import registry_target
from bot.engine.models import Diagnosis
from bot.engine.render_text import fix_list
from bot.engine.rerank import rerank
from tests.conftest_live import SettingsFactory, World
from tests.fakes.acr import FakeACR
from tests.fakes.arm import FakeARM
from tests.fakes.dns import FakeDNS
from tests.fakes.proxy import FakeProxy
from tests.fakes.tls import TestPKI

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

#: Causes that a live check can confirm or rule out (taxonomy: "what decides it live").
LIVE_CAUSES = {
    "client-dns",
    "registry-not-found",
    "client-firewall",
    "client-firewall-data-endpoint",
    "client-proxy",
    "tls-interception",
    "registry-public-access",
    "registry-private-endpoint",
    "service-integration",
    "auth",
    "other-acr",
    "aks-pull",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrivateEndpointSpec(_Strict):
    name: str
    records: dict[str, str]  # fqdn -> the private IP its NIC gives it
    rg: str = "rg-vnet"
    zone_rg: str | None = "rg-dns"
    mode: str = "ok"


class DnsSpec(_Strict):
    remove: list[str] = Field(default_factory=list)
    a: dict[str, list[str]] = Field(default_factory=dict)
    cname: dict[str, str] = Field(default_factory=dict)
    chain: list[list[str]] = Field(default_factory=list)
    servfail: list[str] = Field(default_factory=list)
    refused: list[str] = Field(default_factory=list)
    blackhole: list[str] = Field(default_factory=list)
    max_chain: int | None = None


class AcrSpec(_Strict):
    modes: dict[str, str] = Field(default_factory=dict)
    ip_modes: dict[str, str] = Field(default_factory=dict)
    deny_ip: str | None = None


class Expect(_Strict):
    cause: str
    evidence: list[str] = Field(default_factory=list)  # substrings, each in some evidence line
    not_evidence: list[str] = Field(default_factory=list)
    findings: list[str] = Field(default_factory=list)  # each carried by some evidence line
    fix: list[str] = Field(default_factory=list)  # every value the fix must name
    not_fix: list[str] = Field(default_factory=list)
    supported_by: list[str] = Field(default_factory=list)  # substrings of the top cause's support
    reasons: list[str] = Field(default_factory=list)  # substrings of the top cause's reasons
    complete_fix: bool = False  # no <placeholder> left in any fix step


class Scenario(_Strict):
    id: str
    shape: str  # what this scenario stands for, in a sentence
    paste: str | None = None
    registry: str = "myreg"
    arm: dict[str, Any] | None = None  # registry_json() arguments; None: not visible in ARM
    arm_mode: str = "ok"
    rg_mode: str = "ok"
    throttle_times: int = 1
    retry_after: float = 0.2
    logs_mode: str = "ok"
    private_endpoints: list[PrivateEndpointSpec] = Field(default_factory=list)
    privatelink: dict[str, str | None] = Field(default_factory=dict)  # fqdn -> IP in the zone (None: no record)
    dns: DnsSpec = Field(default_factory=DnsSpec)
    acr: AcrSpec = Field(default_factory=AcrSpec)
    proxy: str | None = None  # a fake proxy mode; settings.proxy then points at it
    settings: dict[str, Any] = Field(default_factory=dict)
    hypotheses: list[str] | None = None  # restrict the checks (classification-only worlds)
    expect: Expect


def load_scenarios() -> list[Scenario]:
    scenarios: list[Scenario] = []
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            scenarios.append(Scenario.model_validate(raw))
    return scenarios


SCENARIOS = load_scenarios()


def test_the_suite_covers_every_live_cause_in_at_least_two_shapes() -> None:
    ids = [s.id for s in SCENARIOS]
    assert len(ids) == len(set(ids)), "scenario ids must be unique"
    assert len(SCENARIOS) >= 40
    by_cause = Counter(s.expect.cause for s in SCENARIOS)
    thin = {cause: by_cause.get(cause, 0) for cause in LIVE_CAUSES if by_cause.get(cause, 0) < 2}
    assert not thin, f"live causes with fewer than two shapes: {thin}"
    shapes = " ".join(s.shape.lower() for s in SCENARIOS)
    for needed in ("replicated", "private dns zone", "proxy", "throttl", "permission"):
        assert needed in shapes, needed


def _build_world(s: Scenario, world: World, fake_dns: FakeDNS, fake_acr: FakeACR, fake_arm: FakeARM, fake_proxy: FakeProxy) -> None:
    replicas = tuple((s.arm or {}).get("replicas", ()))
    arm_fields = {k: v for k, v in (s.arm or {}).items() if k != "replicas"}
    if "private_endpoints" in arm_fields:
        arm_fields["private_endpoints"] = tuple(tuple(pe) for pe in arm_fields["private_endpoints"])
    if "ip_rules" in arm_fields:
        arm_fields["ip_rules"] = tuple(arm_fields["ip_rules"])
    world.registry(s.registry, replicas=replicas, in_arm=s.arm is not None, arm_mode=s.arm_mode, **arm_fields)
    fake_arm.state.rg_mode = s.rg_mode
    fake_arm.state.throttle_times = s.throttle_times
    fake_arm.state.retry_after = s.retry_after
    fake_arm.state.logs_mode = s.logs_mode
    for pe in s.private_endpoints:
        fake_arm.add_private_endpoint(pe.name, pe.records, rg=pe.rg, zone_rg=pe.zone_rg, mode=pe.mode)
    for fqdn, address in s.privatelink.items():
        labels = fqdn.split(".")
        private_name = ".".join([*labels[:-2], "privatelink", *labels[-2:]])
        fake_dns.remove(fqdn)
        fake_dns.cname(fqdn, private_name)
        fake_dns.remove(private_name)
        if address:
            fake_dns.a(private_name, address)
    for name in s.dns.remove:
        fake_dns.remove(name)
    for name, target in s.dns.cname.items():
        fake_dns.cname(name, target)
    for hops in s.dns.chain:
        fake_dns.chain(*hops)
    for name, addresses in s.dns.a.items():
        fake_dns.a(name, *addresses)
    fake_dns.state.servfail.update(f"{n.rstrip('.')}." for n in s.dns.servfail)
    fake_dns.state.refused.update(f"{n.rstrip('.')}." for n in s.dns.refused)
    fake_dns.state.blackhole.update(f"{n.rstrip('.')}." for n in s.dns.blackhole)
    if s.dns.max_chain:
        fake_dns.state.max_chain = s.dns.max_chain
    fake_acr.state.modes.update({h.lower(): m for h, m in s.acr.modes.items()})
    fake_acr.state.ip_modes.update(s.acr.ip_modes)
    if s.acr.deny_ip:
        fake_acr.state.deny_ip = s.acr.deny_ip
    if s.proxy:
        fake_proxy.state.mode = s.proxy


def _settings(s: Scenario, make_settings: SettingsFactory, pki: TestPKI, fake_proxy: FakeProxy) -> Any:
    overrides = dict(s.settings)
    if overrides.get("ca_bundle") == "both":  # the corporate inspection CA is trusted here too
        overrides["ca_bundle"] = pki.both_path
    if s.proxy:
        overrides["proxy"] = fake_proxy.url
    return make_settings(**overrides)


async def _diagnose(s: Scenario, settings: Any) -> Diagnosis:
    if s.hypotheses is not None:
        extraction = extract(s.paste) if s.paste else None
        target = (paste_target(extraction) if extraction else None) or registry_target(s.registry)
        client_ip = extraction.facts.client_ip if extraction else None
        evidence = await run_checks(target, settings, client_ip=client_ip, hypotheses=s.hypotheses)
        offline = classify(extraction) if extraction else None
        return rerank(offline, evidence, registry=target.login_server, extraction=extraction)
    if s.paste:
        return await diagnose_live(s.paste, settings)
    return await check_registry(s.registry, settings)


def _explain(d: Diagnosis) -> str:
    lines = [f"cause {d.cause}; ranking {[(c.id, c.score) for c in d.causes]}"]
    lines += [f"  evidence [{e.status}] {e.check} {e.target}: {e.detail} {e.findings}" for e in d.evidence]
    lines += [f"  fix: {step}" for step in fix_list(d)]
    return "\n".join(lines)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
async def test_scenario(
    scenario: Scenario,
    world: World,
    fake_dns: FakeDNS,
    fake_acr: FakeACR,
    fake_arm: FakeARM,
    fake_proxy: FakeProxy,
    make_settings: SettingsFactory,
    pki: TestPKI,
) -> None:
    _build_world(scenario, world, fake_dns, fake_acr, fake_arm, fake_proxy)
    settings = _settings(scenario, make_settings, pki, fake_proxy)
    started = time.perf_counter()
    d = await _diagnose(scenario, settings)
    elapsed = time.perf_counter() - started
    why = _explain(d)
    expect = scenario.expect
    assert elapsed < settings.check_deadline + 0.25, f"took {elapsed:.2f} s (deadline {settings.check_deadline:g} s)\n{why}"
    assert d.cause == expect.cause, why
    details = [f"{e.detail} ({e.vantage})" for e in d.evidence]
    for text in expect.evidence:
        assert any(text in line for line in details), f"no evidence line with {text!r}\n{why}"
    for text in expect.not_evidence:
        assert not any(text in line for line in details), f"evidence must not say {text!r}\n{why}"
    carried = {f for e in d.evidence for f in e.findings}
    for name in expect.findings:
        assert name in carried, f"finding {name} missing\n{why}"
    fix = "\n".join(fix_list(d))
    for value in expect.fix:
        assert value in fix, f"the fix does not name {value!r}\n{why}"
    for value in expect.not_fix:
        assert value not in fix, f"the fix must not name {value!r}\n{why}"
    if expect.complete_fix:
        assert all(step.complete for step in d.fix), f"a fix step kept a placeholder\n{why}"
    top = d.causes[0]
    for text in expect.supported_by:
        assert any(text in line for line in top.supported_by), f"support lacks {text!r}\n{why}"
    for text in expect.reasons:
        assert any(text in line for line in top.reasons), f"reasons lack {text!r}\n{why}"
