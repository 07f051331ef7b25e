"""The Dockerfile: multi-stage, slim 3.11, non-root, locked, health-checked, lint-clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ship.conftest import ROOT
from tests.ship.dockerfile import exec_form, healthcheck_cmd, parse

STAGES = parse(ROOT / "Dockerfile")


def _hadolint() -> str:
    found = Path(sys.executable).with_name("hadolint")
    return str(found) if found.exists() else (shutil.which("hadolint") or pytest.skip("hadolint not installed"))


def test_hadolint_passes() -> None:
    result = subprocess.run([_hadolint(), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_problems(tmp_path: Path) -> None:
    """The lint step is real: a root, unpinned, apt-get-without-cleanup image fails it."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y gcc\nCMD acrcheck serve\n")
    result = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_image_shape() -> None:
    assert len(STAGES) >= 2, "multi-stage build"
    final = STAGES[-1]
    for stage in STAGES:
        assert stage.base.startswith("python:3.11-slim"), stage.base
    assert final.name is None and any(kw == "COPY" and "--from=build /opt/venv" in a for kw, a in final.instructions)
    user = final.last("USER") or ""
    assert user and user.split(":")[0] not in ("0", "root") and user.split(":")[0].isdigit()  # numeric: runAsNonRoot
    assert exec_form(final.last("ENTRYPOINT") or "") + exec_form(final.last("CMD") or "") == ["acrcheck", "serve"]
    assert healthcheck_cmd(final) == ["python", "-m", "bot.service.healthcheck"]
    final_text = " ".join(args for _, args in final.instructions)
    for tool in ("gcc", "build-essential", "pip install", "apt-get install"):
        assert tool not in final_text, f"no build tools in the final stage ({tool})"
    assert any("requirements-image.lock" in a for kw, a in STAGES[0].instructions if kw == "COPY")
