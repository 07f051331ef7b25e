"""Rebuild the learned layer's artefact (``knowledge/learned.json``) from the case library.

Run after adding cases to ``knowledge/cases/*.jsonl`` or editing ``knowledge/signals.yaml``:

    python scripts/train_cases.py          # retrain and write the artefact
    python scripts/train_cases.py --check  # exit 1 if the committed artefact is stale

Training is deterministic (fixed seed, sorted inputs), pure Python, and takes a few seconds;
the artefact records the digest of everything it was trained from, and a test fails when
the library or the signals change without a retrain. Never edit the artefact by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.engine.cases import load_cases
from bot.engine.extract import extract
from bot.engine.knowledge import default_knowledge
from bot.engine.learned import (
    BLEND,
    FEATURE_VERSION,
    TRAINING,
    SimilarIndex,
    artefact_path,
    features,
    train_linear,
    training_digest,
)


def build() -> dict[str, object]:
    """Train on every case of the library and return the artefact's content."""
    classes = sorted(default_knowledge().cards)
    cases = load_cases(labels=set(classes))
    samples = [features(extract(case.text)) for case in cases]
    model = train_linear(samples, [case.label for case in cases], classes=classes, **TRAINING)
    index = SimilarIndex.build([c.id for c in cases], [c.label for c in cases], samples)
    return {
        "feature_version": FEATURE_VERSION,
        "library_sha256": training_digest(),
        "cases": len(cases),
        "blend": BLEND,
        "training": TRAINING,
        "model": model.to_dict(),
        "similar": index.to_dict(),
    }


def dump(artefact: dict[str, object]) -> str:
    """One top-level key per line and one weight row per line: readable diffs, compact file."""
    lines = ["{"]
    items = list(artefact.items())
    for position, (key, value) in enumerate(items):
        comma = "," if position < len(items) - 1 else ""
        if isinstance(value, dict):
            inner = list(value.items())
            lines.append(f"{json.dumps(key)}: {{")
            for j, (k, v) in enumerate(inner):
                inner_comma = "," if j < len(inner) - 1 else ""
                if k in ("weights",) and isinstance(v, dict):
                    rows = list(v.items())
                    lines.append(f"  {json.dumps(k)}: {{")
                    lines += [
                        f"    {json.dumps(f, ensure_ascii=False)}: {json.dumps(r, separators=(',', ':'))}"
                        + ("," if n < len(rows) - 1 else "")
                        for n, (f, r) in enumerate(rows)
                    ]
                    lines.append("  }" + inner_comma)
                else:
                    lines.append(
                        f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False, separators=(',', ':'))}{inner_comma}"
                    )
            lines.append("}" + comma)
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False, separators=(',', ':'))}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check that the artefact is up to date")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    path = args.output or artefact_path()
    if args.check:
        try:
            recorded = json.loads(path.read_text(encoding="utf-8")).get("library_sha256")
        except FileNotFoundError:
            recorded = None
        if recorded != training_digest():
            print(f"{path} is stale: run python scripts/train_cases.py", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    started = time.perf_counter()
    artefact = build()
    path.write_text(dump(artefact), encoding="utf-8")
    print(
        f"wrote {path} ({path.stat().st_size:,} bytes, {artefact['cases']} cases, {time.perf_counter() - started:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
