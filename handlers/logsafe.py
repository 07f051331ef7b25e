"""Keep secrets out of log lines, whatever logger they come from.

People paste passwords, tokens and SAS URLs into chat. The engine redacts them before
we render anything, but libraries log raw payloads (slack_sdk and slack_bolt dump request
bodies at DEBUG) before our handlers ever run. A logging *filter* only sees records of
the logger it is attached to, not of its children, so we wrap the log record factory:
every record is rendered, scrubbed, and frozen at creation, for every logger and handler
(pytest's caplog included).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

#: Replacement marker; short and obvious in a log line.
MASK = "[REDACTED]"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Slack tokens and signing material.
    (re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{6,}"), MASK),
    # JWTs (AAD access tokens, ACR refresh tokens).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    # Authorization headers and bearer/basic credentials.
    (re.compile(r"(?i)\b(authorization\s*[:=]\s*)(?:bearer|basic)?\s*[^\s\"',;]+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    # key=value / key: value secrets (password, secret, token, key, sig, ...).
    (
        re.compile(
            r"(?i)\b((?:docker_?|registry_?|acr_?|client_?|azure_?|admin_?|refresh_?|access_?|api_?)?"
            r"(?:password|passwd|pwd|secret|token|apikey|api_key|accountkey|sharedaccesskey|sig|signature))"
            r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)[^\s\"'&;,}\\]+"
        ),
        r"\1\2" + MASK,
    ),
    # CLI flags that take a password: docker login -p X, --password X, az ... --password X.
    (re.compile(r"(?i)(\s-p\s+|\s--password[= ]\s*|\s--client-secret[= ]\s*)[\"']?[^\s\"']+"), r"\1" + MASK),
    # user:password@ in URLs (proxies, connection strings).
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+@"), r"\1" + MASK + "@"),
    # Long base64 blobs (storage account keys, client secrets, docker config auths).
    (re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/])"), MASK),
    # Azure AD client secrets look like 'abc8Q~xxxxxxxx'.
    (re.compile(r"\b[A-Za-z0-9_.-]{3}\dQ~[A-Za-z0-9_.~-]{20,}"), MASK),
]

#: Loggers that dump whole Slack payloads at DEBUG; those lines are replaced wholesale.
_PAYLOAD_LOGGERS = ("slack_bolt", "slack_sdk")
_SUPPRESSED = "(Slack payload debug line suppressed: it may contain user text)"

_installed_lock = threading.Lock()
_installed = False
_extra_secrets: list[str] = []


def redact(text: str) -> str:
    """Mask anything that looks like a credential in ``text``.

    The engine's redactor runs first (it knows every kind of secret the classifier reports);
    our broader patterns then catch what only matters in logs (tokens in URLs, base64 blobs).
    """
    try:
        from bot.engine.redact import redact_text

        text = redact_text(text)
    except Exception:  # the engine's redactor must never make logging fail
        pass
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    for value in list(_extra_secrets):
        if value and value in text:
            text = text.replace(value, MASK)
    return text


def remember_secret(value: str) -> None:
    """Mask this exact string in every later log line (e.g. a secret the engine found)."""
    value = value.strip()
    if len(value) >= 6 and value not in _extra_secrets:
        _extra_secrets.append(value)
        del _extra_secrets[:-200]  # bounded


def _scrub(record: logging.LogRecord) -> None:
    if not isinstance(record.levelno, int):
        # logging.makeLogRecord() builds an empty record first and fills it afterwards:
        # nothing to scrub yet (its message is set later and formatted through handlers).
        return
    if record.levelno <= logging.DEBUG and record.name.startswith(_PAYLOAD_LOGGERS):
        record.msg, record.args = _SUPPRESSED, ()
        record.exc_info, record.exc_text = None, None
        return
    try:
        message = record.getMessage()
    except Exception:  # a broken %-format must not lose the record
        message = str(record.msg)
    if record.exc_info:
        message += "\n" + logging.Formatter().formatException(record.exc_info)
        record.exc_info, record.exc_text = None, None
    record.msg, record.args = redact(message), ()


def install() -> None:
    """Wrap the record factory once per process (idempotent)."""
    global _installed
    with _installed_lock:
        # Checked on the live factory, not a flag: something may have replaced it since.
        if getattr(logging.getLogRecordFactory(), "acrcheck_scrubs", False):
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            _scrub(record)
            return record

        factory.acrcheck_scrubs = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)
        _installed = True
