"""DNS check outcomes, and the CLI commands (check --json, probe report, refused arguments)."""

from __future__ import annotations

import argparse
import io
import json
import time

import pytest

from bot.checks.dns import check_dns, ip_scope, parse_server
from bot.cli.live import add_live_commands, probe_report
from bot.engine.hostguard import registry_target
from bot.engine.models import Evidence, Status
from tests.conftest_live import TEST_ISSUER, VANTAGE, ConnectLog, SettingsFactory, World
from tests.fakes.acr import FakeACR
from tests.fakes.arm import SUB, FakeARM
from tests.fakes.dns import FakeDNS
from tests.fakes.tls import TestPKI


@pytest.mark.parametrize(
    ("setup", "finding", "rcode", "words"),
    [
        ("servfail", "dns.servfail", "SERVFAIL", "SERVFAIL"),
        ("refused", "dns.servfail", "REFUSED", "REFUSED"),
        ("blackhole", "dns.timeout", "TIMEOUT", "no DNS answer within 0.3 s"),
        ("noanswer", "dns.noanswer", "NOANSWER", "no A/AAAA record"),
    ],
)
async def test_dns_failures(
    fake_dns: FakeDNS, make_settings: SettingsFactory, setup: str, finding: str, rcode: str, words: str
) -> None:
    host = "broken.azurecr.io"
    if setup == "noanswer":
        fake_dns.state.zone[host + "."] = [("TXT", '"x"')]
    else:
        getattr(fake_dns.state, setup).add(host + ".")
    started = time.perf_counter()
    ev, answer = await check_dns(host, make_settings())
    assert time.perf_counter() - started < 0.8
    assert ev.findings == [finding] and ev.status == Status.FAIL and ev.vantage == VANTAGE
    assert answer.rcode == rcode and words in ev.detail


async def test_dns_chain_and_both_families(fake_dns: FakeDNS, make_settings: SettingsFactory) -> None:
    fake_dns.cname("myreg.azurecr.io", "myreg.privatelink.azurecr.io")
    fake_dns.a("myreg.privatelink.azurecr.io", "10.1.0.4", "fd00::4")
    ev, answer = await check_dns("myreg.azurecr.io", make_settings())
    assert answer.a == ["10.1.0.4"] and answer.aaaa == ["fd00::4"]
    assert ev.data["chain"] == ["myreg.azurecr.io", "myreg.privatelink.azurecr.io"]
    assert ev.data["scopes"] == {"10.1.0.4": "private", "fd00::4": "private"}
    assert {("myreg.azurecr.io", "A", "udp"), ("myreg.azurecr.io", "AAAA", "udp")} <= set(fake_dns.log)


def test_scope_and_server_parsing() -> None:
    assert ip_scope("10.0.0.1") == "private" and ip_scope("20.1.2.3") == "public"
    assert ip_scope("169.254.169.254") == "link-local" and ip_scope("127.0.0.1") == "loopback"
    assert parse_server("10.0.0.4") == ("10.0.0.4", 53)
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("[fd00::1]:53") == ("fd00::1", 53)
    with pytest.raises(ValueError):
        parse_server("dns.example.com")


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, pki: TestPKI, fake_dns: FakeDNS, fake_acr: FakeACR, fake_arm: FakeARM
) -> None:
    """Configure the CLI the way a user would: ACRCHECK_* environment variables."""
    values = {
        "ACRCHECK_ARM_ENDPOINT": fake_arm.url,
        "ACRCHECK_CA_BUNDLE": str(pki.ca_path),
        "ACRCHECK_DNS_SERVERS": json.dumps([fake_dns.server_spec]),
        "ACRCHECK_DNS_TIMEOUT": "0.3",
        "ACRCHECK_PROBE_PORT": str(fake_acr.port),
        "ACRCHECK_PROBE_TIMEOUT": "0.5",
        "ACRCHECK_CHECK_DEADLINE": "4",
        "ACRCHECK_AZURE_CREDENTIAL": "token",
        "ACRCHECK_AZURE_TOKEN": "cli-token",
        "ACRCHECK_SUBSCRIPTIONS": json.dumps([SUB]),
        "ACRCHECK_ARM_TIMEOUT": "1",
        "ACRCHECK_VANTAGE_NAME": VANTAGE,
        "ACRCHECK_EXPECTED_TLS_ISSUERS": TEST_ISSUER,
    }
    monkeypatch.delenv("ACRCHECK_CONFIG", raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)


def _run(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="acrcheck")
    add_live_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    code = args.func(args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


async def _in_thread(argv: list[str]) -> tuple[int, str, str]:
    import asyncio

    return await asyncio.to_thread(_run, argv)  # the CLI owns its event loop


async def test_cli_check_json(cli_env: None, world: World, fake_acr: FakeACR) -> None:
    world.registry(default_action="Deny", ip_rules=("198.51.100.0/24",))
    fake_acr.state.modes["myreg.azurecr.io"] = "deny"
    code, out, err = await _in_thread(["check", "myreg", "--json"])
    assert code == 1 and err == ""
    payload = json.loads(out)
    assert payload["registry"] == "myreg.azurecr.io"
    assert set(payload) >= {"registry", "cause", "causes", "evidence", "fix"}
    assert payload["causes"] and {"id", "confidence"} <= set(payload["causes"][0])
    assert payload["cause"] == payload["causes"][0]["id"]
    for ev in payload["evidence"]:
        assert {"check", "target", "vantage", "status", "detail", "duration_ms"} <= set(ev)
        assert ev["vantage"] == VANTAGE
    assert any("probe.denied" in ev["findings"] for ev in payload["evidence"])
    assert "cli-token" not in out


@pytest.mark.parametrize("command", ["check", "probe"])
async def test_cli_exits_1_when_the_address_policy_refused_every_answer(
    command: str, cli_env: None, world: World, fake_dns: FakeDNS, loopback_only: ConnectLog
) -> None:
    """Nothing failed, but nothing could be probed: that is not "every check passed" (it exited 0)."""
    world.registry()
    fake_dns.remove("myreg.azurecr.io")
    fake_dns.a("myreg.azurecr.io", "169.254.169.254")
    code, out, err = await _in_thread([command, "myreg"] + (["--json"] if command == "check" else []))
    assert code == 1 and err == "", out
    assert not [a for a in loopback_only.seen if str(a[0]).startswith("169.254.")]
    if command == "check":
        payload = json.loads(out)
        assert payload["cause"] != "healthy"
        assert not [ev for ev in payload["evidence"] if ev["status"] == "fail"]  # refused, not failed
    else:
        assert "probe myreg.azurecr.io 169.254.169.254 skipped unsafe-address" in out


async def test_cli_check_client_ip_reaches_the_ip_rules(cli_env: None, world: World) -> None:
    world.registry(default_action="Deny", ip_rules=("198.51.100.0/24",))
    code, out, _ = await _in_thread(["check", "myreg", "--json", "--client-ip", "203.0.113.77"])
    assert code == 1  # the address is not allowed
    payload = json.loads(out)
    assert any("arm.ip_not_allowed" in ev["findings"] and "203.0.113.77" in ev["detail"] for ev in payload["evidence"])


async def test_cli_probe_report_format(
    cli_env: None, world: World, fake_dns: FakeDNS, fake_acr: FakeACR
) -> None:
    world.registry(in_arm=False)
    fake_acr.state.modes["myreg.azurecr.io"] = "deny"
    fake_acr.state.deny_ip = "1.2.3.4"
    code, out, _ = await _in_thread(["probe", "myreg", "--data-region", "westeurope"])
    lines = out.splitlines()
    assert lines[0] == "acrcheck-probe v1 myreg.azurecr.io"
    assert lines[1] == f"vantage {VANTAGE}"
    assert "dns myreg.azurecr.io ok loopback addrs=127.0.0.5" in lines
    assert "dns myreg.westeurope.data.azurecr.io fail nxdomain" in lines
    denied = [ln for ln in lines if ln.startswith("probe myreg.azurecr.io 127.0.0.5 fail denied ip=1.2.3.4")]
    assert denied and "http=403" in denied[0] and 'issuer="acrcheck test public CA"' in denied[0]
    assert lines[-1].startswith("end ok=1 warn=0 fail=2 skipped=0 ms=")
    assert code == 1


async def test_cli_probe_runs_no_arm(cli_env: None, world: World, fake_arm: FakeARM) -> None:
    world.registry()
    code, out, _ = await _in_thread(["probe", "myreg.azurecr.io"])
    assert code == 0 and "probe myreg.azurecr.io 127.0.0.5 ok 401-bearer" in out
    assert fake_arm.calls() == []


@pytest.mark.parametrize("command", ["check", "probe"])
async def test_cli_refuses_bad_registry_with_exit_2(
    command: str, cli_env: None, fake_dns: FakeDNS, loopback_only: ConnectLog
) -> None:
    code, out, err = await _in_thread([command, "169.254.169.254"])
    assert code == 2 and out == ""
    assert err.startswith("acrcheck: IP addresses are not accepted")
    code, _, err = await _in_thread(["probe", "myreg", "--data-region", "evil.com/x"])
    assert code == 2 and err
    assert fake_dns.log == [] and loopback_only.seen == []


def test_probe_report_renders_proxy_and_timeout_lines() -> None:
    target = registry_target("myreg")
    evidence = [
        Evidence(
            "dns",
            "myreg.azurecr.io",
            "laptop",
            Status.WARN,
            "x",
            {
                "rcode": "NOERROR",
                "addresses": ["20.1.2.3"],
                "scopes": {"20.1.2.3": "public"},
                "privatelink": True,
                "chain": ["myreg.azurecr.io", "myreg.privatelink.azurecr.io"],
            },
        ),
        Evidence(
            "probe",
            "myreg.azurecr.io",
            "laptop",
            Status.FAIL,
            "x",
            {"address": None, "via_proxy": True, "outcome": "proxy-407", "http_status": 407},
        ),
        Evidence("probe", "myreg.azurecr.io", "laptop", Status.FAIL, "x", {}, 0.0, ["probe.timeout"]),
    ]
    text = probe_report(target, evidence, "my laptop", 12.3)
    assert text.splitlines() == [
        "acrcheck-probe v1 myreg.azurecr.io",
        'vantage "my laptop"',
        "dns myreg.azurecr.io warn privatelink-public addrs=20.1.2.3 "
        "chain=myreg.azurecr.io>myreg.privatelink.azurecr.io",
        "probe myreg.azurecr.io proxy fail proxy-407 http=407",
        "probe myreg.azurecr.io - fail timeout",
        "end ok=0 warn=1 fail=2 skipped=0 ms=12",
    ]
