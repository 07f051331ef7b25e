"""Secret scrubbing of log records holds for every way a record is made."""

import logging

from handlers import logsafe


def test_secrets_are_scrubbed_and_make_log_record_still_works(caplog) -> None:  # type: ignore[no-untyped-def]
    logsafe.install()
    record = logging.makeLogRecord({"msg": "plain", "levelno": logging.INFO})
    assert record.getMessage() == "plain"
    with caplog.at_level(logging.INFO):
        logging.getLogger("acrcheck.test").info("docker login r.azurecr.io -u x -p Sup3rSecret99 failed")
    assert "Sup3rSecret99" not in caplog.text
    assert "REDACTED" in caplog.text


def test_an_escape_beyond_unicode_does_not_switch_off_redaction() -> None:
    """``\\UFFFFFFFF`` overflowed ``chr``: the engine's redactor was skipped for the whole line."""
    line = "docker login r.azurecr.io -u x -p Sup3rSecret99 failed; payload was '\\UFFFFFFFF'"
    out = logsafe.redact(line)
    assert "Sup3rSecret99" not in out
    assert "\\UFFFFFFFF" in out


def test_a_megabyte_log_line_is_cut_on_whitespace_and_still_redacted() -> None:
    import logging

    from handlers import logsafe

    secret = "Zq8" + "x" * 30 + "Wv9"
    message = "start password=" + secret + " " + ("word " * 250_000) + "end password=" + secret + " done"
    assert len(message) > 1_000_000
    logsafe.install()
    record = logging.getLogger("acrcheck.test").makeRecord("acrcheck.test", logging.INFO, __file__, 1, message, (), None)
    text = record.getMessage()
    assert len(text) < logsafe.LOG_LINE_LIMIT + 100
    assert "characters not logged" in text
    assert text.startswith("start password=") and text.endswith(" done")
    assert secret not in text


def test_a_cut_never_keeps_part_of_a_token() -> None:
    from handlers.logsafe import bounded

    head_token = "A" * 70_000  # no whitespace at all near the head: the head is dropped, never half a token
    out = bounded(head_token + " tail words")
    assert "A" not in out.split("]")[0] and out.endswith(" tail words")
    assert bounded("short line") == "short line"
