"""Shared test hygiene: tests that configure logging (serve, doctor) must not leak into others."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


def _loggers() -> dict[str, logging.Logger]:
    return {name: obj for name, obj in logging.root.manager.loggerDict.items() if isinstance(obj, logging.Logger)}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {name: (lg.level, lg.propagate, list(lg.handlers), lg.disabled) for name, lg in _loggers().items()}
    factory = logging.getLogRecordFactory()
    yield
    root.handlers[:] = saved_root[0]
    root.setLevel(saved_root[1])
    for name, lg in _loggers().items():
        level, propagate, handlers, disabled = saved.get(name, (logging.NOTSET, True, [], False))
        lg.setLevel(level)
        lg.propagate, lg.disabled = propagate, disabled
        lg.handlers[:] = handlers
    logging.setLogRecordFactory(factory)
