"""Speed and memory of the offline classifier.

1. Throughput of ``acrcheck diagnose --jsonl`` pinned to one core, process start excluded:
   a warm-up line is answered first, then N lines are streamed and timed to the last answer.
   The process's resident memory is read after 1,000 and after all lines (constant memory).
2. Time for a 1 MB realistic paste (a CI log with the error at the end).
3. Time for each hostile input (regex bombs, megabytes of one character, ...), worst of 3.

    python benchmarks/classify_speed.py [--lines 10000]
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.diagnose import diagnose  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "eval" / "dev.jsonl"


def corpus_texts() -> list[str]:
    import yaml

    texts = [item["text"] for item in yaml.safe_load((ROOT / "tests" / "corpus" / "messages.yaml").read_text())]
    if SAMPLE.exists():
        texts += [json.loads(line)["text"] for line in SAMPLE.read_text().splitlines() if line.strip()]
    return texts


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def throughput(lines: int) -> None:
    texts = corpus_texts()
    cmd = [sys.executable, "-m", "bot.cli.main", "diagnose", "--jsonl"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, bufsize=0)
    assert proc.stdin and proc.stdout
    proc.stdin.write(json.dumps({"id": "warm", "text": texts[0]}).encode() + b"\n")
    proc.stdin.flush()
    proc.stdout.readline()
    rss: dict[int, int] = {}

    def feed() -> None:
        assert proc.stdin
        for i in range(lines):
            proc.stdin.write(json.dumps({"id": i, "text": texts[i % len(texts)]}).encode() + b"\n")
        proc.stdin.close()

    start = time.perf_counter()
    writer = threading.Thread(target=feed)
    writer.start()
    answered = 0
    for raw in proc.stdout:
        json.loads(raw)
        answered += 1
        if answered in (1000, lines):
            rss[answered] = rss_kb(proc.pid)
    elapsed = time.perf_counter() - start
    writer.join()
    proc.wait()
    print(f"jsonl throughput (one core, {lines} lines): {lines / elapsed:,.0f} messages/s ({elapsed:.2f} s)")
    print(f"  every line answered: {answered == lines} ({answered}/{lines})")
    print(
        f"  RSS after 1,000 lines: {rss.get(1000, -1) / 1024:.1f} MiB; after {lines:,}: {rss.get(lines, -1) / 1024:.1f} MiB"
    )


def timed(text: str, repeat: int = 3) -> float:
    worst = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        diagnose(text)
        worst = max(worst, time.perf_counter() - start)
    return worst * 1000


def big_paste() -> None:
    filler = "".join(
        f"2024-05-01T10:{i // 60 % 60:02d}:{i % 60:02d}Z [step {i}] npm ci --prefer-offline; compiling module {i} ok\n"
        for i in range(20000)
    )
    tail = (
        'Error response from daemon: Get "https://contosoacr.azurecr.io/v2/": dial tcp: lookup contosoacr.azurecr.io '
        "on 10.0.0.10:53: read udp 10.0.0.4:5353->10.0.0.10:53: i/o timeout\n"
    )
    text = (filler * (1_000_000 // len(filler) + 1))[: 1_000_000 - len(tail)] + tail
    ms = timed(text)
    print(f"1 MB paste ({len(text):,} chars): {ms:.1f} ms -> {diagnose(text).cause}")


def hostile() -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_engine_hostile import HOSTILE

    extra = {
        "catastrophic-a!": "a" * 100_000 + "!",
        "lookup-on-chain": ("lookup x on " * 50_000),
        "dial-tcp-chain": "dial tcp " * 100_000,
        "client-with-ip": "client with IP '" * 60_000,
        "long-line-no-newline": "Get https://" + "a" * 999_000,
        "many-short-lines": "x\n" * 500_000,
        "v2-repeat": "/v2/" * 250_000,
        "base64-blob": "QUJD" * 250_000,
    }
    worst_name, worst_ms = "", 0.0
    print("hostile inputs (worst of 3 runs):")
    for name, text in {**HOSTILE, **extra}.items():
        ms = timed(text)
        print(f"  {name:24} {len(text):>10,} chars {ms:8.1f} ms")
        if ms > worst_ms:
            worst_name, worst_ms = name, ms
    print(f"  worst: {worst_name} {worst_ms:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=10_000)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    throughput(args.lines)
    diagnose("warm-up: load the knowledge base before timing")
    big_paste()
    hostile()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
