"""``acrcheck diagnose --jsonl`` stopped by a signal, as an operator stops it: a real process.

SIGTERM while answers are being written must not leave half an answer on stdout (a driver
would read a torn JSON line); SIGTERM while the stream waits for input must end it at once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASTE = "Error response from daemon: Get https://contosoreg.azurecr.io/v2/: dial tcp 20.62.128.33:443: i/o timeout"


def _start() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli.main", "diagnose", "--jsonl"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _wait_until_idle(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until the process stops using CPU: blocked writing to a stdout nobody reads yet."""
    deadline = time.monotonic() + timeout
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        ticks = _cpu_ticks(proc.pid)
        if ticks != last:
            last, still_since = ticks, time.monotonic()
        elif ticks > 0 and time.monotonic() - still_since > 0.6:
            return
        time.sleep(0.05)
    raise AssertionError("the process never blocked")


def _finish(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes]:
    """Everything the process writes until it exits. Not ``communicate``: it would close stdin,
    which waits for the feeding thread's lock while that thread is blocked on a full pipe."""
    assert proc.stdout is not None and proc.stderr is not None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        out = proc.stdout.read()
        proc.wait()
        err = proc.stderr.read()
    finally:
        timer.cancel()
    return out, err


def _feed(proc: subprocess.Popen[bytes], lines: int) -> threading.Thread:
    data = b"".join(json.dumps({"id": n, "text": f"{PASTE} #{n}"}).encode() + b"\n" for n in range(1, lines + 1))

    def write() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(data)
            proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass  # the process stopped reading: expected once it is told to stop

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_sigterm_while_answers_are_written_leaves_only_whole_answers() -> None:
    lines = 20_000  # far more answers than a pipe holds: the writer blocks with a batch half written
    proc = _start()
    writer = _feed(proc, lines)
    _wait_until_idle(proc)
    proc.send_signal(signal.SIGTERM)
    out, err = _finish(proc, timeout=60)
    writer.join(timeout=10)
    assert proc.returncode == 128 + signal.SIGTERM, err.decode(errors="replace")[-2000:]
    assert out.endswith(b"\n"), out[-300:]
    ids = [json.loads(line)["id"] for line in out.decode().split("\n")[:-1]]
    assert ids, "answers computed before the signal are written"
    assert ids == list(range(1, len(ids) + 1))
    assert len(ids) < lines, "the stream stopped early"
    assert b"Traceback" not in err


def test_sigterm_while_waiting_for_input_stops_at_once() -> None:
    proc = _start()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps({"id": "a", "text": PASTE}).encode() + b"\n")
    proc.stdin.flush()
    first = json.loads(proc.stdout.readline())
    assert first["id"] == "a"
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # stdin stays open: the process is blocked reading it
    out, err = _finish(proc, timeout=10)
    assert time.monotonic() - started < 5
    assert proc.returncode == 128 + signal.SIGTERM, err.decode(errors="replace")[-2000:]
    assert out == b""
    assert b"Traceback" not in err


def test_a_second_sigterm_stops_a_writer_nobody_reads() -> None:
    """The first signal waits for the answer being written; a second acts as SIGTERM always did."""
    proc = _start()
    writer = _feed(proc, 20_000)
    _wait_until_idle(proc)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert proc.poll() is None  # still writing: nobody reads its stdout
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGTERM
    writer.join(timeout=10)
    for stream in (proc.stdout, proc.stderr):
        assert stream is not None
        stream.close()


if sys.platform != "linux" or not os.path.exists("/proc/self/stat"):  # pragma: no cover
    import pytest

    pytestmark = pytest.mark.skip("reads /proc to see the process block")
