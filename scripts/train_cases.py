"""Rebuild the learned layer's artefact (``knowledge/learned.json``) from the case library.

Run after adding cases to ``knowledge/cases/*.jsonl`` or editing ``knowledge/signals.yaml``:

    python scripts/train_cases.py          # retrain and write the artefact
    python scripts/train_cases.py --check  # exit 1 if the committed artefact is stale

Building is deterministic (sorted inputs, seeded training), pure Python, and takes about half a minute;
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
    KNN_K,
    artefact_path,
    features,
    training_digest,
)
from bot.engine.training import train_learned


def build() -> dict[str, object]:
    """Index every case of the library and return the artefact's content."""
    cases = load_cases(labels=set(default_knowledge().cards))
    extractions = [extract(case.text) for case in cases]
    learned = train_learned(cases, extractions, [features(ex) for ex in extractions])
    return {
        "feature_version": FEATURE_VERSION,
        "library_sha256": training_digest(),
        "cases": len(cases),
        "model": "knn+linear",
        "k": KNN_K,
        "blend": BLEND,
        "linear_weight": learned.linear_weight,
        "confusions": learned.confusions,
        "index": learned.index.to_dict(),
        "linear": learned.linear.to_dict() if learned.linear is not None else None,
    }


def dump(artefact: dict[str, object]) -> str:
    """One top-level key per line, one line per indexed feature, and one per list of the linear
    model (its sorted feature names, then its flat weights): compact, and read without conversion."""

    def compact(value: object) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    lines = ["{"]
    for key, value in artefact.items():
        if key in ("index", "linear") and isinstance(value, dict):
            lines.append(f'"{key}": {{')
            for name, part in value.items():
                if isinstance(part, dict):
                    lines.append(f'  "{name}": {{')
                    lines += [f"    {compact(k)}: {compact(v)}," for k, v in part.items()]
                    if part:
                        lines[-1] = lines[-1].rstrip(",")
                    lines.append("  },")
                else:
                    lines.append(f'  "{name}": {compact(part)},')
            lines[-1] = lines[-1].rstrip(",")
            lines.append("},")
        else:
            lines.append(f'"{key}": {compact(value)},')
    lines[-1] = lines[-1].rstrip(",")
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
