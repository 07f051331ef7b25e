"""Throughput and size: ``acrcheck diagnose --jsonl`` on one core, and 1 MB pastes.

1. Throughput of the real ``acrcheck diagnose --jsonl`` process pinned to one core
   (``taskset``), start-up excluded: a warm-up line is answered first (answers are flushed
   line by line), then N real pastes (``/work/shared/eval/dev.jsonl``, else the repository's
   held-out sets) are streamed and timed to the last answer. Resident memory is read after
   1,000 and after all lines.
2. A 1 MB fact-dense paste (12,000 ``dial tcp … i/o timeout`` lines against 50 registries)
   and a 1 MB CI log with the error at the end: engine CPU time in this process (worst of 5),
   and the round trip of one such line through the warm ``--jsonl`` process.

Runs with the runtime dependencies only. Adversarial inputs: ``benchmarks/adversarial.py``.

    python benchmarks/classify_speed.py [--lines 20000] [--cpu 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from adversarial import worst_cpu_ms  # noqa: E402

from bot.diagnose import diagnose  # noqa: E402

SHARED_EVAL = ROOT.parent.parent / "shared" / "eval" / "dev.jsonl"
CANDIDATES = (Path("/work/shared/eval/dev.jsonl"), SHARED_EVAL)
FALLBACK = tuple(ROOT / "tests" / "corpus" / f"heldout{n}.jsonl" for n in ("", "2", "3"))


def real_pastes() -> tuple[list[str], str]:
    """The real error pastes to stream, and where they came from."""
    for path in CANDIDATES:
        if path.exists():
            return [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()], str(path)
    texts = [json.loads(line)["text"] for path in FALLBACK for line in path.read_text().splitlines() if line.strip()]
    return texts, "tests/corpus/heldout*.jsonl"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return -1.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def jsonl_command(cpu: int | None) -> list[str]:
    command = [sys.executable, "-m", "bot.cli.main", "diagnose", "--jsonl"]
    if cpu is not None and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpu), *command]
    return command


class JsonlProcess:
    """A warm ``acrcheck diagnose --jsonl`` process."""

    def __init__(self, cpu: int | None) -> None:
        self.proc = subprocess.Popen(jsonl_command(cpu), stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
        self.ask("warm-up: Error response from daemon: Get https://contosoreg.azurecr.io/v2/: EOF")

    def ask(self, text: str) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps({"id": "q", "text": text}).encode() + b"\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(30)


def throughput(lines: int, cpu: int | None) -> dict[str, Any]:
    texts, source = real_pastes()
    process = JsonlProcess(cpu)
    proc = process.proc
    assert proc.stdin and proc.stdout
    payload = [json.dumps({"id": i, "text": texts[i % len(texts)]}).encode() + b"\n" for i in range(lines)]
    rss: dict[int, float] = {}

    def feed() -> None:
        assert proc.stdin
        for chunk in range(0, lines, 500):
            proc.stdin.write(b"".join(payload[chunk : chunk + 500]))
            proc.stdin.flush()
        proc.stdin.close()

    cpu_start = cpu_seconds(proc.pid)  # after start-up and the warm-up line
    start = time.perf_counter()
    writer = threading.Thread(target=feed)
    writer.start()
    answered = 0
    for raw in proc.stdout:
        json.loads(raw)
        answered += 1
        if answered in (1000, lines - 1):
            rss[answered] = rss_mib(proc.pid)
        if answered == lines - 1:
            cpu_end = cpu_seconds(proc.pid)
    elapsed = time.perf_counter() - start
    writer.join()
    proc.wait(30)
    return {
        "cpu_seconds": cpu_end - cpu_start,
        "per_s": lines / elapsed,
        "seconds": elapsed,
        "answered": answered,
        "lines": lines,
        "distinct": len(texts),
        "source": source,
        "rss_1000": rss.get(1000, -1.0),
        "rss_all": rss.get(lines - 1, -1.0),
    }


def fact_dense(size: int = 1_000_000) -> str:
    """About 12,000 ``dial tcp … i/o timeout`` lines: 50 registries, thousands of addresses."""
    out: list[str] = []
    total = i = 0
    while total < size:
        line = (
            f'Get "https://contosoreg{i % 50}.azurecr.io/v2/": '
            f"dial tcp 20.{i % 250}.{(i // 250) % 250}.{i % 7 + 1}:443: i/o timeout\n"
        )
        out.append(line)
        total += len(line)
        i += 1
    return "".join(out)[:size]


def ci_log(size: int = 1_000_000) -> str:
    """A CI log of build noise with the registry error at the end."""
    filler = "".join(
        f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z [step {i}] npm ci --prefer-offline; compiling module {i} ok\n"
        for i in range(20000)
    )
    tail = (
        'Error response from daemon: Get "https://contosoacr.azurecr.io/v2/": dial tcp: lookup contosoacr.azurecr.io '
        "on 10.0.0.10:53: read udp 10.0.0.4:5353->10.0.0.10:53: i/o timeout\n"
    )
    return (filler * (size // len(filler) + 1))[: size - len(tail)] + tail


def engine_ms(text: str, repeat: int = 5) -> float:
    """Worst CPU time of ``repeat`` diagnoses, in ms."""
    return worst_cpu_ms(diagnose, text, repeat)


def big_pastes(cpu: int | None) -> dict[str, dict[str, Any]]:
    diagnose("warm-up: load the knowledge base before timing")
    diagnose("ウォームアップ: 日本語の貼り付けで使う部分も先に用意する")  # non-ASCII text: the full keyword trie
    process = JsonlProcess(cpu)
    out: dict[str, dict[str, Any]] = {}
    try:
        for name, text in (("fact-dense", fact_dense()), ("ci-log", ci_log())):
            trips = []
            answer: dict[str, Any] = {}
            for _ in range(7):
                start = time.perf_counter()
                answer = process.ask(text)
                trips.append((time.perf_counter() - start) * 1000)
            out[name] = {
                "chars": len(text),
                "lines": text.count("\n"),
                "engine_ms": engine_ms(text),
                "round_trip_ms": sorted(trips)[3],  # median of 7
                "cause": answer.get("cause"),
            }
    finally:
        process.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--cpu", type=int, default=0, help="core to pin the --jsonl process to (-1: no pinning)")
    args = parser.parse_args()
    cpu = None if args.cpu < 0 else args.cpu
    os.environ.setdefault("PYTHONHASHSEED", "0")
    result = throughput(args.lines, cpu)
    print(
        f"diagnose --jsonl throughput (one core, {result['lines']:,} lines of {result['distinct']} real pastes "
        f"from {result['source']}): {result['per_s']:,.0f} pastes/s ({result['seconds']:.2f} s)"
    )
    print(
        f"  CPU time of the process over the stream: {result['cpu_seconds']:.2f} s -> "
        f"{result['lines'] / result['cpu_seconds']:,.0f} pastes per CPU-second (what an idle core would do)"
    )
    print(f"  every line answered: {result['answered'] == result['lines']} ({result['answered']}/{result['lines']})")
    print(
        f"  RSS after 1,000 lines: {result['rss_1000']:.1f} MiB; after {result['lines']:,}: {result['rss_all']:.1f} MiB"
    )
    for name, figures in big_pastes(cpu).items():
        print(
            f"1 MB {name} paste ({figures['chars']:,} chars, {figures['lines']:,} lines): engine {figures['engine_ms']:.1f} ms "
            f"(CPU, worst of 5); --jsonl round trip {figures['round_trip_ms']:.1f} ms -> {figures['cause']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
