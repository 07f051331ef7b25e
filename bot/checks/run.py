"""Live checks orchestration: run DNS, probes, ARM and logs concurrently under one deadline.

``az acr check-health`` runs its steps one after another with no timeouts and stops at the
first failure, so one black-holed endpoint hangs it and a DNS failure hides everything after
it. Here every check is a task with its own timeout, all tasks share an overall deadline
(``settings.check_deadline``), and whatever finished is reported: partial results are results.

The data path is discovered while the run is in flight: as soon as Resource Graph returns the
registry (its properties carry ``dataEndpointHostNames``), DNS and probes start for every data
endpoint, in parallel with the rest of the ARM reads. That keeps a full check close to the time
of its slowest single step. After the tasks end, cross-check findings are added that no single
check can see (a data endpoint failing while the login server works, a data record missing from
a private zone, the IP the registry reported tested against its allow list).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.checks import azure as azure_checks
from bot.checks import dns as dns_checks
from bot.checks import logs as logs_checks
from bot.checks import probe as probe_checks
from bot.checks.azure import privatelink_record_name
from bot.config import Settings
from bot.engine.hostguard import RegistryTarget, UnsafeTarget, registry_target
from bot.engine.models import Evidence, Status

log = logging.getLogger(__name__)

ALL_CHECKS = frozenset({"dns", "probe", "arm", "logs"})
#: Front ends probed per name; real registries answer 1-2 addresses, more would only add load.
MAX_ADDRESSES_PER_HOST = 8
#: Names listed in the evidence line that says which pasted names were not checked.
SHOWN_UNCHECKED = 5

#: Which checks can confirm or rule out each cause id (see shared/taxonomy.md).
CHECKS_FOR_CAUSE: dict[str, frozenset[str]] = {
    "client-dns": frozenset({"dns"}),
    "registry-not-found": frozenset({"dns", "arm"}),
    "client-firewall": frozenset({"dns", "probe", "arm"}),
    "client-firewall-data-endpoint": frozenset({"dns", "probe", "arm"}),
    # ARM too: the fix names every endpoint the proxy must tunnel / inspection must exempt.
    "client-proxy": frozenset({"dns", "probe", "arm"}),
    "tls-interception": frozenset({"dns", "probe", "arm"}),
    "registry-tls-config": frozenset({"probe"}),
    "registry-public-access": frozenset({"dns", "probe", "arm", "logs"}),
    "registry-private-endpoint": frozenset({"dns", "probe", "arm"}),
    "registry-resource-provider": frozenset({"arm"}),
    "service-integration": frozenset({"arm", "logs"}),
    "aks-pull": frozenset({"dns", "probe", "arm"}),
    "auth": frozenset({"probe", "logs"}),
    "other-acr": frozenset({"probe", "arm"}),
    "client-docker-daemon": frozenset(),
    "unrelated": frozenset(),
}

_TIMEOUT_FINDING = {
    "dns": "dns.timeout",
    "probe": "probe.timeout",
    "arm": "arm.error",
    "logs": "logs.skipped",
}
_CHECK_ORDER = {"guard": 0, "dns": 1, "probe": 2, "arm": 3, "logs": 4}
_HTTP_ANSWERS = {
    "probe.reachable",
    "probe.denied",
    "probe.anonymous",
    "probe.forbidden_other",
    "probe.server_error",
}
_PATH_FAILURES = {
    "probe.timeout",
    "probe.refused",
    "probe.reset",
    "probe.tls_untrusted",
    "probe.tls_intercepted",
    "probe.tls_name_mismatch",
}


def select_checks(hypotheses: Iterable[str] | None) -> frozenset[str]:
    """Checks needed for the given cause ids (or check names); None means everything."""
    if hypotheses is None:
        return ALL_CHECKS
    chosen: set[str] = set()
    for item in hypotheses:
        if item in ALL_CHECKS:
            chosen.add(item)
        else:
            chosen |= CHECKS_FOR_CAUSE.get(item, ALL_CHECKS)
    if "probe" in chosen:
        chosen.add("dns")  # probes only connect to addresses our own DNS returned
    return frozenset(chosen)


@dataclass
class _Endpoint:
    host: str
    kind: str  # login_server | data_endpoint | geo | privatelink
    order: int
    dns: Evidence | None = None
    probes: list[Evidence] = field(default_factory=list)


class _Run:
    """One run's tasks, results and shared clients."""

    def __init__(self, target: RegistryTarget, settings: Settings, checks: frozenset[str]) -> None:
        self.target = target
        self.settings = settings
        self.checks = checks
        self.loop = asyncio.get_running_loop()
        self.deadline = self.loop.time() + settings.check_deadline
        self.tasks: dict[asyncio.Task[None], tuple[str, str, int]] = {}
        self.evidence: list[tuple[tuple[int, int, int], Evidence]] = []
        self.endpoints: dict[str, _Endpoint] = {}
        self.config: azure_checks.RegistryConfig | None = None
        self.arm_ran = False
        self.client: httpx.AsyncClient | None = None
        self.credential: Any = None
        self._seq = 0

    # ---------------------------------------------------------------- bookkeeping
    def add(self, ev: Evidence, order: int = 0) -> None:
        self._seq += 1
        self.evidence.append(((_CHECK_ORDER.get(ev.check, 9), order, self._seq), ev))

    def spawn(
        self, check: str, target: str, coro: Awaitable[None], *, timeout: float, order: int = 0
    ) -> None:
        remaining = self.deadline - self.loop.time()
        if remaining <= 0:
            if asyncio.iscoroutine(coro):
                coro.close()
            self.add(self._late(check, target, "not started: the overall deadline had passed"), order)
            return
        task = asyncio.ensure_future(self._guarded(check, target, coro, timeout, order))
        self.tasks[task] = (check, target, order)

    async def _guarded(
        self, check: str, target: str, coro: Awaitable[None], timeout: float, order: int
    ) -> None:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                await coro
        except TimeoutError:
            self.add(
                Evidence(
                    check,
                    target,
                    self.settings.vantage_name,
                    Status.FAIL,
                    f"{check} check did not finish within its {timeout:g} s timeout",
                    {"timeout": timeout},
                    (time.perf_counter() - started) * 1000.0,
                    [_TIMEOUT_FINDING[check]],
                ),
                order,
            )
        except Exception as exc:  # an unexpected bug must not sink the other checks
            log.warning(
                "%s check of %s failed unexpectedly: %s", check, target, type(exc).__name__, exc_info=True
            )
            self.add(
                Evidence(
                    check,
                    target,
                    self.settings.vantage_name,
                    Status.FAIL,
                    f"{check} check failed unexpectedly ({type(exc).__name__})",
                    {},
                    (time.perf_counter() - started) * 1000.0,
                    [],
                ),
                order,
            )

    def _late(self, check: str, target: str, why: str) -> Evidence:
        return Evidence(
            check,
            target,
            self.settings.vantage_name,
            Status.SKIPPED,
            why,
            {"deadline": self.settings.check_deadline},
            0.0,
            [_TIMEOUT_FINDING.get(check, "")] if check in _TIMEOUT_FINDING else [],
        )

    async def wait(self) -> None:
        """Wait for all tasks (including ones spawned meanwhile) or the deadline; cancel the rest."""
        while True:
            pending = [t for t in self.tasks if not t.done()]
            if not pending:
                return
            remaining = self.deadline - self.loop.time()
            if remaining <= 0:
                break
            await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        pending = [t for t in self.tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in pending:
            check, target, order = self.tasks[task]
            why = f"{check} check cut off by the overall deadline ({self.settings.check_deadline:g} s)"
            self.add(self._late(check, target, why), order)

    async def cancel_all(self) -> None:
        """Cancel and wait for every task still running (also ones spawned while cancelling).

        Used when ``run_checks`` itself is cancelled or fails: its tasks must not outlive the
        client and credential that are closed right after.
        """
        for _ in range(5):  # bounded: a task that swallows its cancellation must not hang the caller
            pending = [t for t in self.tasks if not t.done()]
            if not pending:
                return
            for task in pending:
                task.cancel()
            _, still = await asyncio.wait(pending, timeout=2.0)
            if still:
                log.warning("%d live-check task(s) did not stop after being cancelled", len(still))
                return

    # ---------------------------------------------------------------- endpoints
    def endpoint(self, host: str, kind: str) -> None:
        """Start DNS (and probes) for ``host`` once; ``host`` must already have passed the guard."""
        host = host.lower().rstrip(".")
        if host in self.endpoints:
            return
        ep = _Endpoint(host, kind, len(self.endpoints))
        self.endpoints[host] = ep
        if "dns" in self.checks:
            self.spawn(
                "dns", host, self._dns_then_probe(ep), timeout=self.settings.dns_timeout + 1.0, order=ep.order
            )
        if "probe" in self.checks and self.settings.proxy:
            self.spawn(
                "probe",
                host,
                self._probe(ep, None),
                timeout=self.probe_task_timeout(),
                order=ep.order,
            )

    def probe_task_timeout(self) -> float:
        """A probe task's timeout: the probe's own worst case (request plus certificate explanation)
        with a margin, so a slow TLS-inspecting device ends as a TLS finding, not ``probe.timeout``."""
        return probe_checks.probe_budget(self.settings) + 1.0

    async def _dns_then_probe(self, ep: _Endpoint) -> None:
        ev, answer = await dns_checks.check_dns(ep.host, self.settings)
        ep.dns = ev
        self.add(ev, ep.order)
        if "probe" in self.checks and not self.settings.proxy:
            for address in answer.addresses[:MAX_ADDRESSES_PER_HOST]:
                self.spawn(
                    "probe",
                    ep.host,
                    self._probe(ep, address),
                    timeout=self.probe_task_timeout(),
                    order=ep.order,
                )

    async def _probe(self, ep: _Endpoint, address: str | None) -> None:
        assert self.client is not None
        kind = "data_endpoint" if ep.kind == "data_endpoint" else "login_server"
        # Started right after _guarded armed its timeout: finish a little before it, and before the
        # overall deadline, so the optional certificate explanation is cut short, not the probe.
        deadline = min(self.loop.time() + self.probe_task_timeout(), self.deadline) - 0.25
        chain = tuple(ep.dns.data.get("chain") or ()) if ep.dns is not None else ()
        ev = await probe_checks.check_probe(
            ep.host, address, self.settings, self.client, kind=kind, deadline=deadline, chain=chain
        )
        ep.probes.append(ev)
        self.add(ev, ep.order)

    # ---------------------------------------------------------------- ARM and logs
    def on_located(self, located: azure_checks.RegistryConfig) -> None:
        self.config = self.config or located
        for host in located.data_endpoints():
            self._guarded_endpoint(host, "data_endpoint")

    def _guarded_endpoint(self, host: str, kind: str) -> None:
        try:
            registry_target(host)
        except UnsafeTarget as exc:
            self.add(
                Evidence(
                    "guard",
                    host,
                    self.settings.vantage_name,
                    Status.SKIPPED,
                    f"not checked: {exc}",
                    {},
                    0.0,
                    [],
                )
            )
            return
        self.endpoint(host, kind)

    async def arm(self, client_ip: str | None) -> None:
        self.arm_ran = True
        result = await azure_checks.check_arm(
            self.target,
            self.settings,
            credential=self.credential,
            client_ip=client_ip,
            on_located=self.on_located,
        )
        if result.config is not None:
            self.config = result.config
            for host in result.config.data_endpoints():  # replicas Resource Graph did not list yet
                self._guarded_endpoint(host, "data_endpoint")
            for dns_map in result.config.private_endpoint_dns:  # every name a private endpoint serves
                for fqdn, _ in dns_map.records:
                    self._guarded_endpoint(fqdn, _kind_of(fqdn))
        for ev in result.evidence:
            self.add(ev)

    def paste_endpoints(self, hosts: Sequence[str]) -> list[str]:
        """Check the first ``settings.max_paste_hosts`` distinct names a paste gave; return the others.

        A paste can name hundreds of endpoints (a log of every replica, or a hostile one): each
        would cost DNS queries, probes and evidence lines. Names the run checks anyway (the
        login server, the target) are not counted.
        """
        distinct: list[str] = []
        for host in hosts:
            name = host.lower().rstrip(".")
            if name and name not in self.endpoints and name not in distinct:
                distinct.append(name)
        limit = self.settings.max_paste_hosts
        for name in distinct[:limit]:
            self._guarded_endpoint(name, _kind_of(name))
        return distinct[limit:]

    def report_unchecked(self, hosts: list[str]) -> None:
        """One line for the pasted names left out, minus those ARM named (they were checked anyway)."""
        left = [host for host in hosts if host not in self.endpoints]
        if not left:
            return
        shown = ", ".join(left[:SHOWN_UNCHECKED])
        more = f" and {len(left) - SHOWN_UNCHECKED} more" if len(left) > SHOWN_UNCHECKED else ""
        limit = self.settings.max_paste_hosts
        self.add(
            Evidence(
                "live",
                "paste",
                self.settings.vantage_name,
                Status.SKIPPED,
                f"{len(left)} more endpoint name(s) from the paste not checked: {shown}{more} (at most {limit} "
                "per paste, besides the login server and the data endpoints the registry's configuration "
                "names; setting max_paste_hosts)",
                {"unchecked": len(left), "hosts": left[:SHOWN_UNCHECKED], "limit": limit},
                0.0,
                [],
            ),
            99,
        )

    async def logs(self) -> None:
        self.add(await logs_checks.check_logs(self.target, self.settings, credential=self.credential))

    # ---------------------------------------------------------------- cross-checks
    def cross_check(self, client_ip: str | None) -> None:
        login = [ep for ep in self.endpoints.values() if ep.kind != "data_endpoint"]
        data = [ep for ep in self.endpoints.values() if ep.kind == "data_endpoint"]
        self.check_private_dns()
        self.check_invisible_registry()
        login_resolves = any(ep.dns and "dns.ok" in ep.dns.findings for ep in login)
        login_private = any(
            ep.dns and {"dns.private_answer", "dns.pe_ip_match"} & set(ep.dns.findings) for ep in login
        )
        login_answers = any(_HTTP_ANSWERS & set(p.findings) for ep in login for p in ep.probes)
        for ep in data:
            if ep.dns is not None:
                missing = ep.dns.findings and {"dns.nxdomain", "dns.noanswer"} & set(ep.dns.findings)
                public_only = (
                    "dns.public_answer" in ep.dns.findings and "dns.private_answer" not in ep.dns.findings
                )
                if login_resolves and (missing or (login_private and public_only)):
                    ep.dns.findings.append("dns.data_endpoint_missing")
                    ep.dns.detail += (
                        "; the login server resolves but this data endpoint does not"
                        if missing
                        else "; the login server resolves privately but this data endpoint publicly"
                    ) + " (missing record for this region?)"
            if login_answers:
                for ev in ep.probes:
                    if _PATH_FAILURES & set(ev.findings):
                        ev.findings.append("probe.data_endpoint_blocked")
                        ev.detail += "; the login server answers, so only the data path is blocked"
        if self.config is not None and not client_ip:
            seen = next(
                (
                    p.data.get("client_ip")
                    for ep in self.endpoints.values()
                    for p in ep.probes
                    if "probe.denied" in p.findings and p.data.get("client_ip")
                ),
                None,
            )
            if seen:
                ev = azure_checks.ip_rule_evidence(
                    self.config, seen, self.settings, source="the IP the registry saw from this vantage"
                )
                ev.data["bot_ip"] = True  # this vantage's own egress, not a client from a paste
                self.add(ev)
        if "arm" in self.checks and self.config is None and "dns" in self.checks:
            self.add(
                Evidence(
                    "dns",
                    self.target.login_server,
                    self.settings.vantage_name,
                    Status.SKIPPED,
                    "data endpoints not tested: without the registry configuration from ARM their names "
                    f"({self.target.name}.<region>.data.{self.target.login_server.split('.', 1)[1]}, or "
                    "*.blob.core.windows.net when dedicated data endpoints are off) are unknown",
                    {},
                    0.0,
                    [],
                ),
                99,
            )

    def check_private_dns(self) -> None:
        """Compare what this resolver answers with what each private endpoint says it should.

        The endpoint's NIC maps every registry FQDN (login server, one data endpoint per replica
        region) to its private IP. A name of that map that does not resolve while the resolver
        clearly uses the private zone (a privatelink CNAME, or another name answering its
        endpoint's IP) is a record missing from ``privatelink.<suffix>``; a different private IP
        is a stale or foreign record. Both name the record, the zone and the IP it should have.
        """
        maps = [m for m in (self.config.private_endpoint_dns if self.config else ()) if m.records]
        if not maps:
            return

        def answered(ep: _Endpoint) -> list[str]:
            return list(ep.dns.data.get("addresses") or []) if ep.dns is not None else []

        # The endpoint this resolver serves: the one whose IPs the answers match.
        matched = {
            m.name: sum(1 for fqdn, ips in m.records if fqdn in self.endpoints and set(ips) & set(answered(self.endpoints[fqdn])))
            for m in maps
        }
        chosen = max(maps, key=lambda m: matched[m.name])
        zone_in_use = matched[chosen.name] > 0
        for dns_map in maps:
            for fqdn, ips in dns_map.records:
                ep = self.endpoints.get(fqdn)
                if ep is None or ep.dns is None or ep.dns.data.get("config_error"):
                    continue
                got = answered(ep)
                if set(got) & set(ips):
                    if "dns.pe_ip_match" not in ep.dns.findings:
                        ep.dns.findings.append("dns.pe_ip_match")
                        ep.dns.detail += f"; that is private endpoint {dns_map.name}'s address for it"
                    continue
                if dns_map is not chosen:
                    continue  # the other endpoints' records live in other zones/VNets
                zone, zone_rg = dns_map.zone_for(fqdn)
                expected = {
                    "private_endpoint": dns_map.name,
                    "fqdn": fqdn,
                    "zone": zone,
                    "zone_resource_group": zone_rg,
                    "record_name": privatelink_record_name(fqdn),
                    "ips": list(ips),
                }
                rcode = str(ep.dns.data.get("rcode") or "")
                through_privatelink = bool(ep.dns.data.get("privatelink"))
                scopes = set((ep.dns.data.get("scopes") or {}).values())
                if rcode in ("NXDOMAIN", "NOANSWER") and (zone_in_use or through_privatelink):
                    ep.dns.findings.append("dns.pe_record_missing")
                    ep.dns.detail += (
                        f"; the private zone {zone} has no record {expected['record_name']} — private endpoint "
                        f"{dns_map.name} gives it {'/'.join(ips)}"
                    )
                elif got and zone_in_use and "public" in scopes:
                    ep.dns.findings.append("dns.pe_record_missing")
                    ep.dns.detail += (
                        f"; it answers publicly while the other names use the private zone: record "
                        f"{expected['record_name']} missing from {zone} (private endpoint {dns_map.name} gives it "
                        f"{'/'.join(ips)})"
                    )
                elif got and (zone_in_use or through_privatelink) and "public" not in scopes:
                    ep.dns.findings.append("dns.pe_record_wrong")
                    ep.dns.status = Status.FAIL
                    expected["actual"] = got
                    ep.dns.detail += (
                        f"; but private endpoint {dns_map.name} has {'/'.join(ips)} for it: the record "
                        f"{expected['record_name']} in {zone} is stale or points at another endpoint"
                    )
                else:
                    continue
                ep.dns.data["pe_expected"] = expected

    def check_invisible_registry(self) -> None:
        """Resource Graph found nothing, yet DNS answers for the registry: the bot may not read it."""
        login = self.endpoints.get(self.target.login_server)
        if login is None or login.dns is None or "dns.ok" not in login.dns.findings:
            return
        for _, ev in self.evidence:
            if ev.check != "arm" or "arm.not_found" not in ev.findings or ev.data.get("source") != "resource-graph":
                continue
            scope = azure_checks.registry_scope(self.target.name)
            command = azure_checks.grant_command(scope)
            addresses = dns_checks.shown(list(login.dns.data.get("addresses") or []))
            ev.findings = [f for f in ev.findings if f != "arm.not_found"] + ["arm.permission_missing"]
            ev.status = Status.WARN
            ev.detail = (
                f"{self.target.login_server} exists (DNS answers {addresses}) but Resource Graph shows no registry "
                f"'{self.target.name}': {azure_checks.cannot_read(f'registry {self.target.name}')} (or it is in "
                f"another tenant) — {command}"
            )
            ev.data.update({"scope": scope, "role": azure_checks.READER, "command": command})

    def results(self) -> list[Evidence]:
        return [ev for _, ev in sorted(self.evidence, key=lambda item: item[0])]


async def run_checks(
    target: RegistryTarget,
    settings: Settings,
    *,
    client_ip: str | None = None,
    hypotheses: list[str] | None = None,
    extra_hosts: Sequence[str] = (),
    paste_hosts: Sequence[str] = (),
) -> list[Evidence]:
    """Run the live checks the hypotheses need (None = all) and return every Evidence gathered.

    ``extra_hosts`` are checked whatever their number (data endpoints an ARM read named, a
    region given on the command line); ``paste_hosts``, names read from a paste, up to
    ``settings.max_paste_hosts`` (the rest are named in one skipped line).
    """
    checks = select_checks(hypotheses)
    run = _Run(target, settings, checks)
    started = time.perf_counter()
    try:
        if "probe" in checks:
            try:
                run.client = probe_checks.make_client(settings, proxy=bool(settings.proxy))
            except (probe_checks.CaBundleError, probe_checks.ProxyConfigError) as exc:
                # Both messages are built without credentials (the proxy is redacted).
                _report_no_probe(run, f"probes not run: {exc}")
                checks = checks - {"probe"}
                run.checks = checks
            except (ValueError, TypeError, ImportError, httpx.InvalidURL) as exc:
                # Anything else a bad setting makes httpx raise: its text may quote the proxy URL
                # with its password, so only the exception type and the redacted proxy are shown.
                proxy = probe_checks.redact_proxy(settings.proxy)
                _report_no_probe(
                    run, f"probes not run: the proxy setting {proxy or '(none)'} cannot be used ({type(exc).__name__})"
                )
                checks = checks - {"probe"}
                run.checks = checks
        if checks & {"arm", "logs"}:
            try:
                run.credential = azure_checks.make_credential(settings)
            except azure_checks.CredentialConfigError as exc:
                run.credential = None
                _report_no_credential(run, checks, str(exc))
                checks = checks - {"arm", "logs"}
                run.checks = checks
        run.endpoint(target.host or target.login_server, target.kind)
        if target.login_server != (target.host or target.login_server):
            run.endpoint(target.login_server, "login_server")
        for host in extra_hosts:
            run._guarded_endpoint(host, _kind_of(host))
        unchecked = run.paste_endpoints(paste_hosts)
        if "arm" in checks:
            run.spawn(
                "arm", target.login_server, run.arm(client_ip), timeout=settings.arm_timeout + 1.0, order=0
            )
        if "logs" in checks:
            run.spawn("logs", target.login_server, run.logs(), timeout=settings.arm_timeout + 1.0, order=0)
        await run.wait()
        run.cross_check(client_ip)
        run.report_unchecked(unchecked)
    finally:
        try:
            await run.cancel_all()
        finally:
            if run.client is not None:
                await run.client.aclose()
        if run.credential is not None:
            with contextlib.suppress(Exception):
                await run.credential.close()
    log.info(
        "live checks for %s: %d evidence in %.0f ms",
        target.login_server,
        len(run.evidence),
        (time.perf_counter() - started) * 1000.0,
    )
    return run.results()


def _report_no_probe(run: _Run, detail: str) -> None:
    settings = run.settings
    data = {"proxy": probe_checks.redact_proxy(settings.proxy)} if settings.proxy else {}
    run.add(
        Evidence(
            "probe",
            run.target.login_server,
            settings.vantage_name,
            Status.SKIPPED,
            detail,
            data,
            0.0,
            [],
        )
    )


def _report_no_credential(run: _Run, checks: frozenset[str], reason: str) -> None:
    settings = run.settings
    if "arm" in checks:
        run.add(
            Evidence(
                "arm",
                run.target.login_server,
                settings.vantage_name,
                Status.SKIPPED,
                f"registry configuration not read: {reason}",
                {},
                0.0,
                ["arm.no_credential"],
            )
        )
    if "logs" in checks:
        run.add(
            Evidence(
                "logs",
                run.target.login_server,
                settings.vantage_name,
                Status.SKIPPED,
                f"registry logs not checked: {reason}",
                {},
                0.0,
                ["logs.skipped"],
            )
        )


def _kind_of(host: str) -> str:
    try:
        return registry_target(host).kind
    except UnsafeTarget:
        return "other"


def run_checks_sync(
    target: RegistryTarget,
    settings: Settings,
    *,
    client_ip: str | None = None,
    hypotheses: list[str] | None = None,
    extra_hosts: Sequence[str] = (),
    paste_hosts: Sequence[str] = (),
) -> list[Evidence]:
    """Blocking wrapper for the CLI (must not be called from inside a running event loop)."""
    return asyncio.run(
        run_checks(
            target,
            settings,
            client_ip=client_ip,
            hypotheses=hypotheses,
            extra_hosts=extra_hosts,
            paste_hosts=paste_hosts,
        )
    )
