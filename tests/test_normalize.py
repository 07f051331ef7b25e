"""Normalisation of chat-pasted text: each transformation a user's paste goes through."""

from bot.engine.normalize import MAX_LINE_CHARS, normalize, unwrap


def test_slack_links_keep_the_label_the_user_typed() -> None:
    text = "Get <https://myreg.azurecr.io/v2/|https://myreg.azurecr.io/v2/>: EOF and <http://myreg.azurecr.io|myreg.azurecr.io>"
    out = normalize(text)
    assert "<" not in out
    assert "https://myreg.azurecr.io/v2/: EOF" in out
    assert "and myreg.azurecr.io" in out


def test_slack_html_escapes_and_quote_markers() -> None:
    out = normalize("&gt; error: a &lt;b&gt; &amp;&amp; c\n&gt; second line")
    assert out.splitlines() == ["error: a <b> && c", "second line"]


def test_code_fences_ansi_crlf_and_json_escapes() -> None:
    raw = "```\r\n\x1b[31mError\x1b[0m: client with IP \\u0027203.0.113.4\\u0027\r\n```"
    out = normalize(raw)
    assert "\x1b" not in out and "\r" not in out and "```" not in out
    assert "Error: client with IP '203.0.113.4'" in out


def test_smart_quotes_and_box_borders() -> None:
    out = normalize("│ failed to reso │\n│ lve reference ‘x’ │")
    assert "'x'" in out
    assert "failed to resolve reference" in unwrap(out)


def test_very_long_lines_are_capped() -> None:
    out = normalize("a" * (MAX_LINE_CHARS * 3))
    assert len(out) == MAX_LINE_CHARS


def test_binary_and_control_characters_are_dropped() -> None:
    out = normalize("ok\x00\x01\x02 text\x7f")
    assert out == "ok text"


def test_every_typographic_quote_no_break_space_and_control_character_is_mapped() -> None:
    """Each character the normaliser rewrites, in non-ASCII text (where it is done by pattern, not table)."""
    out = normalize("‘a’ “b” c\u00a0d 「e」 『f』 〝g〟 \x00\x08\x0b\x0c\x0e\x1f\x7fh\tі\nj")
    assert out == "'a' \"b\" c d \"e\" \"f\" \"g\" h\tі\nj"


def test_a_binary_paste_keeps_its_text_and_loses_only_control_characters() -> None:
    """All 256 Latin-1 characters: tab and newline stay, the other C0 controls and DEL go, NBSP is a space."""
    latin1 = bytes(range(256)).decode("latin-1")
    out = normalize(latin1 * 4)
    dropped = {chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]}
    assert not dropped & set(out)
    assert "\t" in out and "\n" in out and "\u00a0" not in out
    assert "ÿ" in out and "é" in out


def test_an_error_at_the_end_of_a_long_line_is_still_read() -> None:
    from bot.diagnose import diagnose

    error = "dial tcp: lookup myreg.azurecr.io on 10.0.0.10:53: no such host"
    alone = diagnose(error, cite=False)
    assert alone.reply
    for prefix in ("x" * 5_000 + " ", "word " * 2_000, '{"log": "' + "a" * 3_000 + " " + "b" * 3_000 + " "):
        diagnosis = diagnose(prefix + error, cite=False)
        assert diagnosis.facts.login_server == "myreg.azurecr.io"
        assert diagnosis.facts.dns_server == "10.0.0.10:53"
        assert diagnosis.cause == alone.cause and diagnosis.reply


def test_long_lines_are_cut_after_whitespace_and_a_giant_token_loses_its_tail() -> None:
    from bot.engine.normalize import MAX_LINE_CHARS, normalize

    text = normalize("password=" + "S" * 9_000 + "TAILSECRET next words")
    lines = text.split("\n")
    assert max(map(len, lines)) <= MAX_LINE_CHARS
    assert "TAILSECRET" not in text  # never left on a line of its own, away from its prefix
    assert lines[-1].strip() == "next words"
    words = normalize("word " * 2_000 + "end")
    assert words.replace("\n", "") == ("word " * 2_000 + "end")  # nothing lost, unwrap reads the same words
