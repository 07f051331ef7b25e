"""``preload()``: the entry points load the engine once and keep the collector off its data."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bot.diagnose import diagnose, preload


@pytest.fixture
def thawed() -> Iterator[None]:
    """Undo the freeze afterwards: the test process goes on allocating and collecting."""
    before = gc.get_freeze_count()
    yield
    gc.unfreeze()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0 or before > 0


def test_preload_freezes_what_is_loaded_and_answers_stay_the_same(thawed: None) -> None:
    text = "Error response from daemon: Get https://myreg.azurecr.io/v2/: proxyconnect tcp: EOF"
    before = diagnose(text)
    preload()
    assert gc.get_freeze_count() > 10_000  # the case index and the cards: tens of thousands of objects
    after = diagnose(text)
    assert (after.cause, after.confidence, after.fix) == (before.cause, before.confidence, before.fix)


def test_loading_the_artefact_leaves_the_collector_as_it_found_it() -> None:
    from bot.engine.learned import load_learned

    assert gc.isenabled()
    assert load_learned() is not None
    assert gc.isenabled()
    gc.disable()
    try:
        load_learned()
        assert not gc.isenabled()
    finally:
        gc.enable()
