"""requirements.lock / requirements-image.lock: exact, consistent with each other and pyproject."""

from __future__ import annotations

import re
import tomllib

from tests.ship.conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", re.MULTILINE)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(name: str) -> dict[str, str]:
    return {_norm(n): v for n, v in PIN.findall((ROOT / name).read_text())}


def _declared(group: list[str]) -> set[str]:
    return {_norm(re.split(r"[\[<>=!~; ]", dep, maxsplit=1)[0]) for dep in group}


def test_every_dependency_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    full, image = _pins("requirements.lock"), _pins("requirements-image.lock")
    missing = (_declared(project["dependencies"]) | _declared(project["optional-dependencies"]["dev"])) - set(full)
    assert not missing, f"run scripts/lock.sh: not in requirements.lock: {sorted(missing)}"
    missing_runtime = _declared(project["dependencies"]) - set(image)
    assert not missing_runtime, f"run scripts/lock.sh: not in requirements-image.lock: {sorted(missing_runtime)}"


def test_image_lock_matches_the_full_lock_and_is_hashed() -> None:
    full, image = _pins("requirements.lock"), _pins("requirements-image.lock")
    differing = {n: (v, full.get(n)) for n, v in image.items() if full.get(n) != v}
    assert not differing, f"run scripts/lock.sh: versions differ {differing}"
    text = (ROOT / "requirements-image.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 1)[1])
    unhashed = [b.split("==")[0] for b in blocks if "==" in b and "--hash=sha256:" not in b]
    assert not unhashed, unhashed
    assert "--index-url" not in text and "--find-links" not in text and "file://" not in text
