"""`acrcheck serve --check-config`: clear summary or clear errors (exit 2), never a connection."""

from __future__ import annotations

import argparse

import pytest

from bot.cli.serve import add_serve_command, main


def _run(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(["serve", "--check-config"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_parser_wiring() -> None:
    parser = argparse.ArgumentParser()
    add_serve_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "--check-config"])
    assert args.check_config and callable(args.func)


def test_missing_everything(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _run(monkeypatch, {}, capsys)
    assert code == 2
    assert "SLACK_SIGNING_SECRET" in output and "SLACK_BOT_TOKEN" in output


def test_valid_http_config(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _run(
        monkeypatch,
        {
            "SLACK_BOT_TOKEN": "xoxb-1-secret-value",
            "SLACK_SIGNING_SECRET": "shh-signing",
            "ACRCHECK_DATABASE_URL": "postgresql://bot:pw123@db.internal/acrcheck",
        },
        capsys,
    )
    assert code == 0, output
    assert "transport: HTTP" in output and "configuration OK" in output
    assert "xoxb-1-secret-value" not in output and "shh-signing" not in output and "pw123" not in output


def test_socket_mode_and_bad_values(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _run(
        monkeypatch,
        {
            "SLACK_APP_TOKEN": "xoxb-wrong-kind",
            "SLACK_BOT_TOKEN": "xoxb-1",
            "ACRCHECK_DATABASE_URL": "mysql://x/y",
            "ACRCHECK_CHANNELS": '{"C1": {"registries": ["169.254.169.254"], "admins": ["bob"]}}',
        },
        capsys,
    )
    assert code == 2
    assert "xapp-" in output and "unsupported database" in output
    assert "169.254.169.254" in output and "not a Slack user id" in output


def test_invalid_settings_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _run(monkeypatch, {"ACRCHECK_REPLY_THRESHOLD": "7"}, capsys)
    assert code == 2 and "reply_threshold" in output
