"""Loads the live-check fixtures (tests/conftest_live.py) for the tests in this folder.

``pytest_plugins`` is only honoured in the root conftest, and this folder must not collide
with other suites' conftest files, so the plugin module is imported here; the repository root
goes on sys.path first so ``tests.fakes`` is importable however pytest is started.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.conftest_live import *  # noqa: E402, F403
