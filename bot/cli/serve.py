"""``acrcheck serve``: run the Slack bot (Socket Mode or HTTP), or validate its settings.

Socket Mode when SLACK_APP_TOKEN is set (no public endpoint needed); otherwise HTTP mode
on ``settings.port`` at ``/slack/events`` with signature verification. Both run the same
AsyncApp from :func:`handlers.app.build_app`; ``/healthz``, ``/readyz`` and ``/metrics`` are
served on ``settings.port`` in both (see :mod:`bot.service.server`). ``--check-config`` validates everything it
can without connecting anywhere and exits 2 with readable errors.

Wire into the main CLI with ``add_serve_command(subparsers)``; the parser sets
``func`` to a callable taking the parsed args and returning an exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("acrcheck.serve")


def add_serve_command(subparsers: Any) -> None:
    """Register ``serve`` on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "serve",
        help="run the Slack bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument(
        "--check-config", action="store_true", help="validate settings without connecting; exit 2 on errors"
    )
    parser.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to bind (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="HTTP mode: port (default: settings.port)")
    parser.add_argument(
        "--log-level", default=None, help="DEBUG, INFO, WARNING (default: ACRCHECK_LOG_LEVEL, else INFO)"
    )
    parser.add_argument(
        "--log-format", choices=["text", "json"], default=None, help="default: ACRCHECK_LOG_FORMAT, else text"
    )
    parser.set_defaults(func=run_serve_command)


def run_serve_command(args: argparse.Namespace) -> int:
    """Entry point for ``acrcheck serve``; returns the process exit code."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from bot.config import load_settings
    from bot.service.logconfig import configure_logging

    configure_logging("text", args.log_level or "INFO")  # until the settings say otherwise
    try:
        settings = load_settings()
    except ValidationError as exc:
        print("acrcheck serve: invalid settings:", file=sys.stderr)
        for detail in exc.errors():
            where = ".".join(str(p) for p in detail.get("loc", ())) or "settings"
            print(f"  - {where}: {detail.get('msg')}", file=sys.stderr)
        return 2
    except SettingsError as exc:  # e.g. an environment variable that is not valid JSON for a list
        print(f"acrcheck serve: invalid settings: {exc}", file=sys.stderr)
        return 2
    if args.port is not None:
        settings = settings.model_copy(update={"port": args.port})
    configure_logging(args.log_format or settings.log_format, args.log_level or settings.log_level)
    from bot.service.config_check import check_config

    errors, summary = check_config(settings)
    if args.check_config or errors:
        for line in summary:
            print(line)
    if errors:
        print("acrcheck serve: configuration errors:", file=sys.stderr)
        for error in errors:
            print(f"  - {error}", file=sys.stderr)
        return 2
    if args.check_config:
        print("configuration OK")
        return 0
    from bot.engine.knowledge import KnowledgeError, default_knowledge
    from bot.service.server import serve as run

    try:  # the knowledge base is loaded (and compiled) once, here, before the server can report ready
        default_knowledge().warm()
        from bot.diagnose import preload

        preload()
    except KnowledgeError as exc:
        print(f"acrcheck serve: knowledge base is invalid: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(run(settings, host=args.host, port=settings.port))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # e.g. the database is unreachable at start: say so, exit non-zero
        logging.getLogger("acrcheck.serve").error("serve failed: %s: %s", type(exc).__name__, exc)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry (``python -m bot.cli.serve serve …``) until the main CLI wires it."""
    parser = argparse.ArgumentParser(prog="acrcheck")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_command(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
