"""The ``acrcheck`` command line: diagnose offline, run live checks, serve Slack.

Exit codes: 0 success, 2 bad usage (with a clear message on stderr), 1 an operational
failure that was reported. Subcommands owned by other modules (live checks, Slack
server, feedback export) register themselves here if their modules are installed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from pydantic import ValidationError
from pydantic_settings import SettingsError

from bot.diagnose import diagnose
from bot.engine.knowledge import KnowledgeError, default_knowledge
from bot.engine.render_text import diagnosis_json, diagnosis_jsonl, render_text

log = logging.getLogger(__name__)

#: Pasted text larger than this is refused rather than silently truncated.
MAX_TEXT_BYTES = 1_100_000

_OPTIONAL_COMMANDS = (
    ("bot.cli.live", "add_live_commands"),
    ("bot.cli.serve", "add_serve_command"),
    ("bot.service.feedback_export", "add_feedback_command"),
    ("bot.service.doctor", "add_doctor_command"),
)


class UsageError(Exception):
    """Bad usage: printed without a traceback, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own errors also exit 2, via our message
        raise UsageError(message)


def _read_text(value: str | None, stdin: TextIO) -> str:
    if value is None or value == "-":
        if stdin.isatty():
            raise UsageError("no text given: pass the error as an argument, or pipe it on stdin")
        data = stdin.buffer.read(MAX_TEXT_BYTES + 1) if hasattr(stdin, "buffer") else stdin.read().encode()
        if len(data) > MAX_TEXT_BYTES:
            raise UsageError(f"input is larger than {MAX_TEXT_BYTES} bytes; paste the relevant part")
        return data.decode("utf-8", errors="replace")
    if len(value.encode("utf-8", errors="replace")) > MAX_TEXT_BYTES:
        raise UsageError(f"input is larger than {MAX_TEXT_BYTES} bytes; paste the relevant part")
    return value


#: JSON's own whitespace. ``str.strip()`` would also strip \x1c-\x1f, \x0b, \x0c, U+0085, U+00A0,
#: U+2028, U+3000..., turning a line of them into a skipped blank line instead of an answered one.
_JSON_WHITESPACE = " \t\r\n"
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


def _parse_line(line: str) -> Any:
    """Strict JSON: ``NaN``, ``Infinity`` and overflowing numbers such as ``1e999`` are refused."""
    return json.loads(line, parse_constant=_not_json, parse_float=_finite_float)


def _encode_answer(result: dict[str, Any], number: int) -> str:
    """One line of strict JSON (``allow_nan=False``), whatever the answer holds."""
    try:
        encoded = json.dumps(result, ensure_ascii=False, allow_nan=False)
        encoded.encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        encoded = json.dumps({"id": None, "line": number, "error": "answer could not be encoded"})
    if "\x85" in encoded or "\u2028" in encoded or "\u2029" in encoded:
        for char, escape in _LINE_BREAKS.items():
            encoded = encoded.replace(char, escape)
    return encoded


def _jsonl(stdin: TextIO, stdout: TextIO, lang: str) -> int:
    """Stream ``{"id", "text"}`` lines to one answer line each; bad lines get an ``error``.

    Contract: every input line that is not blank (JSON whitespace only) gets exactly one line of
    strict JSON back, in order; a line that cannot be read gets ``{"id", "line", "error"}``.
    """
    for number, raw in enumerate(_lines(stdin), 1):
        line = raw.strip(_JSON_WHITESPACE)
        if not line:
            continue
        item_id: Any = None
        try:
            item = _parse_line(line)
            if not isinstance(item, dict):
                raise ValueError("each line must be a JSON object with 'id' and 'text'")
            item_id = item.get("id")
            text = item.get("text")
            if not isinstance(text, str):
                raise ValueError("'text' must be a string")
            # JSON may carry lone surrogates (\ud800) that cannot be written back as UTF-8.
            text = text.encode("utf-8", errors="replace").decode("utf-8")
            result = diagnosis_jsonl(item_id, diagnose(text, lang=lang))
        except (ValueError, RecursionError) as exc:
            result = {"id": item_id, "line": number, "error": f"invalid input line: {exc}"}
        except Exception as exc:  # one bad line must never end the stream
            log.exception("line %d could not be diagnosed", number)
            result = {"id": item_id, "line": number, "error": f"could not diagnose this line ({type(exc).__name__})"}
        stdout.write(_encode_answer(result, number) + "\n")
    stdout.flush()
    return 0


def _lines(stdin: TextIO) -> Iterable[str]:
    if hasattr(stdin, "buffer"):
        for raw in stdin.buffer:
            yield raw.decode("utf-8", errors="replace")
    else:
        yield from stdin


def _cmd_diagnose(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    if args.jsonl:
        if args.text not in (None, "-"):
            raise UsageError("--jsonl reads JSON lines from stdin; do not pass TEXT")
        return _jsonl(stdin, stdout, args.lang)
    text = _read_text(args.text, stdin)
    if args.live:
        from bot.diagnose import diagnose_live_sync

        diagnosis = diagnose_live_sync(text, lang=args.lang)
    else:
        diagnosis = diagnose(text, lang=args.lang)
    if args.json:
        stdout.write(json.dumps(diagnosis_json(diagnosis), ensure_ascii=False, indent=2) + "\n")
    else:
        stdout.write(render_text(diagnosis) + "\n")
    return 0


def _cmd_cards(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    kb = default_knowledge()
    for card in kb.cards.values():
        stdout.write(f"{card.id:32} {card.title.get(args.lang)}\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="acrcheck", description="Troubleshoot Azure Container Registry network problems.")
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug details to stderr")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    diag = sub.add_parser("diagnose", help="diagnose a pasted error (offline unless --live)")
    diag.add_argument("text", nargs="?", help="the error text; '-' or absent reads stdin")
    mode = diag.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="print one JSON object")
    mode.add_argument("--jsonl", action="store_true", help='read {"id","text"} lines on stdin, write one line each')
    diag.add_argument("--lang", choices=["en", "ja"], default="en")
    diag.add_argument("--live", action="store_true", help="also run the live checks the error calls for")
    diag.set_defaults(handler=_cmd_diagnose)

    cards = sub.add_parser("cards", help="list the knowledge base's causes")
    cards.add_argument("--lang", choices=["en", "ja"], default="en")
    cards.set_defaults(handler=_cmd_cards)

    for module_name, function in _OPTIONAL_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        getattr(module, function)(sub)
    return parser


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
        if getattr(args, "handler", None):
            result: int = args.handler(args, stdin, stdout)
            return result
        if getattr(args, "func", None):  # subcommands registered by other modules
            returned: int = args.func(args)
            return returned
        parser.print_help(sys.stderr)
        return 2
    except UsageError as exc:
        sys.stderr.write(f"acrcheck: {exc}\n")
        return 2
    except ValidationError as exc:  # settings: name the field and the problem, never echo the value
        for error in exc.errors(include_input=False, include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            sys.stderr.write(f"acrcheck: invalid setting {where}: {error['msg']}\n")
        return 2
    except SettingsError as exc:
        sys.stderr.write(f"acrcheck: settings could not be read: {str(exc).split(chr(10))[0][:200]}\n")
        return 2
    except KnowledgeError as exc:
        sys.stderr.write(f"acrcheck: knowledge base is invalid: {exc}\n")
        return 1
    except BrokenPipeError:
        with contextlib.suppress(Exception):
            sys.stdout.close()
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
