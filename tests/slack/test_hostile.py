"""SSRF: hostile registry arguments and pasted hosts are refused before any network traffic.

A process-wide audit hook records every socket connect, DNS lookup and datagram while a
test runs; only the fake Slack and the bot's own HTTP port (both on 127.0.0.1) may appear.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from bot.diagnose import diagnose
from handlers.policy import ChannelPolicy, guard_paste, guard_registry
from tests.fakes.slack import FakeSlack

HOSTILE_REGISTRIES = [
    "169.254.169.254",
    "127.0.0.1",
    "localhost",
    "0x7f000001",
    "2130706433",
    "0177.0.0.1",
    "127.1",
    "10.0.0.5",
    "[::1]",
    "[::ffff:169.254.169.254]",
    "[fd00::1]",
    "metadata",
    "metadata.google.internal",
    "metadata.azurecr.io",
    "wpad",
    "myreg.azurecr.io.evil.com",
    "myreg.azurecr.io@evil.com",
    "user:pass@myreg.azurecr.io",
    "evil.com#myreg.azurecr.io",
    "evil.com?myreg.azurecr.io",
    "myreg.azurecr.io:8080",
    "https://myreg.azurecr.io:444/v2/",
    "http://myreg.azurecr.io",
    "file:///etc/passwd",
    "gopher://myreg.azurecr.io",
    "myreg.azurecr.io/../../admin",
    "myrеg.azurecr.io",  # Cyrillic e
    "ｍｙｒｅｇ.azurecr.io",  # full-width
    "myreg\u200b.azurecr.io",  # zero-width space
    "xn--myrg-lve.azurecr.io",
    "myreg.blob.core.windows.net",
    "kubernetes.default.svc",
    "evil.com",
    "a" * 300,
    "myreg..azurecr.io",
    "-myreg.azurecr.io",
    "myreg.azurecr.io\\@evil.com",
]

HOSTILE_PASTES = [
    'Error response from daemon: Get "https://myreg.azurecr.io.evil.com/v2/": dial tcp 169.254.169.254:443: i/o timeout',
    'Error response from daemon: Get "https://myreg.azurecr.io@evil.com/v2/": EOF',
    "failed to pull myrеg.azurecr.io/app:1: dial tcp: lookup myrеg.azurecr.io: no such host",
    "dial tcp: lookup myreg.azurecr.io.attacker.net on 10.0.0.2:53: no such host",
    'Get "https://metadata.azurecr.io/v2/": denied: client with IP 1.2.3.4 is not allowed access',
    'Get "https://user:hunter2@myreg.azurecr.io/v2/": 403 Forbidden denied',
    'Get "https://myreg.azurecr.io:8443/v2/": dial tcp 127.0.0.1:8443: connect: connection refused',
]


class NetworkAudit:
    """Records socket activity from every thread while ``active``."""

    def __init__(self) -> None:
        self.active = False
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or not event.startswith("socket."):
            return
        if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            address = args[1] if len(args) > 1 else None
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr"):
            address = args[0]
        else:
            return
        with self.lock:
            self.events.append((event, address))


_AUDIT = NetworkAudit()
sys.addaudithook(_AUDIT.hook)


@pytest.fixture
def audit() -> Iterator[NetworkAudit]:
    _AUDIT.events.clear()
    _AUDIT.active = True
    yield _AUDIT
    _AUDIT.active = False


def _unexpected(audit: NetworkAudit, allowed_ports: set[int]) -> list[tuple[str, Any]]:
    bad = []
    for event, address in list(audit.events):
        if isinstance(address, tuple) and len(address) >= 2:
            if address[0] == "127.0.0.1" and address[1] in allowed_ports:
                continue
        elif isinstance(address, str | bytes) and address in ("127.0.0.1", b"127.0.0.1"):
            continue
        bad.append((event, address))
    return bad


def test_at_least_thirty_hostile_arguments() -> None:
    assert len(HOSTILE_REGISTRIES) >= 30


@pytest.mark.parametrize("value", HOSTILE_REGISTRIES)
def test_guard_refuses(value: str) -> None:
    from handlers.policy import PolicyError

    with pytest.raises(PolicyError):
        guard_registry(value, ChannelPolicy("C1", "passive", 0.5, False))


@pytest.mark.parametrize("paste", HOSTILE_PASTES)
def test_hostile_paste_hosts_refused(paste: str) -> None:
    _targets, refusals = guard_paste(diagnose(paste), ChannelPolicy("C1", "passive", 0.5, False))
    assert refusals, paste


def test_hostile_commands_make_no_connection(bot_factory: Any, fake_slack: FakeSlack, audit: NetworkAudit) -> None:
    runner = bot_factory("http")
    allowed = {fake_slack.port, runner.port}
    for value in HOSTILE_REGISTRIES:
        _elapsed, ack = runner.send_command(value.replace(" ", ""))
        assert ack.get("response_type") == "ephemeral", (value, ack)
        assert "Checking" not in str(ack), value
    for paste in HOSTILE_PASTES:
        runner.send_command("diagnose " + paste)
    fake_slack.wait_for(
        lambda: (
            len([b for _r, b in fake_slack.responses if b.get("response_type") == "in_channel"]) >= len(HOSTILE_PASTES)
        ),
        timeout=30,
    )
    fake_slack.settle(0.5)
    assert _unexpected(audit, allowed) == []
    sent = fake_slack.outgoing_dump()
    assert "Live checks skipped" in sent


def test_hostile_mentions_make_no_connection(bot_factory: Any, fake_slack: FakeSlack, audit: NetworkAudit) -> None:
    from tests.fakes.slack import BOT_USER_ID
    from tests.slack.conftest import event_body, message_event

    runner = bot_factory("http")
    allowed = {fake_slack.port, runner.port}
    for paste in HOSTILE_PASTES:
        runner.send_event(event_body({**message_event(f"<@{BOT_USER_ID}> {paste}"), "type": "app_mention"}))
        runner.send_event(event_body(message_event(paste)))
    fake_slack.wait_for(lambda: len(fake_slack.posts()) >= len(HOSTILE_PASTES), timeout=30)
    fake_slack.settle(0.5)
    assert _unexpected(audit, allowed) == []
