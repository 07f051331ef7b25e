"""``expected_tls_issuers``: a registry certificate from another issuer is interception evidence,
even when it verifies because the machine trusts the corporate inspection CA (issue 13, item 4)."""

from __future__ import annotations

import pytest

from bot.checks.probe import CertInfo
from bot.checks.run import run_checks
from bot.config import DEFAULT_TLS_ISSUERS, Settings
from bot.diagnose import check_registry
from bot.engine.classify import HEALTHY
from bot.engine.hostguard import registry_target
from bot.engine.models import Status
from tests.conftest_live import SettingsFactory, World, with_finding
from tests.fakes.acr import FakeACR
from tests.fakes.tls import TestPKI

LOGIN = "myreg.azurecr.io"


@pytest.mark.parametrize(
    ("cn", "org", "expected"),
    [
        ("Microsoft Azure RSA TLS Issuing CA 03", "Microsoft Corporation", True),
        ("Microsoft Azure RSA TLS Issuing CA 08", "Microsoft Corporation", True),
        ("Microsoft Azure ECC TLS Issuing CA 04", "Microsoft Corporation", True),
        ("Microsoft Azure TLS Issuing CA 05", "Microsoft Corporation", True),
        ("DigiCert Basic RSA CN CA G2", "DigiCert Inc", True),
        ("Contoso TLS Inspection", "Contoso", False),
        ("Zscaler Intermediate Root CA (zscaler.net)", "Zscaler Inc.", False),
        ("", "Microsoft Corporation", False),  # an organisation name alone is not an Azure issuer
        ("Fortinet CA", "Microsoft Corporation", False),
    ],
)
def test_default_issuers(cn: str, org: str, expected: bool) -> None:
    cert = CertInfo(issuer=f"{cn}, {org}", issuer_cn=cn, issuer_org=org)
    assert cert.issued_by_expected(list(DEFAULT_TLS_ISSUERS)) is expected


def test_setting_defaults_and_parses_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().expected_tls_issuers == list(DEFAULT_TLS_ISSUERS)
    monkeypatch.setenv("ACRCHECK_EXPECTED_TLS_ISSUERS", "Corp Issuing CA *, Microsoft Azure RSA TLS Issuing CA *")
    assert Settings().expected_tls_issuers == ["Corp Issuing CA *", "Microsoft Azure RSA TLS Issuing CA *"]


async def test_verified_reissued_certificate_is_interception(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR, pki: TestPKI
) -> None:
    """The corporate CA is in ca_bundle, so the re-signed certificate verifies — still interception."""
    world.registry()
    fake_acr.state.modes[LOGIN] = "intercept"
    settings = make_settings(ca_bundle=pki.both_path)
    evidence = await run_checks(registry_target("myreg"), settings, hypotheses=["probe"])
    line = with_finding(evidence, "probe.tls_intercepted")
    assert line, [ev.detail for ev in evidence]
    assert line[0].data["cert_verified"] is True and line[0].data["cert_expected_issuer"] is False
    assert "Contoso TLS Inspection" in line[0].detail and "not one of the expected issuers" in line[0].detail
    assert line[0].status == Status.WARN
    assert "probe.reachable" not in line[0].findings
    d = await check_registry("myreg", settings)
    assert d.cause == "tls-interception", [(c.id, c.score) for c in d.causes]
    assert any("Contoso TLS Inspection" in s for s in d.causes[0].supported_by)


async def test_expected_issuer_stays_healthy(world: World, make_settings: SettingsFactory, pki: TestPKI) -> None:
    world.registry()
    d = await check_registry("myreg", make_settings(ca_bundle=pki.both_path))
    assert d.cause == HEALTHY


async def test_unexpected_issuer_on_a_data_endpoint(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR, pki: TestPKI
) -> None:
    world.registry(data_endpoint_enabled=True, replicas=("eastus",))
    fake_acr.state.modes["myreg.eastus.data.azurecr.io"] = "intercept"
    evidence = await run_checks(registry_target("myreg"), make_settings(ca_bundle=pki.both_path))
    line = with_finding(evidence, "probe.tls_intercepted")
    assert [ev.target for ev in line] == ["myreg.eastus.data.azurecr.io"]


async def test_untrusted_certificate_from_an_expected_issuer_is_a_trust_gap(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR, pki: TestPKI
) -> None:
    """The issuer is expected but this machine does not trust it: a trust-store gap, not interception."""
    world.registry(in_arm=False)
    fake_acr.state.modes[LOGIN] = "intercept"
    settings = make_settings(azure_credential="none", expected_tls_issuers=["Contoso TLS Inspection"])
    evidence = await run_checks(registry_target("myreg"), settings, hypotheses=["probe"])
    line = with_finding(evidence, "probe.tls_untrusted")
    assert line and "missing from this machine's trust store" in line[0].detail
    assert not with_finding(evidence, "probe.tls_intercepted")
