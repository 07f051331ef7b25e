"""Fixtures for the live-check tests: loopback fakes, settings pointing at them, a network guard.

Loaded by ``tests/live/conftest.py``. The fakes start once per session (threads, port 0) and
are reset before each test. Settings reach them only through ordinary settings values
(arm_endpoint, ca_bundle, dns_servers, probe_port, proxy) — the code under test has no test
hooks. An autouse guard makes any connect() outside 127.0.0.0/8 / ::1 fail the test, so a
scenario that accidentally tries to reach a real or private address cannot pass silently.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.config import Settings
from bot.engine.models import Evidence
from tests.fakes.acr import FakeACR
from tests.fakes.arm import SUB, FakeARM, registry_json
from tests.fakes.dns import FakeDNS
from tests.fakes.proxy import FakeProxy
from tests.fakes.tls import TestPKI

LOGIN_IP = "127.0.0.5"
SECOND_IP = "127.0.0.6"
BLACKHOLE_IP = "127.0.0.7"  # "silent" front end: accepts TCP, never speaks TLS
REFUSED_IP = "127.0.0.9"  # nothing listens here
VANTAGE = "test-vantage"
TEST_ISSUER = "acrcheck test public CA"
SettingsFactory = Callable[..., Settings]

_PROXY_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
)


@pytest.fixture(scope="session")
def pki() -> Iterator[TestPKI]:
    value = TestPKI()
    yield value
    value.close()


@pytest.fixture(scope="session")
def fake_acr(pki: TestPKI) -> Iterator[FakeACR]:
    fake = FakeACR(pki, addresses=(LOGIN_IP, SECOND_IP, BLACKHOLE_IP))
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_dns() -> Iterator[FakeDNS]:
    fake = FakeDNS()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_arm(pki: TestPKI) -> Iterator[FakeARM]:
    fake = FakeARM(pki)
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def fake_proxy() -> Iterator[FakeProxy]:
    fake = FakeProxy()
    yield fake
    fake.stop()


@dataclass
class ConnectLog:
    """Every connect() the process made during a test, and the ones the guard refused."""

    seen: list[Any] = field(default_factory=list)
    refused: list[Any] = field(default_factory=list)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConnectLog]:
    """Refuse (and record) any INET connect outside loopback for the duration of a test."""
    record = ConnectLog()
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def allowed(sock: socket.socket, address: Any) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True
        record.seen.append(address)
        try:
            ok = ipaddress.ip_address(str(address[0]).split("%")[0]).is_loopback
        except ValueError:
            ok = False
        if not ok:
            record.refused.append(address)
        return ok

    def connect(self: socket.socket, address: Any) -> None:
        if not allowed(self, address):
            raise OSError(101, f"test guard: connect to {address!r} outside loopback refused")
        original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not allowed(self, address):
            return 101
        return original_connect_ex(self, address)

    original_sendto = socket.socket.sendto
    original_getaddrinfo = socket.getaddrinfo

    def sendto(self: socket.socket, data: Any, *args: Any) -> int:
        # UDP (DNS) leaves through sendto, not connect: the same rule applies.
        address = args[-1]
        if not allowed(self, address):
            raise OSError(101, f"test guard: datagram to {address!r} outside loopback refused")
        return original_sendto(self, data, *args)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        # A name lookup through the system resolver would reach the machine's DNS server.
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(name.strip("[]").split("%")[0])
        except ValueError:
            if name not in ("localhost", "ip6-localhost") and host is not None:
                record.refused.append((name, "getaddrinfo"))
                raise socket.gaierror(socket.EAI_NONAME, f"test guard: name lookup of {name!r} refused") from None
        return original_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in _PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    yield record
    assert not record.refused, f"a test tried to connect outside loopback: {record.refused}"


@pytest.fixture(autouse=True)
def reset_fakes(request: pytest.FixtureRequest) -> None:
    for name in ("fake_acr", "fake_dns", "fake_arm", "fake_proxy"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture
def make_settings(pki: TestPKI, fake_dns: FakeDNS, fake_acr: FakeACR, fake_arm: FakeARM) -> SettingsFactory:
    """Settings aimed at the fakes, with short timeouts; keyword overrides win."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "arm_endpoint": fake_arm.url,
            "logs_endpoint": fake_arm.url,
            "ca_bundle": pki.ca_path,
            "dns_servers": [fake_dns.server_spec],
            "dns_timeout": 0.3,
            "probe_port": fake_acr.port,
            "probe_timeout": 0.5,
            "check_deadline": 4.0,
            "azure_credential": "token",
            "azure_token": "test-token-not-secret",
            "subscriptions": [SUB],
            "arm_timeout": 1.0,
            "token_timeout": 0.5,
            "vantage_name": VANTAGE,
            # The test CA plays Azure's public issuing CA (production default: Microsoft Azure TLS CAs).
            "expected_tls_issuers": [TEST_ISSUER],
        }
        values.update(overrides)
        return Settings(**values)

    return build


@dataclass
class World:
    """Builds a consistent scenario across the fakes: ARM resource, DNS records, front-end modes."""

    dns: FakeDNS
    acr: FakeACR
    arm: FakeARM
    proxy: FakeProxy

    def registry(
        self,
        name: str = "myreg",
        *,
        replicas: tuple[str, ...] = (),
        address: str = LOGIN_IP,
        arm_mode: str = "ok",
        in_arm: bool = True,
        **arm_fields: Any,
    ) -> dict[str, Any]:
        body = registry_json(name, replicas=replicas, **arm_fields)
        if in_arm:
            self.arm.add(body, replicas=replicas, mode=arm_mode)
        login = body["properties"]["loginServer"]
        self.dns.a(login, address)
        self.proxy.state.host_map[login] = address
        for host in body["properties"]["dataEndpointHostNames"]:
            self.dns.a(host, address)
            self.proxy.state.host_map[host] = address
        return body


@pytest.fixture
def world(fake_dns: FakeDNS, fake_acr: FakeACR, fake_arm: FakeARM, fake_proxy: FakeProxy) -> World:
    return World(fake_dns, fake_acr, fake_arm, fake_proxy)


def with_finding(evidence: list[Evidence], finding: str) -> list[Evidence]:
    """The Evidence lines that carry ``finding``."""
    return [ev for ev in evidence if finding in ev.findings]


def findings(evidence: list[Evidence], *, check: str | None = None, target: str | None = None) -> set[str]:
    """All findings, optionally of one check and/or target."""
    return {
        f
        for ev in evidence
        if (check is None or ev.check == check) and (target is None or ev.target == target)
        for f in ev.findings
    }


def assert_vantage(evidence: list[Evidence], vantage: str = VANTAGE) -> None:
    assert evidence, "no evidence"
    for ev in evidence:
        assert ev.vantage == vantage, ev
        assert ev.duration_ms >= 0
