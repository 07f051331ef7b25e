"""``acrcheck doctor``: check a deployment end to end and say what to fix.

Run it where the bot runs (``kubectl exec deploy/acrcheck -- acrcheck doctor``): it uses the
same settings, identity and network as the bot. It validates the settings, tests the Slack
tokens and scopes, the Azure credential and what it may read (Reader on each registry the
settings name), the database, and Log Analytics when configured. Every problem comes with
its fix; the exit code is 1 when any problem was found, so it also works as a deploy gate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from bot.config import Settings
from bot.service.doctor_checks import (
    Finding,
    azure_findings,
    database_findings,
    settings_findings,
    slack_findings,
)

AREAS = ("settings", "slack", "azure", "database", "logs")
_MARK = {"ok": "ok  ", "problem": "FAIL", "warning": "warn", "info": "info"}


def add_doctor_command(subparsers: Any) -> None:
    """Register ``doctor`` on the main CLI's subparsers."""
    parser = subparsers.add_parser(
        "doctor",
        help="check settings, Slack scopes, Azure access, database; print each problem with its fix",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--registry",
        action="append",
        default=[],
        metavar="NAME",
        help="also check Reader access on this registry (repeatable); watches and channel allowlists are included",
    )
    parser.add_argument(
        "--manifest", type=Path, default=None, help="Slack app manifest whose scopes are required (default: built in)"
    )
    parser.add_argument("--skip", action="append", default=[], choices=AREAS[1:], help="skip an area (repeatable)")
    parser.set_defaults(func=run_doctor_command)


def required_scopes(manifest: Path | None) -> list[str]:
    """Bot scopes from the manifest file, else the ones the app requests (kept equal by a test)."""
    if manifest is not None:
        import yaml

        data = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
        return list(((data.get("oauth_config") or {}).get("scopes") or {}).get("bot") or [])
    from handlers.oauth import BOT_SCOPES

    return list(BOT_SCOPES)


def configured_registries(settings: Settings, extra: Iterable[str] = ()) -> list[str]:
    """Registries the settings name: watches, channel allowlists, and the command line."""
    names = [w.registry for w in settings.watches]
    for channel in settings.channels.values():
        names += channel.registries
    names += list(extra)
    return sorted({n.strip().lower() for n in names if n and n.strip() and "*" not in n})


async def diagnose_deployment(
    settings: Settings, *, scopes: list[str], registries: list[str], skip: Iterable[str] = ()
) -> list[Finding]:
    """Run every area concurrently; the order of the report is fixed by area."""
    skipped = set(skip)
    found = settings_findings(settings)
    jobs: list[Any] = []
    if "slack" not in skipped:
        jobs.append(slack_findings(settings, scopes))
    if "azure" not in skipped:
        jobs.append(azure_findings(settings, registries))
    if "database" not in skipped:
        jobs.append(database_findings(settings))
    for result in await asyncio.gather(*jobs):
        found += result
    if not settings.log_workspace_id and "logs" not in skipped:
        found.append(Finding("logs", "log analytics", "info", "not configured (optional: ACRCHECK_LOG_WORKSPACE_ID)"))
    found = [f for f in found if f.area not in skipped]
    return sorted(found, key=lambda f: AREAS.index(f.area) if f.area in AREAS else len(AREAS))


def render_text(findings: list[Finding], out: TextIO) -> None:
    area = ""
    for finding in findings:
        if finding.area != area:
            area = finding.area
            out.write(f"{area}\n")
        out.write(f"  [{_MARK[finding.status]}] {finding.detail}\n")
        if finding.fix and finding.status in ("problem", "warning"):
            out.write(f"         fix: {finding.fix}\n")
    problems = sum(f.status == "problem" for f in findings)
    out.write(f"\n{problems} problem(s) found.\n" if problems else "\nno problems found.\n")


def run_doctor_command(args: argparse.Namespace, *, out: TextIO | None = None) -> int:
    """Entry point: 0 when no problem was found, 1 otherwise."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from bot.config import load_settings
    from handlers import logsafe

    logsafe.install()
    out = out or sys.stdout
    try:
        settings = load_settings()
    except (ValidationError, SettingsError) as exc:
        details = (
            [f"{'.'.join(str(p) for p in e.get('loc', ())) or 'settings'}: {e.get('msg')}" for e in exc.errors()]
            if isinstance(exc, ValidationError)
            else [str(exc)]
        )
        findings = [Finding("settings", "load", "problem", d, "see docs/configuration.md") for d in details]
    else:
        findings = asyncio.run(
            diagnose_deployment(
                settings,
                scopes=required_scopes(args.manifest),
                registries=configured_registries(settings, args.registry),
                skip=args.skip,
            )
        )
    problems = sum(f.status == "problem" for f in findings)
    if args.json:
        out.write(json.dumps({"ok": problems == 0, "problems": problems, "findings": [f.to_dict() for f in findings]},
                             indent=2, ensure_ascii=False) + "\n")  # fmt: skip
    else:
        render_text(findings, out)
    return 1 if problems else 0
