"""Structured logs: one JSON object per line, secrets redacted, tracebacks kept (and redacted)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.service.logconfig import configure_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_with_secrets_redacted(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    log = logging.getLogger("acrcheck.test")
    log.info("posting with token %s", "xoxb-1234567890-abcdefghij")
    log.warning("login failed: docker login -u bot -p S3cr3tPassw0rd myreg.azurecr.io", extra={"channel": "C1"})
    try:
        raise RuntimeError("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")
    except RuntimeError:
        log.exception("check failed")
    log.debug("not shown at INFO")
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert len(records) == 3
    assert records[0]["level"] == "info" and records[0]["logger"] == "acrcheck.test" and "ts" in records[0]
    assert records[1]["channel"] == "C1"
    text = stream.getvalue()
    for secret in ("xoxb-1234567890-abcdefghij", "S3cr3tPassw0rd", "eyJhbGciOiJIUzI1NiJ9"):
        assert secret not in text
    assert "RuntimeError" in records[2]["msg"] and "Traceback" in records[2]["msg"]


def test_text_format(restore_root: None) -> None:
    stream = io.StringIO()
    configure_logging("text", "WARNING", stream=stream)
    logging.getLogger("acrcheck.test").warning("hello %s", "world")
    assert stream.getvalue().rstrip().endswith("WARNING acrcheck.test: hello world")
