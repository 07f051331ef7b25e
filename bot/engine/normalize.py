"""Turn whatever people paste into plain text the extractor can read.

Pastes arrive Slack-escaped (``&gt;``, ``<https://x|x>``), in code fences and quotes,
with ANSI colours from terminals, JSON-escaped quotes (``\\u0027``), CRLF line ends,
box-drawing borders from k9s/kubectl, and lines wrapped mid-word by the terminal.
All steps are linear-time so hostile input cannot blow up the engine.
"""

from __future__ import annotations

import re
import unicodedata

#: Text beyond this is not examined (a 1 MB paste is read whole; bigger is cut, and said so).
MAX_INPUT_CHARS = 1_100_000
#: Lines are cut to this length before any pattern runs, which bounds every regex.
MAX_LINE_CHARS = 4_000

_ANSI = re.compile(r"\x1b\[[0-9;?]{0,32}[ -/]{0,4}[@-~]|\x1b\][^\x07\x1b]{0,512}(?:\x07|\x1b\\)")
_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^<>|\s]{1,2048})(?:\|([^<>]{0,512}))?>")
_SLACK_SPECIAL = re.compile(r"<([#@!][^<>\s]{1,200})>")
#: Control characters (not tab or newline), deleted. A class, not a ``str.translate`` table: the
#: regex engine scans in C, where a translate of non-ASCII text looks every character up in a dict
#: (a 47 KB binary paste: 7 ms a translate, under 1 ms a ``sub``).
_CONTROL_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_QUOTE_PREFIX = re.compile(r"^(?:&gt;|>)\s?", re.MULTILINE)
_UNICODE_ESCAPE = re.compile(r"\\u00(27|22|26|3c|3e|3C|3E)")
_ESCAPED_NEWLINE = re.compile(r"\\r\\n|\\n")
#: Typographic quotes and the no-break space read as plain ones (each a class for the same reason).
_SMART_SINGLE = re.compile("[‘’]")
_SMART_DOUBLE = re.compile("[“”]")
_UNICODE_MAP = {"27": "'", "22": '"', "26": "&", "3c": "<", "3e": ">"}
#: Japanese quotation brackets read as plain quotes (「unauthorized」 quotes an error like "...").
_JA_QUOTES = re.compile("[「」『』〝〟]")
_CJK = "\u3041-\u30ff\u3400-\u9fff\uf900-\ufaff"
#: Japanese prose glued to an error or a host name ("myreg.azurecr.ioに接続できません"): a space
#: between the scripts lets host patterns and English phrases match as they would in English.
_SCRIPT_BOUNDARY = re.compile(f"(?<=[A-Za-z0-9)\"'])(?=[{_CJK}])|(?<=[{_CJK}])(?=[A-Za-z0-9(\"'])")


def fold_width(text: str) -> str:
    """Full-width letters, digits and punctuation, half-width katakana and ideographic spaces
    become their ordinary forms (NFKC), Japanese quote brackets become quotes, and Japanese
    prose is spaced from ASCII, so ``ｄｉａｌ　ｔｃｐ：`` reads as ``dial tcp:``. ASCII text is untouched.
    """
    if text.isascii():
        return text
    text = _JA_QUOTES.sub('"', unicodedata.normalize("NFKC", text))
    return _SCRIPT_BOUNDARY.sub(" ", text)


def _slack_link(match: re.Match[str]) -> str:
    url, label = match.group(1), match.group(2)
    # Slack auto-links host names: <http://myreg.azurecr.io|myreg.azurecr.io> -> keep what the user typed.
    return label if label else url


def slack_links_to_text(text: str) -> str:
    """Replace Slack's ``<url|label>`` / ``<url>`` link syntax by what the user typed.

    Channel and user references (``<#C…|name>``, ``<@U…>``) are left alone: commands parse them.
    """
    return _SLACK_LINK.sub(_slack_link, text) if "<" in text else text


def _strip_line_borders(line: str) -> str:
    """Drop k9s/table borders and bound the line length (bounds every later regex)."""
    if "│" in line or "┃" in line or "║" in line:
        line = line.strip(" \t│┃║").replace("│", " ").replace("┃", " ").replace("║", " ")
    if len(line) > MAX_LINE_CHARS:
        line = _split_long_line(line)
    return line


def _split_long_line(line: str) -> str:
    """A line over ``MAX_LINE_CHARS`` becomes several, cut after a space or tab, so an error at
    the end of a long log line (one JSON record, a minified message) is still read.

    A single token longer than half a line keeps its first ``MAX_LINE_CHARS`` characters and
    loses the rest up to the next whitespace: a cut inside a token would leave its tail on a
    line of its own, where a secret's value would no longer follow its ``password=`` prefix.
    Cutting only after whitespace also keeps ``unwrap`` (which joins lines for phrase matching)
    reading the same words.
    """
    pieces: list[str] = []
    start, size = 0, len(line)
    while start < size:
        end = start + MAX_LINE_CHARS
        if end >= size:
            pieces.append(line[start:])
            break
        cut = max(line.rfind(" ", start + MAX_LINE_CHARS // 2, end), line.rfind("\t", start + MAX_LINE_CHARS // 2, end))
        if cut >= 0:
            pieces.append(line[start : cut + 1])
            start = cut + 1
            continue
        pieces.append(line[start:end])
        blank = _SPACE.search(line, end)
        if blank is None:
            break
        start = blank.start()
    return "\n".join(pieces)


#: Pastes longer than this are focused on the lines that can hold an error before any parsing.
FOCUS_THRESHOLD = 48_000
_FOCUS_BUDGET = 40_000
_ANCHORS = (
    "error", "fail", "denied", "refused", "timeout", "timed out", "unauthorized", "forbidden", "x509",
    "certificate", "lookup", "eof", "proxy", "daemon", "azurecr", "/v2/", "cannot", "unable", "not found",
    "exceeded", "misbehaving", "no such host", "reset", "tls", "ssl", "acrcheck-probe", "checking host name",
    "validating", " : ok", "registry", "blob.core", "retrying", "エラー", "失敗", "できません", "タイムアウト",
)  # fmt: skip


_SPACE = re.compile(r"\s")


def _whole_tokens(lower: str, start: int, stop: int) -> tuple[int, int]:
    """Shrink a span cut mid-line to whole tokens, so no secret is kept without its prefix."""
    if start > 0 and not lower[start - 1].isspace():
        found = _SPACE.search(lower, start, start + 400)
        start = found.end() if found else start
    if stop < len(lower) and not lower[stop].isspace():
        cut = max(lower.rfind(" ", max(start, stop - 400), stop), lower.rfind("\t", max(start, stop - 400), stop))
        stop = cut if cut > start else stop
    return start, stop


def focus(text: str) -> str:
    """Keep only the lines of a huge paste that can carry an error (plus its head and tail).

    A 1 MB CI log is mostly noise; the error is on a few lines, usually near the end.
    Anchor words are found with ``str.rfind`` from the end (C speed, linear), so the
    rest of the pipeline sees at most ~50 KB whatever the paste's size.
    """
    if len(text) <= FOCUS_THRESHOLD:
        return text
    lower = text.lower()
    spans: set[tuple[int, int]] = set()
    for anchor in _ANCHORS:
        end = len(lower)
        for _ in range(60):
            index = lower.rfind(anchor, 0, end)
            if index < 0:
                break
            start = max(lower.rfind("\n", max(0, index - MAX_LINE_CHARS), index) + 1, index - MAX_LINE_CHARS // 2)
            stop = lower.find("\n", index, index + MAX_LINE_CHARS)
            stop = stop if stop >= 0 else min(len(lower), index + MAX_LINE_CHARS // 2)
            spans.add(_whole_tokens(lower, start, stop))
            end = start
    spans.add((0, min(len(text), 2_000)))
    spans.add((max(0, len(text) - 8_000), len(text)))
    chosen: list[tuple[int, int]] = []
    budget = _FOCUS_BUDGET
    for start, stop in sorted(spans, reverse=True):
        if budget <= 0:
            break
        chosen.append((start, stop))
        budget -= stop - start
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(chosen):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return "\n".join(text[a:b] for a, b in merged)


def normalize(text: str) -> str:
    """Return a cleaned copy of a paste; never raises on any ``str`` input."""
    if len(text) > MAX_INPUT_CHARS:
        text = text[:MAX_INPUT_CHARS]
    text = fold_width(focus(text))
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = _CONTROL_CHAR.sub("", text)  # returns the text itself when there is none
    if "<" in text:
        text = _SLACK_LINK.sub(_slack_link, text)
        text = _SLACK_SPECIAL.sub(r"\1", text)
    if "&" in text:
        text = _QUOTE_PREFIX.sub("", text)
        text = text.replace("&gt;", ">").replace("&lt;", "<").replace("&quot;", '"').replace("&#39;", "'")
        text = text.replace("&amp;", "&")
    elif text.startswith(">") or "\n>" in text:  # a quote prefix starts a line
        text = _QUOTE_PREFIX.sub("", text)
    if "\\u00" in text:
        text = _UNICODE_ESCAPE.sub(lambda m: _UNICODE_MAP[m.group(1).lower()], text)
    if "\\n" in text:
        text = _ESCAPED_NEWLINE.sub("\n", text)
    if "```" in text:
        text = text.replace("```", "\n")
    if text.isascii():  # O(1): smart quotes, NBSP and box drawing are not ASCII
        if len(text) <= MAX_LINE_CHARS:
            return text  # the common case: no line can be too long, no per-line work at all
    else:
        text = _SMART_DOUBLE.sub('"', _SMART_SINGLE.sub("'", text)).replace("\u00a0", " ")
    lines = text.split("\n")
    if "│" in text or "┃" in text or "║" in text or max(map(len, lines)) > MAX_LINE_CHARS:
        return "\n".join(_strip_line_borders(line) for line in lines)
    return text


def unwrap(text: str) -> str:
    """Join terminal-wrapped lines so phrases split across lines still match.

    Used only for phrase detection (``Client.Timeout exceeded w|hile awaiting``);
    facts are read from the line-structured text.
    """
    return text.replace("\n", "")
