"""A compiled copy of the learned artefact beside it, read in a third of the time JSON takes.

``knowledge/learned.json`` (2 MB: the case index's rank tables and postings) is parsed by every
process that answers, a one-shot ``acrcheck diagnose`` included: 70-90 ms of JSON in a fresh
process. The same data in ``marshal`` form loads in about 25 ms. The cache is named by the
SHA-256 of the artefact's bytes and by the interpreter's cache tag (marshal's format belongs to
the Python version), so it can never be stale: a retrained artefact, or another Python, looks
for another file. It lives where the knowledge base's compiled cache does
(``bot.engine.knowledge.cache_dirs``: ``$ACRCHECK_CACHE_DIR``, ``knowledge/__pycache__``, the
user's cache directory); nothing needs to be writable, and a cache that cannot be read or does
not hold what it should is ignored. Trust: like a ``.pyc`` beside the code (``marshal`` is the
format of ``.pyc`` files), a cache file is trusted as much as the installed code next to it, and
only when this user owns it and no one else may write it.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import sys
from pathlib import Path
from typing import Any

from bot.engine.knowledge import cache_dirs, write_cache_file

#: Bump when the cached layout changes (2: the index's postings flattened into int32 bytes).
CACHE_FORMAT = 2
_PREFIX = "learned-"


def artefact_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _name(artefact: Path, digest: str) -> str:
    """``learned-<key of the artefact's path>-<digest>.<cache tag>.marshal``: artefacts elsewhere
    sharing a cache directory (another checkout) have other names and are left alone."""
    where = artefact
    with contextlib.suppress(OSError, RuntimeError):
        where = artefact.resolve()
    key = hashlib.sha256(str(where).encode()).hexdigest()[:12]
    tag = sys.implementation.cache_tag or "python"
    return f"{_PREFIX}{key}-{digest[:32]}.{tag}.marshal"


def _trusted(path: Path) -> bool:
    """A cache file this user wrote and no one else can change: ``marshal`` is not meant for data
    another account could craft (``$ACRCHECK_CACHE_DIR`` may point at a shared folder)."""
    info = path.stat()
    getuid = getattr(os, "getuid", None)
    return (getuid is None or info.st_uid == getuid()) and not info.st_mode & 0o022


def read_cached(artefact: Path, digest: str) -> dict[str, Any] | None:
    """The artefact's data from a cache of these exact bytes, or ``None``."""
    name = _name(artefact, digest)
    for place in cache_dirs(artefact.parent):
        path = place / name
        try:
            if not _trusted(path):
                continue
            cached = marshal.loads(path.read_bytes())
        except (OSError, ValueError, EOFError, TypeError):
            continue
        if (
            isinstance(cached, tuple)
            and len(cached) == 3
            and cached[0] == CACHE_FORMAT
            and cached[1] == digest
            and isinstance(cached[2], dict)
        ):
            return cached[2]
    return None


def write_cached(artefact: Path, digest: str, data: dict[str, Any]) -> Path | None:
    """Write the cache to the first place that takes it (``knowledge.write_cache_file``), removing
    that place's caches of earlier contents of the same artefact; ``None`` when no place takes it."""
    name = _name(artefact, digest)
    stem = name.split(f"-{digest[:32]}.", 1)[0] + "-"
    try:
        payload = marshal.dumps((CACHE_FORMAT, digest, data))
    except ValueError:  # not marshallable: nothing to cache
        return None
    return write_cache_file(
        cache_dirs(artefact.parent), name, payload, lambda other: other.startswith(stem) and other.endswith(".marshal")
    )
