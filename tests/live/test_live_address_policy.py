"""Address policy after DNS resolution (issue 12, item 7).

A registry name is guarded before DNS, but the *answer* comes from a resolver: a hostile or
broken one can point ``myreg.azurecr.io`` at the cloud's metadata service (DNS rebinding). Each
metadata / platform-internal address of the table in docs/address-policy.md gets its own test:
the fake DNS answers exactly that address and the test proves that no connect() to it was even
attempted (the loopback guard records every connect) and that the fake registry saw nothing.
"""

from __future__ import annotations

import pytest

from bot.checks.run import run_checks
from bot.engine.hostguard import METADATA_ADDRESSES, address_refusal
from bot.engine.hostguard import registry_target as guard
from bot.engine.models import Status
from tests.conftest_live import LOGIN_IP, ConnectLog, SettingsFactory, World
from tests.fakes.acr import FakeACR
from tests.fakes.dns import FakeDNS

LOGIN = "myreg.azurecr.io"
PRIVATELINK = "myreg.privatelink.azurecr.io"

#: Every address of the documented table: (address, who uses it).
TABLE = [(entry.address, entry.owner) for entry in METADATA_ADDRESSES]


def test_the_table_covers_the_addresses_the_issue_names() -> None:
    listed = {entry.address for entry in METADATA_ADDRESSES}
    assert {
        "168.63.129.16",  # Azure WireServer / platform DNS
        "169.254.169.254",  # Azure IMDS, AWS, GCP, Oracle
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd20:ce::254",  # GCP metadata over IPv6
    } <= listed
    assert len(listed) == len(METADATA_ADDRESSES)


def test_table_is_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "address-policy.md").read_text(encoding="utf-8")
    for entry in METADATA_ADDRESSES:
        assert f"`{entry.address}`" in doc, entry.address


async def _answer_and_check(
    address: str, world: World, fake_dns: FakeDNS, make_settings: SettingsFactory, *, privatelink: bool
) -> list:
    world.registry(in_arm=False)
    fake_dns.remove(LOGIN)
    if privatelink:  # even the private-endpoint shape of the answer must not unlock it
        fake_dns.cname(LOGIN, PRIVATELINK)
        fake_dns.a(PRIVATELINK, address)
    else:
        fake_dns.a(LOGIN, address)
    return await run_checks(guard("myreg"), make_settings(azure_credential="none"), hypotheses=["probe"])


@pytest.mark.parametrize("privatelink", [False, True], ids=["direct", "via-privatelink"])
@pytest.mark.parametrize(("address", "owner"), TABLE, ids=[a for a, _ in TABLE])
async def test_metadata_answer_is_never_connected_to(
    address: str,
    owner: str,
    privatelink: bool,
    world: World,
    fake_dns: FakeDNS,
    fake_acr: FakeACR,
    make_settings: SettingsFactory,
    loopback_only: ConnectLog,
) -> None:
    evidence = await _answer_and_check(address, world, fake_dns, make_settings, privatelink=privatelink)
    probes = [ev for ev in evidence if ev.check == "probe"]
    assert probes, "the answer must be reported, not silently dropped"
    assert all(ev.status == Status.SKIPPED and ev.data["outcome"] == "unsafe-address" for ev in probes)
    assert any(address in ev.detail and "metadata" in ev.detail for ev in probes), [ev.detail for ev in probes]
    attempted = [a for a in loopback_only.seen if str(a[0]).split("%")[0] == address]
    assert attempted == [], f"connect to {address} ({owner}) was attempted"
    assert fake_acr.state.requests == []


EMBEDDED = [
    "::ffff:168.63.129.16",  # IPv4-mapped
    "64:ff9b::a83f:8110",  # NAT64 (RFC 6052) of 168.63.129.16
    "64:ff9b::6464:64c8",  # NAT64 of 100.100.100.200
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 prefix (RFC 8215)
    "2002:a83f:8110::1",  # 6to4 of 168.63.129.16
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "::a9fe:a9fe",  # deprecated IPv4-compatible
    "fe80::1",  # IPv6 link-local
    "169.254.170.2",  # AWS ECS task metadata (link-local)
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",
]


@pytest.mark.parametrize("address", EMBEDDED)
async def test_embedded_and_link_local_forms_are_refused(
    address: str,
    world: World,
    fake_dns: FakeDNS,
    fake_acr: FakeACR,
    make_settings: SettingsFactory,
    loopback_only: ConnectLog,
) -> None:
    evidence = await _answer_and_check(address, world, fake_dns, make_settings, privatelink=False)
    probes = [ev for ev in evidence if ev.check == "probe"]
    assert probes and all(ev.data["outcome"] == "unsafe-address" for ev in probes)
    assert [a for a in loopback_only.seen if str(a[0]) == address] == []
    assert fake_acr.state.requests == []


# ---------------------------------------------------------------------------- private ranges


@pytest.mark.parametrize(
    "address", ["10.1.2.3", "172.16.5.4", "192.168.7.8", "100.64.0.9", "fd12:3456::5"]
)
def test_private_and_shared_ranges_need_the_private_endpoint_shape(address: str) -> None:
    """A private (or CGNAT 100.64/10) answer is a private endpoint only behind a privatelink CNAME."""
    assert address_refusal(address, chain=(LOGIN,)) is not None
    assert "privatelink" in (address_refusal(address, chain=(LOGIN,)) or "")
    assert address_refusal(address, chain=(LOGIN, PRIVATELINK)) is None
    data = "myreg.eastus.data.azurecr.io"
    assert address_refusal(address, chain=(data, "myreg.eastus.data.privatelink.azurecr.io")) is None
    # A privatelink label of another cloud, or a look-alike, does not count.
    assert address_refusal(address, chain=(LOGIN, "myreg.privatelink.azurecr.io.evil.com")) is not None


def test_public_answers_are_probed_and_loopback_needs_a_loopback_resolver() -> None:
    assert address_refusal("20.61.99.10", chain=(LOGIN,)) is None
    assert address_refusal("2603:1020::10", chain=(LOGIN,)) is None
    assert address_refusal("127.0.0.5", chain=(LOGIN,)) is not None
    assert address_refusal("127.0.0.5", chain=(LOGIN,), loopback_resolver=True) is None


async def test_private_answer_without_privatelink_is_reported_not_probed(
    world: World, fake_dns: FakeDNS, make_settings: SettingsFactory, loopback_only: ConnectLog
) -> None:
    world.registry(in_arm=False)
    fake_dns.remove(LOGIN)
    fake_dns.a(LOGIN, "10.9.8.7")
    evidence = await run_checks(guard("myreg"), make_settings(azure_credential="none"), hypotheses=["probe"])
    probes = [ev for ev in evidence if ev.check == "probe"]
    assert len(probes) == 1 and probes[0].data["outcome"] == "unsafe-address"
    assert "privatelink" in probes[0].detail
    assert loopback_only.seen == [] or all(str(a[0]) != "10.9.8.7" for a in loopback_only.seen)


async def test_loopback_private_endpoint_answer_is_probed_with_a_loopback_resolver(
    world: World, fake_dns: FakeDNS, fake_acr: FakeACR, make_settings: SettingsFactory
) -> None:
    """The test world's private endpoints live on 127.0.0.x behind a privatelink CNAME."""
    world.registry(in_arm=False)
    fake_dns.remove(LOGIN)
    fake_dns.cname(LOGIN, PRIVATELINK)
    fake_dns.a(PRIVATELINK, LOGIN_IP)
    evidence = await run_checks(guard("myreg"), make_settings(azure_credential="none"), hypotheses=["probe"])
    assert any("probe.reachable" in ev.findings for ev in evidence)
    assert fake_acr.state.requests


# ---------------------------------------------------------------------------- the verdict


@pytest.mark.parametrize(
    ("address", "cause"),
    [
        ("169.254.169.254", "client-dns"),  # the bot's resolver answers a metadata address: it misbehaves
        ("168.63.129.16", "client-dns"),
        ("10.9.8.7", "registry-private-endpoint"),  # private, no privatelink CNAME: the private DNS setup
    ],
)
async def test_a_registry_whose_every_address_was_refused_is_not_healthy(
    address: str, cause: str, world: World, fake_dns: FakeDNS, fake_acr: FakeACR, make_settings: SettingsFactory
) -> None:
    """Nothing was probed, so nothing can be called healthy: the refusal itself is the finding."""
    from bot.diagnose import check_registry
    from bot.engine.classify import HEALTHY

    world.registry(in_arm=False)
    fake_dns.remove(LOGIN)
    fake_dns.a(LOGIN, address)
    diagnosis = await check_registry("myreg", make_settings(azure_credential="none"))
    assert diagnosis.cause != HEALTHY, [(c.id, c.confidence) for c in diagnosis.causes]
    assert diagnosis.cause == cause, [(c.id, c.reasons) for c in diagnosis.causes]
    assert any(address in reason for c in diagnosis.causes for reason in c.reasons), diagnosis.causes
    assert fake_acr.state.requests == []


async def test_one_refused_address_beside_a_reachable_front_end_stays_healthy(
    world: World, fake_dns: FakeDNS, make_settings: SettingsFactory
) -> None:
    from bot.diagnose import check_registry
    from bot.engine.classify import HEALTHY

    world.registry(in_arm=False)
    fake_dns.remove(LOGIN)
    fake_dns.a(LOGIN, LOGIN_IP, "169.254.169.254")
    diagnosis = await check_registry("myreg", make_settings(azure_credential="none"))
    assert diagnosis.cause == HEALTHY
