"""SSRF guard: what may be checked, what is refused, and proof that refusals touch no network."""

from __future__ import annotations

import pytest

from bot.checks.run import run_checks
from bot.engine.hostguard import UnsafeTarget, is_azure_registry_host, registry_target
from tests.conftest_live import VANTAGE, ConnectLog, SettingsFactory, World
from tests.fakes.dns import FakeDNS

ACCEPTED = [
    ("myreg", "myreg", "myreg.azurecr.io", "AzureCloud", "login_server", None),
    ("MyReg", "myreg", "myreg.azurecr.io", "AzureCloud", "login_server", None),
    ("myreg.azurecr.io", "myreg", "myreg.azurecr.io", "AzureCloud", "login_server", None),
    ("https://myreg.azurecr.io/", "myreg", "myreg.azurecr.io", "AzureCloud", "login_server", None),
    ("https://myreg.azurecr.io/v2/", "myreg", "myreg.azurecr.io", "AzureCloud", "login_server", None),
    ("  myreg.azurecr.io\n", "myreg", "myreg.azurecr.io", "AzureCloud", "login_server", None),
    ("myreg.azurecr.cn", "myreg", "myreg.azurecr.cn", "AzureChinaCloud", "login_server", None),
    ("myreg.azurecr.us", "myreg", "myreg.azurecr.us", "AzureUSGovernment", "login_server", None),
    (
        "myreg.westeurope.data.azurecr.io",
        "myreg",
        "myreg.azurecr.io",
        "AzureCloud",
        "data_endpoint",
        "westeurope",
    ),
    (
        "myreg.chinanorth3.data.azurecr.cn",
        "myreg",
        "myreg.azurecr.cn",
        "AzureChinaCloud",
        "data_endpoint",
        "chinanorth3",
    ),
    ("myreg.eastus.geo.azurecr.io", "myreg", "myreg.azurecr.io", "AzureCloud", "geo", "eastus"),
    ("myreg.privatelink.azurecr.io", "myreg", "myreg.azurecr.io", "AzureCloud", "privatelink", None),
    (
        "acragentic-dad4auhga8feekaq.azurecr.io",
        "acragentic",
        "acragentic-dad4auhga8feekaq.azurecr.io",
        "AzureCloud",
        "login_server",
        None,
    ),
]


@pytest.mark.parametrize(("value", "name", "login", "cloud", "kind", "region"), ACCEPTED)
def test_accepts_acr_names_and_endpoints(
    value: str, name: str, login: str, cloud: str, kind: str, region: str | None
) -> None:
    target = registry_target(value)
    assert (target.name, target.login_server, target.cloud, target.kind, target.region) == (
        name,
        login,
        cloud,
        kind,
        region,
    )


def test_privatelink_flag_and_data_privatelink() -> None:
    assert registry_target("myreg.privatelink.azurecr.io").privatelink
    target = registry_target("myreg.westeurope.data.privatelink.azurecr.io")
    assert target.privatelink and target.kind == "data_endpoint" and target.region == "westeurope"
    assert registry_target("myname-abc123def.azurecr.io").hashed


HOSTILE = [
    "127.0.0.1",
    "10.0.0.5",
    "169.254.169.254",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "127.1",
    "[::1]",
    "::1",
    "::ffff:127.0.0.1",
    "fe80::1%eth0",
    "https://169.254.169.254/metadata/instance",
    "localhost",
    "localhost.localdomain",
    "metadata",
    "metadata.google.internal",
    "metadata.azure.com",
    "myreg.azurecr.io.evil.com",
    "myreg.azurecr.io@evil.com",
    "user:pass@myreg.azurecr.io",
    "myreg-azurecr.io",
    "azurecr.io",
    ".azurecr.io",
    "myreg..azurecr.io",
    "myreg.azurecr.io:443",
    "myreg.azurecr.io:8080",
    "myreg.azurecr.io/v2/_catalog",
    "myreg.azurecr.io?x=1",
    "myreg.azurecr.io#frag",
    "http://myreg.azurecr.io",
    "ftp://myreg.azurecr.io",
    "https://https://myreg.azurecr.io",
    "myrég.azurecr.io",
    "myreg。azurecr。io",
    "xn--myreg-9ta.azurecr.io",
    "my reg.azurecr.io",
    "myreg.azurecr.io\x00.evil.com",
    "myreg\t.azurecr.io",
    "a" * 64 + ".azurecr.io",
    "myreg." + "b" * 64 + ".data.azurecr.io",
    "x" * 400,
    "abc",  # too short for an ACR name
    "my_reg",
    "my-reg",
    "",
    "   ",
    "myreg.evil.com",
    "myreg.blob.core.windows.net",
    "myreg.westeurope.data.azurecr.io.attacker.net",
    "myreg.foo.bar.azurecr.io",
    "evil.com/myreg.azurecr.io",
    "myreg.azurecr.io\\@evil.com",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_refuses_hostile_input(value: str) -> None:
    with pytest.raises(UnsafeTarget) as info:
        registry_target(value)
    message = str(info.value)
    assert message and "Traceback" not in message
    assert isinstance(info.value, ValueError)


def test_enough_hostile_inputs() -> None:
    assert len(HOSTILE) >= 30


def test_is_azure_registry_host() -> None:
    assert is_azure_registry_host("myreg.azurecr.io")
    assert is_azure_registry_host("myreg.eastus.data.azurecr.io")
    assert not is_azure_registry_host("myreg")  # a bare name is not a host
    assert not is_azure_registry_host("myreg.azurecr.io.evil.com")
    assert not is_azure_registry_host("169.254.169.254")
    assert not is_azure_registry_host("https://myreg.azurecr.io/")


def test_messages_are_user_facing() -> None:
    with pytest.raises(UnsafeTarget, match="IP addresses are not accepted"):
        registry_target("169.254.169.254")
    with pytest.raises(UnsafeTarget, match="Only Azure Container Registry hosts"):
        registry_target("myreg.azurecr.io.evil.com")
    with pytest.raises(UnsafeTarget, match="Ports are not accepted"):
        registry_target("myreg.azurecr.io:443")


async def test_hostile_inputs_cause_no_network_activity(
    fake_dns: FakeDNS, loopback_only: ConnectLog, make_settings: SettingsFactory
) -> None:
    """Every refusal happens before any DNS query or connection."""
    refused = 0
    for value in HOSTILE:
        try:
            registry_target(value)
        except UnsafeTarget:
            refused += 1
    assert refused == len(HOSTILE)
    assert fake_dns.log == []
    assert loopback_only.seen == []


async def test_non_azure_extra_host_is_refused_before_dns(
    world: World, fake_dns: FakeDNS, make_settings: SettingsFactory
) -> None:
    """A paste may name other hosts: only guarded ACR endpoints get DNS or probes."""
    world.registry("myreg")
    settings = make_settings(azure_credential="none")
    evidence = await run_checks(
        registry_target("myreg"),
        settings,
        hypotheses=["dns", "probe"],
        extra_hosts=["evil.example.com", "169.254.169.254", "myreg.azurecr.io.evil.com"],
    )
    guards = [ev for ev in evidence if ev.check == "guard"]
    assert {ev.target for ev in guards} == {
        "evil.example.com",
        "169.254.169.254",
        "myreg.azurecr.io.evil.com",
    }
    assert all(
        ev.status == "skipped" and ev.vantage == VANTAGE and "not checked" in ev.detail for ev in guards
    )
    queried = {name for name, _, _ in fake_dns.log}
    assert queried == {"myreg.azurecr.io"}
