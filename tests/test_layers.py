"""Import direction between the layers of ``bot/``: engine → checks → diagnose → scheduler → handlers → cli → service.

Lower layers never import higher ones, so the pure engine can be read, tested and timed without
the network, Slack or a database, and a new check cannot quietly make the engine talk to Azure.
Every ``import`` in a module counts, including the lazy ones inside functions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

NETWORK_AND_STORAGE = (
    "httpx",
    "aiohttp",
    "sqlalchemy",
    "psycopg",
    "slack_bolt",
    "slack_sdk",
    "azure",
    "dns",
    "uvicorn",
)

#: layer (a package or module under the repository root) → import prefixes it must never use.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "bot/engine": (
        "bot.checks",
        "bot.diagnose",
        "bot.scheduler",
        "bot.service",
        "bot.cli",
        "bot.store",
        "handlers",
        *NETWORK_AND_STORAGE,
    ),
    "bot/checks": ("bot.diagnose", "bot.scheduler", "bot.service", "bot.cli", "handlers", "slack_bolt", "slack_sdk"),
    "bot/diagnose.py": ("bot.scheduler", "bot.service", "bot.cli", "handlers"),
    "bot/scheduler": ("bot.cli", "handlers", "bot.service"),
    "handlers": ("bot.cli", "bot.service"),
    "bot/service": ("bot.cli",),
}


def imported_modules(source: str) -> list[tuple[int, str]]:
    """Every module a source file imports (absolute names), with its line number."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from bot import diagnose`` imports the module bot.diagnose
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def violations(root: Path, rules: dict[str, tuple[str, ...]]) -> list[str]:
    """``file:line imports X`` for every forbidden import under ``root``."""
    problems: list[str] = []
    for layer, forbidden in rules.items():
        base = root / layer
        files = [base] if base.suffix == ".py" else sorted(base.rglob("*.py"))
        for path in files:
            for line, module in imported_modules(path.read_text(encoding="utf-8")):
                if any(module == f or module.startswith(f + ".") for f in forbidden):
                    problems.append(f"{path.relative_to(root)}:{line} imports {module} (layer {layer})")
    return problems


def test_layers_import_only_downwards() -> None:
    assert violations(ROOT, FORBIDDEN) == []


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The rule above must be able to fail: a lazy httpx import in an engine module is caught."""
    engine = tmp_path / "bot" / "engine"
    engine.mkdir(parents=True)
    (engine / "ok.py").write_text("import re\nfrom bot.engine.models import Facts\n")
    (engine / "bad.py").write_text("def f():\n    import httpx\n    from bot import service\n")
    found = violations(tmp_path, {"bot/engine": FORBIDDEN["bot/engine"]})
    assert found == [
        "bot/engine/bad.py:2 imports httpx (layer bot/engine)",
        "bot/engine/bad.py:3 imports bot.service (layer bot/engine)",
    ]


@pytest.mark.parametrize("module", ["bot.engine.classify", "bot.engine.render_text", "bot.engine.redact"])
def test_engine_loads_no_network_or_storage_library(module: str) -> None:
    """Transitively too: importing and running the engine pulls in no network, Slack or database code."""
    probe = (
        f"import sys, {module}\n"
        "from bot.engine.classify import classify\nfrom bot.engine.extract import extract\n"
        "classify(extract('dial tcp: lookup myreg.azurecr.io: no such host'))\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(NETWORK_AND_STORAGE)!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
