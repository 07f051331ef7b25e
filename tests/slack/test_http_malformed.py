"""Hostile and malformed requests: 401 before any parsing, 400 when signed but malformed, never 5xx.

Issue 12: ``POST /slack/events`` parsed the body before checking the signature, so a truncated
JSON body (signed or not), a JSON array, ``payload=%7Bnot-json``, non-UTF-8 bytes or
``"event": "a string"`` got HTTP 500 and an ERROR traceback. Also Socket Mode: a malformed
envelope is logged at WARNING and acknowledged, and the connection keeps working.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Settings
from bot.store import Store
from tests.fakes.slack import APP_TOKEN, TEAM_ID, FakeSlack
from tests.slack.conftest import SIGNING_SECRET, BotRunner, event_body

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def sign(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: str | None = None) -> dict[str, str]:
    """Slack's scheme on the raw bytes: ``v0=`` HMAC-SHA256 of ``v0:{ts}:{body}``."""
    ts = timestamp or str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def form_payload(payload: Any) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()


MALFORMED: list[tuple[str, bytes, str]] = [
    ("truncated JSON", b'{"type": "event_callback", "event": {', JSON),
    ("JSON array", b'[{"type": "event_callback", "event": {"type": "message"}}]', JSON),
    ("JSON string", b'"event_callback"', JSON),
    ("JSON null", b"null", JSON),
    ("empty body", b"", JSON),
    ("payload is not JSON", b"payload=%7Bnot-json", FORM),
    ("payload is an array", form_payload([1, 2]), FORM),
    ("non-UTF-8 JSON", '{"type": "event_callback", "event": {"type": "message", "text": "café"}}'.encode("latin-1"), JSON),
    ("lone surrogate", b'{"type": "event_callback", "event": {"type": "message", "text": "\\ud800"}}', JSON),
    ("deep nesting", b"[" * 50_000 + b"]" * 50_000, JSON),
    ("event is a string", b'{"type": "event_callback", "event": "a string"}', JSON),
    ("event without a type", b'{"type": "event_callback", "event": {"text": "hello"}}', JSON),
    ("event_callback without event", b'{"type": "event_callback", "team_id": "T0000001"}', JSON),
    ("no type at all", b'{"event": {"type": "message", "text": "hi"}}', JSON),
    ("type is a number", b'{"type": 5, "event": {"type": "message"}}', JSON),
    ("message text is a number", json.dumps(event_body({"type": "message", "text": 12, "channel": "C1"})).encode(), JSON),
    ("authorizations is a number", b'{"type": "event_callback", "authorizations": 5, "event": {"type": "x"}}', JSON),
    ("authorization is a string", b'{"type": "event_callback", "authorizations": ["x"], "event": {"type": "x"}}', JSON),
    ("team is a list", b'{"type": "event_callback", "team": [1], "event": {"type": "x"}}', JSON),
    ("actions is a string", form_payload({"type": "block_actions", "actions": "x"}), FORM),
    ("action is a number", form_payload({"type": "block_actions", "actions": [1]}), FORM),
    ("action_id is an object", form_payload({"type": "block_actions", "actions": [{"action_id": {}}]}), FORM),
    ("button click with user as a string", form_payload({"type": "block_actions", "user": "U1",
     "actions": [{"action_id": "acrcheck_helpful", "value": "1"}]}), FORM),  # found by benchmarks/hostile_requests.py
    ("view without callback_id", form_payload({"type": "view_submission", "view": {}}), FORM),
    ("shortcut without callback_id", form_payload({"type": "shortcut", "trigger_id": "1"}), FORM),
    ("url_verification without challenge", b'{"type": "url_verification"}', JSON),
]
MALFORMED_IDS = [name for name, *_ in MALFORMED]

# fmt: off
UNKNOWN_BUT_WELL_FORMED: list[tuple[str, bytes, str]] = [
    ("event type we do not subscribe to", json.dumps(event_body({"type": "pin_added", "user": "U1",
     "channel_id": "C0000001", "event_ts": "1.2"})).encode(), JSON),
    ("app_rate_limited", json.dumps({"token": "x", "type": "app_rate_limited", "team_id": TEAM_ID,
     "minute_rate_limited": 1518467820, "api_app_id": "AAPP0001"}).encode(), JSON),
    ("a button we never drew", form_payload({"type": "block_actions", "team": {"id": TEAM_ID}, "user": {"id": "U1"},
     "api_app_id": "AAPP0001", "trigger_id": "1.2", "actions": [{"action_id": "someone_elses_button",
     "block_id": "b1", "type": "button", "value": "v", "action_ts": "1.2"}]}), FORM),
    ("an interaction type we do not use", form_payload({"type": "view_closed", "team": {"id": TEAM_ID},
     "user": {"id": "U1"}, "view": {"id": "V1", "callback_id": "not_ours", "type": "modal"}}), FORM),
]
# fmt: on


@pytest.fixture
def http_bot(bot_factory: Any) -> BotRunner:
    runner: BotRunner = bot_factory("http")
    return runner


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("name", "body", "ctype"), MALFORMED, ids=MALFORMED_IDS)
def test_unsigned_or_forged_requests_get_401_before_any_parsing(
    name: str, body: bytes, ctype: str, http_bot: BotRunner, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stale = str(int(time.time()) - 600)
    attempts: list[dict[str, Any]] = [
        {},  # no signature at all
        sign(body, secret="not-the-signing-secret"),  # forged
        sign(body, timestamp=stale),  # replayed
        {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": sign(body)["X-Slack-Signature"]},
        {"X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": "v0=00"},
        {**sign(body), "X-Slack-Signature": b"v0=\xe9\xe9"},  # not ASCII
    ]
    for headers in attempts:
        response = http_bot.http.post(http_bot.url, content=body, headers={"Content-Type": ctype, **headers})
        assert response.status_code == 401, (headers, response.text)
    fake_slack.settle(0.3)
    assert fake_slack.posts() == []
    assert errors(caplog) == []
    # Nothing about an unsigned request is logged above DEBUG: it cannot fill the log.
    assert not [r for r in caplog.records if r.name == "acrcheck.http" and r.levelno > logging.DEBUG]


@pytest.mark.parametrize(("name", "body", "ctype"), MALFORMED, ids=MALFORMED_IDS)
def test_signed_malformed_requests_get_400_and_no_traceback(
    name: str, body: bytes, ctype: str, http_bot: BotRunner, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    response = http_bot.http.post(http_bot.url, content=body, headers={"Content-Type": ctype, **sign(body)})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "malformed request"
    fake_slack.settle(0.3)
    assert fake_slack.posts() == []
    assert errors(caplog) == []
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"


@pytest.mark.parametrize(("name", "body", "ctype"), UNKNOWN_BUT_WELL_FORMED, ids=[n for n, *_ in UNKNOWN_BUT_WELL_FORMED])
def test_unknown_but_well_formed_payloads_get_200_and_nothing_is_posted(
    name: str, body: bytes, ctype: str, http_bot: BotRunner, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    response = http_bot.http.post(http_bot.url, content=body, headers={"Content-Type": ctype, **sign(body)})
    assert response.status_code == 200, response.text
    fake_slack.settle(0.4)
    assert fake_slack.posts() == [] and fake_slack.responses == []
    assert errors(caplog) == []


# --- property: arbitrary bodies over the ASGI interface -----------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
_EVENT_KEYS = ["type", "subtype", "text", "user", "channel", "ts", "thread_ts", "channel_type", "bot_id", "team",
               "files", "message", "previous_message", "item", "blocks", "event_ts"]  # fmt: skip
_TOP_KEYS = ["token", "team_id", "api_app_id", "event_id", "event_time", "authorizations", "user", "channel",
             "team", "enterprise", "is_enterprise_install", "is_ext_shared_channel", "actions", "view", "container",
             "message", "callback_id", "trigger_id", "response_url", "command", "text", "user_id", "channel_id",
             "challenge", "action_id", "state"]  # fmt: skip
_TYPES = ["event_callback", "url_verification", "block_actions", "view_submission", "view_closed", "shortcut",
          "message_action", "block_suggestion", "app_rate_limited", "interactive_message", "anything"]  # fmt: skip
_event = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "app_mention", "reaction_added", "app_home_opened", "x"]) | _json},
    optional={k: st.text(max_size=20) | _json for k in _EVENT_KEYS if k != "type"},
)
_slack_like = st.fixed_dictionaries(
    {"type": st.sampled_from(_TYPES) | _json},
    optional={"event": _event | _json, **{k: st.text(max_size=20) | _json for k in _TOP_KEYS}},
)
_command = st.fixed_dictionaries(
    {"command": st.sampled_from(["/acrcheck", "/other"]) | st.text(max_size=10)},
    optional={k: st.text(max_size=20) for k in ["text", "user_id", "channel_id", "team_id", "response_url", "trigger_id",
                                                 "is_enterprise_install", "payload", "ssl_check"]},
)  # fmt: skip
_words = st.text(max_size=40) | st.sampled_from(["acrcheck", "myreg", "contosoreg.azurecr.io", "help", "watch"])
_well_typed = st.fixed_dictionaries(
    {
        "type": st.just("event_callback"),
        "team_id": st.just(TEAM_ID),
        "event": st.fixed_dictionaries(
            {"type": st.sampled_from(["message", "app_mention", "app_home_opened", "reaction_added"])},
            optional={"text": _words, "user": st.text(max_size=12), "channel": st.text(max_size=12),
                      "ts": st.text(max_size=20), "thread_ts": st.text(max_size=20), "subtype": st.text(max_size=12),
                      "channel_type": st.sampled_from(["channel", "im", "group", "x"])},
        ),
    },
    optional={"event_id": st.text(max_size=12), "authorizations": st.lists(st.fixed_dictionaries(
        {}, optional={"team_id": st.text(max_size=8), "user_id": st.text(max_size=8), "is_bot": st.booleans()}),
        max_size=2)},
)  # fmt: skip
_interaction = st.fixed_dictionaries(
    {"type": st.sampled_from(["block_actions", "shortcut", "message_action", "view_submission", "view_closed"])},
    optional={"actions": st.lists(st.fixed_dictionaries({"action_id": _words}, optional={"value": _words,
              "block_id": st.text(max_size=8)}), min_size=1, max_size=2),
              "callback_id": _words, "trigger_id": st.text(max_size=8), "user": st.fixed_dictionaries(
              {"id": st.text(max_size=8)}), "channel": st.fixed_dictionaries({"id": st.text(max_size=8)}),
              "message": st.fixed_dictionaries({}, optional={"text": _words, "ts": st.text(max_size=12)}),
              "view": st.fixed_dictionaries({"callback_id": _words}, optional={"private_metadata": _words})},
)  # fmt: skip
_bodies = st.one_of(
    _well_typed.map(lambda v: json.dumps(v).encode()),
    _interaction.map(form_payload),
    st.binary(max_size=400),
    st.text(max_size=200).map(str.encode),
    _json.map(lambda v: json.dumps(v).encode()),
    _slack_like.map(lambda v: json.dumps(v).encode()),
    _slack_like.map(form_payload),
    _command.map(lambda v: urllib.parse.urlencode(v).encode()),
)
_content_types = st.sampled_from([JSON, FORM, "text/plain", "", "application/json; charset=utf-8", "multipart/form-data",
                                  "application/x-www-form-urlencoded; charset=latin-1"]) | st.text(
    st.characters(min_codepoint=32, max_codepoint=126), max_size=30)  # fmt: skip


class AsgiBot:
    """The real HTTP app (signature check, payload guard, Bolt, handlers) driven over ASGI."""

    def __init__(self, settings: Settings) -> None:
        from bot.service.http_app import build_http_app
        from handlers.app import build_app

        self.loop = asyncio.new_event_loop()
        self.store = Store.from_url(settings.database_url)
        self.app = build_http_app(build_app(settings, self.store), oauth=False)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://acrcheck.test")

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.loop.run_until_complete(self.client.post("/slack/events", content=body, headers=headers))

    def close(self) -> None:
        async def finish() -> None:
            await self.client.aclose()
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if pending:  # listeners Bolt started after acking
                await asyncio.wait(pending, timeout=10)

        self.loop.run_until_complete(finish())
        self.loop.close()
        self.store.dispose()


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def test_no_body_gets_a_5xx(settings_factory: Any, fake_slack: FakeSlack, error_log: ErrorLog) -> None:
    bot = AsgiBot(settings_factory())
    seen: dict[int, int] = {}

    @given(body=_bodies, ctype=_content_types, signed=st.booleans())
    @settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(body: bytes, ctype: str, signed: bool) -> None:
        headers = {"Content-Type": ctype, **(sign(body) if signed else {})}
        status = bot.post(body, headers).status_code
        seen[status] = seen.get(status, 0) + 1
        assert status < 500, (body[:200], ctype, signed)
        if not signed:
            assert status == 401
        else:
            assert status in (200, 400), (status, body[:200], ctype)
        assert not error_log.records, [r.getMessage() for r in error_log.records]

    try:
        check()
    finally:
        bot.close()
    print(f"status codes over {sum(seen.values())} arbitrary bodies: {dict(sorted(seen.items()))}")
    assert not error_log.records, [f"{r.name}: {r.getMessage()}" for r in error_log.records]
    assert seen.get(401) and seen.get(400) and seen.get(200)  # every branch was exercised


# --- Socket Mode ----------------------------------------------------------------------------


def test_malformed_socket_mode_envelopes_are_acked_and_logged_at_warning(
    settings_factory: Any, fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.service.socket_mode import GuardedSocketModeHandler
    from handlers.app import build_app

    caplog.set_level(logging.WARNING)
    settings = settings_factory(slack_app_token=APP_TOKEN)
    store = Store.from_url(settings.database_url)
    loop = asyncio.new_event_loop()
    before = fake_slack.socket_count

    async def connect() -> GuardedSocketModeHandler:
        handler = GuardedSocketModeHandler(build_app(settings, store), APP_TOKEN)
        await handler.connect_async()
        return handler

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    handler = asyncio.run_coroutine_threadsafe(connect(), loop).result(10)
    try:
        fake_slack.wait_for(lambda: fake_slack.socket_count > before)
        connection = fake_slack.socket_count - 1
        fake_slack.send_raw('{"envelope_id": "e0", "type": "events_api", "payload": {', connection=connection)
        envelopes = {
            "e1": {"envelope_id": "e1", "type": "events_api", "payload": "a string"},
            "e2": {"envelope_id": "e2", "type": "events_api", "payload": {"type": "event_callback", "event": "x"}},
            "e3": {"envelope_id": "e3", "type": "interactive", "payload": {"type": "block_actions", "actions": 7}},
            "e4": {"envelope_id": "e4", "type": "slash_commands", "payload": [1, 2]},
            "e5": {"envelope_id": "e5", "type": "events_api", "retry_attempt": "x",
                   "payload": event_body({"type": "message", "text": "hi", "channel": "C1", "user": "U1"})},
            "e6": {"envelope_id": "e6", "type": "interactive", "payload": None},  # slack_sdk raises on null
        }  # fmt: skip
        for envelope in envelopes.values():
            fake_slack.send_envelope(envelope, connection=connection)
        good = fake_slack.events_envelope(event_body({"type": "pin_added", "user": "U1", "channel_id": "C1"}))
        fake_slack.send_envelope(good, connection=connection)
        wanted = {*envelopes, good["envelope_id"]}
        fake_slack.wait_for(lambda: wanted <= {a.get("envelope_id") for a in list(fake_slack.acks)})
    finally:
        asyncio.run_coroutine_threadsafe(handler.close_async(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        store.dispose()
    refused = [r.getMessage() for r in caplog.records if r.name == "acrcheck.socket_mode"]
    assert any("not valid JSON" in m for m in refused), refused
    assert sum("refused" in m for m in refused) == len(envelopes), refused
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert fake_slack.posts() == []
