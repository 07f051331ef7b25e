"""Export Slack feedback as labelled JSONL (``acrcheck feedback export``).

Each vote becomes one line with the REDACTED text and the cause id it was given for, in
the same shape as the labelled sample under ``eval/`` (``text``, ``label``) plus the vote,
so "helpful" rows can extend the evaluation set and "not helpful" rows list confusions to
look at. Raw pastes were never stored, so nothing here can leak a secret.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.store import Store


def feedback_rows(store: Store, *, since: float = 0.0) -> list[dict[str, Any]]:
    """Feedback as JSON-ready dicts: ``label`` is the cause for helpful votes, else null."""
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
                "created_at": datetime.fromtimestamp(row["created_at"], UTC).isoformat(timespec="seconds"),
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
    export.add_argument("--since", type=float, default=0.0, help="only votes after this UNIX time")
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
