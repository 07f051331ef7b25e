"""Build-time learning from the case library that needs the whole engine (extract + classify).

``learned.py`` holds what runs per paste; this module holds what is computed once, when the
artefact is built (``scripts/train_cases.py``) or per fold by ``benchmarks/accuracy.py``:

* ``folds_by_source`` splits cases so that one thread's items are never on both sides;
* ``learn_confusions`` measures, out of fold, which causes real pastes turned out to be when
  the engine's top answer was another one. The text often cannot tell a firewall timeout from
  a private endpoint or a proxy the daemon ignores; the library knows how often each happens,
  and that decides which candidates follow the top cause (``Learned.add_runner_ups``).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.engine.classify import UNRELATED, classify
from bot.engine.knowledge import default_knowledge
from bot.engine.learned import BLEND, KNN_K, LINEAR_WEIGHT, TRAINING, CaseIndex, Learned, train_linear

if TYPE_CHECKING:
    from bot.engine.cases import Case
    from bot.engine.extract import Extraction

#: Inner folds used to predict every training case without its own thread.
CONFUSION_FOLDS = 5
#: A confusion seen fewer times than this is noise, not a pattern.
MIN_CONFUSIONS = 2


def folds_by_source(sources: Sequence[str], k: int) -> list[int]:
    """Fold of every item: whole sources (threads) assigned to the emptiest fold, largest first."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, source in enumerate(sources):
        groups[source].append(i)
    order = sorted(groups, key=lambda s: (-len(groups[s]), hashlib.sha256(s.encode()).hexdigest()))
    sizes = [0] * k
    fold_of = [0] * len(sources)
    for source in order:
        target = min(range(k), key=lambda f: (sizes[f], f))
        sizes[target] += len(groups[source])
        for i in groups[source]:
            fold_of[i] = target
    return fold_of


def learn_confusions(
    case_ids: Sequence[str],
    labels: Sequence[str],
    sources: Sequence[str],
    extractions: Sequence[Extraction],
    feats: Sequence[set[str]],
    *,
    folds: int = CONFUSION_FOLDS,
    blend: float = BLEND,
) -> dict[str, dict[str, float]]:
    """For each cause the engine puts first, the share of each other true cause among the
    library's cases it put first, predicted out of fold (leave-source-out).

    Deterministic: folds come from the sources' digests, counts are rounded, keys sorted. The
    inner layers are the nearest cases alone: a linear model per inner fold would multiply the
    training time by five for the order of the runner-ups only.
    """
    fold_of = folds_by_source(sources, folds)
    pairs: Counter[tuple[str, str]] = Counter()
    predicted: Counter[str] = Counter()
    for fold in range(folds):
        train = [i for i in range(len(labels)) if fold_of[i] != fold]
        index = CaseIndex.build(
            [case_ids[i] for i in train],
            [labels[i] for i in train],
            [feats[i] for i in train],
        )
        learned = Learned(index=index, blend=blend)
        for i in range(len(labels)):
            if fold_of[i] != fold:
                continue
            top = classify(extractions[i], learned=learned, cite=False).cause
            predicted[top] += 1
            if top != labels[i]:
                pairs[(top, labels[i])] += 1
    confusions: dict[str, dict[str, float]] = {}
    for (top, truth), count in sorted(pairs.items()):
        if count >= MIN_CONFUSIONS and truth != UNRELATED:
            confusions.setdefault(top, {})[truth] = round(count / predicted[top], 4)
    return confusions


def train_learned(
    cases: Sequence[Case],
    extractions: Sequence[Extraction],
    feats: Sequence[set[str]],
    *,
    runner_ups: bool = True,
    blend: float = BLEND,
    k: int = KNN_K,
    linear_weight: float = LINEAR_WEIGHT,
) -> Learned:
    """The learned layer of ``cases`` (their extractions and features, in the same order): the
    index of nearest cases, the linear model (unless ``linear_weight`` is 0) and, unless
    ``runner_ups`` is off, the confusions learnt out of fold. What ``scripts/train_cases.py``
    packages, and what the benchmark retrains per fold."""
    ids, labels = [c.id for c in cases], [c.label for c in cases]
    index = CaseIndex.build(ids, labels, feats, [ex.text for ex in extractions])
    linear = (
        train_linear(feats, labels, classes=sorted(default_knowledge().cards), **TRAINING) if linear_weight else None
    )
    confusions = (
        learn_confusions(ids, labels, [c.source for c in cases], extractions, feats, blend=blend) if runner_ups else {}
    )
    return Learned(index=index, linear=linear, linear_weight=linear_weight, blend=blend, k=k, confusions=confusions)
