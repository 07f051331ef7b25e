"""The ``acrcheck`` command line: diagnose offline, run live checks, serve Slack.

Exit codes: 0 success, 2 bad usage (with a clear message on stderr), 1 an operational
failure that was reported. Subcommands owned by other modules (live checks, Slack
server, feedback export, doctor) are registered by those modules.

Start-up is part of the product (``acrcheck diagnose "…"`` should answer at once), so each
subcommand imports only what it uses: the parser lists the other modules' subcommands by
name and help only, and imports a module when its subcommand is the one being run. The
offline diagnosis needs neither pydantic, the Azure SDK, Slack nor SQLAlchemy
(``tests/test_startup.py`` holds this).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any, TextIO

log = logging.getLogger(__name__)

#: Pasted text larger than this is refused rather than silently truncated.
MAX_TEXT_BYTES = 1_100_000

#: Subcommands registered by other modules: name -> (module, register function, help).
#: The help is repeated here so ``acrcheck --help`` needs none of these modules;
#: ``tests/test_startup.py`` checks it against what each module registers.
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "check": ("bot.cli.live", "add_live_commands", "run live checks (DNS, probes, ARM, logs) for a registry"),
    "probe": ("bot.cli.live", "add_live_commands", "client-side checks from this machine; paste the output back"),
    "serve": (
        "bot.cli.serve",
        "add_serve_command",
        "run the Slack bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)",
    ),
    "feedback": ("bot.service.feedback_export", "add_feedback_command", "feedback collected from Slack buttons"),
    "doctor": (
        "bot.service.doctor",
        "add_doctor_command",
        "check settings, Slack scopes, Azure access, database; print each problem with its fix",
    ),
}


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


def _cmd_diagnose(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    if args.jsonl:
        if args.text not in (None, "-"):
            raise UsageError("--jsonl reads JSON lines from stdin; do not pass TEXT")
        from bot.cli.jsonl import run_jsonl

        return run_jsonl(stdin, stdout, args.lang)
    text = _read_text(args.text, stdin)
    if args.live:
        from bot.diagnose import diagnose_live_sync

        diagnosis = diagnose_live_sync(text, lang=args.lang)
    else:
        from bot.diagnose import diagnose, preload

        preload()
        diagnosis = diagnose(text, lang=args.lang)
    if args.json:
        import json

        from bot.engine.render_text import diagnosis_json

        stdout.write(json.dumps(diagnosis_json(diagnosis), ensure_ascii=False, indent=2) + "\n")
    else:
        from bot.engine.render_text import render_text

        stdout.write(render_text(diagnosis) + "\n")
    return 0


def _cmd_cards(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    from bot.engine.knowledge import default_knowledge

    kb = default_knowledge()
    for card in kb.cards.values():
        stdout.write(f"{card.id:32} {card.title.get(args.lang)}\n")
    return 0


def _unavailable(name: str, reason: str) -> Any:
    def handler(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
        sys.stderr.write(f"acrcheck: the {name} command is not available here: {reason}\n")
        return 2

    return handler


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser; only ``command``'s module (if it is a lazy one) is imported."""
    parser = _Parser(prog="acrcheck", description="Troubleshoot Azure Container Registry network problems.")
    parser.add_argument("--verbose", "-v", action="store_true", help="log debug details to stderr")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    diag = sub.add_parser("diagnose", help="diagnose a pasted error (offline unless --live)")
    diag.add_argument("text", nargs="?", help="the error text; '-' or absent reads stdin")
    mode = diag.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="print one JSON object")
    mode.add_argument(
        "--jsonl",
        action="store_true",
        help='read {"id","text"} lines on stdin, write one strict-JSON answer line for each non-blank line',
    )
    diag.add_argument(
        "--lang", choices=["en", "ja"], default=None, help="reply language (default: the language of the paste)"
    )
    diag.add_argument("--live", action="store_true", help="also run the live checks the error calls for")
    diag.set_defaults(handler=_cmd_diagnose)

    cards = sub.add_parser("cards", help="list the knowledge base's causes")
    cards.add_argument("--lang", choices=["en", "ja"], default="en")
    cards.set_defaults(handler=_cmd_cards)

    if command in LAZY_COMMANDS:  # first, as its module may register siblings (check and probe)
        module_name, function, help_text = LAZY_COMMANDS[command]
        try:
            getattr(importlib.import_module(module_name), function)(sub)
        except ImportError as exc:
            stub = sub.add_parser(command, help=help_text, add_help=False)
            stub.set_defaults(handler=_unavailable(command, str(exc)))
    for name, (_module, _function, help_text) in LAZY_COMMANDS.items():
        if name not in sub.choices:
            sub.add_parser(name, help=help_text, add_help=False)  # listed in --help; imported when run
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the global options take no value)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def _settings_problem(exc: Exception) -> list[str] | None:
    """Readable lines for a settings error, without importing pydantic unless it raised one."""
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):
        lines = []
        for error in exc.errors(include_input=False, include_url=False):  # never echo the value
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            lines.append(f"acrcheck: invalid setting {where}: {error['msg']}")
        return lines
    settings = sys.modules.get("pydantic_settings")
    if settings is not None and isinstance(exc, settings.SettingsError):
        return [f"acrcheck: settings could not be read: {str(exc).split(chr(10))[0][:200]}"]
    return None


def _configure_logging(verbose: bool) -> None:
    """Log to stderr, every line through the secret redactor (``-v`` shows request details)."""
    from handlers import logsafe

    logsafe.install()
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr)


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(_command_of(arguments))
        args = parser.parse_args(arguments)
        _configure_logging(args.verbose)
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
    except BrokenPipeError:
        with contextlib.suppress(Exception):
            sys.stdout.close()
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from bot.engine.knowledge import KnowledgeError

        if isinstance(exc, KnowledgeError):
            sys.stderr.write(f"acrcheck: knowledge base is invalid: {exc}\n")
            return 1
        problem = _settings_problem(exc)
        if problem is None:
            raise
        sys.stderr.write("\n".join(problem) + "\n")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
