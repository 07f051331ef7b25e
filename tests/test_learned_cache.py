"""The learned artefact's compiled cache: read when it holds these exact bytes, never stale,
never required (corrupt or unwritable places fall back to the JSON)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.engine import learned_cache
from bot.engine.learned import artefact_path, load_learned


@pytest.fixture
def artefact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the packaged artefact in its own folder, with every cache place inside tmp_path."""
    folder = tmp_path / "knowledge"
    folder.mkdir()
    copy = folder / "learned.json"
    shutil.copyfile(artefact_path(), copy)
    monkeypatch.setenv("ACRCHECK_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return copy


def _caches(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("**/learned-*.marshal"))


def test_the_first_load_writes_the_cache_and_the_next_reads_the_same_index(artefact: Path, tmp_path: Path) -> None:
    first = load_learned(artefact)
    assert first is not None
    assert len(_caches(tmp_path)) == 1
    again = load_learned(artefact)
    assert again is not None
    assert again.index.ranked == first.index.ranked
    assert (again.index.word_rank, again.index.pair_rank, again.index.rank) == (
        first.index.word_rank,
        first.index.pair_rank,
        first.index.rank,
    )
    assert again.confusions == first.confusions and again.blend == first.blend


def test_a_cache_for_these_bytes_is_what_gets_read(artefact: Path) -> None:
    """The cache is named by the artefact's digest: a cache written for these bytes is used."""
    raw = artefact.read_bytes()
    data = json.loads(raw)
    data["blend"] = 1.25
    learned_cache.write_cached(artefact, learned_cache.artefact_digest(raw), data)
    loaded = load_learned(artefact)
    assert loaded is not None and loaded.blend == 1.25


def test_a_changed_artefact_never_reads_an_old_cache(artefact: Path, tmp_path: Path) -> None:
    load_learned(artefact)
    old = _caches(tmp_path)
    data = json.loads(artefact.read_bytes())
    data["blend"] = 2.5
    artefact.write_text(json.dumps(data), encoding="utf-8")
    loaded = load_learned(artefact)
    assert loaded is not None and loaded.blend == 2.5
    assert len(_caches(tmp_path)) == 1 and _caches(tmp_path) != old  # the earlier contents' cache is gone


def test_a_corrupt_cache_is_ignored_and_replaced(artefact: Path, tmp_path: Path) -> None:
    expected = load_learned(artefact)
    (cache,) = _caches(tmp_path)
    cache.write_bytes(b"\x00not marshal at all")
    loaded = load_learned(artefact)
    assert loaded is not None and expected is not None
    assert loaded.index.ranked == expected.index.ranked
    assert cache.read_bytes() != b"\x00not marshal at all"


def test_no_writable_place_still_loads(artefact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every cache place is a path under a file (mkdir fails, even as root): the JSON serves."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("ACRCHECK_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker / "xdg"))
    (artefact.parent / "__pycache__").write_text("")  # a file where the folder would be
    assert load_learned(artefact) is not None
    assert _caches(tmp_path) == []


def test_a_cache_others_may_write_is_not_read(artefact: Path) -> None:
    """A group- or world-writable cache file (a shared cache folder) is never unmarshalled."""
    raw = artefact.read_bytes()
    data = json.loads(raw)
    data["blend"] = 1.25
    written = learned_cache.write_cached(artefact, learned_cache.artefact_digest(raw), data)
    assert written is not None
    written.chmod(0o666)
    loaded = load_learned(artefact)
    assert loaded is not None and loaded.blend != 1.25


def test_writing_the_cache_removes_temporaries_that_killed_writers_left(artefact: Path, tmp_path: Path) -> None:
    """A writer killed between its temporary file and the rename leaves ``tmp*.tmp``: an hour-old one
    is removed by the next write; a fresh one (maybe another process's write) stays."""
    import os
    import time

    place = tmp_path / "cache"
    place.mkdir()
    old, fresh = place / "tmpabc123.tmp", place / "tmpdef456.tmp"
    old.write_bytes(b"half a cache")
    fresh.write_bytes(b"another writer")
    hour_ago = time.time() - 2 * 3600
    os.utime(old, (hour_ago, hour_ago))
    load_learned(artefact)
    assert not old.exists() and fresh.exists()


def test_the_cache_keeps_the_postings_flat_and_searches_as_the_json_index(artefact: Path) -> None:
    """The cache holds the postings as int32 bytes: the next process builds the compiled index from
    them and makes no Python list, and every library paste finds the neighbours the artefact's own
    (JSON) index finds with the reference Python loop, bit for bit."""
    from bot.engine.cases import default_cases
    from bot.engine.extract import extract
    from bot.engine.learned import FlatPostings

    first = load_learned(artefact)
    again = load_learned(artefact)
    assert first is not None and again is not None
    assert first.index.flat is None and isinstance(again.index.flat, FlatPostings)
    compared = 0
    for case in default_cases()[::7]:
        order = again.index.ranks(extract(case.text))
        assert again.index.search_ranks(order, limit=10) == first.index.search_python(order, limit=10), case.id
        compared += 1
    assert compared > 700
    assert again.index.ranked_lists is None  # the compiled search never needed the lists
    assert again.index.weights == first.index.weights
    assert again.index.ranked == first.index.ranked  # built from the bytes when something reads them
    assert again.index.posting_items() == first.index.posting_items()


def test_a_flat_index_without_the_compiled_module_searches_in_python(
    artefact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install built without a compiler reads the same cache: the lists come from the bytes."""
    from bot.engine import learned

    expected = load_learned(artefact)
    monkeypatch.setattr(learned, "NativeIndex", None)
    flat = load_learned(artefact)
    assert expected is not None and flat is not None and flat.index.flat is not None
    order = list(range(0, 400, 3))
    assert flat.index.search_ranks(order, limit=10) == expected.index.search_python(order, limit=10)
    assert flat.index.native is False


def test_a_cache_of_the_earlier_layout_is_not_read(artefact: Path, tmp_path: Path) -> None:
    """A cache written before the postings were flattened (format 1, same artefact bytes) is
    another file name's business: its format field does not match, so the JSON is read again."""
    import marshal

    raw = artefact.read_bytes()
    digest = learned_cache.artefact_digest(raw)
    load_learned(artefact)
    (cache,) = _caches(tmp_path)
    data = json.loads(raw)
    data["blend"] = 3.5
    cache.write_bytes(marshal.dumps((1, digest, data)))
    loaded = load_learned(artefact)
    assert loaded is not None and loaded.blend != 3.5


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: ("flat-int32", p[1][:-2], p[2], p[3]),  # postings cut mid-entry
        lambda p: ("flat-int32", p[1], p[2][:-4], p[3]),  # one offset short of the features
        lambda p: ("flat-int32", p[1][:-4], p[2], p[3]),  # offsets end past the postings
        lambda p: ("flat-int32", p[1], p[2], "7"),  # not a length
        lambda p: ("flat-int32", p[1], p[2], 10**9),  # a run longer than there are cases
        lambda p: ("flat-int32", p[1], p[2], 1),  # shorter than the longest run
        lambda p: ("flat-int32", p[1][:8] + b"\xff\xff\xff\x7f" + p[1][12:], p[2], p[3]),  # a position past the last case
    ],
)
@pytest.mark.parametrize("compiled", [True, False])
def test_a_cache_whose_postings_do_not_add_up_is_ignored(
    artefact: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: Callable[[tuple[Any, ...]], tuple[Any, ...]],
    compiled: bool,
) -> None:
    """A cache that unmarshals but whose flat postings are damaged is not used (checked when it is
    loaded, not at the first search): the JSON is read, the answer is the same, and a good cache
    replaces the damaged one. Without the compiled module too."""
    import marshal

    from bot.engine import learned

    if not compiled:
        monkeypatch.setattr(learned, "NativeIndex", None)
    expected = load_learned(artefact)
    (cache,) = _caches(tmp_path)
    fmt, digest, data = marshal.loads(cache.read_bytes())
    data["index"]["postings"] = damage(data["index"]["postings"])
    data["blend"] = 4.5  # would show if the damaged cache were used
    cache.write_bytes(marshal.dumps((fmt, digest, data)))
    loaded = load_learned(artefact)
    assert loaded is not None and expected is not None
    assert loaded.blend == expected.blend and loaded.index.flat is None
    assert loaded.index.search_ranks([0, 1, 2], limit=5) == expected.index.search_ranks([0, 1, 2], limit=5)
    fixed = load_learned(artefact)
    assert fixed is not None and fixed.blend == expected.blend and fixed.index.flat is not None
