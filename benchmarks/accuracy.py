"""Accuracy of the offline classifier on a labelled sample (default: ../shared/eval/dev.jsonl).

Prints per-cause precision and recall, top-1 and top-3 accuracy on registry-problem
messages, the silence rate on `unrelated` messages (reply: false), the main confusions,
and whether fix steps carry the user's own values. Every message is also measured
wrapped the way people paste in chat (code fence, Slack escaping, an English or Japanese
sentence around it), since the product is judged on those too.

    python benchmarks/accuracy.py [path/to/labelled.jsonl] [--wrapped-only] [--show-misses]
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.diagnose import diagnose

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "dev.jsonl"


def wrappers(text: str) -> dict[str, str]:
    """Chat-style wrappings of one paste."""
    slack = html.escape(text, quote=False)
    slack = re.sub(r"https?://[^\s<>\"']+", lambda m: f"<{m.group(0)}|{m.group(0)}>", slack)
    return {
        "verbatim": text,
        "fenced": f"getting this since this morning, any idea?\n```\n{text}\n```",
        "slack": f"&gt; {slack.replace(chr(10), chr(10) + '&gt; ')}",
        "ja": f"デプロイでこのエラーが出ます。原因わかりますか？\n```{text}```",
        "quoted-crlf": "\r\n".join(f"> {line}" for line in text.split("\n")),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", nargs="?", default=str(DEFAULT))
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    rows = [json.loads(line) for line in Path(args.path).read_text(encoding="utf-8").splitlines() if line.strip()]

    per_variant: dict[str, dict[str, int]] = defaultdict(Counter)
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    confusions: Counter[tuple[str, str]] = Counter()
    values_ok = values_total = 0
    misses: list[str] = []
    for row in rows:
        label = row["label"]
        for variant, text in wrappers(row["text"]).items():
            d = diagnose(text)
            ranked = [c.id for c in d.causes]
            stats = per_variant[variant]
            if label == "unrelated":
                stats["unrelated"] += 1
                stats["silent"] += int(not d.reply)
                if d.reply and variant == "verbatim":
                    misses.append(f"{row['id']} unrelated -> replied {d.cause}")
            else:
                stats["registry"] += 1
                stats["top1"] += int(d.cause == label)
                stats["top3"] += int(label in ranked[:3])
                stats["replied"] += int(d.reply)
                if d.cause != label and variant == "verbatim":
                    misses.append(f"{row['id']} {label} -> {d.cause} {ranked[:3]}")
            if variant == "verbatim":
                if d.cause == label:
                    tp[label] += 1
                else:
                    fp[d.cause] += 1
                    fn[label] += 1
                    confusions[(label, d.cause)] += 1
                if label != "unrelated" and d.cause == label:
                    wanted = [v for v in (d.facts.registry, d.facts.client_ip, d.facts.region) if v]
                    if wanted:
                        values_total += 1
                        joined = " ".join(f"{s.text} {s.command or ''}" for s in d.fix)
                        values_ok += int(all(v in joined for v in wanted))

    print(f"labelled messages: {len(rows)} ({sum(1 for r in rows if r['label'] != 'unrelated')} registry problems)")
    print()
    print(f"{'variant':12} {'top-1':>7} {'top-3':>7} {'replied':>8} {'silent-on-unrelated':>20}")
    for variant, s in per_variant.items():
        reg, unr = max(s["registry"], 1), max(s["unrelated"], 1)
        print(
            f"{variant:12} {s['top1'] / reg:7.1%} {s['top3'] / reg:7.1%} {s['replied'] / reg:8.1%}"
            f" {s['silent'] / unr:20.1%}"
        )
    print()
    print(f"{'cause':32} {'precision':>9} {'recall':>7} {'n':>4}")
    labels = sorted({r["label"] for r in rows})
    for label in labels:
        n = tp[label] + fn[label]
        precision = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 0.0
        recall = tp[label] / n if n else 0.0
        print(f"{label:32} {precision:9.1%} {recall:7.1%} {n:4}")
    print()
    print("main confusions (label -> predicted, verbatim):")
    for (label, predicted), count in confusions.most_common(10):
        print(f"  {count:3}  {label} -> {predicted}")
    print()
    print(f"fix steps carry the user's registry/IP/region: {values_ok}/{values_total}")
    if args.show_misses:
        print()
        print("misses:")
        for line in misses:
            print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
