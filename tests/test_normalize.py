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
