"""Accuracy on real pastes: leave-source-out cross-validation over the case library.

Every ``knowledge/cases/*.jsonl`` item is a real paste from a public thread, labelled with
the root cause its source established. The items are split into folds by ``source`` (one
thread's items are never on both sides), the learned layer is retrained on the other folds
for each fold, and every held-out item is diagnosed verbatim and wrapped as people paste in
chat (a code fence with an English sentence, Slack's escaping and link syntax, a Japanese
sentence, ``> `` quoting with CRLF). The cards' rules are the same in every fold, so the
rules-only baseline is printed next to the final figures and the learned layer's gain is
visible. Needs only the runtime dependencies.

Figures, for English and Japanese items separately:

* top-1 / top-3: the labelled cause is the top cause / among the first three (registry errors);
* unanswered: registry errors the bot would not answer in passive mode (``reply`` false or
  the top cause ``unrelated``);
* silence: unrelated items (chatter, other tools' errors, successes) the bot stays silent on.

    python benchmarks/accuracy.py [--folds 10] [--show-misses] [--no-runner-ups] [--cases DIR] [extra.jsonl ...]
    python benchmarks/accuracy.py --extra-only new-batch.jsonl

The cards' rules were written looking at some of these items' misses (listed in
``benchmarks/rules-seen.txt``); the "unread" rows are the other items. They are NOT an estimate
for pastes the project has never seen: the items read were chosen because they were misses when
they arrived, so the unread ones are mostly those the engine already answered right, and their
figures are biased upward. The honest estimate for unseen pastes is the blind score of a new batch
before it joins the library (the extra files below). The learned layer never sees a held-out
thread in any row.

Extra JSONL files (same format) are scored without cross-validation: by the packaged artefact,
or, with ``--cases DIR``, by a learned layer trained on that library only. New real pastes are
scored this way before they join the library (a blind figure), and a library without some files
measures those files as pastes the learned layer never saw. ``--extra-only`` skips the
cross-validation and scores only the extra files with the packaged artefact (seconds, not
minutes): the blind figure of a batch on arrival, before anyone reads its misses.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.engine.cases import Case, load_cases, parse_case
from bot.engine.classify import UNRELATED, classify
from bot.engine.extract import Extraction, extract
from bot.engine.knowledge import default_knowledge
from bot.engine.learned import (
    BLEND,
    KNN_K,
    LINEAR_WEIGHT,
    Learned,
    default_learned,
    features,
)
from bot.engine.models import Diagnosis
from bot.engine.training import folds_by_source, train_learned

_URL = re.compile(r"https?://[^\s<>\"'`]+")


def slack_escape(text: str) -> str:
    """What Slack's API delivers for a pasted text: entities escaped, URLs turned into links."""
    escaped = html.escape(text, quote=False)
    return _URL.sub(lambda m: f"<{m.group(0)}|{m.group(0)}>" if len(m.group(0)) % 2 else f"<{m.group(0)}>", escaped)


def wrappers(text: str) -> dict[str, str]:
    """The paste verbatim and as people wrap it in chat."""
    return {
        "verbatim": text,
        "fenced-en": f"getting this since this morning, any idea?\n```\n{text}\n```",
        "slack": f"{slack_escape(text)}\n\nanyone seen this before? it worked yesterday",
        "ja-prose": f"デプロイでこのエラーが出ます。原因わかりますか？\n```{text}```",
        "quoted": "\r\n".join(f"> {line}" for line in text.split("\n")),
    }


@dataclass(slots=True)
class Item:
    case: Case
    variant: str
    extraction: Extraction
    feats: set[str]


class Tally:
    """Counts for one system over one slice of items."""

    def __init__(self) -> None:
        self.c: Counter[str] = Counter()

    def add(self, case: Case, d: Diagnosis) -> None:
        ranked = [c.id for c in d.causes]
        if case.label == UNRELATED:
            self.c["unrelated"] += 1
            self.c["silent"] += int(not d.reply)
        else:
            self.c["registry"] += 1
            self.c["top1"] += int(d.cause == case.label)
            self.c["top3"] += int(case.label in ranked[:3])
            self.c["unanswered"] += int(not d.reply or d.cause == UNRELATED)

    def row(self) -> str:
        reg, unr = self.c["registry"], self.c["unrelated"]

        def pct(n: int, d: int) -> str:
            return f"{n / d:6.1%}" if d else "     -"

        return (
            f"{pct(self.c['top1'], reg)} {pct(self.c['top3'], reg)} {pct(self.c['unanswered'], reg)}"
            f" {pct(self.c['silent'], unr)}   n={reg}+{unr}"
        )


def diagnose_with(item: Item, learned: Learned | None) -> Diagnosis:
    return classify(item.extraction, learned=learned, lang="ja" if item.case.lang == "ja" else "en")


def case_folds(cases: Sequence[Case], k: int) -> list[int]:
    return folds_by_source([case.source for case in cases], k)


def cross_validate(
    cases: list[Case],
    items: list[list[Item]],
    k: int,
    train: Callable[[list[Item]], Learned],
    seen: set[str] | None = None,
) -> tuple[dict[str, dict[str, Tally]], list[tuple[Item, Diagnosis]], dict[str, Counter[str]]]:
    """Per system ("rules", "final") and slice, the tallies; the final system's results per item."""
    fold_of = case_folds(cases, k)
    tallies: dict[str, dict[str, Tally]] = {"rules": defaultdict(Tally), "final": defaultdict(Tally)}
    results: list[tuple[Item, Diagnosis]] = []
    per_cause: dict[str, Counter[str]] = defaultdict(Counter)
    for fold in range(k):
        training = [variants[0] for i, variants in enumerate(items) if fold_of[i] != fold]
        learned = train(training)
        for i, variants in enumerate(items):
            if fold_of[i] != fold:
                continue
            for item in variants:
                case = item.case
                slices = [case.lang, f"{case.lang}/{'verbatim' if item.variant == 'verbatim' else 'wrapped'}", "all",
                          f"variant/{item.variant}"]  # fmt: skip
                if seen is not None and case.id not in seen:
                    slices += ["unread", f"unread/{case.lang}"]
                baseline = diagnose_with(item, None)
                final = diagnose_with(item, learned)
                for name in slices:
                    tallies["rules"][name].add(case, baseline)
                    tallies["final"][name].add(case, final)
                results.append((item, final))
                label, got = case.label, final.cause
                per_cause[label]["n"] += 1
                per_cause[label]["tp"] += int(got == label)
                per_cause[got]["predicted"] += 1
                per_cause[label]["rules_tp"] += int(baseline.cause == label)
    return tallies, results, per_cause


#: The learned layers ``--model`` compares: the shipped one, and each of its two parts alone.
MODELS = {"knn+linear": LINEAR_WEIGHT, "knn": 0.0, "linear": 1.0}


def trainer(model: str, blend: float, k: int, runner_ups: bool = True) -> Callable[[list[Item]], Learned]:
    """Build the learned layer from the training folds only."""

    def train(training: list[Item]) -> Learned:
        return train_learned(
            [item.case for item in training],
            [item.extraction for item in training],
            [item.feats for item in training],
            runner_ups=runner_ups and model != "linear",
            blend=blend,
            k=k,
            linear_weight=MODELS[model],
        )

    return train


def print_tables(tallies: dict[str, dict[str, Tally]], slices: list[str]) -> None:
    print(f"{'slice':22} {'system':7} {'top-1':>6} {'top-3':>6} {'unansw':>6} {'silent':>6}")
    for name in slices:
        for system in ("rules", "final"):
            if name in tallies[system]:
                print(f"{name:22} {system:7} {tallies[system][name].row()}")


#: Confidence buckets of the reliability table (lower bounds).
RELIABILITY_BUCKETS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)


def print_reliability(results: list[tuple[Item, Diagnosis]]) -> None:
    """How often a reply is right at the confidence it shows (answered real registry errors, all
    variants): a decided reply's top cause at its confidence, an undecided reply's candidates at
    its ``answer_confidence``. A well-calibrated engine's "84 %" is right about 84 % of the time."""
    rows: dict[tuple[str, float], list[tuple[float, bool]]] = defaultdict(list)
    for item, d in results:
        if item.case.label == UNRELATED or not d.reply or d.cause == UNRELATED:
            continue
        if d.ambiguous and d.candidates:
            kind, right = "undecided", item.case.label in {c.id for c in d.candidates}
        else:
            kind, right = "decided", d.cause == item.case.label
        shown = d.answer_confidence
        bucket = max(b for b in RELIABILITY_BUCKETS if shown >= b)
        rows[(kind, bucket)].append((shown, right))
    print("reliability (answered registry errors, final): confidence shown vs. share right")
    print(f"  {'reply':10} {'shown':>11} {'n':>6} {'mean shown':>10} {'right':>7}")
    for (kind, bucket), values in sorted(rows.items()):
        upper = next((b for b in RELIABILITY_BUCKETS if b > bucket), 1.0)
        mean = sum(v for v, _ in values) / len(values)
        share_right = sum(r for _, r in values) / len(values)
        print(f"  {kind:10} {bucket:4.0%}-{upper:4.0%} {len(values):6} {mean:10.1%} {share_right:7.1%}")


def extra_sets(paths: list[str], learned: Learned | None, show_misses: bool = False) -> None:
    """Sets outside the library scored without cross-validation, by ``learned`` (the packaged
    artefact, or one trained on ``--cases``): new real pastes scored blind, or written sets.
    ``show_misses`` lists the verbatim misses after the figures (read them only once the blind
    figure is recorded)."""
    labels = set(default_knowledge().cards)
    misses: list[str] = []
    for path in paths:
        tally, base = Tally(), Tally()
        for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            raw = line if '"source"' in line else line[:-1] + ', "source": "https://example.invalid/written"}'
            case = parse_case(raw, where=f"{Path(path).name}:{number}", labels=labels)
            for variant, text in wrappers(case.text).items():
                ex = extract(text)
                item = Item(case, variant, ex, set())
                answer = diagnose_with(item, learned)
                tally.add(case, answer)
                base.add(case, diagnose_with(item, None))
                if show_misses and variant == "verbatim" and not answered_right(case, answer):
                    misses.append(f"  {case.id} {case.label} -> {answer.cause if answer.reply else 'silent'}: "
                                  + case.text[:160].replace("\n", " | "))
        print(f"{Path(path).name:22} rules   {base.row()}")
        print(f"{Path(path).name:22} final   {tally.row()}")
    if misses:
        print("misses (verbatim):", *misses, sep="\n")


def answered_right(case: Case, d: Diagnosis) -> bool:
    """What a miss is for ``--show-misses``: a negative answered, or a registry error not answered
    with its label first."""
    if case.label == UNRELATED:
        return not d.reply
    return bool(d.reply) and d.cause == case.label


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("extra", nargs="*", help="written JSONL sets to score with the packaged artefact")
    parser.add_argument("--cases", type=Path, default=None, help="library directory (default: knowledge/cases)")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--blend", type=float, default=BLEND, help="weight of the learned layer's vote")
    parser.add_argument("--k", type=int, default=KNN_K, help="neighbours that vote")
    parser.add_argument(
        "--model",
        choices=tuple(MODELS),
        default="knn+linear",
        help="learned layer: the shipped one (nearest cases and a linear model), or either part alone",
    )
    parser.add_argument("--show-misses", action="store_true")
    parser.add_argument(
        "--no-runner-ups", action="store_true", help="leave out the learned confusions that order the candidates"
    )
    parser.add_argument(
        "--seen",
        type=Path,
        default=Path(__file__).resolve().parent / "rules-seen.txt",
        help="file of case ids whose misses were read while writing rules; adds figures for the other (unread, biased upward) items",
    )
    parser.add_argument(
        "--extra-only",
        action="store_true",
        help="score only the extra files, with the packaged artefact (no cross-validation)",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    if args.extra_only:
        if not args.extra or args.cases is not None:
            parser.error("--extra-only scores extra files with the packaged artefact: give files, not --cases")
        print("extra sets (packaged artefact, not cross-validated; verbatim + chat wrappings):")
        extra_sets(args.extra, default_learned(), args.show_misses)
        print(f"({time.perf_counter() - started:.1f} s)")
        return 0
    kb = default_knowledge()
    cases = load_cases(args.cases, labels=set(kb.cards))
    items: list[list[Item]] = []
    for case in cases:
        variants = []
        for variant, text in wrappers(case.text).items():
            ex = extract(text)
            variants.append(Item(case, variant, ex, features(ex)))
        items.append(variants)
    sources = len({c.source for c in cases})
    by_lang = Counter(c.lang for c in cases)
    print(
        f"case library: {len(cases)} real pastes from {sources} sources "
        f"({', '.join(f'{n} {lang}' for lang, n in sorted(by_lang.items()))}; "
        f"{sum(c.label != UNRELATED for c in cases)} registry errors, {sum(c.label == UNRELATED for c in cases)} unrelated)"
    )
    print(
        f"leave-source-out cross-validation, {args.folds} folds; each item verbatim + {len(items[0]) - 1} chat wrappings"
    )
    print("rules = cards only (fixed across folds); final = cards + learned layer retrained per fold")
    print()
    seen: set[str] | None = None
    if args.seen is not None and args.seen.exists():
        seen = {line.strip() for line in args.seen.read_text().splitlines() if line.strip() and not line.startswith("#")}
    tallies, results, per_cause = cross_validate(
        cases, items, args.folds, trainer(args.model, args.blend, args.k, not args.no_runner_ups), seen
    )
    langs = sorted(by_lang)
    slices = ["all"]
    for lang in langs:
        slices += [lang, f"{lang}/verbatim", f"{lang}/wrapped"]
    if seen is not None:
        slices += ["unread"] + [f"unread/{lang}" for lang in langs]
    print_tables(tallies, slices)
    print()
    print_tables(tallies, [f"variant/{item.variant}" for item in items[0]])
    print()
    print(f"{'cause (final, all variants)':32} {'recall':>7} {'precision':>9} {'rules recall':>12} {'n':>5}")
    for label in sorted(per_cause):
        counts = per_cause[label]
        if not counts["n"]:
            continue
        recall = counts["tp"] / counts["n"]
        precision = counts["tp"] / counts["predicted"] if counts["predicted"] else 0.0
        print(f"{label:32} {recall:7.1%} {precision:9.1%} {counts['rules_tp'] / counts['n']:12.1%} {counts['n']:5}")
    confusions = Counter(
        (item.case.label, d.cause) for item, d in results if d.cause != item.case.label and item.variant == "verbatim"
    )
    print()
    print("main confusions (label -> predicted, verbatim, final):")
    for (label, predicted), count in confusions.most_common(12):
        print(f"  {count:3}  {label} -> {predicted}")
    print()
    print_reliability(results)
    if args.show_misses:
        print()
        print("misses (verbatim, final):")
        for item, d in results:
            if item.variant != "verbatim":
                continue
            wrong = d.cause != item.case.label if item.case.label != UNRELATED else d.reply
            if wrong:
                print(
                    f"  {item.case.id:14} {item.case.label} -> {d.cause} reply={d.reply} {[c.id for c in d.causes[:3]]}"
                )
    if args.extra:
        print()
        if args.cases is None:
            print("extra sets (packaged artefact, not cross-validated):")
            extra_sets(args.extra, default_learned(), args.show_misses)
        else:  # the learned layer knows only --cases: the extra sets are pastes it never saw
            print(f"extra sets (learned layer trained on {args.cases} only, not cross-validated):")
            train = trainer(args.model, args.blend, args.k, not args.no_runner_ups)
            extra_sets(args.extra, train([variants[0] for variants in items]))
    print()
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
