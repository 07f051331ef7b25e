"""Missing permissions are named (issue 13, item 3).

A Resource Graph error or empty result for a registry that DNS shows exists, an ARM 403
``AuthorizationFailed`` and a Log Analytics 403 each become one evidence line — "the bot's
identity cannot read <scope>: grant <role>" — with the exact ``az role assignment create``
command; the text-based diagnosis still stands.
"""

from __future__ import annotations

from bot.checks.azure import check_arm
from bot.checks.run import run_checks
from bot.diagnose import check_registry, diagnose_live
from bot.engine.hostguard import registry_target
from bot.engine.models import Status
from bot.engine.render_text import fix_list
from tests.conftest_live import SettingsFactory, World, with_finding
from tests.fakes.acr import FakeACR
from tests.fakes.arm import BOT_OBJECT_ID, SUB, FakeARM

LOGIN = "myreg.azurecr.io"
REGISTRY_ID = f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.ContainerRegistry/registries/myreg"


async def test_arm_403_names_the_scope_and_the_command(world: World, make_settings: SettingsFactory) -> None:
    world.registry(arm_mode="403")
    result = await check_arm(registry_target("myreg"), make_settings())
    line = with_finding(result.evidence, "arm.permission_missing")[0]
    assert f"the bot's identity cannot read {REGISTRY_ID}: grant Reader" in line.detail
    command = f"az role assignment create --assignee {BOT_OBJECT_ID} --role Reader --scope {REGISTRY_ID}"
    assert command in line.detail and line.data["command"] == command
    assert line.status == Status.WARN


async def test_resource_graph_403_and_no_valid_subscription(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry()
    for mode in ("403", "nosubs"):
        fake_arm.state.rg_mode = mode
        result = await check_arm(registry_target("myreg"), make_settings())
        line = with_finding(result.evidence, "arm.permission_missing")
        assert line, (mode, [ev.detail for ev in result.evidence])
        assert f"the bot's identity cannot read /subscriptions/{SUB}: grant Reader" in line[0].detail, mode
        assert f"--role Reader --scope /subscriptions/{SUB}" in line[0].detail, mode
        assert "HTTP 400 BadRequest" not in line[0].detail


async def test_empty_resource_graph_for_a_registry_dns_knows(
    world: World, make_settings: SettingsFactory
) -> None:
    world.registry(in_arm=False)  # DNS answers, Resource Graph shows nothing
    evidence = await run_checks(registry_target("myreg"), make_settings())
    line = with_finding(evidence, "arm.permission_missing")
    assert line, [ev.detail for ev in evidence]
    assert "arm.not_found" not in line[0].findings
    assert "exists (DNS answers 127.0.0.5)" in line[0].detail
    assert "the bot's identity cannot read registry myreg: grant Reader" in line[0].detail
    assert "az role assignment create --assignee" in line[0].detail
    assert "--scope $(az acr show --name myreg --query id --output tsv)" in line[0].detail


async def test_log_analytics_403(world: World, make_settings: SettingsFactory, fake_arm: FakeARM) -> None:
    world.registry()
    fake_arm.state.logs_mode = "403"
    workspace = "4a2b6c8d-0000-4000-8000-00000000beef"
    evidence = await run_checks(registry_target("myreg"), make_settings(log_workspace_id=workspace))
    line = with_finding(evidence, "logs.permission_missing")[0]
    assert f"the bot's identity cannot read Log Analytics workspace {workspace}: grant Log Analytics Reader" in line.detail
    assert '--role "Log Analytics Reader" --scope $(az monitor log-analytics workspace list' in line.detail
    assert workspace in line.data["command"]


async def test_private_endpoint_read_refused(world: World, make_settings: SettingsFactory, fake_arm: FakeARM) -> None:
    world.registry(public_network_access="Disabled", default_action="Deny", private_endpoints=(("pe-hub", "Approved"),))
    fake_arm.add_private_endpoint("pe-hub", {LOGIN: "127.0.0.5"}, mode="403")
    result = await check_arm(registry_target("myreg"), make_settings())
    line = with_finding(result.evidence, "arm.permission_missing")[0]
    assert f"the bot's identity cannot read /subscriptions/{SUB}/resourceGroups/rg-vnet: grant Reader" in line.detail
    assert f"--scope /subscriptions/{SUB}/resourceGroups/rg-vnet" in line.detail


async def test_text_diagnosis_stands_and_the_fix_tells_the_operator(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    world.registry(arm_mode="403")
    fake_acr.state.modes[LOGIN] = "deny"
    text = "Error response from daemon: Get https://myreg.azurecr.io/v2/: denied: client with IP '203.0.113.9' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
    d = await diagnose_live(text, make_settings())
    assert d.cause == "registry-public-access"
    assert "--ip-address 203.0.113.9" in " ".join(fix_list(d))
    assert any("az role assignment create" in step and "Reader" in step for step in fix_list(d))


async def test_permission_alone_never_makes_a_cause(world: World, make_settings: SettingsFactory) -> None:
    world.registry(arm_mode="403")
    d = await check_registry("myreg", make_settings())
    assert d.cause == "healthy"
    assert any("arm.permission_missing" in e.findings for e in d.evidence)
