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
