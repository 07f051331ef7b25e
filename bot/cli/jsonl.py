"""``acrcheck diagnose --jsonl``: one strict-JSON answer line for each non-blank input line.

Contract: every input line that is not blank (JSON whitespace only: space, tab, CR) gets
exactly one line of strict JSON back, in order, whatever the line holds; a line that cannot
be read gets ``{"id", "line", "error"}``. Lines are split on ``\\n`` only: characters that are
whitespace or line breaks to Python but not to JSON (``\\x1c``-``\\x1f``, ``\\x0b``, ``\\x0c``,
U+0085, U+00A0, U+2028, U+3000) are content, never a reason to skip or split a line.
``NaN``, ``Infinity`` and numbers that overflow to infinity (``1e999``) are not JSON: the line
is refused with a clear error and they are never echoed (``allow_nan=False``). Each answer
is flushed as soon as it is written, so the stream can be driven one line at a time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any, TextIO

log = logging.getLogger("bot.cli.main")

#: JSON's own whitespace. ``str.strip()`` would also strip \x1c-\x1f, \x0b, \x0c, U+0085, U+00A0,
#: U+2028, U+3000..., turning a line of them into a skipped blank line instead of an answered one.
JSON_WHITESPACE = " \t\r\n"
#: Characters that ``str.splitlines()`` (and JavaScript) treat as line breaks although JSON does not
#: escape them: escaped in every answer so one answer is one line for every reader.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (numbers must be finite)")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{literal[:40]} is out of range (numbers must be finite)")
    return value


#: One decoder and one encoder for the whole stream (``json.loads``/``dumps`` with options build new ones per call).
_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite_float)
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
_FALLBACK = json.JSONEncoder()


def parse_line(line: str) -> Any:
    """Strict JSON: ``NaN``, ``Infinity`` and overflowing numbers such as ``1e999`` are refused."""
    return _DECODER.decode(line)


def encode_answer(result: dict[str, Any], number: int) -> str:
    """One line of strict JSON (``allow_nan=False``), whatever the answer holds."""
    try:
        encoded = _ENCODER.encode(result)
        encoded.encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        encoded = _FALLBACK.encode({"id": None, "line": number, "error": "answer could not be encoded"})
    if "\x85" in encoded or "\u2028" in encoded or "\u2029" in encoded:
        for char, escape in _LINE_BREAKS.items():
            encoded = encoded.replace(char, escape)
    return encoded


def input_lines(stdin: TextIO) -> Iterable[str]:
    """Input lines split on ``\\n`` only, decoded as UTF-8 with replacement."""
    if hasattr(stdin, "buffer"):
        for raw in stdin.buffer:
            yield raw.decode("utf-8", errors="replace")
    else:
        yield from stdin


def answer(line: str, number: int, lang: str | None) -> dict[str, Any]:
    """The answer object for one non-blank input line."""
    from bot.diagnose import diagnose  # imported when the first line arrives (a no-op afterwards)
    from bot.engine.render_text import diagnosis_jsonl

    item_id: Any = None
    try:
        item = parse_line(line)
        if not isinstance(item, dict):
            raise ValueError("each line must be a JSON object with 'id' and 'text'")
        item_id = item.get("id")
        text = item.get("text")
        if not isinstance(text, str):
            raise ValueError("'text' must be a string")
        if not text.isascii():  # JSON may carry lone surrogates (\ud800) that UTF-8 cannot encode
            text = text.encode("utf-8", errors="replace").decode("utf-8")
        return diagnosis_jsonl(item_id, diagnose(text, lang=lang, cite=False))
    except (ValueError, RecursionError) as exc:
        return {"id": item_id, "line": number, "error": f"invalid input line: {exc}"}
    except Exception as exc:  # one bad line must never end the stream
        log.exception("line %d could not be diagnosed", number)
        return {"id": item_id, "line": number, "error": f"could not diagnose this line ({type(exc).__name__})"}


def run_jsonl(stdin: TextIO, stdout: TextIO, lang: str | None) -> int:
    """Stream ``{"id", "text"}`` lines to one answer line each (see the module docstring)."""
    for number, raw in enumerate(input_lines(stdin), 1):
        line = raw.strip(JSON_WHITESPACE)
        if not line:
            continue
        stdout.write(encode_answer(answer(line, number, lang), number) + "\n")
        stdout.flush()
    return 0
