"""The case library: real error pastes from public threads, each labelled with its root cause.

Every ``knowledge/cases/*.jsonl`` file belongs to the library (one JSON object per line,
format in docs/knowledge.md). The library is data, never rules: the learned layer is
trained on it (``scripts/train_cases.py``), replies cite the most similar solved cases
from it, and ``benchmarks/accuracy.py`` cross-validates on it by source thread.

Loading validates every line and fails naming the file and the line, so a bad case is
caught by the tests and by ``acrcheck cards`` rather than silently skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

#: Fields every case must have (non-empty strings).
REQUIRED = ("id", "text", "label", "source")
#: Optional string fields (null allowed).
OPTIONAL = ("title", "fix", "evidence", "tool", "registry_host", "confidence", "lang")
CONFIDENCE = frozenset({"confirmed", "likely"})


class CaseError(ValueError):
    """A library line is invalid; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Case:
    """One labelled real paste and where it came from."""

    id: str
    text: str
    label: str
    source: str
    title: str
    fix: str | None
    evidence: str | None
    lang: str
    tool: str | None = None
    registry_host: str | None = None
    confidence: str = "likely"
    file: str = ""


def cases_dir() -> Path:
    """The packaged library directory (``knowledge/cases``)."""
    return Path(str(resources.files("knowledge"))) / "cases"


def library_files(directory: Path | None = None) -> list[Path]:
    """Every library file, in a stable order."""
    directory = directory if directory is not None else cases_dir()
    return sorted(directory.glob("*.jsonl")) if directory.is_dir() else []


def parse_case(raw: str, *, where: str, labels: frozenset[str] | set[str] | None = None) -> Case:
    """Validate one library line (``where`` is ``file:line`` for the error message)."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CaseError(f"{where}: not valid JSON: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise CaseError(f"{where}: expected a JSON object")
    for name in REQUIRED:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise CaseError(f"{where}: field '{name}' must be a non-empty string")
    for name in OPTIONAL:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise CaseError(f"{where}: field '{name}' must be a string or null")
    if labels is not None and data["label"] not in labels:
        raise CaseError(f"{where}: field 'label': unknown cause '{data['label']}'")
    if not data["source"].startswith(("https://", "http://")):
        raise CaseError(f"{where}: field 'source' must be the URL of the public thread or page")
    confidence = data.get("confidence") or "likely"
    if confidence not in CONFIDENCE:
        raise CaseError(f"{where}: field 'confidence' must be one of {sorted(CONFIDENCE)}")
    return Case(
        id=data["id"],
        text=data["text"],
        label=data["label"],
        source=data["source"],
        title=(data.get("title") or "").strip() or data["source"],
        fix=(data.get("fix") or "").strip() or None,
        evidence=(data.get("evidence") or "").strip() or None,
        lang=data.get("lang") or "en",
        tool=data.get("tool"),
        registry_host=data.get("registry_host"),
        confidence=confidence,
        file=where.split(":", 1)[0],
    )


def _numbered_lines(path: Path) -> Iterator[tuple[str, str]]:
    """Each non-blank line of one library file with its ``file:line``."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            yield f"{path.name}:{number}", line


def load_cases(directory: Path | None = None, *, labels: frozenset[str] | set[str] | None = None) -> list[Case]:
    """Every case of every library file, validated; ids must be unique across the library."""
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in library_files(directory):
        for where, line in _numbered_lines(path):
            case = parse_case(line, where=where, labels=labels)
            if case.id in seen:
                raise CaseError(f"{where}: duplicate id '{case.id}' (first at {seen[case.id]})")
            seen[case.id] = where
            cases.append(case)
    return cases


def library_digest(directory: Path | None = None, *, extra: tuple[Path, ...] = ()) -> str:
    """SHA-256 over the library files (name and bytes) and any ``extra`` inputs of training."""
    digest = hashlib.sha256()
    for path in [*library_files(directory), *extra]:
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


@lru_cache(maxsize=1)
def default_cases() -> tuple[Case, ...]:
    """The packaged library, loaded once per process (labels are checked by the tests)."""
    return tuple(load_cases())


@lru_cache(maxsize=1)
def _packaged_files() -> tuple[tuple[str, bytes], ...]:
    """The packaged library's file names and bytes, read once: a citation reads nothing else."""
    return tuple((path.name, path.read_bytes()) for path in library_files())


def locate_line(case_id: str, files: tuple[tuple[str, bytes], ...]) -> tuple[str, str] | None:
    """The ``file:line`` and text of the line that starts with this id, as the library's files are
    written (``{"id": "<id>", ...`` from ``json.dumps``), found by a byte search (C speed).

    Only a line's head counts: inside a JSON string a quote is escaped, so a text that quotes
    ``{"id": "x"`` cannot match, and a match must start a line. A line written otherwise (other
    key order or spacing) is not found here; ``packaged_case`` then falls back to the library.
    """
    needle = b'{"id": ' + json.dumps(case_id).encode()
    for name, data in files:
        start = data.find(needle)
        while start >= 0:
            if start == 0 or data[start - 1 : start] == b"\n":
                stop = data.find(b"\n", start)
                line = data[start : len(data) if stop < 0 else stop].decode("utf-8")
                number = data.count(b"\n", 0, start) + 1
                return f"{name}:{number}", line
            start = data.find(needle, start + 1)
    return None


@lru_cache(maxsize=256)
def packaged_case(case_id: str) -> Case | None:
    """One case of the packaged library, parsing only its own line.

    A reply cites two cases; splitting and matching every line of the library (4,000+ lines)
    to find them was more than half of a one-shot ``acrcheck diagnose``'s first diagnosis (27-30
    ms, now 13), and grew with the library. Falls back to the whole library when the id is not
    where the locator looks.
    """
    located = locate_line(case_id, _packaged_files())
    if located is not None:
        where, line = located
        case = parse_case(line, where=where)
        if case.id == case_id:
            return case
    return next((case for case in default_cases() if case.id == case_id), None)


def case_dict(case: Case, similarity: float | None = None) -> dict[str, Any]:
    """A case as cited in replies (``similar_cases`` of the JSON output)."""
    out: dict[str, Any] = {
        "id": case.id,
        "title": case.title,
        "url": case.source,
        "cause": case.label,
        "fix": case.fix,
    }
    if similarity is not None:
        out["similarity"] = round(similarity, 3)
    return out
