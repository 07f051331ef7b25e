"""docs/configuration.md is generated from the Settings model; this fails when it is stale."""

from __future__ import annotations

import subprocess
import sys

from bot.config import Settings
from tests.ship.conftest import ROOT


def test_configuration_doc_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_config_docs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"| `{name}` |" in text, name
