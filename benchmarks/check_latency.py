"""Benchmark: wall time of a full live check, concurrent vs one-after-another, on loopback fakes.

``az acr check-health`` runs its steps serially with no timeouts, so its cost is the *sum* of
every step and one black-holed endpoint hangs it. acrcheck's goal is a full check that costs
about as much as its slowest single check (target <= 1.3x), and a black-holed endpoint that
costs exactly its timeout.

The script starts the test fakes itself with realistic latency — DNS 20-60 ms per query, ARM
and Resource Graph 150-400 ms per call, probes 50-150 ms per step (TCP, TLS, HTTP) — and a
Premium registry with 3 replicas (login server + 3 dedicated data endpoints). It measures two
shapes: the registry on its public endpoints, and the same registry behind a private endpoint
(privatelink CNAMEs, and the extra ARM reads of the endpoint, its NIC and its DNS zone group
that give every expected private IP). Real clients (dnspython, httpx, the Azure SDK) run
unmodified; only the settings point at the fakes.

    .venv/bin/python benchmarks/check_latency.py [--runs 5] [--blackhole-timeout 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pydantic import SecretStr  # noqa: E402

from bot.checks.azure import check_arm  # noqa: E402
from bot.checks.dns import check_dns  # noqa: E402
from bot.checks.probe import check_probe, make_client  # noqa: E402
from bot.checks.run import run_checks  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.engine.hostguard import registry_target  # noqa: E402
from bot.engine.models import Evidence  # noqa: E402
from tests.fakes.acr import FakeACR  # noqa: E402
from tests.fakes.arm import SUB, FakeARM, registry_json  # noqa: E402
from tests.fakes.dns import FakeDNS  # noqa: E402
from tests.fakes.tls import TestPKI  # noqa: E402

REPLICAS = ("eastus", "japaneast")  # + the home region westeurope = 3 regions
DNS_LATENCY = (0.020, 0.060)
ARM_LATENCY = (0.150, 0.400)
PROBE_STEP = ((0.050, 0.150), (0.050, 0.150), (0.050, 0.150))  # tcp, tls, http
BLACKHOLE_IP = "127.0.0.7"


def start_fakes() -> tuple[TestPKI, FakeACR, FakeDNS, FakeARM]:
    pki = TestPKI()
    acr = FakeACR(pki, addresses=("127.0.0.5", "127.0.0.6", BLACKHOLE_IP))
    dns = FakeDNS()
    arm = FakeARM(pki)
    dns.state.latency = DNS_LATENCY
    arm.state.latency = ARM_LATENCY
    acr.state.latency = PROBE_STEP
    return pki, acr, dns, arm


def build_registry(dns: FakeDNS, arm: FakeARM, *, private: bool) -> list[str]:
    """The benchmark registry, public or behind a private endpoint; returns its endpoints."""
    arm.state.registries.clear()
    arm.state.private_endpoints.clear()
    with dns.state.lock:
        dns.state.zone.clear()
    body = registry_json(
        "myreg",
        data_endpoint_enabled=True,
        replicas=REPLICAS,
        default_action="Deny",
        ip_rules=("198.51.100.0/24",),
        public_network_access="Disabled" if private else "Enabled",
        private_endpoints=(("pe-hub", "Approved"),) if private else (),
    )
    arm.add(body, replicas=REPLICAS)
    hosts = [body["properties"]["loginServer"], *body["properties"]["dataEndpointHostNames"]]
    addresses = {host: "127.0.0.5" if i % 2 == 0 else "127.0.0.6" for i, host in enumerate(hosts)}
    for host, address in addresses.items():
        if private:
            labels = host.split(".")
            private_name = ".".join([*labels[:-2], "privatelink", *labels[-2:]])
            dns.cname(host, private_name)
            dns.a(private_name, address)
        else:
            dns.a(host, address)
    if private:
        arm.add_private_endpoint("pe-hub", addresses)
    return hosts


def settings_for(pki: TestPKI, acr: FakeACR, dns: FakeDNS, arm: FakeARM, probe_timeout: float = 3.0) -> Settings:
    return Settings(
        arm_endpoint=arm.url,
        ca_bundle=pki.ca_path,
        dns_servers=[dns.server_spec],
        dns_timeout=2.0,
        probe_port=acr.port,
        probe_timeout=probe_timeout,
        check_deadline=20.0,
        azure_credential="token",
        azure_token=SecretStr("bench-token"),
        subscriptions=[SUB],
        arm_timeout=5.0,
        vantage_name="benchmark",
        expected_tls_issuers=["acrcheck test public CA"],  # the fakes' CA plays Azure's issuing CA
    )


async def sequential(settings: Settings, hosts: list[str]) -> tuple[float, list[Evidence]]:
    """The same checks, one at a time (what a serial tool like check-health would pay)."""
    target = registry_target(hosts[0])
    evidence: list[Evidence] = []
    started = time.perf_counter()
    async with make_client(settings, proxy=False) as client:
        for host in hosts:
            ev, answer = await check_dns(host, settings)
            evidence.append(ev)
            for address in answer.addresses:
                evidence.append(await check_probe(host, address, settings, client))
    evidence.extend((await check_arm(target, settings)).evidence)
    return time.perf_counter() - started, evidence


async def concurrent(settings: Settings, hosts: list[str]) -> tuple[float, list[Evidence]]:
    started = time.perf_counter()
    evidence = await run_checks(registry_target(hosts[0]), settings, hypotheses=["dns", "probe", "arm"])
    return time.perf_counter() - started, evidence


def slowest(evidence: list[Evidence]) -> Evidence:
    # ARM yields several lines with the same duration: one check.
    return max(evidence, key=lambda ev: ev.duration_ms)


async def measure(settings: Settings, hosts: list[str], runs: int, label: str) -> float:
    """Median of concurrent / slowest-single over ``runs``; prints the figures."""
    await concurrent(settings, hosts)  # warm-up (imports, SSL context)
    seq_times, con_times, slow_singles, ratios = [], [], [], []
    slowest_ev: Evidence | None = None
    seq_ev: list[Evidence] = []
    for _ in range(runs):
        seq_wall, seq_ev = await sequential(settings, hosts)
        con_wall, con_ev = await concurrent(settings, hosts)
        single = slowest(seq_ev)
        seq_times.append(seq_wall)
        con_times.append(con_wall)
        slow_singles.append(single.duration_ms / 1000.0)
        ratios.append(con_wall / (single.duration_ms / 1000.0))
        slowest_ev = single
        unexpected = [ev.detail for ev in con_ev if ev.status == "fail" and ev.check in ("dns", "probe")]
        if unexpected:
            print("  unexpected failure in the concurrent run:", unexpected)
    assert slowest_ev is not None
    checks = sum(1 for ev in seq_ev if ev.check in ("dns", "probe")) + 1
    med_seq, med_con = statistics.median(seq_times), statistics.median(con_times)
    med_ratio = statistics.median(ratios)
    print(f"  [{label}] {len(hosts)} endpoints: {', '.join(hosts)}")
    print(f"  [{label}] checks per run: {checks} ({len(hosts)} DNS, {checks - len(hosts) - 1} probes, 1 ARM read)")
    print(f"  [{label}] sequential (one after another): median {med_seq:.3f} s  (runs: {_fmt(seq_times)})")
    print(f"  [{label}] concurrent (run_checks):        median {med_con:.3f} s  (runs: {_fmt(con_times)})")
    print(f"  [{label}] speed-up: {med_seq / med_con:.1f}x")
    print(
        f"  [{label}] slowest single check: median {statistics.median(slow_singles):.3f} s "
        f"(last run: {slowest_ev.check} {slowest_ev.target})"
    )
    verdict = "OK" if med_ratio <= 1.3 else "ABOVE TARGET"
    print(
        f"  [{label}] ratio concurrent / slowest single: median {med_ratio:.2f} (runs: {_fmt(ratios)}) "
        f"target <= 1.3: {verdict}"
    )
    return med_ratio


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--blackhole-timeout", type=float, default=2.0)
    args = parser.parse_args()
    pki, acr, dns, arm = start_fakes()
    try:
        settings = settings_for(pki, acr, dns, arm)
        print("acrcheck live-check latency benchmark (loopback fakes)")
        print(
            f"  latency: DNS {DNS_LATENCY[0] * 1e3:.0f}-{DNS_LATENCY[1] * 1e3:.0f} ms/query, "
            f"ARM {ARM_LATENCY[0] * 1e3:.0f}-{ARM_LATENCY[1] * 1e3:.0f} ms/call, "
            "probe 50-150 ms per TCP/TLS/HTTP step"
        )
        ratios = []
        for private in (False, True):
            hosts = build_registry(dns, arm, private=private)
            label = "private endpoint" if private else "public"
            ratios.append(await measure(settings, hosts, args.runs, label))

        # One data endpoint black-holed: its probe must cost its timeout, never hang the run.
        hosts = build_registry(dns, arm, private=False)
        victim = hosts[2]
        dns.remove(victim)
        dns.a(victim, BLACKHOLE_IP)
        acr.state.ip_modes[BLACKHOLE_IP] = "silent"
        bh_settings = settings_for(pki, acr, dns, arm, probe_timeout=args.blackhole_timeout)
        wall, evidence = await concurrent(bh_settings, hosts)
        hit = [ev for ev in evidence if ev.target == victim and ev.check == "probe"]
        print(
            f"  black-holed data endpoint {victim} (probe_timeout {args.blackhole_timeout:g} s): "
            f"full check {wall:.3f} s; its probe {hit[0].duration_ms / 1000.0:.3f} s "
            f"-> {', '.join(hit[0].findings)}"
        )
        overhead = wall - args.blackhole_timeout
        bounded = wall < args.blackhole_timeout + 1.0
        print(f"  cost beyond the timeout: {overhead:+.3f} s ({'bounded' if bounded else 'TOO SLOW'})")
        return 0 if all(r <= 1.3 for r in ratios) and bounded else 1
    finally:
        acr.stop()
        dns.stop()
        arm.stop()
        pki.close()


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
