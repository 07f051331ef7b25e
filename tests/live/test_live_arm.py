"""ARM, Resource Graph and Log Analytics checks against the HTTPS fake, with the real Azure SDK clients."""

from __future__ import annotations

import time

import pytest

from bot.checks.azure import (
    ArmFailure,
    RegistryConfig,
    StaticTokenCredential,
    check_arm,
    make_credential,
    match_ip_rule,
    read_registries_bulk,
)
from bot.checks.logs import check_logs
from bot.checks.run import run_checks
from bot.engine.hostguard import registry_target
from bot.engine.models import Status
from tests.conftest_live import VANTAGE, SettingsFactory, World, assert_vantage, findings, with_finding
from tests.fakes.arm import FakeARM, registry_json

TARGET = registry_target("myreg")


async def test_reads_configuration_with_the_sdk(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry(
        default_action="Deny",
        ip_rules=("203.0.113.0/24",),
        data_endpoint_enabled=True,
        replicas=("eastus", "japaneast"),
        private_endpoints=(("pe-1", "Approved"),),
    )
    located: list[RegistryConfig] = []
    result = await check_arm(TARGET, make_settings(), on_located=located.append)
    assert_vantage(result.evidence)
    config = result.config
    assert config is not None and config.source == "arm"
    assert config.login_server == "myreg.azurecr.io" and config.sku == "Premium"
    assert config.ip_rules == ("203.0.113.0/24",)
    assert config.regions == ("westeurope", "eastus", "japaneast")
    assert config.data_endpoints() == [
        "myreg.westeurope.data.azurecr.io",
        "myreg.eastus.data.azurecr.io",
        "myreg.japaneast.data.azurecr.io",
    ]
    assert [pe.status for pe in config.private_endpoints] == ["Approved"]
    assert located and located[0].source == "resource-graph"
    found = with_finding(result.evidence, "arm.found")[0]
    assert "rg-net" in found.detail and "myreg.azurecr.io" in found.detail
    assert {"arm.default_deny", "arm.data_endpoint_enabled", "arm.pe_approved"} <= findings(result.evidence)
    calls = fake_arm.calls()
    assert calls[0]["path"] == "/providers/Microsoft.ResourceGraph/resources"
    assert calls[0]["body"]["subscriptions"]
    assert {c["api_version"] for c in calls[1:] if "Microsoft.ContainerRegistry" in c["path"]} == {"2025-11-01"}
    # The private endpoint's DNS map is read from Microsoft.Network (its own api-version).
    assert {c["api_version"] for c in calls if "Microsoft.Network" in c["path"]} == {"2024-05-01"}
    assert all(c["auth"] == "Bearer test-token-not-secret" for c in calls)


async def test_hash_suffixed_login_server_is_found(world: World, make_settings: SettingsFactory) -> None:
    world.registry("acragentic", login_server="acragentic-dad4auhga8feekaq.azurecr.io")
    result = await check_arm(registry_target("acragentic-dad4auhga8feekaq.azurecr.io"), make_settings())
    assert result.config is not None and result.config.name == "acragentic"
    assert "arm.found" in findings(result.evidence)


async def test_not_premium_and_provisioning_failed(world: World, make_settings: SettingsFactory) -> None:
    world.registry(sku="Standard", provisioning_state="Failed")
    result = await check_arm(TARGET, make_settings())
    assert {"arm.not_premium", "arm.provisioning_failed", "arm.data_endpoint_disabled"} <= findings(
        result.evidence
    )
    assert "blob.core.windows.net" in with_finding(result.evidence, "arm.data_endpoint_disabled")[0].detail


async def test_arm_forbidden(world: World, make_settings: SettingsFactory) -> None:
    world.registry(arm_mode="403")
    result = await check_arm(TARGET, make_settings())
    line = with_finding(result.evidence, "arm.forbidden")[0]
    assert line.status == Status.WARN and "Reader" in line.detail and "AuthorizationFailed" in line.detail
    assert line.vantage == VANTAGE
    assert all("(from Resource Graph)" in ev.detail for ev in result.evidence[1:])


async def test_resource_graph_forbidden(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry()
    fake_arm.state.rg_mode = "403"
    result = await check_arm(TARGET, make_settings())
    assert [ev.findings for ev in result.evidence] == [["arm.forbidden", "arm.permission_missing"]]


async def test_arm_not_found(world: World, make_settings: SettingsFactory) -> None:
    world.registry(arm_mode="404")
    result = await check_arm(TARGET, make_settings())
    line = with_finding(result.evidence, "arm.not_found")[0]
    assert line.status == Status.FAIL and "404" in line.detail


async def test_registry_invisible_to_resource_graph(make_settings: SettingsFactory) -> None:
    result = await check_arm(registry_target("ghostreg"), make_settings())
    line = result.evidence[0]
    assert line.findings == ["arm.not_found"] and "Reader" in line.detail and line.status == Status.WARN


async def test_arm_throttled_then_retried_after_retry_after(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry(arm_mode="429")
    fake_arm.state.retry_after = 0.2
    started = time.perf_counter()
    result = await check_arm(TARGET, make_settings())
    assert time.perf_counter() - started >= 0.2
    assert "arm.found" in findings(result.evidence)
    assert "arm.throttled" not in findings(result.evidence)


async def test_arm_throttled_beyond_the_deadline(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry(arm_mode="429")
    fake_arm.state.retry_after = 30
    started = time.perf_counter()
    result = await check_arm(TARGET, make_settings())
    assert time.perf_counter() - started < 0.8
    line = with_finding(result.evidence, "arm.throttled")[0]
    assert line.status == Status.WARN and "Retry-After 30" in line.detail


async def test_arm_server_error(world: World, make_settings: SettingsFactory) -> None:
    world.registry(arm_mode="500")
    result = await check_arm(TARGET, make_settings())
    line = with_finding(result.evidence, "arm.error")[0]
    assert line.status == Status.FAIL and "HTTP 500" in line.detail


async def test_arm_timeout(world: World, make_settings: SettingsFactory) -> None:
    world.registry(arm_mode="slow")
    started = time.perf_counter()
    result = await check_arm(TARGET, make_settings(arm_timeout=0.5))
    assert time.perf_counter() - started < 1.0
    line = with_finding(result.evidence, "arm.error")[0]
    assert "did not answer within 0.5 s" in line.detail and line.data.get("timeout") is True


async def test_arm_unreachable(make_settings: SettingsFactory) -> None:
    result = await check_arm(TARGET, make_settings(arm_endpoint="https://127.0.0.9:9"))
    line = result.evidence[0]
    assert line.findings == ["arm.error"] and "could not reach ARM" in line.detail


async def test_arm_errors_in_a_full_run_are_evidence_not_exceptions(
    world: World, make_settings: SettingsFactory
) -> None:
    world.registry(arm_mode="403")
    evidence = await run_checks(TARGET, make_settings())
    assert "arm.forbidden" in findings(evidence, check="arm")
    assert "probe.reachable" in findings(evidence, check="probe")


async def test_token_timeout_becomes_no_credential(make_settings: SettingsFactory) -> None:
    class SlowCredential(StaticTokenCredential):
        async def get_token(self, *scopes: str, **kwargs: object):  # type: ignore[no-untyped-def]
            import asyncio

            await asyncio.sleep(5)
            return await super().get_token(*scopes)

    from bot.checks.azure import TimeoutCredential

    credential = TimeoutCredential(SlowCredential("x"), 0.2, "test")
    result = await check_arm(TARGET, make_settings(), credential=credential)
    line = result.evidence[0]
    assert line.findings == ["arm.no_credential"] and "no token within 0.2 s" in line.detail


def test_make_credential_modes(make_settings: SettingsFactory) -> None:
    assert make_credential(make_settings(azure_credential="none")) is None
    token = make_credential(make_settings())
    assert token is not None and "test-token" not in repr(token)
    assert make_credential(make_settings(azure_credential="environment")) is not None


def test_ip_rules_are_cidr_aware() -> None:
    rules = ("203.0.113.0/24", "198.51.100.7", "2001:db8::/32")
    assert match_ip_rule("203.0.113.200", rules) == "203.0.113.0/24"
    assert match_ip_rule("198.51.100.7", rules) == "198.51.100.7"
    assert match_ip_rule("198.51.100.8", rules) is None
    assert match_ip_rule("2001:db8::1", rules) == "2001:db8::/32"
    assert match_ip_rule("not-an-ip", rules) is None


def test_config_diff_for_the_scheduler() -> None:
    before = RegistryConfig.from_arm(registry_json("myreg"))
    after = RegistryConfig.from_arm(registry_json("myreg", default_action="Deny", ip_rules=("1.2.3.4",)))
    assert after.diff(before) == {"default_action": ("Deny", "Allow"), "ip_rules": (("1.2.3.4",), ())}
    assert before.diff(RegistryConfig.from_arm(registry_json("myreg"), source="resource-graph")) == {}


async def test_bulk_read_pages_with_skip_token(make_settings: SettingsFactory, fake_arm: FakeARM) -> None:
    for i in range(5):
        fake_arm.add(
            registry_json(
                f"sweep{i:02d}x", default_action="Deny" if i % 2 else "Allow", replicas=("eastus",)
            ),
            replicas=("eastus",),
        )
    fake_arm.state.rg_page_size = 2
    result = await read_registries_bulk(
        ["sweep00x", "SWEEP01X", "sweep02x", "sweep03x", "sweep04x", "gone1"], make_settings()
    )
    assert result["gone1"] is None
    assert {k for k, v in result.items() if v is not None} == {f"sweep{i:02d}x" for i in range(5)}
    assert result["sweep01x"] is not None and result["sweep01x"].default_action == "Deny"
    assert result["sweep00x"] is not None and result["sweep00x"].regions == ("westeurope", "eastus")
    posts = fake_arm.calls("POST")
    assert len(posts) == 3  # one query, three pages
    assert len({c["body"]["query"] for c in posts}) == 1
    assert [c["body"]["options"].get("$skipToken") for c in posts] == [None, "2", "4"]


async def test_bulk_read_without_credential(make_settings: SettingsFactory) -> None:
    with pytest.raises(ArmFailure) as info:
        await read_registries_bulk(["myreg"], make_settings(azure_credential="none"))
    assert info.value.finding == "arm.no_credential"


async def test_logs_failed_logins(world: World, make_settings: SettingsFactory, fake_arm: FakeARM) -> None:
    fake_arm.state.log_rows = [
        [
            "203.0.113.50",
            "",
            "403",
            "client with IP '203.0.113.50' is not allowed access",
            12,
            "2025-06-02T10:00:00Z",
        ],
        ["198.51.100.9", "sp-ci", "401", "unauthorized", 3, "2025-06-02T09:00:00Z"],
    ]
    ev = await check_logs(TARGET, make_settings(log_workspace_id="ws-1"))
    assert ev.findings == ["logs.failed_logins"] and ev.vantage == VANTAGE
    assert "15 failed login(s)" in ev.detail and "203.0.113.50" in ev.detail
    assert ev.data["caller_ips"] == ["198.51.100.9", "203.0.113.50"]
    post = fake_arm.calls("POST")[-1]
    assert (
        post["path"].endswith("/workspaces/ws-1/query")
        and "ContainerRegistryLoginEvents" in post["body"]["query"]
    )


async def test_logs_no_events_and_skipped(make_settings: SettingsFactory) -> None:
    ev = await check_logs(TARGET, make_settings(log_workspace_id="ws-1"))
    assert ev.findings == ["logs.no_events"] and ev.status == Status.OK
    ev = await check_logs(TARGET, make_settings())
    assert ev.findings == ["logs.skipped"] and ev.status == Status.SKIPPED and "log_workspace_id" in ev.detail
