"""The compiled nearest-case search (bot/engine/_knn.c) answers exactly as the Python loop does.

The Python loop (``CaseIndex.search_python``) is the reference: for every paste of the case
library the compiled search must return the same neighbours, in the same order, with the same
similarities bit for bit, or a diagnosis would depend on whether the install had a compiler.
The module is built by ``pip install`` (``ext-modules`` in pyproject.toml); CI's machine has a
compiler, so a missing module here is a failed build, not a reason to skip.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.engine import _knn, learned
from bot.engine.cases import default_cases
from bot.engine.extract import extract
from bot.engine.learned import QUERY_FEATURES, CaseIndex, default_learned


def test_the_compiled_search_is_installed_and_used() -> None:
    index = default_learned().index
    index.search_ranks([0], limit=1)
    assert learned.NativeIndex is _knn.KnnIndex
    assert isinstance(index.native, _knn.KnnIndex)


def test_every_library_paste_finds_the_same_neighbours_as_the_python_loop() -> None:
    index = default_learned().index
    compared = 0
    for case in default_cases():
        order = index.ranks(extract(case.text))
        for limit in (10, 3):
            assert index.search_ranks(order, limit=limit) == index.search_python(order, limit=limit), case.id
        compared += 1
    assert compared > 5_000


def test_a_search_for_one_cause_finds_the_same_cases_as_the_python_loop() -> None:
    """The search for the cases a reply cites (one cause's) is compiled too, through a mask."""
    index = default_learned().index
    causes = sorted(set(index.labels))
    compared = 0
    for number, case in enumerate(default_cases()):
        if number % 3:
            continue
        order = index.ranks(extract(case.text))
        for cause in (case.label, causes[number % len(causes)]):
            native = index.search_ranks(order, labels={cause}, limit=6)
            assert native == index.search_python(order, labels={cause}, limit=6), (case.id, cause)
            assert all(index.labels[i] == cause for i, _ in native)
        compared += 1
    assert compared > 1_500


def test_the_mask_keeps_only_its_cases_and_is_checked() -> None:
    index = _tiny()
    order = sorted({r for r in (index.rank_of("a"), index.rank_of("b")) if r is not None})
    assert [i for i, _ in index.search_ranks(order, labels={"other-acr"}, limit=5)] == [3, 2]
    assert index.search_ranks(order, labels={"client-dns"}, limit=5) == []  # c4 shares no feature
    native = index.native
    with pytest.raises(ValueError):
        native.search(order, 5, b"\x01")  # one byte per case
    with pytest.raises(ValueError):
        native.search(order, 5, "11111")
    assert native.search(order, 5, None) == index.search_python(order, limit=5)  # the scratch stayed clean


def _tiny() -> CaseIndex:
    """Five cases; feature 'a' in cases 0-3, 'b' in 1 and 3, 'c' in 4, with equal norms so scores tie."""
    return CaseIndex.build(
        ["c0", "c1", "c2", "c3", "c4"],
        ["auth", "auth", "other-acr", "other-acr", "client-dns"],
        [{"a"}, {"a", "b"}, {"a"}, {"a", "b"}, {"c"}],
        common=1.0,
    )


def test_ties_go_to_the_later_case_and_the_limit_is_kept() -> None:
    index = _tiny()
    order = sorted({r for r in (index.rank_of("a"), index.rank_of("b")) if r is not None})
    native = index.search_ranks(order, limit=2)
    assert native == index.search_python(order, limit=2)
    assert [i for i, _ in native] == [3, 1]  # c1 and c3 share both features and tie: the later first
    everything = index.search_ranks(order, limit=50)
    assert everything == index.search_python(order, limit=50)
    assert sorted(i for i, _ in everything) == [0, 1, 2, 3]  # only cases that share a feature


def test_empty_queries_and_a_search_after_a_refused_one() -> None:
    index = _tiny()
    assert index.search_ranks([], limit=10) == []
    native = _knn.KnnIndex([cases for cases, _ in index.ranked], [w for _, w in index.ranked], index.inverse_norms)
    first = native.search([0, 1], 10)
    assert native.search([0], 0) == []
    with pytest.raises(IndexError):
        native.search([0, 1, 10_000], 10)  # fails after feature 0 and 1 were added: the scratch is cleaned
    with pytest.raises(TypeError):
        native.search([0, "b"], 10)
    assert native.search([0, 1], 10) == first


def test_malformed_postings_are_refused() -> None:
    with pytest.raises(ValueError):
        _knn.KnnIndex([[0, 7]], [1.0], [1.0, 1.0])  # a case position past the last case
    with pytest.raises(ValueError):
        _knn.KnnIndex([[0]], [1.0, 2.0], [1.0])  # one weight per feature
    with pytest.raises(TypeError):
        _knn.KnnIndex([(0, 1)], [1.0], [1.0, 1.0])  # postings are lists


def test_the_query_is_cut_to_the_rarest_features_as_in_python() -> None:
    index = default_learned().index
    order = list(range(QUERY_FEATURES + 15))
    assert index.search_ranks(order, limit=10) == index.search_python(order, limit=10)


def test_an_index_without_the_module_searches_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learned, "NativeIndex", None)
    index = _tiny()
    order = [0, 1]
    assert index.search_ranks(order, limit=10) == index.search_python(order, limit=10)
    assert index.native is False


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_dropped_indexes_give_their_memory_back() -> None:
    """Each index holds some 3 MB of C arrays (the library's 300,000 postings); 60 built and
    dropped would hold 180 MB if tp_dealloc did not free them."""
    index = default_learned().index
    postings, weights = [cases for cases, _ in index.ranked], [w for _, w in index.ranked]
    before = _resident_bytes()
    for _ in range(60):
        native = _knn.KnnIndex(postings, weights, index.inverse_norms)
        native.search([0, 1, 2], 10)
        del native
    assert _resident_bytes() - before < 40 * 2**20


def test_an_index_built_again_in_place_frees_what_it_held() -> None:
    """``__init__`` called again on one index: 60 rebuilds would keep 180 MB if the earlier arrays
    were not freed; a refused rebuild leaves an empty index that refuses every rank."""
    index = default_learned().index
    postings, weights = [cases for cases, _ in index.ranked], [w for _, w in index.ranked]
    native = _knn.KnnIndex(postings, weights, index.inverse_norms)
    expected = native.search([0, 1, 2], 10)
    before = _resident_bytes()
    for _ in range(60):
        native.__init__(postings, weights, index.inverse_norms)
    assert _resident_bytes() - before < 40 * 2**20
    assert native.search([0, 1, 2], 10) == expected
    with pytest.raises(ValueError):
        native.__init__(postings, weights[:-1], index.inverse_norms)
    with pytest.raises(IndexError):
        native.search([0], 10)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=99_000), max_size=60), st.integers(min_value=0, max_value=40))
def test_any_query_of_valid_ranks_agrees_with_the_python_loop(ranks: list[int], limit: int) -> None:
    """Queries no paste would make (common features, many at once, repeated ranks): still the same answer."""
    index = default_learned().index
    order = sorted({r % len(index.ranked) for r in ranks})
    assert index.search_ranks(order, limit=limit) == index.search_python(order, limit=limit)


# ------------------------------------------------------------------ the linear model's logits


def test_the_compiled_logits_are_installed_and_used() -> None:
    model = default_learned().linear
    assert model is not None
    model.logits({"ctx"})
    assert learned.NativeScorer is _knn.LinearScorer
    assert isinstance(model.native, _knn.LinearScorer)


def test_every_library_paste_gets_the_python_loops_logits_bit_for_bit() -> None:
    model = default_learned().linear
    assert model is not None
    compared = 0
    for case in default_cases():
        rows = model.row_ids(learned.features(extract(case.text)))
        assert model.logits_python(rows) == model.native.logits(rows), case.id
        compared += 1
    assert compared > 5_000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=99_000), max_size=200))
def test_any_rows_in_any_order_agree_with_the_python_loop(rows: list[int]) -> None:
    """Rows no paste would give (repeated, unsorted, hundreds): the same sums, added in the same order."""
    model = default_learned().linear
    assert model is not None
    model.logits(set())
    picked = [r % len(model.features) for r in rows]
    assert model.native.logits(picked) == model.logits_python(picked)


def test_malformed_weights_and_rows_are_refused() -> None:
    scorer = _knn.LinearScorer([0.5, 1.0], [0, 2, 3], [0, 1, 0], [0.25, -1.0, 2.0])
    assert scorer.logits([0, 1]) == [2.75, 0.0] and scorer.logits([]) == [0.5, 1.0]
    with pytest.raises(IndexError):
        scorer.logits([0, 2])  # there are two rows
    with pytest.raises(TypeError):
        scorer.logits([0, "1"])
    assert scorer.logits([1]) == [2.5, 1.0]  # a refused call leaves nothing behind
    for args in (
        ([0.5], [0, 1], [1], [0.1]),  # a class past the last one
        ([0.5], [0, 2, 1], [0, 0], [0.1, 0.2]),  # offsets that fall
        ([0.5], [0, 1], [0, 0], [0.1]),  # one target per value
        ([], [0], [], []),  # no class at all
    ):
        with pytest.raises(ValueError):
            _knn.LinearScorer(*args)
    with pytest.raises(RuntimeError):
        _knn.LinearScorer.__new__(_knn.LinearScorer).logits([])


def test_a_model_without_the_module_sums_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(learned, "NativeScorer", None)
    model = learned.LinearModel.from_rows(["a", "b"], [0.0, 0.1], {"x": ((0, 1.5),), "y": ((1, -0.5), (0, 0.25))})
    assert model.logits({"y", "x", "unknown"}) == [0.0 + 1.5 + 0.25, 0.1 - 0.5]
    assert model.native is False


def test_dropped_scorers_give_their_memory_back() -> None:
    model = default_learned().linear
    assert model is not None
    before = _resident_bytes()
    for _ in range(200):
        scorer = _knn.LinearScorer(model.bias, model.offsets, model.targets, model.values)
        scorer.logits([0, 1, 2])
        del scorer
    assert _resident_bytes() - before < 40 * 2**20  # each holds ~2 MB of C arrays: 400 MB if never freed


# ------------------------------------------------------------------ the index from flat postings


def _flat_of(index: CaseIndex) -> learned.FlatPostings:
    return learned.FlatPostings.of([cases for cases, _ in index.ranked])


def test_an_index_from_flat_postings_is_the_index_from_lists() -> None:
    index = default_learned().index
    flat = _flat_of(index)
    assert flat.lists() == [cases for cases, _ in index.ranked]
    from_lists = _knn.KnnIndex([cases for cases, _ in index.ranked], [w for _, w in index.ranked], index.inverse_norms)
    from_flat = _knn.KnnIndex.from_flat(flat.postings, flat.offsets, index.weights, index.inverse_norms)
    for order in ([0, 1, 2], list(range(5, 300, 7)), [len(index.ranked) - 1]):
        assert from_flat.search(order, 10) == from_lists.search(order, 10)


@pytest.mark.parametrize(
    ("postings", "offsets", "message"),
    [
        ([0, 7], [0, 2], "out of range"),  # a case position past the last case
        ([0, 1], [0, 3], "end at the number"),  # offsets end past the postings
        ([0, 1], [1, 2], "start at 0"),
        ([0, 1, 0], [0, 2, 1, 3], "not decrease"),
        ([0, 1, 0, 1], [0, 4], "weight"),  # a run longer than the weights by frequency reach
        ([], [], "int32 arrays"),  # no offsets at all
    ],
)
def test_malformed_flat_postings_are_refused(postings: list[int], offsets: list[int], message: str) -> None:
    from array import array

    flat, starts = array("i", postings).tobytes(), array("i", offsets).tobytes()
    with pytest.raises(ValueError, match=message):
        _knn.KnnIndex.from_flat(flat, starts, [0.0, 1.0, 2.0, 3.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="int32 arrays"):
        _knn.KnnIndex.from_flat(b"\x00\x00\x00", starts, [0.0, 1.0], [1.0, 1.0])  # not whole int32s
    with pytest.raises(TypeError):
        _knn.KnnIndex.from_flat(flat, starts, (0.0, 1.0), [1.0, 1.0])  # weights are a list


def test_indexes_from_flat_postings_give_their_memory_back() -> None:
    index = default_learned().index
    flat = _flat_of(index)
    before = _resident_bytes()
    for _ in range(60):
        native = _knn.KnnIndex.from_flat(flat.postings, flat.offsets, index.weights, index.inverse_norms)
        native.search([0, 1, 2], 10)
        del native
    for _ in range(200):  # refused half-way: what was allocated is freed too
        with pytest.raises(ValueError):
            _knn.KnnIndex.from_flat(flat.postings, flat.offsets, index.weights[:2], index.inverse_norms)
    assert _resident_bytes() - before < 40 * 2**20
