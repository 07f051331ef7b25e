"""``acrcheck diagnose --jsonl``: one strict-JSON answer line for each non-blank input line.

Contract: every input line that is not blank (JSON whitespace only: space, tab, CR) gets
exactly one line of strict JSON back, in order, whatever the line holds; a line that cannot
be read gets ``{"id", "line", "error"}``. Lines are split on ``\\n`` only: characters that are
whitespace or line breaks to Python but not to JSON (``\\x1c``-``\\x1f``, ``\\x0b``, ``\\x0c``,
U+0085, U+00A0, U+2028, U+3000) are content, never a reason to skip or split a line.
``NaN``, ``Infinity`` and numbers that overflow to infinity (``1e999``) are not JSON: the line
is refused with a clear error and they are never echoed (``allow_nan=False``). Answers are
flushed whenever the input has no further complete line at hand, i.e. before the process could
wait for input: a driver that sends one line and waits gets its answer at once, and a batch
piped in is not paid for with one write system call per line.

SIGTERM (and SIGINT) stop the stream without tearing an answer: work under way finishes, the
answers computed so far are written whole and flushed, and the process exits with 128 + the
signal's number (143 for SIGTERM). Lines not yet answered get no line at all, never half of one:
a driver resends from the first id it has no answer for. Waiting for input, the process stops at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
from collections.abc import Iterable, Iterator
from types import FrameType
from typing import Any, TextIO

log = logging.getLogger("bot.cli.main")

#: JSON's own whitespace. ``str.strip()`` would also strip \x1c-\x1f, \x0b, \x0c, U+0085, U+00A0,
#: U+2028, U+3000..., turning a line of them into a skipped blank line instead of an answered one.
JSON_WHITESPACE = " \t\r\n"
#: Characters that ``str.splitlines()`` (and JavaScript) treat as line breaks although JSON does not
#: escape them: escaped in every answer so one answer is one line for every reader.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (numbers must be finite)")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{literal[:40]} is out of range (numbers must be finite)")
    return value


#: One decoder and one encoder for the whole stream (``json.loads``/``dumps`` with options build new ones per call).
_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite_float)
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)
_FALLBACK = json.JSONEncoder()


def parse_line(line: str) -> Any:
    """Strict JSON: ``NaN``, ``Infinity`` and overflowing numbers such as ``1e999`` are refused."""
    return _DECODER.decode(line)


def encode_answer(result: dict[str, Any], number: int) -> str:
    """One line of strict JSON (``allow_nan=False``), whatever the answer holds."""
    try:
        encoded = _ENCODER.encode(result)
        encoded.encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        encoded = _FALLBACK.encode({"id": None, "line": number, "error": "answer could not be encoded"})
    if "\x85" in encoded or "\u2028" in encoded or "\u2029" in encoded:
        for char, escape in _LINE_BREAKS.items():
            encoded = encoded.replace(char, escape)
    return encoded


#: Bytes asked for per read: a pipe holds 64 KiB, so one read takes what a writer has sent.
_READ_SIZE = 1 << 16
#: Answers are written in batches of about this many characters (and whenever input runs dry).
_WRITE_BATCH = 1 << 16


class _Stopped(Exception):
    """Raised by the signal handler only while the stream waits for input (nothing is unwritten)."""


class StopSignals:
    """SIGTERM/SIGINT while answering: remember it, finish the answer, write it, then stop.

    A handler that raised mid-write would leave half an answer on stdout; this one raises only
    while the stream is blocked reading input, when every answer so far is written and flushed.
    The first signal puts the previous handlers back, so a second one stops the process as it
    always did. Installed only in the main thread (the only one Python delivers signals to);
    elsewhere it is inert.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: int | None = None
        self.reading = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        self._restore()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signum
        self._restore()  # a second signal acts as it would have (a writer stuck on a full pipe can still be stopped)
        if self.reading:
            raise _Stopped

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)  # None: set outside Python
        self._previous.clear()

    @contextlib.contextmanager
    def waiting_for_input(self) -> Iterator[None]:
        """A blocking read, during which a stop signal ends the stream at once."""
        self.reading = True
        try:
            yield
        finally:
            self.reading = False

    def exit_code(self) -> int:
        return 128 + self.received if self.received is not None else 0


def input_lines(stdin: TextIO, stop: StopSignals | None = None) -> Iterable[tuple[str, bool]]:
    """Input lines split on ``\\n`` only, decoded as UTF-8 with replacement, each with whether
    another complete line is already at hand (when not, the caller flushes before reading on)."""
    stop = stop or StopSignals()
    buffer = getattr(stdin, "buffer", None)
    if buffer is None or not hasattr(buffer, "read1"):
        lines = iter(stdin)
        while True:
            with stop.waiting_for_input():
                line = next(lines, None)
            if line is None:
                return
            yield line, False
    for raw, more in _split_reads(buffer, stop):
        yield raw.decode("utf-8", errors="replace"), more


def _split_reads(buffer: Any, stop: StopSignals) -> Iterator[tuple[bytes, bool]]:
    """Lines of a binary stream read with ``read1`` (what is there, blocking only when nothing is).

    A line longer than one read is gathered as a list of pieces and joined once, so a huge
    line costs linear time.
    """
    pieces: list[bytes] = []
    while stop.received is None:
        with stop.waiting_for_input():
            chunk = buffer.read1(_READ_SIZE)
        if not chunk:
            break
        if b"\n" not in chunk:
            pieces.append(chunk)
            continue
        lines = chunk.split(b"\n")
        if pieces:
            pieces.append(lines[0])
            lines[0] = b"".join(pieces)
        tail = lines.pop()
        pieces = [tail] if tail else []
        last = len(lines) - 1
        for index, line in enumerate(lines):
            yield line, index < last
    if pieces and stop.received is None:
        yield b"".join(pieces), False


def answer(line: str, number: int, lang: str | None) -> dict[str, Any]:
    """The answer object for one non-blank input line."""
    from bot.diagnose import diagnose  # imported when the first line arrives (a no-op afterwards)
    from bot.engine.render_text import diagnosis_jsonl

    item_id: Any = None
    try:
        item = parse_line(line)
        if not isinstance(item, dict):
            raise ValueError("each line must be a JSON object with 'id' and 'text'")
        item_id = item.get("id")
        text = item.get("text")
        if not isinstance(text, str):
            raise ValueError("'text' must be a string")
        if not text.isascii():  # JSON may carry lone surrogates (\ud800) that UTF-8 cannot encode
            text = text.encode("utf-8", errors="replace").decode("utf-8")
        return diagnosis_jsonl(item_id, diagnose(text, lang=lang, cite=False))
    except (ValueError, RecursionError) as exc:
        return {"id": item_id, "line": number, "error": f"invalid input line: {exc}"}
    except Exception as exc:  # one bad line must never end the stream
        log.exception("line %d could not be diagnosed", number)
        return {"id": item_id, "line": number, "error": f"could not diagnose this line ({type(exc).__name__})"}


class AnswerSink:
    """Where answers go: straight to stdout's file descriptor when it has one, else ``stdout.write``.

    Written with ``os.write`` until every byte is out, because Python's own text and buffered
    writers (3.11) drop the rest of a write that a signal interrupts part-way (a pipe full when
    SIGTERM arrives): the handler runs, and the tail of the batch never reaches the pipe. The answers
    are batched already, so nothing is lost by skipping their buffer.
    """

    def __init__(self, stdout: TextIO) -> None:
        self.stdout = stdout
        self.fd: int | None = None
        buffer = getattr(stdout, "buffer", None)
        try:
            fd = stdout.fileno() if buffer is not None else None
        except (AttributeError, OSError, ValueError):  # io.StringIO and other streams without a descriptor
            fd = None
        if fd is not None:
            stdout.flush()  # anything written through the stream before comes first
            self.fd = fd

    def write(self, text: str) -> None:
        if self.fd is None:
            self.stdout.write(text)
            return
        view = memoryview(text.encode("utf-8", errors="replace"))
        written = 0
        while written < len(view):
            written += os.write(self.fd, view[written:])

    def flush(self) -> None:
        if self.fd is None:
            self.stdout.flush()


def run_jsonl(stdin: TextIO, stdout: TextIO, lang: str | None) -> int:
    """Stream ``{"id", "text"}`` lines to one answer line each (see the module docstring)."""
    # _Stopped is raised only while waiting for input, when every answer is written and flushed
    with StopSignals() as stop, contextlib.suppress(_Stopped):
        _answer_lines(stdin, AnswerSink(stdout), lang, stop)
    if stop.received is not None:
        log.warning("stopped by signal %d; every answer written is whole", stop.received)
    return stop.exit_code()


def _answer_lines(stdin: TextIO, stdout: AnswerSink, lang: str | None, stop: StopSignals) -> None:
    pending: list[str] = []  # answers not yet written: one write per batch, even with PYTHONUNBUFFERED
    size = 0
    loaded = False
    for number, (raw, more) in enumerate(input_lines(stdin, stop), 1):
        line = raw.strip(JSON_WHITESPACE)
        if line:
            if not loaded:  # the engine is loaded when the first line arrives, then kept out of the collector
                from bot.diagnose import preload

                preload()
                loaded = True
            encoded = encode_answer(answer(line, number, lang), number) + "\n"
            pending.append(encoded)
            size += len(encoded)
        if stop.received is not None:
            break
        if pending and (not more or size >= _WRITE_BATCH):
            stdout.write("".join(pending))
            pending.clear()
            size = 0
        if not more:
            stdout.flush()
    if pending:
        stdout.write("".join(pending))
    stdout.flush()
