"""Start-up as a user feels it: ``acrcheck diagnose "<one line>"`` and ``acrcheck --help``, wall time.

Each command is run N times as a fresh process (the installed ``acrcheck`` script when it
sits next to this Python, else ``python -m bot.cli.main``); the median, min and max are
printed. The knowledge base's compiled cache and the project's bytecode are in place first,
as after an install (the image builds the cache, and pip compiles a wheel's modules when it
installs it; a checkout writes both on first use, unless ``PYTHONDONTWRITEBYTECODE`` is set, as
on the machines this project is built on: the one-liner is also timed with no bytecode at all,
every module compiled from source on every start). For reference, the one-off cost of
validating and compiling the knowledge base (a cache miss) is timed in this process.

    python benchmarks/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ONE_LINE = "Error response from daemon: Get https://contosoreg.azurecr.io/v2/: dial tcp: lookup contosoreg.azurecr.io: no such host"


def acrcheck() -> list[str]:
    script = Path(sys.executable).with_name("acrcheck")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli.main"]


def wall(command: list[str], runs: int, env: dict[str, str] | None = None) -> dict[str, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True, env=env)
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "max": max(times)}


def knowledge_build_ms() -> dict[str, float]:
    """Loading the knowledge base in a fresh process: from the cache, and with the cache bypassed."""
    code = (
        "import time; t = time.perf_counter()\n"
        "from bot.engine.knowledge import load_knowledge\n"
        "load_knowledge(use_cache={use_cache})\n"
        "print((time.perf_counter() - t) * 1000)"
    )
    out: dict[str, float] = {}
    for key, use_cache in (("hit_ms", True), ("miss_ms", False)):
        runs = [
            float(subprocess.run([sys.executable, "-c", code.format(use_cache=use_cache)], cwd=ROOT,
                                 capture_output=True, check=True).stdout)
            for _ in range(5)
        ]  # fmt: skip
        out[key] = statistics.median(runs)
    return out


PACKAGES = ("bot", "handlers", "knowledge")


def remove_project_bytecode() -> None:
    """Delete the project's compiled modules (``__pycache__/*.pyc``; the knowledge caches beside
    them are other files and stay), as in a checkout run with ``PYTHONDONTWRITEBYTECODE`` set."""
    for package in PACKAGES:
        for pyc in (ROOT / package).rglob("__pycache__/*.pyc"):
            pyc.unlink()


def measure(runs: int = 10) -> dict[str, dict[str, float]]:
    command = acrcheck()
    subprocess.run([*command, "cards"], cwd=ROOT, capture_output=True, check=True)  # the cache is in place
    remove_project_bytecode()
    no_writes = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    from_source = wall([*command, "diagnose", ONE_LINE], runs, env=no_writes)
    for package in PACKAGES:  # then the bytecode in place, as pip compiles a wheel's modules at install
        compileall.compile_dir(str(ROOT / package), quiet=2)
    return {
        "diagnose": wall([*command, "diagnose", ONE_LINE], runs),
        "diagnose_from_source": from_source,
        "help": wall([*command, "--help"], runs),
        "python": wall([sys.executable, "-c", "pass"], runs),
        "knowledge": knowledge_build_ms(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    result = measure(args.runs)
    for name, label in (
        ("diagnose", 'acrcheck diagnose "<one line>"'),
        (
            "diagnose_from_source",
            'acrcheck diagnose "<one line>", project not compiled (its modules compiled at each start)',
        ),
        ("help", "acrcheck --help"),
        ("python", "python -c pass"),
    ):
        figures = result[name]
        print(
            f"{label}: median {figures['median']:.3f} s wall over {args.runs} runs "
            f"(min {figures['min']:.3f}, max {figures['max']:.3f})"
        )
    knowledge = result["knowledge"]
    print(
        f"knowledge base in a fresh process (import included): {knowledge['hit_ms']:.0f} ms from the compiled cache; "
        f"{knowledge['miss_ms']:.0f} ms to validate and compile the YAML (once per change of a card)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
