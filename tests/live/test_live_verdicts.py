"""Truthful verdicts on broken endpoints (issue 12, item 8).

* An expired (or not yet valid) certificate from a trusted CA says so, with the dates; it is not
  "a TLS-inspecting proxy".
* DNS failures are named from the resolver's own exception: CNAME loop, chain too long, timeout,
  SERVFAIL, NXDOMAIN — never "all resolvers failed (THE)".
* ``/v2/`` answering a redirect to another host is a finding, never healthy.
"""

from __future__ import annotations

from bot.checks.run import run_checks
from bot.diagnose import check_registry
from bot.engine.classify import HEALTHY
from bot.engine.hostguard import registry_target
from bot.engine.models import Status
from tests.conftest_live import SettingsFactory, World, findings, with_finding
from tests.fakes.acr import FakeACR
from tests.fakes.dns import FakeDNS

LOGIN = "myreg.azurecr.io"


# ---------------------------------------------------------------------------- certificates


async def test_expired_certificate_says_expired_with_dates(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    world.registry(in_arm=False)
    fake_acr.state.modes[LOGIN] = "expired"
    evidence = await run_checks(registry_target("myreg"), make_settings(azure_credential="none"), hypotheses=["probe"])
    line = with_finding(evidence, "probe.tls_expired")
    assert line, [ev.detail for ev in evidence]
    detail = line[0].detail
    assert "expired" in detail
    assert fake_acr.expired_window[1].date().isoformat() in detail  # the end of validity
    assert fake_acr.expired_window[0].date().isoformat() in detail  # and its start
    assert "inspect" not in detail.lower() and "re-sign" not in detail
    assert "probe.tls_intercepted" not in findings(evidence)
    assert line[0].status == Status.FAIL
    assert line[0].data["cert_not_after"].startswith(fake_acr.expired_window[1].date().isoformat())


async def test_not_yet_valid_certificate_says_so_with_dates(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    world.registry(in_arm=False)
    fake_acr.state.modes[LOGIN] = "not_yet_valid"
    evidence = await run_checks(registry_target("myreg"), make_settings(azure_credential="none"), hypotheses=["probe"])
    line = with_finding(evidence, "probe.tls_not_yet_valid")
    assert line, [ev.detail for ev in evidence]
    assert "not valid before" in line[0].detail
    assert fake_acr.future_window[0].date().isoformat() in line[0].detail
    assert "clock" in line[0].detail
    assert "probe.tls_intercepted" not in findings(evidence)


async def test_expired_certificate_is_not_healthy_nor_interception(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    world.registry()
    fake_acr.state.modes[LOGIN] = "expired"
    d = await check_registry("myreg", make_settings())
    assert d.cause not in (HEALTHY, "tls-interception")
    assert any("expired" in line for line in d.causes[0].supported_by)


# ---------------------------------------------------------------------------- DNS


async def test_cname_loop_is_named_a_loop(make_settings: SettingsFactory, fake_dns: FakeDNS) -> None:
    fake_dns.chain(LOGIN, "myreg.privatelink.azurecr.io", "loop.corp.example", LOGIN)
    evidence = await run_checks(registry_target("myreg"), make_settings(azure_credential="none"), hypotheses=["dns"])
    line = next(ev for ev in evidence if ev.check == "dns" and ev.target == LOGIN)
    assert "dns.cname_loop" in line.findings, line
    assert "loop" in line.detail and "THE" not in line.detail
    assert "myreg.privatelink.azurecr.io" in line.detail and "loop.corp.example" in line.detail
    assert line.data["rcode"] == "CNAME_LOOP"


async def test_overlong_cname_chain_is_named_too_long(make_settings: SettingsFactory, fake_dns: FakeDNS) -> None:
    hops = [LOGIN, *(f"hop{i}.chain.corp.example" for i in range(500))]
    fake_dns.chain(*hops)
    fake_dns.a(hops[-1], "127.0.0.5")
    fake_dns.state.max_chain = 600
    evidence = await run_checks(registry_target("myreg"), make_settings(azure_credential="none"), hypotheses=["dns"])
    line = next(ev for ev in evidence if ev.check == "dns" and ev.target == LOGIN)
    assert "dns.chain_too_long" in line.findings, line
    assert "too long" in line.detail and "THE" not in line.detail
    assert line.data["rcode"] == "CHAIN_TOO_LONG"


async def test_resolver_failures_are_named_by_their_rcode_or_exception(
    make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    fake_dns.state.servfail.add("servfail.azurecr.io.")
    fake_dns.state.refused.add("refusedname.azurecr.io.")
    fake_dns.state.blackhole.add("silentname.azurecr.io.")
    settings = make_settings(azure_credential="none")
    expected = {
        "servfail": ("dns.servfail", "SERVFAIL"),
        "refusedname": ("dns.servfail", "REFUSED"),
        "silentname": ("dns.timeout", "no DNS answer"),
        "nxname": ("dns.nxdomain", "NXDOMAIN"),
    }
    for name, (finding, words) in expected.items():
        evidence = await run_checks(registry_target(name), settings, hypotheses=["dns"])
        line = next(ev for ev in evidence if ev.check == "dns" and ev.target == f"{name}.azurecr.io")
        assert finding in line.findings and words in line.detail, (name, line)


# ---------------------------------------------------------------------------- redirects


async def test_v2_redirect_to_another_host_is_a_finding(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    world.registry(in_arm=False)
    fake_acr.state.modes[LOGIN] = "redirect"
    evidence = await run_checks(registry_target("myreg"), make_settings(azure_credential="none"), hypotheses=["probe"])
    line = with_finding(evidence, "probe.redirect")
    assert line, [ev.detail for ev in evidence]
    assert line[0].status == Status.FAIL
    assert "302" in line[0].detail and "login.contoso-proxy.example" in line[0].detail
    assert line[0].data["redirect_location"].startswith("https://login.contoso-proxy.example/")


async def test_v2_redirect_is_never_healthy(world: World, make_settings: SettingsFactory, fake_acr: FakeACR) -> None:
    world.registry()
    fake_acr.state.modes[LOGIN] = "redirect"
    d = await check_registry("myreg", make_settings())
    assert d.cause != HEALTHY
    assert any("login.contoso-proxy.example" in line for line in d.causes[0].supported_by)


# ---------------------------------------------------------------------------- pasted probe reports


def test_a_pasted_probe_report_carries_the_new_verdicts() -> None:
    """``acrcheck probe`` run on the user's machine writes the same outcomes; pasted back, they count."""
    from bot.diagnose import diagnose

    report = "\n".join(
        [
            "acrcheck-probe v1 myreg.azurecr.io",
            "vantage laptop",
            "dns myreg.azurecr.io ok public addrs=20.61.99.10",
            'probe myreg.azurecr.io 20.61.99.10 fail tls-expired issuer="Microsoft Azure RSA TLS Issuing CA 03"',
            "probe myreg.azurecr.io 20.61.99.11 fail redirect-302 http=302",
            "end ok=1 warn=0 fail=2 skipped=0 ms=9",
        ]
    )
    d = diagnose(report)
    carried = {f for e in d.evidence for f in e.findings}
    assert {"user.probe.tls_expired", "user.probe.redirect"} <= carried
    assert d.cause != HEALTHY


async def test_redirect_evidence_drops_the_query_string(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    """A portal's Location can carry a session token: evidence keeps scheme, host and path only."""
    world.registry(in_arm=False)
    fake_acr.state.modes[LOGIN] = "redirect"
    fake_acr.state.redirect_location = "https://user:pw@portal.corp.example/login?session=SeSsIoNtOkEn123&u=alice"
    evidence = await run_checks(registry_target("myreg"), make_settings(azure_credential="none"), hypotheses=["probe"])
    line = with_finding(evidence, "probe.redirect")[0]
    assert "https://portal.corp.example/login?…" in line.detail
    assert "SeSsIoNtOkEn123" not in repr(line) and "pw@" not in repr(line)
