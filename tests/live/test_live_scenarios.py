"""End-to-end live-check scenarios: real DNS, TLS, HTTP, ARM and proxy protocols against loopback fakes."""

from __future__ import annotations

import time

from bot.checks.run import run_checks, select_checks
from bot.engine.hostguard import registry_target
from bot.engine.models import Evidence, Status
from tests.conftest_live import (
    BLACKHOLE_IP,
    SECOND_IP,
    VANTAGE,
    SettingsFactory,
    World,
    assert_vantage,
    findings,
    with_finding,
)
from tests.fakes.acr import FakeACR
from tests.fakes.arm import FakeARM
from tests.fakes.dns import FakeDNS
from tests.fakes.proxy import FakeProxy

LOGIN = "myreg.azurecr.io"


async def test_healthy_registry(world: World, make_settings: SettingsFactory, fake_acr: FakeACR) -> None:
    world.registry(data_endpoint_enabled=True, replicas=("eastus",))
    evidence = await run_checks(registry_target("myreg"), make_settings())
    assert_vantage(evidence)
    assert "probe.reachable" in findings(evidence, check="probe", target=LOGIN)
    data_hosts = {"myreg.westeurope.data.azurecr.io", "myreg.eastus.data.azurecr.io"}
    probed = {ev.target for ev in evidence if ev.check == "probe"}
    assert data_hosts | {LOGIN} <= probed
    assert {"arm.found", "arm.data_endpoint_enabled"} <= findings(evidence, check="arm")
    assert not [ev for ev in evidence if ev.status == Status.FAIL]
    assert {sni for _, sni in fake_acr.state.sni_log} >= data_hosts | {LOGIN}
    logs = [ev for ev in evidence if ev.check == "logs"]
    assert logs and logs[0].findings == ["logs.skipped"] and "log_workspace_id" in logs[0].detail


async def test_registry_denies_client_ip(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    world.registry(default_action="Deny", ip_rules=("198.51.100.0/24", "192.0.2.7"))
    fake_acr.state.modes[LOGIN] = "deny"
    fake_acr.state.deny_ip = "203.0.113.50"
    evidence = await run_checks(registry_target(LOGIN), make_settings())
    assert_vantage(evidence)
    denied = with_finding(evidence, "probe.denied")
    assert denied and denied[0].data["client_ip"] == "203.0.113.50"
    assert "403 DENIED" in denied[0].detail and "203.0.113.50" in denied[0].detail
    assert denied[0].status == Status.FAIL
    default_deny = with_finding(evidence, "arm.default_deny")[0]
    assert "198.51.100.0/24" in default_deny.detail
    not_allowed = with_finding(evidence, "arm.ip_not_allowed")[0]
    assert "203.0.113.50" in not_allowed.detail and "the IP the registry saw" in not_allowed.detail


async def test_given_client_ip_is_tested_cidr_aware(world: World, make_settings: SettingsFactory) -> None:
    world.registry(default_action="Deny", ip_rules=("198.51.100.0/24",))
    evidence = await run_checks(registry_target("myreg"), make_settings(), client_ip="198.51.100.77")
    allowed = with_finding(evidence, "arm.ip_allowed")
    assert allowed and "198.51.100.0/24" in allowed[0].detail and allowed[0].vantage == VANTAGE


async def test_public_access_disabled(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    world.registry(public_network_access="Disabled", default_action="Deny")
    fake_acr.state.modes[LOGIN] = "deny"
    evidence = await run_checks(registry_target("myreg"), make_settings())
    assert_vantage(evidence)
    pna = with_finding(evidence, "arm.public_access_disabled")[0]
    assert pna.status == Status.WARN and "Disabled" in pna.detail
    assert with_finding(evidence, "probe.denied")
    ip_line = with_finding(evidence, "arm.ip_not_allowed")[0]
    assert "public network access is Disabled" in ip_line.detail


async def test_private_endpoint_name_resolves_publicly(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    """privatelink CNAME but a public A: the client's DNS does not use the private zone.

    Classification only: the public address is never connected to (probes are not selected).
    """
    world.registry(
        public_network_access="Disabled", default_action="Deny", private_endpoints=(("pe-hub", "Approved"),)
    )
    fake_dns.remove(LOGIN)
    fake_dns.cname(LOGIN, "myreg.privatelink.azurecr.io")
    fake_dns.cname("myreg.privatelink.azurecr.io", "weu-1.fe.azcr.io")
    fake_dns.a("weu-1.fe.azcr.io", "20.61.99.10")
    evidence = await run_checks(registry_target("myreg"), make_settings(), hypotheses=["dns", "arm"])
    assert_vantage(evidence)
    dns_ev = next(ev for ev in evidence if ev.check == "dns" and ev.target == LOGIN)
    assert {"dns.privatelink_chain", "dns.public_answer", "dns.privatelink_public_answer"} <= set(
        dns_ev.findings
    )
    assert dns_ev.status == Status.WARN
    assert dns_ev.data["chain"] == [LOGIN, "myreg.privatelink.azurecr.io", "weu-1.fe.azcr.io"]
    assert "20.61.99.10 (public)" in dns_ev.detail and "private DNS zone not used" in dns_ev.detail
    assert {"arm.public_access_disabled", "arm.pe_approved"} <= findings(evidence, check="arm")
    assert not [ev for ev in evidence if ev.check == "probe"]


async def test_private_endpoint_resolves_privately(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    world.registry(in_arm=False)
    fake_dns.remove(LOGIN)
    fake_dns.cname(LOGIN, "myreg.privatelink.azurecr.io")
    fake_dns.a("myreg.privatelink.azurecr.io", "10.20.0.5")
    evidence = await run_checks(registry_target("myreg"), make_settings(), hypotheses=["client-dns"])
    assert select_checks(["client-dns"]) == {"dns"}
    dns_ev = next(ev for ev in evidence if ev.target == LOGIN)
    assert {"dns.ok", "dns.privatelink_chain", "dns.private_answer"} <= set(dns_ev.findings)
    assert "dns.privatelink_public_answer" not in dns_ev.findings
    assert "10.20.0.5 (private)" in dns_ev.detail


async def test_private_endpoint_pending_and_rejected(world: World, make_settings: SettingsFactory) -> None:
    world.registry(
        public_network_access="Disabled",
        default_action="Deny",
        private_endpoints=(("pe-aks", "Pending"), ("pe-hub", "Rejected"), ("pe-old", "Disconnected")),
    )
    evidence = await run_checks(registry_target("myreg"), make_settings(), hypotheses=["arm"])
    assert_vantage(evidence)
    pending = with_finding(evidence, "arm.pe_pending")[0]
    assert (
        pending.status == Status.FAIL and "pe-aks" in pending.detail and "awaiting approval" in pending.detail
    )
    rejected = with_finding(evidence, "arm.pe_rejected")[0]
    assert rejected.status == Status.FAIL and "pe-hub" in rejected.detail
    assert "recreate" in with_finding(evidence, "arm.pe_disconnected")[0].detail


async def test_replica_data_endpoint_missing_in_dns(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    world.registry(data_endpoint_enabled=True, replicas=("eastus", "japaneast"))
    fake_dns.remove("myreg.japaneast.data.azurecr.io")
    evidence = await run_checks(registry_target("myreg"), make_settings())
    assert_vantage(evidence)
    missing = with_finding(evidence, "dns.data_endpoint_missing")
    assert [ev.target for ev in missing] == ["myreg.japaneast.data.azurecr.io"]
    assert "dns.nxdomain" in missing[0].findings and "login server resolves" in missing[0].detail
    assert "probe.reachable" in findings(evidence, check="probe", target=LOGIN)
    assert "probe.reachable" in findings(evidence, check="probe", target="myreg.eastus.data.azurecr.io")


async def test_replica_data_endpoint_blocked_while_login_works(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS, fake_acr: FakeACR
) -> None:
    world.registry(data_endpoint_enabled=True, replicas=("eastus", "japaneast"))
    blocked = "myreg.eastus.data.azurecr.io"
    fake_dns.remove(blocked)
    fake_dns.a(blocked, BLACKHOLE_IP)
    fake_acr.state.ip_modes[BLACKHOLE_IP] = "silent"
    settings = make_settings()
    started = time.perf_counter()
    evidence = await run_checks(registry_target("myreg"), settings)
    elapsed = time.perf_counter() - started
    assert_vantage(evidence)
    hits = with_finding(evidence, "probe.data_endpoint_blocked")
    assert [ev.target for ev in hits] == [blocked]
    assert "probe.timeout" in hits[0].findings and BLACKHOLE_IP in hits[0].detail
    assert "only the data path is blocked" in hits[0].detail
    assert "probe.reachable" in findings(evidence, check="probe", target=LOGIN)
    assert elapsed < settings.probe_timeout + 1.5  # cost is the probe timeout, not a hang


async def test_nxdomain_registry(make_settings: SettingsFactory) -> None:
    evidence = await run_checks(registry_target("ghostreg"), make_settings())
    assert_vantage(evidence)
    dns_ev = next(ev for ev in evidence if ev.check == "dns" and ev.target == "ghostreg.azurecr.io")
    assert (
        dns_ev.findings == ["dns.nxdomain"] and "NXDOMAIN" in dns_ev.detail and dns_ev.status == Status.FAIL
    )
    assert "arm.not_found" in findings(evidence, check="arm")
    assert not [ev for ev in evidence if ev.check == "probe"]


async def test_tasks_bypass_off(world: World, make_settings: SettingsFactory) -> None:
    world.registry(default_action="Deny", ip_rules=("198.51.100.0/24",), tasks_bypass=False)
    evidence = await run_checks(registry_target("myreg"), make_settings(), hypotheses=["service-integration"])
    line = with_finding(evidence, "arm.tasks_bypass_off")[0]
    assert line.status == Status.WARN and "networkRuleBypassAllowedForTasks" in line.detail
    assert line.vantage == VANTAGE
    assert not [ev for ev in evidence if ev.check in ("dns", "probe")]


async def test_tasks_bypass_off_is_harmless_when_open(world: World, make_settings: SettingsFactory) -> None:
    world.registry(tasks_bypass=False)
    evidence = await run_checks(registry_target("myreg"), make_settings(), hypotheses=["arm"])
    assert "arm.tasks_bypass_off" not in findings(evidence)
    assert any("no effect while the registry is open" in ev.detail for ev in evidence)


async def test_trusted_services_off(world: World, make_settings: SettingsFactory) -> None:
    world.registry(public_network_access="Disabled", default_action="Deny", bypass_options="None")
    evidence = await run_checks(registry_target("myreg"), make_settings(), hypotheses=["arm"])
    line = with_finding(evidence, "arm.trusted_services_off")[0]
    assert line.status == Status.WARN and "networkRuleBypassOptions None" in line.detail
    assert line.vantage == VANTAGE


async def test_no_credentials_still_runs_dns_and_probes(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry()
    evidence = await run_checks(registry_target("myreg"), make_settings(azure_credential="none"))
    assert_vantage(evidence)
    arm = with_finding(evidence, "arm.no_credential")[0]
    assert arm.status == Status.SKIPPED and "no Azure credential" in arm.detail
    assert "logs.skipped" in findings(evidence, check="logs")
    assert "dns.ok" in findings(evidence, check="dns", target=LOGIN)
    assert "probe.reachable" in findings(evidence, check="probe", target=LOGIN)
    assert fake_arm.calls() == []
    note = [ev for ev in evidence if "data endpoints not tested" in ev.detail]
    assert note and "blob.core.windows.net" in note[0].detail


async def test_token_mode_without_token_is_reported(world: World, make_settings: SettingsFactory) -> None:
    world.registry()
    evidence = await run_checks(
        registry_target("myreg"), make_settings(azure_token=None), hypotheses=["arm", "probe"]
    )
    arm = with_finding(evidence, "arm.no_credential")[0]
    assert "ACRCHECK_AZURE_TOKEN" in arm.detail
    assert "probe.reachable" in findings(evidence, check="probe")


async def test_tls_interception(world: World, make_settings: SettingsFactory, fake_acr: FakeACR) -> None:
    world.registry()
    fake_acr.state.modes[LOGIN] = "intercept"
    evidence = await run_checks(registry_target("myreg"), make_settings(), hypotheses=["tls-interception"])
    line = with_finding(evidence, "probe.tls_intercepted")[0]
    assert line.status == Status.FAIL and line.vantage == VANTAGE
    assert "Contoso TLS Inspection" in line.detail and line.data["cert_issuer"].endswith(
        "Contoso TLS Inspection"
    )
    assert line.data["cert_verified"] is False


async def test_privatelink_host_used_directly_is_a_name_mismatch(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    world.registry(in_arm=False)
    fake_dns.a("myreg.privatelink.azurecr.io", "127.0.0.5")
    evidence = await run_checks(
        registry_target("myreg.privatelink.azurecr.io"), make_settings(), hypotheses=["dns", "probe"]
    )
    mismatch = with_finding(evidence, "probe.tls_name_mismatch")
    assert [ev.target for ev in mismatch] == ["myreg.privatelink.azurecr.io"]
    assert "*.azurecr.io" in mismatch[0].detail
    assert "probe.reachable" in findings(evidence, check="probe", target=LOGIN)


async def test_refused_reset_and_server_error(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS, fake_acr: FakeACR
) -> None:
    world.registry("refusedreg", address="127.0.0.9", in_arm=False)
    world.registry("resetreg", in_arm=False)
    world.registry("brokenreg", in_arm=False)
    fake_acr.state.modes["resetreg.azurecr.io"] = "reset"
    fake_acr.state.modes["brokenreg.azurecr.io"] = "error"
    settings = make_settings(azure_credential="none")
    results = {}
    for name in ("refusedreg", "resetreg", "brokenreg"):
        results[name] = await run_checks(registry_target(name), settings, hypotheses=["probe"])
    assert "probe.refused" in findings(results["refusedreg"], check="probe")
    assert "probe.reset" in findings(results["resetreg"], check="probe")
    error = with_finding(results["brokenreg"], "probe.server_error")[0]
    assert "HTTP 503" in error.detail and error.data["correlation_id"]


async def test_sni_is_never_reused_across_names_on_one_address(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    """Two registries on one shared front end: each probe must do its own handshake."""
    world.registry("firstreg", in_arm=False)
    world.registry("secondreg", in_arm=False)
    fake_acr.state.modes["secondreg.azurecr.io"] = "deny"
    settings = make_settings(azure_credential="none")
    first = await run_checks(
        registry_target("firstreg"),
        settings,
        hypotheses=["probe"],
        extra_hosts=["secondreg.azurecr.io"],
    )
    assert "probe.reachable" in findings(first, target="firstreg.azurecr.io")
    assert "probe.denied" in findings(first, target="secondreg.azurecr.io")
    snis = [sni for _, sni in fake_acr.state.sni_log]
    assert "firstreg.azurecr.io" in snis and "secondreg.azurecr.io" in snis


async def test_multiple_addresses_are_all_probed(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS, fake_acr: FakeACR
) -> None:
    world.registry(in_arm=False)
    fake_dns.a(LOGIN, SECOND_IP)
    evidence = await run_checks(
        registry_target("myreg"), make_settings(azure_credential="none"), hypotheses=["probe"]
    )
    addresses = {ev.data["address"] for ev in evidence if ev.check == "probe"}
    assert addresses == {"127.0.0.5", SECOND_IP}
    assert {addr for addr, _, _ in fake_acr.state.requests} == {"127.0.0.5", SECOND_IP}


async def test_overall_deadline_keeps_partial_results(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry(arm_mode="slow")
    fake_arm.state.slow_seconds = 3.0
    settings = make_settings(arm_timeout=5.0, check_deadline=0.8)
    started = time.perf_counter()
    evidence = await run_checks(registry_target("myreg"), settings)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.5
    assert "probe.reachable" in findings(evidence, check="probe")
    cut = [ev for ev in evidence if ev.check == "arm"]
    assert cut and cut[0].status == Status.SKIPPED and "overall deadline" in cut[0].detail
    assert cut[0].vantage == VANTAGE


async def test_unsafe_dns_answers_are_not_probed(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    """DNS that returns metadata/link-local addresses for a registry name gets no connection."""
    world.registry(in_arm=False)
    fake_dns.remove(LOGIN)
    fake_dns.a(LOGIN, "169.254.169.254", "0.0.0.0", "::ffff:169.254.169.254")
    evidence = await run_checks(
        registry_target("myreg"), make_settings(azure_credential="none"), hypotheses=["probe"]
    )
    skipped = [ev for ev in evidence if ev.check == "probe"]
    assert len(skipped) == 3 and all(ev.status == Status.SKIPPED for ev in skipped)
    assert all(ev.data["outcome"] == "unsafe-address" for ev in skipped)


async def test_loopback_answers_need_a_loopback_resolver(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    from bot.checks.probe import address_refusal

    assert address_refusal("127.0.0.5", make_settings()) is None
    assert address_refusal("127.0.0.5", make_settings(dns_servers=["10.0.0.4"])) is not None
    assert address_refusal("10.1.2.3", make_settings(dns_servers=["10.0.0.4"])) is not None  # no privatelink CNAME
    chain = ("myreg.azurecr.io", "myreg.privatelink.azurecr.io")
    assert address_refusal("10.1.2.3", make_settings(dns_servers=["10.0.0.4"]), chain=chain) is None
    assert address_refusal("64:ff9b::a9fe:a9fe", make_settings()) is not None  # NAT64 of 169.254.169.254


# ---------------------------------------------------------------------------- proxy


async def _proxied(
    world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy, mode: str, **kw: object
) -> list[Evidence]:
    world.registry(in_arm=False)
    fake_proxy.state.mode = mode
    settings = make_settings(proxy=kw.pop("proxy", fake_proxy.url), azure_credential="none")
    return await run_checks(registry_target("myreg"), settings, hypotheses=["client-proxy"])


async def test_proxy_tunnel_ok(world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy) -> None:
    evidence = await _proxied(world, make_settings, fake_proxy, "tunnel")
    probe = next(ev for ev in evidence if ev.check == "probe")
    assert {"proxy.ok", "probe.reachable"} <= set(probe.findings)
    assert "via the proxy" in probe.detail and probe.data["via_proxy"] is True
    assert "proxy.start_tls.started" in probe.data["phases"]
    assert fake_proxy.state.requests[0][0].startswith(f"CONNECT {LOGIN}:")


async def test_proxy_eof(world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy) -> None:
    evidence = await _proxied(world, make_settings, fake_proxy, "eof")
    probe = next(ev for ev in evidence if ev.check == "probe")
    assert probe.findings == ["proxy.eof"] and probe.status == Status.FAIL and probe.vantage == VANTAGE
    assert "closed the connection during CONNECT" in probe.detail
    assert not any(p.startswith("proxy.start_tls") for p in probe.data["phases"])
    assert "dns.ok" in findings(evidence, check="dns")  # the bot's own DNS still ran


async def test_proxy_forbidden(world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy) -> None:
    evidence = await _proxied(world, make_settings, fake_proxy, "403")
    probe = next(ev for ev in evidence if ev.check == "probe")
    assert probe.findings == ["proxy.forbidden"] and "refused CONNECT" in probe.detail


async def test_proxy_auth_required_and_credentials_redacted(
    world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy
) -> None:
    evidence = await _proxied(world, make_settings, fake_proxy, "407")
    probe = next(ev for ev in evidence if ev.check == "probe")
    assert probe.findings == ["proxy.auth_required"] and "407" in probe.detail
    fake_proxy.state.requests.clear()
    fake_proxy.state.credentials = ("alice", "s3cret")
    proxy_url = fake_proxy.url.replace("http://", "http://alice:s3cret@")
    evidence = await _proxied(world, make_settings, fake_proxy, "407", proxy=proxy_url)
    probe = next(ev for ev in evidence if ev.check == "probe")
    assert {"proxy.ok", "probe.reachable"} <= set(probe.findings)
    assert fake_proxy.state.requests[-1][1] is True
    assert all("s3cret" not in ev.detail and "s3cret" not in str(ev.data) for ev in evidence)


async def test_proxy_unreachable_and_bad_gateway(
    world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy
) -> None:
    evidence = await _proxied(world, make_settings, fake_proxy, "tunnel", proxy="http://127.0.0.9:9")
    assert findings(evidence, check="probe") == {"proxy.unreachable"}
    evidence = await _proxied(world, make_settings, fake_proxy, "502")
    probe = next(ev for ev in evidence if ev.check == "probe")
    assert probe.findings == ["proxy.error"] and "502" in probe.detail


async def test_proxy_tls_interception(
    world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy, fake_acr: FakeACR
) -> None:
    fake_acr.state.modes[LOGIN] = "intercept"
    evidence = await _proxied(world, make_settings, fake_proxy, "tunnel")
    probe = next(ev for ev in evidence if ev.check == "probe")
    assert {"proxy.ok", "probe.tls_intercepted"} <= set(probe.findings)
    assert "Contoso TLS Inspection" in probe.detail


async def test_unreadable_ca_bundle_is_reported_not_raised(
    world: World, make_settings: SettingsFactory, tmp_path: object
) -> None:
    from pathlib import Path

    bad = Path(str(tmp_path)) / "bad.pem"
    bad.write_text("not a certificate")
    world.registry()
    evidence = await run_checks(registry_target("myreg"), make_settings(ca_bundle=bad, log_workspace_id="ws"))
    assert any("probes not run" in ev.detail and "ca_bundle" in ev.detail for ev in evidence)
    assert "arm.error" in findings(evidence, check="arm")
    assert "logs.skipped" in findings(evidence, check="logs")
    assert "dns.ok" in findings(evidence, check="dns")
