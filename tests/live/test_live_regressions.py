"""Regression tests for reviewed defects in the live checks (one section per defect).

Network scenarios run against the loopback fakes; parsing and quoting are tested unit-level.
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib.util
import logging
import shlex
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import dns.asyncresolver
import dns.resolver
import pytest

from bot.checks import probe as probe_checks
from bot.checks.azure import MIN_RETRY_AFTER, check_arm, parse_retry_after
from bot.checks.dns import DnsConfigError, check_dns, parse_server
from bot.checks.probe import check_probe, redact_proxy
from bot.checks.run import run_checks
from bot.cli.live import _quote, probe_report
from bot.engine.hostguard import registry_target
from bot.engine.models import Evidence, Status
from bot.engine.probe_report import parse_probe_report
from tests.conftest_live import (
    LOGIN_IP,
    ConnectLog,
    SettingsFactory,
    World,
    findings,
    with_finding,
)
from tests.fakes.acr import FakeACR
from tests.fakes.arm import FakeARM
from tests.fakes.dns import FakeDNS
from tests.fakes.proxy import FakeProxy
from tests.fakes.tls import TestPKI

LOGIN = "myreg.azurecr.io"
PASSWORD = "S3cret"


def _unexpected(evidence: list[Evidence]) -> list[Evidence]:
    return [ev for ev in evidence if "unexpectedly" in ev.detail]


def _no_password(evidence: list[Evidence], secret: str = PASSWORD) -> None:
    for ev in evidence:
        assert secret not in ev.detail and secret not in repr(ev.data), ev


# ============================================================================ 1. bad proxy setting

BAD_PROXIES = [
    "proxy.corp:3128",  # no scheme
    f"user:{PASSWORD}@proxy.corp:8080",  # no scheme, with credentials
    f"socks5://user:{PASSWORD}@127.0.0.1:1080",  # needs socksio
    f"http://user:{PASSWORD}@127.0.0.1:abc",  # non-numeric port
    f"http://user:{PASSWORD}@127.0.0.1:99999",  # port out of range
    f"ftp://user:{PASSWORD}@127.0.0.1:21",  # unsupported scheme
    f"http://user:{PASSWORD}@bad host:8080",  # space in the host
    "http://",  # no host
]


@pytest.mark.parametrize("proxy", BAD_PROXIES)
async def test_bad_proxy_setting_is_evidence_without_password(
    world: World, make_settings: SettingsFactory, proxy: str, caplog: pytest.LogCaptureFixture
) -> None:
    if proxy.startswith("socks5") and importlib.util.find_spec("socksio") is not None:
        pytest.skip("socksio is installed: a SOCKS proxy is a valid setting here")
    world.registry()
    # model_copy skips validation: the code must be safe even if an invalid value gets through.
    settings = make_settings().model_copy(update={"proxy": proxy})
    caplog.set_level(logging.DEBUG)
    evidence = await run_checks(registry_target("myreg"), settings)
    skipped = [ev for ev in evidence if ev.check == "probe"]
    assert len(skipped) == 1 and skipped[0].status == Status.SKIPPED, skipped
    assert "probes not run" in skipped[0].detail and "proxy" in skipped[0].detail
    assert not _unexpected(evidence)
    assert "dns.ok" in findings(evidence, check="dns")  # DNS and ARM still ran
    assert "arm.found" in findings(evidence, check="arm")
    _no_password(evidence)
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"http://u:{PASSWORD}@proxy.corp:3128", "http://proxy.corp:3128"),
        (f"u:{PASSWORD}@proxy.corp:3128", "proxy.corp:3128"),
        (f"http://u:{PASSWORD}@proxy.corp:abc", "http://proxy.corp:abc"),
        (f"http://u:{PASSWORD}@proxy.corp:99999", "http://proxy.corp:99999"),
        (f"http://u:p@{PASSWORD}@proxy.corp", "http://proxy.corp"),  # unencoded @ in the password
        (f"http://u:a/{PASSWORD}@proxy.corp:1", "http://proxy.corp:1"),  # unencoded / in the password
        ("http://[::1", "http://[::1"),
        ("", ""),
    ],
)
def test_redact_proxy_never_raises_nor_leaks(url: str, shown: str) -> None:
    assert redact_proxy(url) == shown
    assert PASSWORD not in redact_proxy(url)


# ============================================================================ 2. Retry-After


class _RawRetryAfter(float):
    """A value the fake ARM renders verbatim in ``Retry-After`` (it formats the setting with ``:g``)."""

    text: str

    def __new__(cls, text: str) -> _RawRetryAfter:
        obj = super().__new__(cls, 0.0)
        obj.text = text
        return obj

    def __format__(self, spec: str) -> str:
        return self.text


def _throttled_calls(fake_arm: FakeARM) -> int:
    return sum(fake_arm.state.throttled.values())


async def test_negative_retry_after_is_not_a_tight_loop(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry(arm_mode="429")
    fake_arm.state.retry_after = _RawRetryAfter("-5")
    fake_arm.state.throttle_times = 1_000_000
    started = time.perf_counter()
    async with asyncio.timeout(5):
        result = await check_arm(registry_target("myreg"), make_settings(arm_timeout=1.5))
    assert time.perf_counter() - started < 2.5
    assert "arm.throttled" in findings(result.evidence)
    # 3 throttled paths (registry, replications, private endpoints), each retried at most every 0.5 s
    assert _throttled_calls(fake_arm) <= 3 * 4, fake_arm.state.throttled


async def test_negative_retry_after_waits_the_minimum(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry(arm_mode="429")
    fake_arm.state.retry_after = _RawRetryAfter("-5")
    started = time.perf_counter()
    result = await check_arm(registry_target("myreg"), make_settings(arm_timeout=3.0))
    assert time.perf_counter() - started >= MIN_RETRY_AFTER - 0.05
    assert "arm.found" in findings(result.evidence) and "arm.throttled" not in findings(result.evidence)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "soon"])
async def test_non_finite_or_garbage_retry_after_uses_the_default(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM, value: str
) -> None:
    world.registry(arm_mode="429")
    fake_arm.state.retry_after = _RawRetryAfter(value)
    started = time.perf_counter()
    async with asyncio.timeout(6):  # nan used to hang asyncio.sleep
        result = await check_arm(registry_target("myreg"), make_settings(arm_timeout=3.0))
    assert time.perf_counter() - started >= 0.9  # the 1 s default, not 0 and not forever
    assert "arm.found" in findings(result.evidence)


async def test_http_date_retry_after_beyond_the_deadline(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry(arm_mode="429")
    later = datetime.now(UTC) + timedelta(hours=1)
    fake_arm.state.retry_after = _RawRetryAfter(email.utils.format_datetime(later, usegmt=True))
    started = time.perf_counter()
    result = await check_arm(registry_target("myreg"), make_settings(arm_timeout=2.0))
    assert time.perf_counter() - started < 0.9  # not silently turned into a 1 s retry
    line = with_finding(result.evidence, "arm.throttled")[0]
    assert line.status == Status.WARN and "exceeds the time left" in line.detail
    assert 3500 < line.data["retry_after"] <= 3600


async def test_http_date_retry_after_in_the_near_future_is_honoured(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry(arm_mode="429")
    soon = datetime.now(UTC) + timedelta(seconds=2)
    fake_arm.state.retry_after = _RawRetryAfter(email.utils.format_datetime(soon, usegmt=True))
    started = time.perf_counter()
    result = await check_arm(registry_target("myreg"), make_settings(arm_timeout=4.0))
    assert time.perf_counter() - started >= 0.9
    assert "arm.found" in findings(result.evidence)


def test_parse_retry_after_values() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_retry_after("2", now=now) == 2.0
    assert parse_retry_after("0.25", now=now) == MIN_RETRY_AFTER
    assert parse_retry_after("-5", now=now) == MIN_RETRY_AFTER
    assert parse_retry_after("1500", milliseconds=True) == 1.5
    for bad in ("nan", "inf", "-inf", "NaN", "", "  ", "later", "1e999"):
        assert parse_retry_after(bad, now=now) is None, bad
    assert parse_retry_after("Fri, 02 Jan 2026 03:04:35 GMT", now=now) == 30.0
    assert parse_retry_after("Fri, 02 Jan 2026 03:04:35 -0000", now=now) == 30.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:00 GMT", now=now) == MIN_RETRY_AFTER  # past
    assert parse_retry_after("Fri, 02 Jan 2026 03:04:35 GMT", milliseconds=True) is None


# ============================================================================ 3. malformed /v2/ bodies


@pytest.mark.parametrize(
    ("status", "body", "outcome", "finding"),
    [
        (403, b'{"errors": {"code": "DENIED", "message": "x"}}', "http-403", "probe.forbidden_other"),
        (403, b'{"errors": "DENIED"}', "http-403", "probe.forbidden_other"),
        (403, b'{"errors": [1, 2]}', "http-403", "probe.forbidden_other"),
        (403, b'{"errors": [{"code": {"nested": 1}}]}', "http-403", "probe.forbidden_other"),
        (403, b"[" * 100_000, "http-403", "probe.forbidden_other"),
        (401, b"[" * 100_000, "401-bearer", "probe.reachable"),
        (401, b'{"errors": {"0": {}}}', "401-bearer", "probe.reachable"),
        (503, b"\xff\xfe not json", "http-503", "probe.server_error"),
    ],
)
async def test_malformed_error_body_keeps_the_http_answer(
    world: World,
    make_settings: SettingsFactory,
    fake_acr: FakeACR,
    status: int,
    body: bytes,
    outcome: str,
    finding: str,
) -> None:
    world.registry(in_arm=False)
    fake_acr.state.bodies[LOGIN] = (status, body)
    evidence = await run_checks(registry_target("myreg"), make_settings(), hypotheses=["probe"])
    assert not _unexpected(evidence)
    probe = next(ev for ev in evidence if ev.check == "probe")
    assert probe.data["http_status"] == status and probe.data["outcome"] == outcome
    assert finding in probe.findings
    assert probe.data["correlation_id"]  # headers kept as evidence


async def test_denied_ip_is_still_read_from_a_malformed_body(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    world.registry(in_arm=False)
    body = b'{"errors": {"code": "DENIED", "message": "client with IP \'198.51.100.9\' is not allowed access"}}'
    fake_acr.state.bodies[LOGIN] = (403, body)
    evidence = await run_checks(registry_target("myreg"), make_settings(), hypotheses=["probe"])
    probe = next(ev for ev in evidence if ev.check == "probe")
    assert probe.data["http_status"] == 403 and probe.data["client_ip"] == "198.51.100.9"


# ============================================================================ 4. proxy closes the certificate CONNECT


async def _via_proxy(world: World, make_settings: SettingsFactory, proxy_url: str, **kw: Any) -> list[Evidence]:
    world.registry(in_arm=False)
    settings = make_settings(proxy=proxy_url, azure_credential="none", **kw)
    return await run_checks(registry_target("myreg"), settings, hypotheses=["client-proxy"])


@pytest.mark.parametrize("after", ["eof", "flood", "403"])
async def test_proxy_refusing_the_certificate_tunnel_keeps_the_tls_finding(
    world: World, make_settings: SettingsFactory, fake_proxy: FakeProxy, fake_acr: FakeACR, after: str
) -> None:
    fake_acr.state.modes[LOGIN] = "intercept"
    fake_proxy.state.tunnel_limit = 1  # the probe's CONNECT is tunnelled, the second one is not
    fake_proxy.state.after_limit = after
    evidence = await _via_proxy(world, make_settings, fake_proxy.url)
    assert not _unexpected(evidence)
    probe = next(ev for ev in evidence if ev.check == "probe")
    assert {"proxy.ok", "probe.tls_untrusted"} <= set(probe.findings), probe
    assert probe.status == Status.FAIL
    assert len(fake_proxy.state.requests) == 2  # the certificate fetch was attempted


# ============================================================================ 5. https:// proxies


@pytest.fixture
def https_proxy(pki: TestPKI) -> Iterator[FakeProxy]:
    proxy = FakeProxy(ssl_context=pki.server_context("127.0.0.1"))
    yield proxy
    proxy.stop()


async def test_https_proxy_credentials_only_travel_over_tls(
    world: World, make_settings: SettingsFactory, https_proxy: FakeProxy, fake_acr: FakeACR
) -> None:
    fake_acr.state.modes[LOGIN] = "intercept"
    https_proxy.state.host_map[LOGIN] = LOGIN_IP
    https_proxy.state.mode = "407"
    https_proxy.state.credentials = ("alice", PASSWORD)
    url = https_proxy.url.replace("https://", f"https://alice:{PASSWORD}@")
    evidence = await _via_proxy(world, make_settings, url)
    probe = next(ev for ev in evidence if ev.check == "probe")
    # The proxy only speaks TLS: both CONNECTs (the probe's and the certificate fetch's) reached it,
    # with credentials, so neither was sent in clear text; the fetch found the re-signing CA.
    assert {"proxy.ok", "probe.tls_intercepted"} <= set(probe.findings), probe
    assert "Contoso TLS Inspection" in probe.detail
    assert [auth for _, auth in https_proxy.state.requests] == [True, True]
    assert probe.data["proxy"] == https_proxy.url
    _no_password(evidence)


class _Refused(ConnectionRefusedError):
    pass


@pytest.mark.parametrize(
    ("proxy", "port", "tls"),
    [
        (f"https://alice:{PASSWORD}@127.0.0.1", 443, True),
        (f"https://alice:{PASSWORD}@127.0.0.1:8443", 8443, True),
        (f"http://alice:{PASSWORD}@127.0.0.1", 80, False),
    ],
)
async def test_certificate_tunnel_uses_the_proxy_scheme(
    monkeypatch: pytest.MonkeyPatch, make_settings: SettingsFactory, proxy: str, port: int, tls: bool
) -> None:
    calls: list[tuple[Any, ...]] = []

    async def fake_open_connection(host: str, port: int, **kw: Any) -> Any:
        calls.append((host, port, kw.get("ssl"), kw.get("server_hostname")))
        raise _Refused("not really connecting")

    monkeypatch.setattr(asyncio, "open_connection", fake_open_connection)
    settings = make_settings().model_copy(update={"proxy": proxy})  # a port-less URL, past validation
    with pytest.raises(_Refused):
        await probe_checks._open_tunnel(settings, LOGIN, 443)
    ((host, used_port, ctx, sni),) = calls
    assert host == "127.0.0.1" and used_port == port
    assert isinstance(ctx, ssl.SSLContext) is tls
    if tls:
        assert ctx.verify_mode == ssl.CERT_REQUIRED and sni == "127.0.0.1"


async def test_certificate_tunnel_is_not_attempted_for_socks(
    make_settings: SettingsFactory, loopback_only: ConnectLog
) -> None:
    settings = make_settings().model_copy(update={"proxy": f"socks5://alice:{PASSWORD}@127.0.0.1:1080"})
    assert await probe_checks._open_tunnel(settings, LOGIN, 443) is None
    assert loopback_only.seen == []


# ============================================================================ 6. probe task timeout


async def test_slow_intercepting_device_is_a_tls_finding_not_a_timeout(
    world: World, make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    # Each handshake takes 1.75 s (< probe_timeout 2 s): the request and the certificate fetch
    # together take ~3.5 s, past the old task timeout (probe_timeout + 1.5 s).
    world.registry(in_arm=False)
    fake_acr.state.modes[LOGIN] = "intercept"
    fake_acr.state.latency = ((0.0, 0.0), (1.75, 1.75), (0.0, 0.0))
    settings = make_settings(probe_timeout=2.0, check_deadline=10.0)
    evidence = await run_checks(registry_target("myreg"), settings, hypotheses=["probe"])
    probe = next(ev for ev in evidence if ev.check == "probe")
    assert "probe.tls_intercepted" in probe.findings and "probe.timeout" not in probe.findings, probe


async def test_certificate_explanation_only_gets_the_time_left(
    make_settings: SettingsFactory, fake_acr: FakeACR
) -> None:
    fake_acr.state.modes[LOGIN] = "intercept"
    fake_acr.state.latency = ((0.0, 0.0), (0.6, 0.6), (0.0, 0.0))
    settings = make_settings(probe_timeout=2.0)
    client = probe_checks.make_client(settings, proxy=False)
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        ev = await check_probe(LOGIN, LOGIN_IP, settings, client, deadline=started + 1.0)
    finally:
        await client.aclose()
    elapsed = loop.time() - started
    assert elapsed < 1.3, elapsed  # not 0.6 + 2.0 s
    assert "probe.tls_untrusted" in ev.findings  # the main finding survives the cut-short explanation


def test_probe_task_timeout_covers_the_probe_budget(make_settings: SettingsFactory) -> None:
    settings = make_settings(probe_timeout=5.0)
    assert probe_checks.probe_budget(settings) >= 2 * settings.probe_timeout + 0.5


# ============================================================================ 7. cancelled run


def _guarded_tasks() -> list[asyncio.Task[Any]]:
    return [
        t
        for t in asyncio.all_tasks()
        if not t.done() and getattr(t.get_coro(), "__qualname__", "") == "_Run._guarded"
    ]


async def test_cancelled_run_cancels_its_tasks(
    world: World, make_settings: SettingsFactory, fake_arm: FakeARM
) -> None:
    world.registry(arm_mode="slow")
    fake_arm.state.slow_seconds = 3.0
    settings = make_settings(arm_timeout=5.0, check_deadline=10.0)
    run = asyncio.create_task(run_checks(registry_target("myreg"), settings))
    await asyncio.sleep(0.5)
    assert _guarded_tasks(), "the ARM task should still be running"
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert _guarded_tasks() == []


# ============================================================================ 8. DNS configuration errors


@pytest.mark.parametrize(
    "spec", ["10.0.0.4:abc", "[fd00::1]:abc", "[fd00::1", "[fd00::1]53", "10.0.0.4:", "10.0.0.4:99999", "10.0.0.4:+53"]
)
def test_parse_server_rejects_with_dns_config_error(spec: str) -> None:
    with pytest.raises(DnsConfigError) as info:
        parse_server(spec)
    assert spec in str(info.value)


def test_parse_server_still_accepts_good_values() -> None:
    assert parse_server(" 10.0.0.4 ") == ("10.0.0.4", 53)
    assert parse_server("[fd00::1]") == ("fd00::1", 53)
    assert parse_server("[fd00::1]:5353") == ("fd00::1", 5353)
    assert parse_server("fd00::1") == ("fd00::1", 53)


async def test_bad_dns_server_is_a_config_error_line(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    world.registry()
    evidence = await run_checks(registry_target("myreg"), make_settings(dns_servers=["10.0.0.4:abc"]))
    assert not _unexpected(evidence)
    dns_lines = [ev for ev in evidence if ev.check == "dns" and ev.target == LOGIN]
    assert dns_lines and dns_lines[0].status == Status.SKIPPED
    assert "10.0.0.4:abc" in dns_lines[0].detail and "configuration error" in dns_lines[0].detail
    assert dns_lines[0].data["config_error"]
    assert "arm.found" in findings(evidence, check="arm")
    assert fake_dns.log == []


async def test_missing_system_resolver_configuration_is_a_config_error_line(
    make_settings: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_config(self: Any, *args: Any, **kwargs: Any) -> None:
        raise dns.resolver.NoResolverConfiguration("no nameservers")

    async def never(*args: Any, **kwargs: Any) -> None:  # UDP sendto escapes the connect() guard
        raise AssertionError("the system resolver must not be queried")

    monkeypatch.setattr(dns.resolver.BaseResolver, "read_resolv_conf", no_config)
    monkeypatch.setattr(dns.asyncresolver.Resolver, "resolve", never)
    ev, answer = await check_dns(LOGIN, make_settings(dns_servers=[]))
    assert ev.status == Status.SKIPPED and answer.rcode == "ERROR" and answer.addresses == []
    assert "no system resolver configuration" in ev.detail and "dns_servers" in ev.detail


# ============================================================================ 9. report quoting


@pytest.mark.parametrize(
    "value",
    ["O'Brien-Corp-CA", "bob's laptop", 'say "hi"', "back\\slash", "tab\there", "", "plain", "new\nline", "'"],
)
def test_quote_round_trips_through_shlex(value: str) -> None:
    expected = value.replace("\t", " ").replace("\n", " ").strip()
    assert shlex.split(f"key={_quote(value)}") == [f"key={expected}"]


def test_report_with_apostrophes_parses_back() -> None:
    target = registry_target("myreg")
    evidence = [
        Evidence(
            "dns",
            LOGIN,
            "x",
            Status.OK,
            "x",
            {"rcode": "NOERROR", "addresses": ["20.1.2.3"], "scopes": {"20.1.2.3": "public"}},
        ),
        Evidence(
            "probe",
            LOGIN,
            "x",
            Status.FAIL,
            "x",
            {"address": "20.1.2.3", "outcome": "tls-intercepted", "cert_issuer": "O'Brien-Corp-CA, O'Brien Corp"},
            0.0,
            ["probe.tls_intercepted"],
        ),
        Evidence(
            "probe",
            "myreg.westeurope.data.azurecr.io",
            "x",
            Status.FAIL,
            "x",
            {"address": "20.1.2.4", "outcome": "denied", "client_ip": "1.2.3.4", "correlation_id": "a'b c"},
            0.0,
            ["probe.denied"],
        ),
    ]
    text = probe_report(target, evidence, "bob's-laptop", 5.0)
    assert "issuer=\"O'Brien-Corp-CA, O'Brien Corp\"" in text
    for line in text.splitlines():
        shlex.split(line)  # every line parses
    login_server, parsed = parse_probe_report(text)
    assert login_server == LOGIN
    assert [(ev.check, ev.target) for ev in parsed] == [(ev.check, ev.target) for ev in evidence]
    assert all("bob's-laptop" in ev.vantage for ev in parsed)
    assert "user.probe.tls_intercepted" in parsed[1].findings
    assert parsed[2].data["client_ip"] == "1.2.3.4"


# ============================================================================ 10. fan-out per paste


async def test_a_paste_naming_many_endpoints_checks_a_bounded_number(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    """One paste naming 800 endpoints made 258 DNS queries and 163 evidence lines: now at most
    ``max_paste_hosts`` pasted names, plus the login server and what ARM names, and one line for the rest."""
    from bot.diagnose import diagnose_live

    world.registry(data_endpoint_enabled=True, replicas=("eastus",))
    pasted = [f"myreg.region{i:02d}.data.azurecr.io" for i in range(40)]
    paste = "Error: dial tcp: lookup myreg.azurecr.io: i/o timeout\n" + "\n".join(
        f"GET https://{host}/v2/app/blobs/sha256:00: dial tcp: i/o timeout" for host in pasted
    )
    d = await diagnose_live(paste, make_settings(max_paste_hosts=5))
    queried = {name.rstrip(".") for name, _, _ in fake_dns.log}
    arm_named = {"myreg.westeurope.data.azurecr.io", "myreg.eastus.data.azurecr.io"}
    assert queried & set(pasted) == set(pasted[:5])
    assert {LOGIN} | arm_named <= queried  # the login server and ARM's data endpoints, whatever the cap
    unchecked = [ev for ev in d.evidence if ev.check == "live" and "not checked" in ev.detail]
    assert len(unchecked) == 1, [ev.detail for ev in d.evidence]
    line = unchecked[0]
    assert line.status == Status.SKIPPED and line.data["unchecked"] == 35
    assert "myreg.region05.data.azurecr.io" in line.detail and "and 30 more" in line.detail
    assert "max_paste_hosts" in line.detail
    assert len(d.evidence) < 40


async def test_pasted_names_arm_also_names_are_not_reported_unchecked(
    world: World, make_settings: SettingsFactory
) -> None:
    world.registry(data_endpoint_enabled=True, replicas=("eastus",))
    evidence = await run_checks(
        registry_target(LOGIN),
        make_settings(max_paste_hosts=1),
        hypotheses=["dns", "arm"],
        paste_hosts=["myreg.region00.data.azurecr.io", "myreg.eastus.data.azurecr.io", "MyReg.AzureCR.io."],
    )
    targets = {ev.target for ev in evidence if ev.check == "dns"}
    assert {"myreg.region00.data.azurecr.io", "myreg.eastus.data.azurecr.io", LOGIN} <= targets
    assert not [ev for ev in evidence if ev.check == "live"]  # ARM named eastus; the login server is always checked


# ============================================================================ 11. evidence line size


async def test_a_thousand_addresses_make_short_evidence_lines(
    world: World, make_settings: SettingsFactory, fake_dns: FakeDNS
) -> None:
    """1000 A records made the DNS line and ARM's "exists (DNS answers …)" line ~25 KB each."""
    world.registry(in_arm=False)
    many = [f"127.0.{i // 250}.{i % 250 + 1}" for i in range(1000)]
    fake_dns.a(LOGIN, *many)
    evidence = await run_checks(registry_target(LOGIN), make_settings(), hypotheses=["dns", "arm"])
    dns_line = next(ev for ev in evidence if ev.check == "dns" and ev.target == LOGIN)
    assert len(dns_line.detail) < 500 and "and 992 more" in dns_line.detail, dns_line.detail  # 127.0.0.5 twice
    assert len(dns_line.data["addresses"]) == 1000  # the data keep every answer for the cross-checks
    arm_line = with_finding(evidence, "arm.permission_missing")[0]
    assert "exists (DNS answers 127.0." in arm_line.detail
    assert "and 992 more" in arm_line.detail and len(arm_line.detail) < 1500, arm_line.detail
    report = probe_report(registry_target(LOGIN), evidence, "laptop", 1.0)
    assert max(len(line) for line in report.splitlines()) < 300
