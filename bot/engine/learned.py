"""The learned layer: what generalises from the case library beyond the cards' rules.

Cards explain causes and carry the fixes; they recognise the phrasings someone thought of.
Real pastes use many more. This module turns a paste into a small set of features (the
signals and facts the extractor already found, plus the words of its error lines) and

* finds the most similar solved cases of the library (cosine over TF-IDF weights): their
  labels vote, and a reply cites them;
* scores every cause with a multinomial logistic regression trained on the library
  (``scripts/train_cases.py``; pure Python, so training and the benchmark need nothing
  beyond the runtime dependencies; every step shrinks all weights alike, see ``train_linear``);
  the two are mixed half and half (``LINEAR_WEIGHT``).

Everything is exported to one JSON artefact (``knowledge/learned.json``) that records the
digest of the library it was trained on; a test fails when it is stale. Inference is plain
Python over precomputed sparse weights (a dictionary lookup per feature, no numpy), except the
nearest-case search's inner loop and the model's sums, which run compiled
(``bot/engine/_knn.c``) when the install built it, with the same results as the Python loops.
"""

from __future__ import annotations

import gc
import hashlib
import heapq
import json
import math
import random
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.engine import learned_cache
from bot.engine.cases import packaged_case
from bot.engine.models import SimilarCase

try:  # built at install time where a C compiler was available (optional in pyproject.toml)
    from bot.engine._knn import KnnIndex as NativeIndex
    from bot.engine._knn import LinearScorer as NativeScorer
except ImportError:  # pragma: no cover - exercised by installs without a compiler
    NativeIndex = None  # type: ignore[assignment,misc]
    NativeScorer = None  # type: ignore[assignment,misc]

if TYPE_CHECKING:
    from bot.engine.extract import Extraction

#: Bump when ``features`` changes meaning: the artefact must then be retrained.
FEATURE_VERSION = 2
ARTEFACT_NAME = "learned.json"
#: The learned layer reads at most this much text (the error lines of a paste).
TEXT_BUDGET = 3_000
#: Hyper-parameters of ``train_linear`` and the blend weight, chosen by cross-validation
#: (``benchmarks/accuracy.py``); the training script and the benchmark both use these.
KNN_K = 10
BLEND = 6.0
#: When the rules lead by more than the vote can give (at most ``BLEND``), the vote cannot
#: change the answer, so the library is not consulted (a third of pastes).
SURE_MARGIN = BLEND + 1.0
#: Share of the linear model's probabilities in the learned vote; the nearest cases' shares
#: make up the rest. Neither alone does as well: cross-validated top-1 73.5 % with the nearest
#: cases alone, 74.4 % half and half (0.3 and 0.7 did no better); on 138 new real pastes that
#: neither had seen, 69.5 % and 72.2 %. A blend of 8 did slightly better still (75.2 %) but made
#: the confidence shown overconfident until the temperature was raised; kept at 6. Measured again
#: with the model at ``LINEAR_TEMPERATURE`` 2.0 (6,123 pastes): blend 7 and 8 gave 74.1 and 74.7 %
#: top-1 against 73.7 %, but replies shown at 80-90 % were right 79.8 and 79.3 % of the time
#: (84.2 % at 6) and silence fell to 94.8 and 94.6 %; a 0.6 or 0.7 share of the model, 73.9 and 74.0 %.
LINEAR_WEIGHT = 0.5
#: The linear model's probabilities are a softmax of its logits over this temperature. Trained
#: to convergence (``train_linear``) the model is sure of itself, and the vote made the
#: confidence a reply shows overconfident: in cross-validation (5,984 pastes) replies shown at
#: 80-90 % were right 80.7 % of the time at 1.5, 84.2 % at 2.0 (90-95 %: 91.6 and 92.8 %), at
#: a cost of 0.4 points of top-1 (74.2 -> 73.8 %; top-3 93.4 % both); 2.5 made them
#: underconfident. On 88 new pastes the layer had not seen, 2.0 and 1.5 both gave 68.2 % top-1.
LINEAR_TEMPERATURE = 2.0
#: Weight of a cause's share of the top cause's confusions (``Learned.add_runner_ups``), and how
#: far below the top score a raised runner-up stays.
RUNNER_UP_WEIGHT = 8.0
RUNNER_UP_GAP = 2.0
#: Settings of the linear model's training (``train_linear``).
TRAINING: dict[str, Any] = {"epochs": 25, "rate": 0.3, "l2": 2e-4, "min_count": 2, "prune": 0.02}
#: The postings order of the earlier artefact format (a name -> cases dict): by document frequency, then name.
RANK_ORDER = "rarest-first"
#: The artefact's postings as rank tables (``CaseIndex.to_dict``), rarest first.
RANK_TABLES = "rank-tables"
#: A search looks up at most this many of a paste's features (its rarest).
QUERY_FEATURES = 25
#: ... of which at most this many Japanese character pairs (the rarest): a Japanese sentence has
#: dozens of rare pairs that would crowd out its signals, facts and error words (cross-validated).
JAPANESE_QUERY = 10
#: Fact keys of the extraction that become features.
_FACT_KEYS = (
    "registry_class",
    "target_ip_scope",
    "dns_server_scope",
    "status",
    "tool",
    "host_kinds",
    "lookup_kinds",
    "checkhealth",
    "canipull",
)
#: Latin words, and runs of Japanese, Chinese or Korean (Hangul syllables) characters, which are read as
#: character pairs: none of the three separates its words with spaces the way the features need.
_TOKEN = re.compile(r"[a-z][a-z0-9_]{1,30}|[\u3041-\u30ff\u3400-\u9fff\uf900-\ufaff\uac00-\ud7a3]{1,60}")
_CJK_START = "\u3041"
_ERROR_LINE = re.compile(
    r"^[^\n]{0,400}?(?:error|fail|denied|refused|time[d ]?out|unauthori|forbidden|x509|certificate|lookup|eof|proxy|"
    r"daemon|cannot|can't|unable|not found|exceeded|no such host|reset|tls|ssl|unknown|invalid|"
    r"エラー|失敗|できません|できない|错误|失败|无法|에러|오류|실패)[^\n]{0,600}",
    re.IGNORECASE | re.MULTILINE,
)
#: Tokens that carry no meaning for the cause (host name parts shared by every paste, prose glue).
_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "with",
        "from",
        "this",
        "that",
        "was",
        "were",
        "are",
        "has",
        "have",
        "had",
        "not",
        "but",
        "you",
        "your",
        "our",
        "its",
        "into",
        "to",
        "of",
        "in",
        "on",
        "at",
        "by",
        "is",
        "be",
        "it",
        "as",
        "or",
        "an",
        "if",
        "io",
        "com",
        "www",
        "https",
        "http",
        "net",
        "org",
    ]
)


def focus_text(text: str) -> str:
    """The part of a paste the learned layer reads: all of it when short, else its error lines."""
    if len(text) <= TEXT_BUDGET:
        return text
    parts: list[str] = []
    size = 0
    for match in _ERROR_LINE.finditer(text):
        parts.append(match.group(0))
        size += len(match.group(0))
        if size >= TEXT_BUDGET - 500:
            break
    parts.append(text[-500:])
    return "\n".join(parts)


def text_features(text: str) -> set[str]:
    """Words and word pairs of the (lowercased) text; Japanese, Chinese and Korean runs become character pairs."""
    out: set[str] = set()
    previous = ""
    for token in _TOKEN.findall(text.lower()):
        if token[0] >= _CJK_START:
            if len(token) == 1:
                out.add("j:" + token)
            else:
                out.update("j:" + token[i : i + 2] for i in range(len(token) - 1))
            previous = ""
            continue
        if token in _STOP:
            previous = ""
            continue
        out.add("w:" + token)
        if previous:
            out.add("b:" + previous + "_" + token)
        previous = token
    return out


def features(ex: Extraction) -> set[str]:
    """Every feature of an extraction: signals, facts, context, and the words of its error lines."""
    out = text_features(focus_text(ex.text))
    out.update("s:" + s for s in ex.facts.signals)
    derived = ex.derived
    for key in _FACT_KEYS:
        for value in derived.get(key, ()):
            out.add(f"f:{key}={value}")
    if ex.registry_context:
        out.add("ctx")
    return out


def feature_in(name: str, words: dict[str, int], pairs: dict[str, int], others: dict[str, int]) -> int | None:
    """A feature's entry in tables kept by kind, as the case index and the linear model keep
    theirs: words (``w:``) and word pairs (``b:``) by their text, every other feature by name."""
    kind = name[:2]
    if kind == "w:":
        return words.get(name[2:])
    if kind == "b:":
        return pairs.get(name[2:])
    return others.get(name)


# ------------------------------------------------------------------------------- linear model
@dataclass(slots=True)
class LinearModel:
    """Multinomial logistic regression over binary features, stored flat for fast inference.

    ``features`` are sorted; feature ``r``'s weights are ``values[offsets[r]:offsets[r + 1]]``,
    each for class ``targets[j]``. Logits add a paste's features in that sorted order, so the
    sums never depend on a set's (hash-seeded) iteration order. The additions run compiled
    (``bot/engine/_knn.c``) when the install built it, in the same order: the same sums bit for bit.
    """

    classes: list[str]
    bias: list[float]
    features: list[str]
    offsets: list[int]
    targets: list[int]
    values: list[float]
    #: the rows of words, of word pairs (keyed without their ``w:``/``b:``) and of the other
    #: features, built on the first prediction: ``scan`` looks the paste's tokens up as they are read
    tables: tuple[dict[str, int], dict[str, int], dict[str, int]] | None = field(default=None, repr=False, compare=False)
    #: the compiled additions, built on the first prediction; ``False`` without the module
    native: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_rows(
        cls, classes: list[str], bias: list[float], rows: dict[str, tuple[tuple[int, float], ...]]
    ) -> LinearModel:
        features = sorted(rows)
        offsets, targets, values = [0], [], []
        for name in features:
            for k, w in sorted(rows[name]):
                targets.append(k)
                values.append(w)
            offsets.append(len(targets))
        return cls(classes=list(classes), bias=list(bias), features=features, offsets=offsets, targets=targets, values=values)

    def row_ids(self, feats: Iterable[str]) -> list[int]:
        """The rows of the known features among ``feats``, in sorted order."""
        words, pairs, others = self.row_tables()
        found = (feature_in(name, words, pairs, others) for name in feats)
        return sorted([r for r in found if r is not None])

    def row_tables(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Rows by kind: words and word pairs by their text, the other features by name."""
        if self.tables is None:
            with no_collection():  # 21,000 new keys: 16 ms with collections, 3 without
                self.tables = self._build_tables()
        return self.tables

    def _build_tables(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        names = self.features  # sorted: each kind's names are one run, found by bisection
        runs = {prefix: (bisect_left(names, prefix), bisect_left(names, prefix[0] + ";")) for prefix in ("b:", "w:")}
        words, pairs = (
            dict(zip([name[2:] for name in names[start:end]], range(start, end), strict=True))
            for start, end in (runs["w:"], runs["b:"])
        )
        rest = [(0, runs["b:"][0]), (runs["b:"][1], runs["w:"][0]), (runs["w:"][1], len(names))]
        others = {names[row]: row for start, end in rest for row in range(start, end)}
        return words, pairs, others

    def logits(self, feats: Iterable[str]) -> list[float]:
        return self.logits_rows(self.row_ids(feats))

    def logits_rows(self, rows: list[int]) -> list[float]:
        """The logits of a paste given the sorted rows of its known features."""
        native = self.native
        if native is None:
            native = self.native = (
                NativeScorer(self.bias, self.offsets, self.targets, self.values) if NativeScorer is not None else False
            )
        if native is not False:
            result: list[float] = native.logits(rows)
            return result
        return self.logits_python(rows)

    def logits_python(self, rows: list[int]) -> list[float]:
        """The bias plus the weights of ``rows``, added in order (the reference for the compiled loop)."""
        z = list(self.bias)
        offsets, targets, values = self.offsets, self.targets, self.values
        for r in rows:
            for j in range(offsets[r], offsets[r + 1]):
                z[targets[j]] += values[j]
        return z

    def predict(self, feats: Iterable[str]) -> dict[str, float]:
        """Probability of every cause (at ``LINEAR_TEMPERATURE``)."""
        return self.predict_rows(self.row_ids(feats))

    def predict_rows(self, rows: list[int]) -> dict[str, float]:
        """``predict`` given the sorted rows of the paste's known features (``scan``)."""
        z = self.logits_rows(rows)
        top = max(z)
        exps = [math.exp((v - top) / LINEAR_TEMPERATURE) for v in z]
        total = sum(exps)
        return {c: e / total for c, e in zip(self.classes, exps, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "bias": [round(b, 4) for b in self.bias],
            "features": self.features,
            "offsets": self.offsets,
            "targets": self.targets,
            "values": [round(w, 4) for w in self.values],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearModel:
        return cls(
            classes=list(data["classes"]),
            bias=[float(b) for b in data["bias"]],
            features=list(data["features"]),
            offsets=list(data["offsets"]),
            targets=list(data["targets"]),
            values=[float(w) for w in data["values"]],
        )


def train_linear(
    samples: Sequence[set[str]],
    labels: Sequence[str],
    *,
    classes: Sequence[str] | None = None,
    epochs: int = 25,
    rate: float = 0.3,
    l2: float = 2e-4,
    min_count: int = 2,
    prune: float = 0.02,
    seed: int = 7,
) -> LinearModel:
    """Fit the model with plain stochastic gradient descent (deterministic for a given seed).

    The L2 penalty shrinks every weight at every step (``l2`` times the step size), kept as one
    scale factor so a step still touches only the paste's own features. An earlier version
    shrank a feature's weights only when a paste held it, which pressed hardest on the common
    features the model most needs: on the same features, cross-validated top-3 92.0 -> 93.1 %
    and, on 88 new real pastes neither version had seen, top-1 63.9 -> 67.0 % (the same as
    scikit-learn's LogisticRegression fitted to convergence, which is not a runtime dependency).

    Features seen in fewer than ``min_count`` samples are dropped (a registry name that
    appears once teaches nothing); weights below ``prune`` are dropped after training so
    inference touches only the classes a feature really speaks for.
    """
    classes = sorted(set(labels)) if classes is None else list(classes)
    index = {c: i for i, c in enumerate(classes)}
    n_classes = len(classes)
    counts: dict[str, int] = {}
    for sample in samples:
        for name in sample:
            counts[name] = counts.get(name, 0) + 1
    vocab = {name for name, n in counts.items() if n >= min_count}
    rows: dict[str, list[float]] = {name: [0.0] * n_classes for name in sorted(vocab)}
    data = [
        ([rows[f] for f in sorted(sample) if f in vocab], index[label])
        for sample, label in zip(samples, labels, strict=True)
    ]
    bias = [0.0] * n_classes
    order = list(range(len(data)))
    rng = random.Random(seed)
    scale = 1.0  # every stored weight times ``scale`` is the real weight
    for epoch in range(epochs):
        rng.shuffle(order)
        step = rate / (1.0 + epoch * 0.2)
        for i in order:
            feats, target = data[i]
            sums = [0.0] * n_classes
            for row in feats:
                for k in range(n_classes):
                    sums[k] += row[k]
            z = [b + scale * v for b, v in zip(bias, sums, strict=True)]
            top = max(z)
            exps = [math.exp(v - top) for v in z]
            total = sum(exps)
            grad = [e / total for e in exps]
            grad[target] -= 1.0
            scale *= 1.0 - step * l2
            if scale < 1e-6:  # fold the scale into the weights before it loses precision
                for row in rows.values():
                    for k in range(n_classes):
                        row[k] *= scale
                scale = 1.0
            active = [(k, step * g) for k, g in enumerate(grad) if g > 1e-3 or g < -1e-3]
            if not active:
                continue
            for k, g in active:
                bias[k] -= g
            stored = [(k, g / scale) for k, g in active]
            for row in feats:
                for k, g in stored:
                    row[k] -= g
    weights = {
        name: tuple((k, w * scale) for k, w in enumerate(row) if abs(w * scale) >= prune) for name, row in rows.items()
    }
    return LinearModel.from_rows(classes, bias, {f: r for f, r in weights.items() if r})


# ------------------------------------------------------------------------------- nearest cases
@dataclass(frozen=True, slots=True)
class FlatPostings:
    """The postings by rank end to end: ``postings`` (native int32 case positions) and
    ``offsets`` (int32, where each feature's run starts; one more than there are features), and
    the longest run. What the learned artefact's cache keeps instead of 125,000 lists: bytes
    unmarshal at once, and the compiled index copies them (``KnnIndex.from_flat``)."""

    postings: bytes
    offsets: bytes
    longest: int

    @classmethod
    def of(cls, lists: Sequence[Sequence[int]]) -> FlatPostings:
        offsets = array("i", [0])
        flat = array("i")
        for cases in lists:
            flat.extend(cases)
            offsets.append(len(flat))
        return cls(flat.tobytes(), offsets.tobytes(), max(map(len, lists), default=0))

    def lists(self) -> list[list[int]]:
        flat, offsets = array("i"), array("i")
        flat.frombytes(self.postings)
        offsets.frombytes(self.offsets)
        return [flat[start:end].tolist() for start, end in pairwise(offsets)]


@dataclass(slots=True)
class CaseIndex:
    """TF-IDF vectors of the library's cases behind an inverted index, for cosine search.

    Features found in more than ``common`` cases (``s:error_marker``, ``w:error``) still count
    in every case's norm but are not indexed: they barely tell cases apart, and skipping
    them keeps a search to a few hundred additions.
    """

    postings: dict[str, list[int]]
    norms: list[float]
    case_ids: list[str]
    labels: list[str]
    text_hashes: list[str] = field(default_factory=list)  # of each case's normalised text
    #: squared IDF by document frequency; an indexed feature's frequency is its postings' length
    weights: list[float] = field(default_factory=list)

    inverse_norms: list[float] = field(default_factory=list)
    #: An indexed feature's rank is its place in (document frequency, name) order: rarest first,
    #: ties by name. Words (``w:``) and word pairs (``b:``) are kept by their text (most features,
    #: looked up straight from the paste's tokens), the other features by their name.
    rank: dict[str, int] = field(default_factory=dict)
    word_rank: dict[str, int] = field(default_factory=dict)
    pair_rank: dict[str, int] = field(default_factory=dict)
    #: by rank: the feature's cases and its squared IDF (``ranked``, built when first read)
    ranked_table: list[tuple[list[int], float]] | None = None
    #: ``postings`` are already in rank order (an artefact written by ``to_dict``): loading skips
    #: sorting 25,000+ names, a fifth of a one-shot CLI answer's start-up.
    rank_ordered: bool = False
    #: The postings by rank, when the index is read from an artefact's rank tables (``from_dict``):
    #: ``rank``/``word_rank``/``pair_rank`` come ready from the JSON, so loading builds no table
    #: in Python (``postings`` stays empty until ``posting_items`` needs the names).
    ranked_lists: list[list[int]] | None = None
    #: The postings by rank in the compact form of the artefact's cache (``FlatPostings``): the
    #: compiled index is built straight from it, and the lists only if something reads ``ranked``.
    flat: FlatPostings | None = None
    #: The compiled search over ``ranked`` (``bot/engine/_knn.c``), built on the first search;
    #: ``False`` when the module is not installed.
    native: Any = field(default=None, repr=False, compare=False)
    #: the compiled search's filters by set of labels (``_mask``)
    masks: dict[frozenset[str], bytes] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.inverse_norms = [1.0 / n for n in self.norms]
        n = len(self.case_ids)
        longest = self._set_up_postings()
        self.weights = [0.0] + [_idf(n, df) ** 2 for df in range(1, longest + 1)]

    def _set_up_postings(self) -> int:
        """Put the postings in rank order and return the longest run (the most cases one indexed
        feature has): a cache's flat postings come ranked and say it; lists read from rank tables
        come ranked; ``postings`` by name are ranked here, filling the rank tables."""
        if self.flat is not None:
            self.rank_ordered = True
            return self.flat.longest
        lists = self.ranked_lists
        if lists is None:  # built from postings: rank them and fill the tables
            postings = self.postings
            order = list(postings) if self.rank_ordered else sorted(postings, key=self._rank_key)
            by_kind: dict[str, dict[str, int]] = {"w:": self.word_rank, "b:": self.pair_rank}
            for r, name in enumerate(order):
                table = by_kind.get(name[:2])
                if table is None:
                    self.rank[name] = r
                else:
                    table[name[2:]] = r
            lists = [postings[name] for name in order]
        else:
            self.rank_ordered = True
        self.ranked_lists = lists
        return max(map(len, lists), default=0)

    def verify_flat(self) -> None:
        """Check flat postings (a cache's) entry by entry now, not at the first search: build the
        compiled index from them, which refuses any position or run it cannot use, or without
        the module the lists, against the number of cases and the longest run. ``ValueError``
        when they do not hold what they should (the loader then reads the JSON)."""
        flat = self.flat
        if flat is None:
            return
        if NativeIndex is not None:
            self.native = self._build_native()
            return
        positions = array("i")
        positions.frombytes(flat.postings)
        if positions and not 0 <= min(positions) <= max(positions) < len(self.case_ids):
            raise ValueError("case position out of range")
        if max(map(len, self._lists()), default=0) > flat.longest:
            raise ValueError("a run is longer than the longest run")

    @property
    def ranked(self) -> list[tuple[list[int], float]]:
        """By rank: the feature's cases and its squared IDF (the Python search's table)."""
        if self.ranked_table is None:
            lists = self._lists()
            self.ranked_table = list(zip(lists, map(self.weights.__getitem__, map(len, lists)), strict=True))
        return self.ranked_table

    def _lists(self) -> list[list[int]]:
        """The postings by rank as lists."""
        if self.ranked_lists is None:
            assert self.flat is not None  # __post_init__ sets one of the two
            self.ranked_lists = self.flat.lists()
        return self.ranked_lists

    def rank_of(self, name: str) -> int | None:
        """The rank of an indexed feature by its name (``None`` when it is not indexed)."""
        return feature_in(name, self.word_rank, self.pair_rank, self.rank)

    @classmethod
    def build(
        cls,
        case_ids: Sequence[str],
        labels: Sequence[str],
        samples: Sequence[set[str]],
        texts: Sequence[str] = (),
        *,
        common: float = 0.06,
    ) -> CaseIndex:
        df: dict[str, int] = {}
        for sample in samples:
            for name in sample:
                df[name] = df.get(name, 0) + 1
        n = len(samples)
        idf = {name: _idf(n, count) for name, count in df.items()}
        limit = max(20, int(n * common))
        postings: dict[str, list[int]] = {}
        norms: list[float] = []
        for i, sample in enumerate(samples):
            norms.append(round(math.sqrt(sum(idf[f] ** 2 for f in sample)) or 1.0, 4))
            for name in sorted(sample):
                if df[name] <= limit:
                    postings.setdefault(name, []).append(i)
        return cls(
            postings=postings,
            norms=norms,
            case_ids=list(case_ids),
            labels=list(labels),
            text_hashes=[text_hash(t) for t in texts],
        )

    def ranks(self, ex: Extraction) -> list[int]:
        """The ranks of the indexed features of an extraction, rarest first (no duplicates).

        The query ``search`` makes of ``features(ex)`` (Japanese character pairs capped at
        ``JAPANESE_QUERY``), without building the names that are not indexed.
        """
        return scan(ex, self, None)[0]

    def search(
        self, feats: Iterable[str], *, labels: set[str] | None = None, limit: int = 10
    ) -> list[tuple[int, float]]:
        """The ``limit`` most similar cases (position, cosine over the indexed features).

        Features are taken rarest first, ties by name (the ranks are precomputed), so the
        features looked up and the order of the float additions never depend on a set's
        (hash-seeded) order; Japanese character pairs take at most ``JAPANESE_QUERY`` places.
        """
        rank_of = self.rank_of
        found: set[int] = set()
        japanese: set[int] = set()
        for name in feats:
            r = rank_of(name)
            if r is not None:
                (japanese if name.startswith("j:") else found).add(r)
        found.update(sorted(japanese)[:JAPANESE_QUERY])
        return self.search_ranks(sorted(found), labels=labels, limit=limit)

    def search_ranks(
        self, order: list[int], *, labels: set[str] | None = None, limit: int = 10
    ) -> list[tuple[int, float]]:
        """``search`` for the sorted ranks of a paste's indexed features (``ranks``).

        Only the paste's ``QUERY_FEATURES`` rarest indexed features are looked up: they decide
        which cases are nearest, and the common ones would multiply the work. The compiled
        search answers when it is installed (the same neighbours and similarities, bit for bit),
        also a search restricted to some labels (citing cases of one cause), through a mask.
        """
        native = self.native
        if native is None:
            native = self.native = self._build_native()
        if native is not False:
            mask = None if labels is None else self._mask(labels)
            result: list[tuple[int, float]] = native.search(order[:QUERY_FEATURES], limit, mask)
            return result
        return self.search_python(order, labels=labels, limit=limit)

    def _mask(self, labels: set[str]) -> bytes:
        """One byte per case, 1 for those of ``labels``: the compiled search's filter (kept per
        set of labels; a reply cites from some 16 causes)."""
        key = frozenset(labels)
        mask = self.masks.get(key)
        if mask is None:
            mask = self.masks[key] = bytes(label in key for label in self.labels)
        return mask

    def _build_native(self) -> Any:
        """The compiled index over ``ranked`` (6 ms for the packaged library), or ``False`` without the module."""
        if NativeIndex is None:
            return False
        if self.flat is not None and self.ranked_lists is None:
            return NativeIndex.from_flat(self.flat.postings, self.flat.offsets, self.weights, self.inverse_norms)
        return NativeIndex([cases for cases, _ in self.ranked], [w2 for _, w2 in self.ranked], self.inverse_norms)

    def search_python(
        self, order: list[int], *, labels: set[str] | None = None, limit: int = 10
    ) -> list[tuple[int, float]]:
        """``search_ranks`` in Python: the reference the compiled search is tested against, and
        the search of installs built without a compiler."""
        if not order:
            return []
        ranked = self.ranked
        sums: dict[int, float] = {}
        get = sums.get
        query = 0.0
        for r in order[:QUERY_FEATURES]:
            cases, w2 = ranked[r]
            query += w2
            for i in cases:
                sums[i] = get(i, 0.0) + w2
        inverse = self.inverse_norms
        if labels is not None:
            own = self.labels
            scored = [(v * inverse[i], i) for i, v in sums.items() if own[i] in labels]
        else:
            scored = [(v * inverse[i], i) for i, v in sums.items()]
        # nlargest, not a full sort: a search meets some 300 cases to keep 10 (A/B on the 256 dev
        # pastes: 94 -> 76 us a search, the same neighbours). Ties: the later case first.
        scale = 1.0 / math.sqrt(query)
        return [(i, similarity * scale) for similarity, i in heapq.nlargest(limit, scored)]

    def vote(self, hits: list[tuple[int, float]]) -> dict[str, float]:
        """Each cause's share of the neighbours' similarity (the kNN belief)."""
        votes: dict[str, float] = {}
        labels = self.labels
        for i, similarity in hits:
            votes[labels[i]] = votes.get(labels[i], 0.0) + similarity
        total = sum(votes.values())
        return {cause: v / total for cause, v in votes.items()} if total else {}

    def posting_items(self) -> list[tuple[str, list[int]]]:
        """Every indexed feature's name and cases, rarest first (the rank order)."""
        if self.ranked_lists is None and self.flat is None:
            return [(name, self.postings[name]) for name in sorted(self.postings, key=self._rank_key)]
        lists = self._lists()
        names = [""] * len(lists)
        for table, prefix in ((self.word_rank, "w:"), (self.pair_rank, "b:"), (self.rank, "")):
            for name, r in table.items():
                names[r] = prefix + name
        return list(zip(names, lists, strict=True))

    def to_dict(self) -> dict[str, Any]:
        """The index as rank tables: the three name -> rank dicts and the postings by rank.

        JSON decodes the tables straight into the dicts ``ranks`` reads, so loading the artefact
        builds nothing per feature in Python (it was two fifths of loading the 3,000-case library).
        """
        return {
            "case_ids": self.case_ids,
            "labels": self.labels,
            "norms": self.norms,
            "text_hashes": self.text_hashes,
            "postings_order": RANK_TABLES,
            "words": self.word_rank,
            "pairs": self.pair_rank,
            "others": self.rank,
            "postings": self._lists(),
        }

    def _rank_key(self, name: str) -> tuple[int, str]:
        return len(self.postings[name]), name

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseIndex:
        if data.get("postings_order") == RANK_TABLES:
            flat = data["postings"] if isinstance(data["postings"], FlatPostings) else None
            return cls(
                postings={},
                norms=data["norms"],
                case_ids=data["case_ids"],
                labels=data["labels"],
                text_hashes=data.get("text_hashes", []),
                rank=data["others"],
                word_rank=data["words"],
                pair_rank=data["pairs"],
                ranked_lists=None if flat else data["postings"],
                flat=flat,
            )
        return cls(
            postings=data["postings"],
            norms=data["norms"],
            case_ids=data["case_ids"],
            labels=data["labels"],
            text_hashes=data.get("text_hashes", []),
            rank_ordered=data.get("postings_order") == RANK_ORDER,
        )


def _idf(n: int, df: int) -> float:
    return math.log((1 + n) / (1 + df)) + 1.0


def text_hash(text: str) -> str:
    """Identity of a paste after normalisation (so the library never cites a paste to itself)."""
    return hashlib.sha1(text.strip().encode("utf-8", errors="replace"), usedforsecurity=False).hexdigest()[:16]


# ------------------------------------------------------------------------------- the learned layer
#: A paste without a recognised registry word still counts as a registry failure when its
#: nearest case is this similar and this share of the neighbours' vote is for registry causes.
CONTEXT_SIMILARITY = 0.35
CONTEXT_SHARE = 0.8
#: ... or, when it names a registry, this share alone.
MENTION_SHARE = 0.5
#: Below this cosine a library case is not "similar" enough to cite.
MIN_SIMILARITY = 0.15
#: ... and a case of a runner-up cause must be closer still to be worth citing.
MIN_SIMILARITY_OTHER = 0.3


def scan(ex: Extraction, index: CaseIndex, linear: LinearModel | None) -> tuple[list[int], list[int]]:
    """Read a paste's features once for both halves of the layer: the sorted ranks of those the
    case index holds (``CaseIndex.ranks``) and the sorted rows of those the linear model knows.

    The same features as ``features(ex)``, looked up as they are read, without building the
    names of the many that neither half knows; Japanese character pairs are capped at
    ``JAPANESE_QUERY`` for the index only (the model reads them all, as it was trained).
    """
    found: set[int] = set()
    add = found.add
    rank = index.rank.get
    word = index.word_rank.get
    pair = index.pair_rank.get
    japanese: set[int] = set()
    rows: set[int] = set()
    add_row = rows.add
    if linear is not None:
        word_rows, pair_rows, other_rows = linear.row_tables()
    else:
        word_rows = pair_rows = other_rows = {}
    word_row = word_rows.get
    pair_row = pair_rows.get
    other_row = other_rows.get

    def other(name: str) -> None:
        r = rank(name)
        if r is not None:
            add(r)
        r = other_row(name)
        if r is not None:
            add_row(r)

    previous = ""
    for token in _TOKEN.findall(focus_text(ex.text).lower()):
        if token[0] >= _CJK_START:
            for i in range(max(1, len(token) - 1)):
                name = "j:" + token[i : i + 2]
                r = rank(name)
                if r is not None:
                    japanese.add(r)
                r = other_row(name)
                if r is not None:
                    add_row(r)
            previous = ""
            continue
        if token in _STOP:
            previous = ""
            continue
        r = word(token)
        if r is not None:
            add(r)
        r = word_row(token)
        if r is not None:
            add_row(r)
        if previous:
            joined = previous + "_" + token
            r = pair(joined)
            if r is not None:
                add(r)
            r = pair_row(joined)
            if r is not None:
                add_row(r)
        previous = token
    for signal in ex.facts.signals:
        other("s:" + signal)
    derived = ex.derived
    for key in _FACT_KEYS:
        for value in derived.get(key, ()):
            other(f"f:{key}={value}")
    if ex.registry_context:
        other("ctx")
    if japanese:
        found.update(sorted(japanese)[:JAPANESE_QUERY])
    return sorted(found), sorted(rows)


@dataclass(slots=True)
class Consultation:
    """What the learned layer says of one paste (``Learned.consult``)."""

    #: each cause's vote: the nearest cases' shares mixed with the linear model's probabilities
    votes: dict[str, float]
    #: the nearest cases' own shares, which the reply shows as evidence (the cited cases bear them out)
    shares: dict[str, float]
    #: the nearest cases (position, similarity)
    hits: list[tuple[int, float]]
    #: the sorted ranks of the paste's indexed features (``CaseIndex.ranks``): the query that
    #: found ``hits``, kept for the search of cited cases
    ranks: list[int]


@dataclass(slots=True)
class Learned:
    """The learned layer: the library's cases as neighbours and a linear model trained on them,
    and how much their vote counts.

    The vote for a cause is ``(1 - linear_weight)`` times its share of the nearest cases plus
    ``linear_weight`` times the linear model's probability (the cases' shares alone without a model).
    """

    index: CaseIndex
    linear: LinearModel | None = None
    linear_weight: float = LINEAR_WEIGHT
    blend: float = BLEND
    k: int = KNN_K
    #: weight of the neighbours' "unrelated" vote (the rules' own silence is the better judge)
    unrelated_blend: float = 0.0
    sure_margin: float = SURE_MARGIN
    digest: str = ""
    #: For each cause put first, how often real pastes turned out to be each other cause
    #: (out of fold; ``bot.engine.training.learn_confusions``): orders the candidates after it.
    confusions: dict[str, dict[str, float]] = field(default_factory=dict)
    runner_up_weight: float = RUNNER_UP_WEIGHT

    def registry_like(
        self, votes: dict[str, float], hits: list[tuple[int, float]], *, mentions_registry: bool = False
    ) -> bool:
        """The nearest real cases are close and nearly all registry failures (not "unrelated").

        A paste that names a registry (``registry``, ``acr``, ``レジストリ``) next to its error needs
        only most of its neighbours to be registry failures, however close they are.
        """
        if not hits:
            return False
        share = 1.0 - votes.get("unrelated", 0.0)
        if mentions_registry:
            return share >= MENTION_SHARE
        return hits[0][1] >= CONTEXT_SIMILARITY and share >= CONTEXT_SHARE

    def add_runner_ups(self, scores: dict[str, float]) -> None:
        """Raise the causes real pastes most often turned out to be when the text pointed at the
        top cause, so they follow it among the candidates; the top cause and its lead stay.

        A cause gains ``runner_up_weight`` times its share of the top cause's confusions, never
        more than to ``RUNNER_UP_GAP`` below the top score (the reply's confidence barely moves).
        """
        if not scores:
            return
        top = min(scores, key=lambda k: (-scores[k], k))
        confused = self.confusions.get(top)
        if not confused:
            return
        ceiling = scores[top] - RUNNER_UP_GAP
        for cause, share in confused.items():
            current = max(scores.get(cause, 0.0), 0.0)
            raised = min(current + self.runner_up_weight * share, ceiling)
            if raised > current:
                scores[cause] = raised

    def votes(self, feats: set[str]) -> tuple[dict[str, float], list[tuple[int, float]]]:
        """Each cause's vote (see the class), and the ``k`` nearest cases."""
        hits = self.index.search(feats, limit=self.k)
        return self._with_model(self.index.vote(hits), feats), hits

    def votes_for(self, ex: Extraction) -> tuple[dict[str, float], list[tuple[int, float]]]:
        """``votes(features(ex))``; the search looks up the paste's indexed features without building their names."""
        consulted = self.consult(ex)
        return consulted.votes, consulted.hits

    def consult(self, ex: Extraction) -> Consultation:
        """Everything the classifier needs from the layer for one paste, each computed once:
        the vote, the nearest cases' own shares and those cases. The paste is read once for both
        halves (``scan``); the same vote as ``votes(features(ex))``."""
        ranks, rows = scan(ex, self.index, self.linear)
        hits = self.index.search_ranks(ranks, limit=self.k)
        shares = self.index.vote(hits)
        if self.linear is None:
            return Consultation(votes=shares, shares=shares, hits=hits, ranks=ranks)
        votes = self._mix(shares, self.linear.predict_rows(rows))
        return Consultation(votes=votes, shares=shares, hits=hits, ranks=ranks)

    def _with_model(self, shares: dict[str, float], feats: set[str]) -> dict[str, float]:
        """The nearest cases' shares mixed with the linear model's probabilities."""
        if self.linear is None:
            return shares
        return self._mix(shares, self.linear.predict(feats))

    def _mix(self, shares: dict[str, float], probabilities: dict[str, float]) -> dict[str, float]:
        """``linear_weight`` of the model's probabilities plus the rest of the cases' shares."""
        weight = self.linear_weight
        mixed = {cause: weight * p for cause, p in probabilities.items()}
        for cause, share in shares.items():
            mixed[cause] = mixed.get(cause, 0.0) + (1.0 - weight) * share
        return mixed

    def similar(
        self,
        ranks: list[int],
        causes: Sequence[str],
        text: str,
        *,
        limit: int = 2,
        hits: list[tuple[int, float]] | None = None,
    ) -> list[SimilarCase]:
        """Up to ``limit`` solved library cases that resemble the paste, of the first cause
        in ``causes`` that has any (the diagnosis, then the other candidates).

        The paste itself is never cited (same normalised text), and one thread is cited once.
        ``ranks`` are the paste's indexed features (``CaseIndex.ranks``, or ``Consultation.ranks``);
        ``hits`` are the neighbours already found for the vote; a search restricted to a cause
        runs only when they hold too few of it.
        """
        index = self.index
        own = text_hash(text)
        found: list[SimilarCase] = []
        sources: set[str] = set()
        for rank, cause in enumerate(causes):
            floor = MIN_SIMILARITY if rank == 0 else MIN_SIMILARITY_OTHER
            wanted = [(i, s) for i, s in hits or () if index.labels[i] == cause and s >= floor]
            if len(wanted) < limit:  # the vote's neighbours hold too few: search this cause alone
                wanted = index.search_ranks(ranks, labels={cause}, limit=limit + 4)
            for position, similarity in wanted:
                if similarity < floor:
                    break
                if index.text_hashes and index.text_hashes[position] == own:
                    continue
                case = packaged_case(index.case_ids[position])
                if case is None or case.source in sources or not (case.fix or case.evidence):
                    continue
                sources.add(case.source)
                found.append(
                    SimilarCase(case.id, case.title, case.source, case.label, case.fix, case.evidence, similarity)
                )
                if len(found) == limit:
                    return found
        return found


def artefact_path() -> Path:
    return Path(str(resources.files("knowledge"))) / ARTEFACT_NAME


def training_digest(cases_directory: Path | None = None) -> str:
    """What the artefact was trained from: the library, the cards and signals, the settings.

    Editing any of these makes the committed artefact stale (a test fails) until
    ``scripts/train_cases.py`` is run again.
    """
    from bot.engine.cases import library_digest

    knowledge = Path(str(resources.files("knowledge")))
    settings = json.dumps(
        {
            "features": FEATURE_VERSION,
            "k": KNN_K,
            "blend": BLEND,
            "sure": SURE_MARGIN,
            "linear": LINEAR_WEIGHT,
            "linear_temperature": LINEAR_TEMPERATURE,
            "training": TRAINING,
        },
        sort_keys=True,
    )
    # Every card counts: the learned confusions (``bot.engine.training``) come from the engine's own answers.
    library = library_digest(cases_directory, extra=tuple(sorted(knowledge.glob("*.yaml"))))
    return hashlib.sha256(f"{library}\n{settings}".encode()).hexdigest()


def load_learned(path: Path | None = None) -> Learned | None:
    """Read the artefact; ``None`` when it is absent or from another feature version (rules then work alone).

    The cyclic garbage collector is paused while the index is built: the load allocates some
    40,000 lists and dicts at once, none of which can be garbage yet, and the collector would
    otherwise scan them over and over while they are made (about 15 ms of every one-shot answer).
    """
    path = path or artefact_path()
    with no_collection():
        return _read_learned(path)


@contextmanager
def no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused while many objects that form no cycles are made: it
    would otherwise scan the engine's hundreds of thousands of objects again and again."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _read_learned(path: Path) -> Learned | None:
    """The artefact's data from its compiled cache (``bot.engine.learned_cache``) when one holds
    these exact bytes and is whole, else from the JSON (writing the cache for the next process)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    digest = learned_cache.artefact_digest(raw)
    cached = learned_cache.read_cached(path, digest)
    data = _from_cache_form(cached) if cached is not None else None
    if data is not None:
        try:
            learned = _learned_from(data)
            if learned is not None:
                learned.index.verify_flat()
            return learned
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # a cache that does not hold what it should: the JSON below, and a new cache
    data = json.loads(raw.decode("utf-8"))
    learned_cache.write_cached(path, digest, _cache_form(data))
    return _learned_from(data)


def _learned_from(data: dict[str, Any]) -> Learned | None:
    """The learned layer of the artefact's data (``None`` for another feature version)."""
    if data.get("feature_version") != FEATURE_VERSION:
        return None
    linear = data.get("linear")
    return Learned(
        index=CaseIndex.from_dict(data["index"]),
        linear=LinearModel.from_dict(linear) if isinstance(linear, dict) else None,
        linear_weight=float(data.get("linear_weight", LINEAR_WEIGHT)),
        blend=float(data["blend"]),
        k=int(data["k"]),
        digest=str(data.get("library_sha256", "")),
        confusions={str(k): {str(c): float(v) for c, v in row.items()} for k, row in data.get("confusions", {}).items()},
    )


#: Marks the index's postings in the cache as ``FlatPostings`` fields (``marshal`` keeps no classes).
_FLAT = "flat-int32"


def _cache_form(data: dict[str, Any]) -> dict[str, Any]:
    """The artefact's data as its cache keeps it: the index's postings by rank flattened into bytes."""
    index = data.get("index")
    if not isinstance(index, dict) or index.get("postings_order") != RANK_TABLES:
        return data
    flat = FlatPostings.of(index["postings"])
    return {**data, "index": {**index, "postings": (_FLAT, flat.postings, flat.offsets, flat.longest)}}


def _from_cache_form(data: dict[str, Any]) -> dict[str, Any] | None:
    """``_cache_form`` undone as far as loading needs: flattened postings become ``FlatPostings``;
    ``None`` when they do not add up (sizes that are no int32 arrays, another number of features
    than the rank tables name, offsets that do not span the postings). The compiled index checks
    every entry again when it is built; these checks cost nothing and send a damaged cache back to the JSON."""
    index = data.get("index")
    if not isinstance(index, dict):
        return data
    postings = index.get("postings")
    if not (isinstance(postings, tuple) and len(postings) == 4 and postings[0] == _FLAT):
        return data
    _, flat, offsets, longest = postings
    if not (isinstance(flat, bytes) and isinstance(offsets, bytes) and isinstance(longest, int)):
        return None
    if len(flat) % 4 or len(offsets) % 4 or len(offsets) < 4:
        return None
    starts = memoryview(offsets).cast("i")
    features = sum(len(index.get(table) or ()) for table in ("words", "pairs", "others"))
    if len(starts) != features + 1 or starts[0] != 0 or starts[-1] != len(flat) // 4:
        return None
    if not 0 <= longest <= len(index.get("case_ids") or ()):  # a run never holds a case twice
        return None
    data["index"] = {**index, "postings": FlatPostings(flat, offsets, longest)}
    return data


@lru_cache(maxsize=1)
def default_learned() -> Learned | None:
    """The packaged artefact, loaded once per process."""
    return load_learned()
