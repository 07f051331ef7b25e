"""Export Slack feedback as labelled JSONL (``acrcheck feedback export``).

One line per person and diagnosis (a person who clicks twice changed their vote; the
store keeps only the last one), with the REDACTED text and the cause id it was given for,
in the same shape as the labelled sample under ``eval/`` (``text``, ``label``) plus the
vote, so "helpful" rows can extend the evaluation set and "not helpful" rows list
confusions to look at. ``created_at`` is the person's first vote, ``updated_at`` their
last change; ``voter`` tells people apart without naming them (a hash of the Slack user
id). Raw pastes were never stored, so nothing here can leak a secret.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.store import Store


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="seconds")


def voter_id(user_id: str) -> str:
    """A stable pseudonym for a Slack user id: rows of one person group together, unnamed."""
    return hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:12]


def feedback_rows(store: Store, *, since: float = 0.0) -> list[dict[str, Any]]:
    """Feedback as JSON-ready dicts: ``label`` is the cause for helpful votes, else null.

    ``since`` selects votes last changed at or after that UNIX time.
    """
    rows: list[dict[str, Any]] = []
    for row in store.iter_feedback(since=since):
        rows.append(
            {
                "text": row["redacted_text"],
                "label": row["cause"] if row["helpful"] else None,
                "predicted": row["cause"],
                "helpful": bool(row["helpful"]),
                "confidence": round(float(row["confidence"] or 0.0), 3),
                "registry": row["registry"] or None,
                "channel": row["channel_id"],
                "diagnosis_id": row["diagnosis_id"],
                "voter": voter_id(str(row["user_id"])),
                "created_at": _iso(row["created_at"]),
                "updated_at": _iso(row["updated_at"] or row["created_at"]),
                "source": "slack-feedback",
            }
        )
    return rows


def export_feedback(database_url: str, out: TextIO, *, since: float = 0.0) -> int:
    """Write feedback at ``database_url`` to ``out`` as JSONL; returns the number of lines."""
    store = Store.from_url(database_url)
    try:
        rows = feedback_rows(store, since=since)
    finally:
        store.dispose()
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def add_feedback_command(subparsers: Any) -> None:
    """Register ``feedback export`` on an argparse subparsers object (optional helper for bot/cli/main.py)."""
    feedback = subparsers.add_parser("feedback", help="feedback collected from Slack buttons")
    actions = feedback.add_subparsers(dest="feedback_command", required=True)
    export = actions.add_parser("export", help="write feedback as labelled JSONL")
    export.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    export.add_argument("--since", type=float, default=0.0, help="only votes changed at or after this UNIX time")
    export.set_defaults(func=run_export_command)


def run_export_command(args: argparse.Namespace) -> int:
    from bot.config import load_settings

    settings = load_settings()
    if args.output == "-":
        count = export_feedback(settings.database_url, sys.stdout, since=args.since)
    else:
        with open(args.output, "w", encoding="utf-8") as handle:
            count = export_feedback(settings.database_url, handle, since=args.since)
    print(f"exported {count} feedback rows", file=sys.stderr)
    return 0
