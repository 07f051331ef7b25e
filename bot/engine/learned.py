"""The learned layer: what generalises from the case library beyond the cards' rules.

Cards explain causes and carry the fixes; they recognise the phrasings someone thought of.
Real pastes use many more. This module turns a paste into a small set of features (the
signals and facts the extractor already found, plus the words of its error lines) and

* scores every cause with a multinomial logistic regression trained on the library
  (``scripts/train_cases.py``; pure Python, so training and the benchmark need nothing
  beyond the runtime dependencies), and
* finds the most similar solved cases of the library (cosine over TF-IDF weights) so a
  reply can cite them.

Everything is exported to one JSON artefact (``knowledge/learned.json``) that records the
digest of the library it was trained on; a test fails when it is stale. Inference is plain
Python over precomputed sparse weights: a dictionary lookup per feature, no numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.engine.extract import Extraction

#: Bump when ``features`` changes meaning: the artefact must then be retrained.
FEATURE_VERSION = 1
ARTEFACT_NAME = "learned.json"
#: The learned layer reads at most this much text (the error lines of a paste).
TEXT_BUDGET = 3_000
#: Hyper-parameters of ``train_linear`` and the blend weight, chosen by cross-validation
#: (``benchmarks/accuracy.py``); the training script and the benchmark both use these.
TRAINING: dict[str, Any] = {"epochs": 25, "rate": 0.3, "l2": 1e-3, "min_count": 2, "prune": 0.02}
BLEND = 4.0
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
_TOKEN = re.compile(r"[a-z][a-z0-9_]{1,30}|[\u3041-\u30ff\u3400-\u9fff\uf900-\ufaff]{1,60}")
_CJK_START = "\u3041"
_ERROR_LINE = re.compile(
    r"^[^\n]{0,400}?(?:error|fail|denied|refused|time[d ]?out|unauthori|forbidden|x509|certificate|lookup|eof|proxy|"
    r"daemon|cannot|can't|unable|not found|exceeded|no such host|reset|tls|ssl|unknown|invalid|"
    r"エラー|失敗|できません|できない)[^\n]{0,600}",
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
    """Words and word pairs of the (lowercased) text; Japanese runs become character pairs."""
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


# ------------------------------------------------------------------------------- linear model
@dataclass(slots=True)
class LinearModel:
    """Multinomial logistic regression over binary features, stored sparse for fast inference."""

    classes: list[str]
    bias: list[float]
    weights: dict[str, tuple[tuple[int, float], ...]]

    def logits(self, feats: Iterable[str]) -> list[float]:
        z = list(self.bias)
        weights = self.weights
        for name in feats:
            row = weights.get(name)
            if row is not None:
                for k, w in row:
                    z[k] += w
        return z

    def predict(self, feats: Iterable[str]) -> dict[str, float]:
        """Probability of every cause."""
        z = self.logits(feats)
        top = max(z)
        exps = [math.exp(v - top) for v in z]
        total = sum(exps)
        return {c: e / total for c, e in zip(self.classes, exps, strict=True)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "bias": [round(b, 4) for b in self.bias],
            "weights": {f: [[k, round(w, 4)] for k, w in row] for f, row in sorted(self.weights.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearModel:
        return cls(
            classes=list(data["classes"]),
            bias=[float(b) for b in data["bias"]],
            weights={f: tuple((int(k), float(w)) for k, w in row) for f, row in data["weights"].items()},
        )


def train_linear(
    samples: Sequence[set[str]],
    labels: Sequence[str],
    *,
    classes: Sequence[str] | None = None,
    epochs: int = 25,
    rate: float = 0.3,
    l2: float = 1e-3,
    min_count: int = 2,
    prune: float = 0.02,
    seed: int = 7,
) -> LinearModel:
    """Fit the model with plain stochastic gradient descent (deterministic for a given seed).

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
    rows: dict[str, list[float]] = {name: [0.0] * n_classes for name in vocab}
    data = [
        ([rows[f] for f in sorted(sample) if f in vocab], index[label])
        for sample, label in zip(samples, labels, strict=True)
    ]
    bias = [0.0] * n_classes
    order = list(range(len(data)))
    rng = random.Random(seed)
    decay = 1.0 - l2
    for epoch in range(epochs):
        rng.shuffle(order)
        step = rate / (1.0 + epoch * 0.2)
        for i in order:
            feats, target = data[i]
            z = list(bias)
            for row in feats:
                for k in range(n_classes):
                    z[k] += row[k]
            top = max(z)
            exps = [math.exp(v - top) for v in z]
            total = sum(exps)
            grad = [e / total for e in exps]
            grad[target] -= 1.0
            active = [(k, step * g) for k, g in enumerate(grad) if g > 1e-3 or g < -1e-3]
            if not active:
                continue
            for k, g in active:
                bias[k] -= g
            for row in feats:
                for k, g in active:
                    row[k] = row[k] * decay - g
    weights = {name: tuple((k, w) for k, w in enumerate(row) if abs(w) >= prune) for name, row in rows.items()}
    return LinearModel(classes=classes, bias=bias, weights={f: r for f, r in weights.items() if r})


# ------------------------------------------------------------------------------- similar cases
@dataclass(slots=True)
class SimilarIndex:
    """TF-IDF vectors of the library's cases, with an inverted index for fast cosine search."""

    idf: dict[str, float]
    case_ids: list[str]
    labels: list[str]
    norms: list[float]
    postings: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, case_ids: Sequence[str], labels: Sequence[str], samples: Sequence[set[str]]) -> SimilarIndex:
        df: dict[str, int] = {}
        for sample in samples:
            for name in sample:
                df[name] = df.get(name, 0) + 1
        n = len(samples)
        idf = {name: math.log((1 + n) / (1 + count)) + 1.0 for name, count in df.items() if count >= 1}
        postings: dict[str, list[int]] = {}
        norms: list[float] = []
        for i, sample in enumerate(samples):
            norms.append(math.sqrt(sum(idf[f] ** 2 for f in sample)) or 1.0)
            for name in sample:
                postings.setdefault(name, []).append(i)
        return cls(idf=idf, case_ids=list(case_ids), labels=list(labels), norms=norms, postings=postings)

    def search(
        self, feats: Iterable[str], *, labels: set[str] | None = None, limit: int = 5
    ) -> list[tuple[int, float]]:
        """The ``limit`` most similar cases (index, cosine), optionally only of some causes."""
        scores: dict[int, float] = {}
        idf = self.idf
        postings = self.postings
        query_norm = 0.0
        for name in feats:
            weight = idf.get(name)
            if weight is None:
                continue
            query_norm += weight * weight
            w2 = weight * weight
            for i in postings[name]:
                scores[i] = scores.get(i, 0.0) + w2
        if not scores:
            return []
        query_norm = math.sqrt(query_norm)
        ranked = sorted(
            (
                (i, s / (self.norms[i] * query_norm))
                for i, s in scores.items()
                if labels is None or self.labels[i] in labels
            ),
            key=lambda item: -item[1],
        )
        return ranked[:limit]

    def to_dict(self) -> dict[str, Any]:
        vocab = sorted(self.idf)
        position = {name: i for i, name in enumerate(vocab)}
        cases: list[list[int]] = [[] for _ in self.case_ids]
        for name, ids in self.postings.items():
            for i in ids:
                cases[i].append(position[name])
        return {
            "vocab": vocab,
            "idf": [round(self.idf[name], 4) for name in vocab],
            "case_ids": self.case_ids,
            "labels": self.labels,
            "cases": [sorted(c) for c in cases],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimilarIndex:
        vocab: list[str] = data["vocab"]
        idf = dict(zip(vocab, (float(x) for x in data["idf"]), strict=True))
        postings: dict[str, list[int]] = {}
        norms: list[float] = []
        for i, positions in enumerate(data["cases"]):
            total = 0.0
            for p in positions:
                name = vocab[p]
                total += idf[name] ** 2
                postings.setdefault(name, []).append(i)
            norms.append(math.sqrt(total) or 1.0)
        return cls(
            idf=idf, case_ids=list(data["case_ids"]), labels=list(data["labels"]), norms=norms, postings=postings
        )


# ------------------------------------------------------------------------------- the artefact
@dataclass(slots=True)
class Learned:
    """The trained artefact: the linear model, how much it counts, and the similar-case index."""

    model: LinearModel
    blend: float
    digest: str = ""
    _index_data: dict[str, Any] | None = None
    _index: SimilarIndex | None = None

    @property
    def index(self) -> SimilarIndex | None:
        """Built on first use: only replies cite similar cases."""
        if self._index is None and self._index_data is not None:
            self._index = SimilarIndex.from_dict(self._index_data)
            self._index_data = None
        return self._index


def artefact_path() -> Path:
    return Path(str(resources.files("knowledge"))) / ARTEFACT_NAME


def training_digest(cases_directory: Path | None = None) -> str:
    """What the artefact was trained from: the library, the signal vocabulary, the settings.

    Editing any of these makes the committed artefact stale (a test fails) until
    ``scripts/train_cases.py`` is run again.
    """
    from bot.engine.cases import library_digest

    knowledge = Path(str(resources.files("knowledge")))
    settings = json.dumps({"features": FEATURE_VERSION, "training": TRAINING, "blend": BLEND}, sort_keys=True)
    library = library_digest(cases_directory, extra=(knowledge / "signals.yaml",))
    return hashlib.sha256(f"{library}\n{settings}".encode()).hexdigest()


def load_learned(path: Path | None = None) -> Learned | None:
    """Read the artefact; ``None`` when it is absent (the rules then work alone)."""
    path = path or artefact_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if data.get("feature_version") != FEATURE_VERSION:
        return None
    return Learned(
        model=LinearModel.from_dict(data["model"]),
        blend=float(data["blend"]),
        digest=str(data.get("library_sha256", "")),
        _index_data=data.get("similar"),
    )


@lru_cache(maxsize=1)
def default_learned() -> Learned | None:
    """The packaged artefact, loaded once per process."""
    return load_learned()
