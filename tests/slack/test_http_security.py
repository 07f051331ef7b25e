"""HTTP mode: Slack's signature and timestamp checks guard /slack/events."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.fakes.slack import FakeSlack
from tests.slack.conftest import REGISTRY_ERROR, event_body, message_event


def test_forged_signature_rejected(bot_factory: Any, fake_slack: FakeSlack) -> None:
    runner = bot_factory("http")
    raw = json.dumps(event_body(message_event(REGISTRY_ERROR)))
    headers = runner.signed_headers(raw, content_type="application/json")
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    assert runner.post_raw(raw, headers).status_code == 401
    # Signed for a different body.
    headers = runner.signed_headers(raw + " ", content_type="application/json")
    assert runner.post_raw(raw, headers).status_code == 401
    # No signature at all.
    assert runner.post_raw(raw, {"Content-Type": "application/json"}).status_code == 401
    fake_slack.settle(0.4)
    assert fake_slack.posts() == []


def test_stale_timestamp_rejected(bot_factory: Any, fake_slack: FakeSlack) -> None:
    runner = bot_factory("http")
    raw = json.dumps(event_body(message_event(REGISTRY_ERROR)))
    stale = int(time.time()) - 10 * 60
    headers = runner.signed_headers(raw, timestamp=stale, content_type="application/json")
    assert runner.post_raw(raw, headers).status_code == 401
    future = int(time.time()) + 10 * 60
    headers = runner.signed_headers(raw, timestamp=future, content_type="application/json")
    assert runner.post_raw(raw, headers).status_code == 401
    fake_slack.settle(0.4)
    assert fake_slack.posts() == []


def test_url_verification(bot_factory: Any) -> None:
    runner = bot_factory("http")
    raw = json.dumps({"token": "x", "challenge": "abc123", "type": "url_verification"})
    response = runner.post_raw(raw, runner.signed_headers(raw, content_type="application/json"))
    assert response.status_code == 200
    assert "abc123" in response.text


def test_healthz(bot_factory: Any) -> None:
    runner = bot_factory("http")
    assert runner.http.get(f"http://127.0.0.1:{runner.port}/healthz").text == "ok"


def test_oversized_request_is_refused_before_it_is_read(bot_factory: Any, fake_slack: FakeSlack) -> None:
    from bot.service.http_app import MAX_EVENT_BYTES

    runner = bot_factory("http")
    big = "x" * (MAX_EVENT_BYTES + 10)
    assert runner.post_raw(big, {"Content-Type": "application/json"}).status_code == 413

    def chunks() -> Any:  # no Content-Length: the cap applies while streaming
        for _ in range(3):
            yield b"y" * (MAX_EVENT_BYTES // 2)

    url = f"http://127.0.0.1:{runner.port}/slack/events"
    assert runner.http.post(url, content=chunks(), headers={"Content-Type": "application/json"}).status_code == 413
    # A normal signed event still goes through after the cap.
    raw = json.dumps(event_body(message_event(REGISTRY_ERROR)))
    assert runner.post_raw(raw, runner.signed_headers(raw, content_type="application/json")).status_code == 200
    fake_slack.settle(0.4)
