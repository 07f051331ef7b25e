"""Start-up as a user feels it: ``acrcheck diagnose "<one line>"`` and ``acrcheck --help``, wall time.

Each command is run N times as a fresh process (the installed ``acrcheck`` script when it
sits next to this Python, else ``python -m bot.cli.main``); the median, min and max are
printed. The knowledge base's compiled cache is in place first, as after an install (the
image builds it; a checkout writes it on first use). For reference, the one-off cost of
validating and compiling the knowledge base (a cache miss) is timed in this process.

    python benchmarks/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
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


def wall(command: list[str], runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
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


def measure(runs: int = 10) -> dict[str, dict[str, float]]:
    command = acrcheck()
    subprocess.run([*command, "cards"], cwd=ROOT, capture_output=True, check=True)  # the cache is in place
    return {
        "diagnose": wall([*command, "diagnose", ONE_LINE], runs),
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
