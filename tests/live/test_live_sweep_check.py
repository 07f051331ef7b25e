"""The scheduler's production path (bulk Resource Graph read + DNS/probe check) against the fakes.

The scheduler's own tests inject a check function; this runs the real one it uses in
production, so a sweep's result for a registry is the same protocol-level answer as
``acrcheck check`` minus the per-registry ARM read.
"""

from __future__ import annotations

from bot.scheduler.observe import default_check, default_reader, observation_from
from tests.conftest_live import SettingsFactory, World
from tests.fakes.acr import FakeACR
from tests.fakes.arm import FakeARM
from tests.fakes.dns import FakeDNS


async def test_bulk_read_then_check(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR, fake_dns: FakeDNS, fake_arm: FakeARM
) -> None:
    world.registry("okreg", data_endpoint_enabled=True, replicas=("eastus",))
    world.registry("lockedreg", default_action="Deny", ip_rules=("198.51.100.0/24",))
    world.registry("splitreg", data_endpoint_enabled=True, replicas=("japaneast",))
    fake_acr.state.modes["lockedreg.azurecr.io"] = "deny"
    fake_dns.remove("splitreg.japaneast.data.azurecr.io")
    settings = make_settings()
    configs = await default_reader(["okreg", "lockedreg", "splitreg", "gonereg"], settings)
    assert configs["gonereg"] is None
    graph_calls = [c for c in fake_arm.calls() if "ResourceGraph" in str(c)]
    assert len(graph_calls) == 1
    before = len(fake_arm.calls())

    healthy = await default_check("okreg", configs["okreg"], settings)
    assert healthy.cause == "healthy"
    probed = {e.target for e in healthy.evidence if e.check == "probe"}
    assert {"okreg.azurecr.io", "okreg.eastus.data.azurecr.io", "okreg.westeurope.data.azurecr.io"} <= probed

    locked = await default_check("lockedreg", configs["lockedreg"], settings)
    assert locked.cause == "registry-public-access"
    assert observation_from(locked, configs["lockedreg"]).status == "registry-public-access"

    split = await default_check("splitreg", configs["splitreg"], settings)
    assert split.cause != "healthy"
    assert any(e.target == "splitreg.japaneast.data.azurecr.io" and e.status.value == "fail" for e in split.evidence)
    assert len(fake_arm.calls()) == before  # the checks themselves made no ARM call
