"""Every speed figure of issue 14 in one run, each next to its target.

    python benchmarks/run_all.py [--quick] [--skip-slack] [--lines 20000]

Runs, with the runtime dependencies only:

* ``startup.py``: ``acrcheck diagnose "<one line>"`` (median of 10, target ≤ 0.3 s; as installed,
  and with the project not compiled) and ``acrcheck --help`` (≤ 0.15 s), wall time of fresh processes;
* ``classify_speed.py``: ``diagnose --jsonl`` throughput on one core over real pastes
  (≥ 5,000/s), and a 1 MB fact-dense paste (≤ 50 ms);
* ``adversarial.py``: the worst of the hostile inputs (202 shapes) up to 1 MB (≤ 50 ms of engine time), and
  the same inputs through the log-record redaction path and the engine's redactor (≤ 50 ms);
* ``serve_ready.py``: ``acrcheck serve`` ready (``/readyz`` 200, fake Slack) after start (≤ 2 s);
* ``slack_load.py``: slash-command acknowledgement under a burst (its own output, printed as is).

Wall-clock figures depend on the machine and on what else it is doing: the load average and the
time of a fixed Python loop are printed with the results, and the throughput line also gives pastes per CPU-second of the process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import adversarial  # noqa: E402
import classify_speed  # noqa: E402
import serve_ready  # noqa: E402
import startup  # noqa: E402


def _mark(ok: bool) -> str:
    return "ok  " if ok else "MISS"


def python_speed_ms(repeat: int = 5) -> float:
    """Best wall time of a fixed pure-Python loop (10 million additions), in ms.

    The same code gives quite different figures on different machines of the same size (the
    figures of two sessions differed by half); this number lets a reader compare runs.
    """
    import time

    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a rough look, not the figures to report)")
    parser.add_argument("--skip-slack", action="store_true", help="do not run benchmarks/slack_load.py")
    parser.add_argument("--lines", type=int, default=20_000, help="pastes streamed through --jsonl")
    parser.add_argument("--cpu", type=int, default=0, help="core for the --jsonl process (-1: no pinning)")
    args = parser.parse_args()
    runs = 5 if args.quick else 10
    lines = min(args.lines, 5_000) if args.quick else args.lines
    cpu = None if args.cpu < 0 else args.cpu
    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"10 million Python additions take {python_speed_ms():.0f} ms (the machine's speed, to compare runs)\n"
    )

    rows: list[tuple[str, str, str, bool]] = []
    start = startup.measure(runs)
    rows.append(
        (
            f'acrcheck diagnose "<one line>" (median of {runs}, wall)',
            f"{start['diagnose']['median']:.3f} s",
            "≤ 0.3 s",
            start["diagnose"]["median"] <= 0.3,
        )
    )
    rows.append(
        (
            "  the same, project not compiled (PYTHONDONTWRITEBYTECODE)",
            f"{start['diagnose_from_source']['median']:.3f} s",
            "≤ 0.3 s",
            start["diagnose_from_source"]["median"] <= 0.3,
        )
    )
    rows.append(
        (
            "acrcheck --help (median, wall)",
            f"{start['help']['median']:.3f} s",
            "≤ 0.15 s",
            start["help"]["median"] <= 0.15,
        )
    )

    flow = classify_speed.throughput(lines, cpu)
    per_cpu_second = flow["lines"] / flow["cpu_seconds"]
    rows.append(
        (
            f"diagnose --jsonl, {flow['lines']:,} real pastes, one core",
            f"{flow['per_s']:,.0f}/s wall ({per_cpu_second:,.0f} per CPU-second)",
            "≥ 5,000/s",
            flow["per_s"] >= 5000,
        )
    )
    big = classify_speed.big_pastes(cpu)["fact-dense"]
    rows.append(
        (
            f"1 MB fact-dense paste ({big['lines']:,} dial tcp lines)",
            f"{big['round_trip_ms']:.1f} ms via --jsonl ({big['engine_ms']:.1f} ms engine CPU)",
            "≤ 50 ms",
            big["round_trip_ms"] <= 50,
        )
    )
    hostile = adversarial.measure(2 if args.quick else 3)
    worst_ms, worst_name, _ = hostile[0]
    rows.append(
        (
            f"worst of {len(hostile)} adversarial inputs ≤ 1 MB",
            f"{worst_ms:.1f} ms ({worst_name})",
            "≤ 50 ms",
            worst_ms <= 50,
        )
    )
    redacted = adversarial.measure_redaction(2 if args.quick else 3)
    worst_ms, redactor, shape, _ = redacted[0]
    rows.append(
        (
            f"worst of {len(redacted)} redactions outside the engine",
            f"{worst_ms:.1f} ms ({shape}, {redactor})",
            "≤ 50 ms",
            worst_ms <= 50,
        )
    )
    ready = serve_ready.measure(3 if args.quick else 5)
    rows.append(
        (
            "acrcheck serve ready (readyz 200, fake Slack; median)",
            f"{ready['median']:.2f} s",
            "≤ 2 s",
            ready["median"] <= 2.0,
        )
    )

    width = max(len(row[0]) for row in rows)
    print("issue 14 figures:")
    for label, figure, target, ok in rows:
        print(f"  {_mark(ok)} {label:{width}}  {figure}   (target {target})")

    if not args.skip_slack:
        print("\nslash-command burst (benchmarks/slack_load.py, printed as is):", flush=True)
        result = subprocess.run([sys.executable, str(HERE / "slack_load.py")], cwd=HERE.parent, check=False)
        if result.returncode:
            print(f"  slack_load.py exited with {result.returncode}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
