"""Each live scenario, end to end through the engine: the right top cause, evidence that says
what was seen and from where, and a fix carrying the user's own values."""

from __future__ import annotations

from bot.checks.run import run_checks
from bot.diagnose import check_registry, diagnose_live
from bot.engine.classify import HEALTHY, rerank
from bot.engine.hostguard import registry_target
from bot.engine.models import Diagnosis
from bot.engine.render_text import fix_list
from tests.conftest_live import BLACKHOLE_IP, VANTAGE, SettingsFactory, World
from tests.fakes.acr import FakeACR
from tests.fakes.arm import FakeARM
from tests.fakes.dns import FakeDNS
from tests.fakes.proxy import FakeProxy

LOGIN = "myreg.azurecr.io"


def fix_text(d: Diagnosis) -> str:
    return " ".join(fix_list(d))


def assert_supported_from_vantage(d: Diagnosis) -> None:
    top = d.causes[0]
    assert top.supported_by, f"{d.cause} has no supporting live evidence"
    assert all(VANTAGE in line for line in top.supported_by)


async def test_denied_client_ip(world: World, make_settings: SettingsFactory, fake_acr: FakeACR) -> None:
    world.registry(default_action="Deny", ip_rules=("198.51.100.0/24",))
    fake_acr.state.modes[LOGIN] = "deny"
    fake_acr.state.deny_ip = "203.0.113.50"
    d = await check_registry("myreg", make_settings())
    assert d.cause == "registry-public-access"
    assert_supported_from_vantage(d)
    assert "az acr network-rule add --name myreg --ip-address 203.0.113.50" in fix_text(d)


async def test_pasted_denial_is_confirmed_live(world: World, make_settings: SettingsFactory, fake_acr: FakeACR) -> None:
    world.registry(default_action="Deny", ip_rules=("198.51.100.0/24",))
    fake_acr.state.modes[LOGIN] = "deny"
    text = "Error response from daemon: Head https://myreg.azurecr.io/v2/app/manifests/1: denied: client with IP '203.0.113.9' is not allowed access"
    d = await diagnose_live(text, make_settings())
    assert d.cause == "registry-public-access"
    checks = {e.check for e in d.evidence}
    assert "text" in checks and {"dns", "probe", "arm"} <= checks
    assert any(e.vantage == "from the user's paste" for e in d.evidence)
    assert any("arm.ip_not_allowed" in e.findings and "203.0.113.9" in e.detail for e in d.evidence)
    assert "--ip-address 203.0.113.9" in fix_text(d)


async def test_public_access_disabled(world: World, make_settings: SettingsFactory, fake_acr: FakeACR) -> None:
    world.registry(public_network_access="Disabled", default_action="Deny")
    fake_acr.state.modes[LOGIN] = "deny"
    d = await check_registry("myreg", make_settings())
    assert d.cause == "registry-public-access"
    assert_supported_from_vantage(d)
    assert "--name myreg" in fix_text(d)


async def test_private_endpoint_name_resolves_publicly(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    world.registry(public_network_access="Disabled", default_action="Deny", private_endpoints=(("pe-hub", "Approved"),))
    fake_dns.remove(LOGIN)
    fake_dns.cname(LOGIN, "myreg.privatelink.azurecr.io")
    fake_dns.cname("myreg.privatelink.azurecr.io", "weu-1.fe.azcr.io")
    fake_dns.a("weu-1.fe.azcr.io", "20.61.99.10")
    # Classification only: the public address is never connected to, so probes are not selected.
    evidence = await run_checks(registry_target("myreg"), make_settings(), hypotheses=["dns", "arm"])
    d = rerank(None, evidence, registry=LOGIN)
    assert d.cause == "registry-private-endpoint"
    assert_supported_from_vantage(d)
    assert "privatelink.azurecr.io" in fix_text(d) and "myreg" in fix_text(d)


async def test_private_endpoint_pending_or_rejected(world: World, make_settings: SettingsFactory) -> None:
    world.registry(
        public_network_access="Disabled",
        default_action="Deny",
        private_endpoints=(("pe-aks", "Pending"), ("pe-hub", "Rejected")),
    )
    d = await check_registry("myreg", make_settings())
    assert d.cause == "registry-private-endpoint"
    assert any("pe-aks" in line for line in d.causes[0].supported_by)
    # Each connection by name with its state's exact command (approve a Pending one; a Rejected
    # one cannot be approved again: recreate its private endpoint).
    assert "az acr private-endpoint-connection approve --registry-name myreg --name pe-aks" in fix_text(d)
    assert "az network private-endpoint delete --ids /subscriptions/" in fix_text(d) and "privateEndpoints/pe-hub" in fix_text(d)


async def test_replica_data_endpoint_missing_in_dns(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    world.registry(data_endpoint_enabled=True, replicas=("eastus", "japaneast"))
    fake_dns.remove("myreg.japaneast.data.azurecr.io")
    d = await check_registry("myreg", make_settings())
    assert d.cause == "registry-private-endpoint"
    assert any("myreg.japaneast.data.azurecr.io" in line for line in d.causes[0].supported_by)
    assert "myreg" in fix_text(d)


async def test_replica_data_endpoint_blocked(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS, fake_acr: FakeACR
) -> None:
    world.registry(data_endpoint_enabled=True, replicas=("eastus",))
    blocked = "myreg.eastus.data.azurecr.io"
    fake_dns.remove(blocked)
    fake_dns.a(blocked, BLACKHOLE_IP)
    fake_acr.state.ip_modes[BLACKHOLE_IP] = "silent"
    d = await check_registry("myreg", make_settings())
    assert d.cause == "client-firewall-data-endpoint"
    assert_supported_from_vantage(d)
    assert blocked in fix_text(d)


async def test_nxdomain(make_settings: SettingsFactory) -> None:
    d = await check_registry("ghostreg", make_settings())
    assert d.cause == "registry-not-found"
    assert "ghostreg" in fix_text(d)


async def test_tls_interception(world: World, make_settings: SettingsFactory, fake_acr: FakeACR) -> None:
    world.registry()
    fake_acr.state.modes[LOGIN] = "intercept"
    d = await check_registry("myreg", make_settings())
    assert d.cause == "tls-interception"
    assert any("Contoso TLS Inspection" in line for line in d.causes[0].supported_by)
    assert LOGIN in fix_text(d)


async def test_tasks_bypass_off(world: World, make_settings: SettingsFactory) -> None:
    world.registry(default_action="Deny", ip_rules=("198.51.100.0/24",), tasks_bypass=False)
    text = "Run ID: ca1 failed after 3s. failed to login, ran out of retries: failed to get ACR refresh token, exchange API response code: 403 Forbidden (myreg.azurecr.io)"
    d = await diagnose_live(text, make_settings())
    assert d.cause == "service-integration"
    assert any("networkRuleBypassAllowedForTasks" in line for line in d.causes[0].supported_by)
    assert "--name myreg" in fix_text(d) and "networkRuleBypassAllowedForTasks=true" in fix_text(d)
    assert "--resource-group <resource-group>" not in fix_text(d)  # filled from the ARM read


async def test_trusted_services_off(world: World, make_settings: SettingsFactory) -> None:
    world.registry(public_network_access="Disabled", default_action="Deny", bypass_options="None")
    text = "Microsoft Defender for Cloud has no vulnerability scan results for myreg.azurecr.io since we locked it down"
    d = await diagnose_live(text, make_settings())
    assert d.cause == "service-integration"
    assert "az acr update --name myreg --allow-trusted-services true" in fix_text(d)


async def _proxy_cause(world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy, mode: str) -> Diagnosis:
    world.registry(in_arm=False)
    fake_proxy.state.mode = mode
    return await check_registry("myreg", make_settings(proxy=fake_proxy.url, azure_credential="none"))


async def test_proxy_eof(world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy) -> None:
    d = await _proxy_cause(world, make_settings, fake_proxy, "eof")
    assert d.cause == "client-proxy"
    assert_supported_from_vantage(d)
    assert fake_proxy.url.removeprefix("http://") in fix_text(d) and LOGIN in fix_text(d)


async def test_proxy_403(world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy) -> None:
    assert (await _proxy_cause(world, make_settings, fake_proxy, "403")).cause == "client-proxy"


async def test_proxy_407(world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy) -> None:
    assert (await _proxy_cause(world, make_settings, fake_proxy, "407")).cause == "client-proxy"


async def test_healthy_registry(world: World, make_settings: SettingsFactory) -> None:
    world.registry(data_endpoint_enabled=True, replicas=("eastus",))
    d = await check_registry("myreg", make_settings())
    assert d.cause == HEALTHY
    assert not d.reply


async def test_arm_errors_do_not_hide_a_reachable_registry(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    expected = {"403": "arm.forbidden", "404": "arm.not_found", "500": "arm.error", "slow": None, "429": "arm.found"}
    for mode, finding in expected.items():
        world.registry(arm_mode=mode)
        fake_arm.state.slow_seconds = 2.0
        d = await check_registry("myreg", make_settings(arm_timeout=1.0, check_deadline=3.0))
        assert d.cause == HEALTHY, mode
        arm = [e for e in d.evidence if e.check == "arm"]
        assert arm and all(e.vantage == VANTAGE for e in arm), mode
        if finding is None:  # timed out: said so, never a hang or a crash
            assert any(e.status.value in ("skipped", "fail", "warn") for e in arm), mode
        else:
            assert any(finding in e.findings for e in arm), (mode, [e.findings for e in arm])


async def test_no_credentials_still_gives_a_cause(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    world.registry()
    fake_acr.state.modes[LOGIN] = "deny"
    d = await check_registry("myreg", make_settings(azure_credential="none"))
    assert d.cause == "registry-public-access"
    assert any("arm.no_credential" in e.findings for e in d.evidence)
