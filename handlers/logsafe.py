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

_DIGIT, _UPPER, _LOWER = re.compile(r"[0-9]"), re.compile(r"[A-Z]"), re.compile(r"[a-z]")


def _blob(match: re.Match[str]) -> str:
    """A long base64 run is a key or a token, unless it is a path (``site-packages/sqlalchemy/...``)."""
    value = match.group(0)
    if value.endswith("="):
        return MASK
    mixed = all(kind.search(value) for kind in (_DIGIT, _UPPER, _LOWER))  # a C scan each, not a loop per character
    if mixed and value.count("/") <= len(value) // 20:
        return MASK
    return value


#: What only matters in logs, after the engine's redactor (which knows every secret the
#: classifier reports): keys and tokens without a label, and labels written JSON-escaped
#: inside another string (``{\"password\": \"x\"}``). Paths and ordinary words stay.
#: Each pattern runs only when one of its gates (plain substrings, cheap to test) is in the
#: text, or always when it has none: a log line may be a megabyte long.
_PATTERNS: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str], tuple[str, ...]]] = [
    # Slack tokens and signing material.
    (re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{6,}"), MASK, ("xox", "xapp-")),
    # Escaped JSON labels: \"password\": \"x\" (the engine reads unescaped text).
    (
        re.compile(
            r'(?i)((?:password|passwd|pwd|secret|token|apikey|api_key|accountkey|sharedaccesskey)\\"[ \t]{0,4}:[ \t]{0,4}\\")'
            r'[^\\"\s]{1,512}'
        ),
        r"\1" + MASK,
        ('\\"',),
    ),
    # Long base64 blobs (storage account keys, client secrets, docker config auths); not paths. The
    # pattern starts with its first character (the run before it checked behind): the regex engine
    # then skips to candidate characters at C speed instead of trying every position.
    (re.compile(r"[A-Za-z0-9+/](?<![A-Za-z0-9+/._-].)[A-Za-z0-9+/]{39,}+={0,2}(?![A-Za-z0-9+/._-])"), _blob, ()),
]
_ESCAPES = re.compile(r"\\(?:[nrt'\"\\]|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")
_SIMPLE_ESCAPES = {"n": "\n", "r": "\n", "t": "\t", "'": "'", '"': '"', "\\": "\\"}


def _unescape(match: re.Match[str]) -> str:
    """One escape of a ``repr`` or a JSON string, read back (``\\n``, ``\\'``, ``\\u3000``)."""
    code = match.group(0)[1:]
    if code in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[code]
    try:
        return chr(int(code[1:], 16))
    except (ValueError, OverflowError):  # beyond U+10FFFF (``\\UFFFFFFFF`` overflows): left as written
        return match.group(0)


#: Escapes with a code (``\\x41``, ``\\u3000``, ``\\U0001F600``): the simple ones are replaced as plain strings.
_CODED_ESCAPES = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})")
_PLAIN_ESCAPES = (("\\n", "\n"), ("\\r", "\n"), ("\\t", "\t"), ("\\'", "'"), ('\\"', '"'))
_MAX_CODES = 64


def unescaped(text: str) -> str:
    """``text`` with its escapes read back, as ``_ESCAPES.sub(_unescape, text)`` but at C speed.

    A log line may hold a megabyte of ``\\n``: one Python call per escape costs ~150 ms. Here
    escaped backslashes become a character absent from the text (so no escape can straddle
    them), each simple escape is one ``str.replace``, and so is each distinct coded escape (a
    few at most in practice). Whenever that could read differently from the one pass (too
    many distinct codes, a code that decodes to a backslash or to the stand-in), the one pass runs.
    """
    lowered = text.lower()
    stand_in = next(
        (c for c in map(chr, range(0xE000, 0xE040)) if c not in text and f"{ord(c):04x}" not in lowered), None
    )
    if stand_in is None:
        return _ESCAPES.sub(_unescape, text)
    out = text.replace("\\\\", stand_in)
    for escape, char in _PLAIN_ESCAPES:
        if escape in out:
            out = out.replace(escape, char)
    if "\\" in out:
        codes = set(_CODED_ESCAPES.findall(out))
        if len(codes) > _MAX_CODES:
            return _ESCAPES.sub(_unescape, text)
        decoded = {code: _unescape_code(code) for code in codes}
        if "\\" in decoded.values():
            return _ESCAPES.sub(_unescape, text)
        for code, char in decoded.items():
            out = out.replace(code, char)
    return out.replace(stand_in, "\\")


def _unescape_code(code: str) -> str:
    try:
        return chr(int(code[2:], 16))
    except (ValueError, OverflowError):  # beyond U+10FFFF: left as written
        return code


#: Loggers that dump whole Slack payloads at DEBUG; those lines are replaced wholesale.
_PAYLOAD_LOGGERS = ("slack_bolt", "slack_sdk")
_SUPPRESSED = "(Slack payload debug line suppressed: it may contain user text)"

_installed_lock = threading.Lock()
_installed = False
_extra_secrets: list[str] = []


def redact(text: str) -> str:
    """Mask anything that looks like a credential in ``text``.

    The engine's redactor runs first, on the text and, when the text holds escapes (a
    ``repr`` of a paste in a traceback, a JSON-encoded payload), on its unescaped reading too:
    every value found either way is then masked by value. Log-only patterns come last.
    """
    values: list[str] = []
    try:
        from bot.engine.redact import redact_found

        if "\\" in text:
            values += redact_found(unescaped(text)).values
        found = redact_found(text)
        text = found.text
        values += found.values
    except Exception:  # the engine's redactor must never make logging fail
        pass
    for value in sorted({*values, *_extra_secrets}, key=len, reverse=True):
        if len(value) >= 6 and value in text:
            text = text.replace(value, MASK)
    for pattern, repl, gates in _PATTERNS:
        if not gates or any(gate in text for gate in gates):
            text = pattern.sub(repl, text)
    return text


#: A log message longer than this is cut in the middle (on whitespace) before it is redacted:
#: nobody reads a megabyte-long log line, and redaction cost stays bounded (a few ms) whatever
#: a library logs.
LOG_LINE_LIMIT = 64_000
_HEAD, _TAIL = 48_000, 12_000


def bounded(message: str) -> str:
    """``message`` itself when short; else its head and tail, each cut at whitespace.

    Cutting only at whitespace keeps every kept token whole, so no secret is logged without
    the label in front of it (``password=`` on one side of the cut, its value on the other).
    """
    if len(message) <= LOG_LINE_LIMIT:
        return message
    head_end = max(message.rfind(" ", 0, _HEAD), message.rfind("\n", 0, _HEAD))
    tail_start = len(message) - _TAIL
    after = [i for i in (message.find(" ", tail_start), message.find("\n", tail_start)) if i >= 0]
    head = message[: head_end + 1] if head_end >= 0 else ""
    tail = message[min(after) :] if after else ""
    cut = len(message) - len(head) - len(tail)
    return f"{head}[… {cut:,} characters not logged …]{tail}"


def scrub_message(message: str) -> str:
    """What a log record's text becomes: bounded, then redacted."""
    return redact(bounded(message))


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
    record.msg, record.args = scrub_message(message), ()


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
