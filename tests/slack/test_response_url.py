"""A payload's response_url is used only when it is a Slack webhook address (or the configured API's origin).

The address a foreign response_url names is a real listening socket on loopback: the test
asserts the bot never connects to it, over both transports, and that nothing is logged as an
error for it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import pytest

from bot.config import Settings
from handlers.response_url import allowed_origins, is_allowed
from tests.fakes.slack import FakeSlack
from tests.slack.conftest import BotRunner, click


@pytest.fixture
def trap() -> Iterator[socket.socket]:
    """A listening socket nobody should connect to."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    yield server
    server.close()


def _connected(server: socket.socket) -> bool:
    try:
        conn, _ = server.accept()
    except TimeoutError:
        return False
    conn.close()
    return True


def test_a_foreign_response_url_is_never_contacted(
    bot: BotRunner, fake_slack: FakeSlack, trap: socket.socket, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    port = trap.getsockname()[1]
    payload = click(fake_slack, "acrcheck_helpful", "no-such-diagnosis")  # answered through respond(): "expired"
    payload["response_url"] = f"http://127.0.0.1:{port}/latest/meta-data/"
    answer = bot.send_interactive(payload)
    assert answer == 200 if bot.mode == "http" else answer.get("envelope_id")
    fake_slack.settle(0.5)
    assert not _connected(trap)
    assert fake_slack.responses == []
    assert any("refused a response_url" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_same_click_with_slacks_response_url_is_answered(bot: BotRunner, fake_slack: FakeSlack) -> None:
    bot.send_interactive(click(fake_slack, "acrcheck_helpful", "no-such-diagnosis"))
    assert fake_slack.wait_for(lambda: fake_slack.responses)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.slack.com/actions/T1/123/abc", True),
        ("https://HOOKS.slack.com/commands/T1/1/x", True),
        ("https://hooks.slack-gov.com/actions/T1/1/x", True),
        ("http://hooks.slack.com/actions/T1/1/x", False),  # not https
        ("https://hooks.slack.com.evil.example/actions", False),
        ("https://user@hooks.slack.com/actions", False),
        ("https://hooks.slack.com:8443/actions", False),
        ("https://hooks.slack.com:port/actions", False),
        ("http://169.254.169.254/latest/meta-data/", False),
        ("https://slack.com/api/chat.postMessage", True),  # the configured Web API origin (Slack itself)
        ("", False),
        (None, False),
        (["https://hooks.slack.com/a"], False),
    ],
)
def test_allowed_response_urls(url: object, ok: bool) -> None:
    origins = allowed_origins(Settings(_env_file=None))  # type: ignore[call-arg]
    assert is_allowed(url, origins) is ok


def test_the_configured_api_origin_is_allowed_for_proxies_and_fakes() -> None:
    origins = allowed_origins(Settings(_env_file=None, slack_api_url="http://127.0.0.1:9999/api/"))  # type: ignore[call-arg]
    assert is_allowed("http://127.0.0.1:9999/response/1", origins)
    assert not is_allowed("http://127.0.0.1:9998/response/1", origins)
