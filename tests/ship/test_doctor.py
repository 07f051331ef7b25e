"""``acrcheck doctor`` against broken and healthy deployments made of loopback fakes.

Broken on purpose: Slack scopes missing or the token revoked, ARM answering 403
AuthorizationFailed (Reader missing), Resource Graph forbidden, an unreachable database,
settings missing. The report must name every missing permission or setting with its fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli.main import main
from handlers.oauth import BOT_SCOPES
from tests.fakes.arm import BOT_OBJECT_ID, SUB, FakeARM, _ArmHandler, registry_json
from tests.fakes.slack import APP_TOKEN, BOT_TOKEN
from tests.fakes.tls import TestPKI
from tests.ship.conftest import ROOT, SIGNING_SECRET, ScopedFakeSlack, unused_port

IDENTITY = "11111111-2222-3333-4444-555555555555"


class ListingArmHandler(_ArmHandler):
    """The shared fake ARM, plus the two listing queries the doctor sends to Resource Graph."""

    def _resource_graph(self, body: dict[str, Any]) -> None:
        query = str(body.get("query", ""))
        if "resourcecontainers" in query and not self._mode_failure(self.state.rg_mode, "resourcegraph"):
            self._json(200, {"totalRecords": 1, "count": 1, "data": [{"subscriptionId": SUB, "name": "prod"}]})
            return
        if "name =~" not in query and "name in~" not in query and "registries'" in query:
            if self._mode_failure(self.state.rg_mode, "resourcegraph"):
                return
            rows = [
                {"id": r.body["id"], "name": r.body["name"], "subscriptionId": SUB, "properties": r.body["properties"]}
                for r in self.state.registries.values()
            ]
            self._json(200, {"totalRecords": len(rows), "count": len(rows), "data": rows})
            return
        super()._resource_graph(body)


@pytest.fixture(scope="module")
def pki() -> Iterator[TestPKI]:
    value = TestPKI()
    yield value
    value.close()


@pytest.fixture(scope="module")
def arm_server(pki: TestPKI) -> Iterator[FakeARM]:
    fake = FakeARM(pki)
    fake.server.RequestHandlerClass = ListingArmHandler
    yield fake
    fake.stop()


@pytest.fixture
def fake_arm(arm_server: FakeARM) -> FakeARM:
    arm_server.reset()
    return arm_server


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, fake_slack: ScopedFakeSlack, fake_arm: FakeARM, pki: TestPKI, tmp_path: Path
) -> pytest.MonkeyPatch:
    """A complete, healthy configuration; each test breaks what it needs."""
    values = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "ACRCHECK_SLACK_API_URL": fake_slack.api_url,
        "ACRCHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "ACRCHECK_AZURE_CREDENTIAL": "token",
        "ACRCHECK_AZURE_TOKEN": "doctor-test-token",
        "ACRCHECK_ARM_ENDPOINT": fake_arm.url,
        "ACRCHECK_LOGS_ENDPOINT": fake_arm.url,
        "ACRCHECK_CA_BUNDLE": str(pki.ca_path),
        "ACRCHECK_SUBSCRIPTIONS": SUB,
        "ACRCHECK_ARM_TIMEOUT": "3",
        "ACRCHECK_TOKEN_TIMEOUT": "2",
        "AZURE_CLIENT_ID": IDENTITY,
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    fake_slack.scopes = list(BOT_SCOPES)
    fake_arm.add(registry_json("myreg"))
    return monkeypatch


def _doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["doctor", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_healthy_deployment_has_no_problems(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _doctor(capsys, "--registry", "myreg")
    assert code == 0, output
    assert "no problems found" in output
    assert f"all {len(BOT_SCOPES)} scopes of slack-manifest.yaml granted" in output
    assert "1 registr(y/ies) readable" in output and "myreg" in output
    assert "configuration readable (/subscriptions/" in output


def test_broken_deployment_names_every_missing_permission(
    env: pytest.MonkeyPatch, fake_slack: ScopedFakeSlack, fake_arm: FakeARM, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_slack.scopes = [s for s in BOT_SCOPES if s not in ("files:read", "users:read")]
    fake_arm.add(registry_json("lockedreg"), mode="403")  # Resource Graph sees it, registries.get is 403
    env.setenv("ACRCHECK_DATABASE_URL", f"postgresql://acrcheck:pw-not-shown@127.0.0.1:{unused_port()}/acrcheck")
    code, output = _doctor(capsys, "--registry", "myreg", "--registry", "lockedreg")
    assert code == 1
    assert "missing scope files:read (needed to read pasted text snippets)" in output
    assert "missing scope users:read" in output
    assert "reinstall the app" in output
    locked_id = f"/subscriptions/{SUB}/resourceGroups/rg-net/providers/Microsoft.ContainerRegistry/registries/lockedreg"
    # The same sentence and command as the live check's evidence; the assignee is the object id ARM named.
    assert f"the bot's identity cannot read {locked_id}: grant Reader (ARM answered 403 AuthorizationFailed)" in output
    assert f"az role assignment create --assignee {BOT_OBJECT_ID} --role Reader --scope {locked_id}" in output
    assert "cannot connect to postgresql://acrcheck:***@127.0.0.1" in output
    assert "pw-not-shown" not in output
    assert "4 problem(s) found." in output


def test_revoked_token_and_missing_settings(
    env: pytest.MonkeyPatch, fake_slack: ScopedFakeSlack, fake_arm: FakeARM, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_slack.valid_tokens = {APP_TOKEN}
    env.delenv("SLACK_SIGNING_SECRET")
    env.delenv("ACRCHECK_AZURE_TOKEN")
    code, output = _doctor(capsys)
    assert code == 1
    assert "HTTP mode needs SLACK_SIGNING_SECRET" in output and "Signing Secret from Basic Information" in output
    assert "Slack rejected the bot token (invalid_auth)" in output
    assert "ACRCHECK_AZURE_TOKEN is not set" in output


def test_resource_graph_forbidden_and_json_output(
    env: pytest.MonkeyPatch, fake_arm: FakeARM, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_arm.state.rg_mode = "403"
    env.setenv("ACRCHECK_AZURE_CREDENTIAL", "workload-identity")
    env.setenv("AZURE_TENANT_ID", "tenant")
    env.setenv("AZURE_FEDERATED_TOKEN_FILE", str(ROOT / "no-such-token-file"))
    code, output = _doctor(capsys, "--json", "--skip", "slack")
    report = json.loads(output)
    assert code == 1 and report["ok"] is False
    azure = [f for f in report["findings"] if f["area"] == "azure"]
    assert {"area", "name", "status", "detail", "fix"} <= set(azure[0])
    token = next(f for f in azure if f["name"] == "token")
    assert token["status"] == "problem" and "federated credential" in token["fix"]
    assert not [f for f in report["findings"] if f["area"] == "slack"]


def test_resource_graph_403_is_reader_missing(
    env: pytest.MonkeyPatch, fake_arm: FakeARM, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_arm.state.rg_mode = "403"
    code, output = _doctor(capsys, "--skip", "slack", "--skip", "database")
    assert code == 1
    assert f"the bot's identity cannot read /subscriptions/{SUB}: grant Reader" in output
    assert f"--assignee {BOT_OBJECT_ID} --role Reader --scope /subscriptions/{SUB}" in output


def test_no_readable_subscription_and_log_analytics_403_say_the_same_as_the_checks(
    env: pytest.MonkeyPatch, fake_arm: FakeARM, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_arm.state.rg_mode = "nosubs"
    fake_arm.state.logs_mode = "403"
    workspace = "4a2b6c8d-0000-4000-8000-00000000beef"
    env.setenv("ACRCHECK_LOG_WORKSPACE_ID", workspace)
    code, output = _doctor(capsys, "--skip", "slack", "--skip", "database")
    assert code == 1
    assert f"the bot's identity cannot read /subscriptions/{SUB}: grant Reader" in output
    assert "NoValidSubscriptionsInQueryRequest" in output
    assert f"--assignee {IDENTITY} --role Reader --scope /subscriptions/{SUB}" in output
    assert f"the bot's identity cannot read Log Analytics workspace {workspace}: grant Log Analytics Reader" in output
    assert f'--assignee {IDENTITY} --role "Log Analytics Reader"' in output


def test_workload_identity_without_webhook_injection(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env.setenv("ACRCHECK_AZURE_CREDENTIAL", "workload-identity")
    env.delenv("AZURE_CLIENT_ID")
    code, output = _doctor(capsys, "--skip", "slack", "--skip", "database")
    assert code == 1
    assert "AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE not set" in output
    assert 'azure.workload.identity/use: "true"' in output


def test_builtin_scopes_are_the_manifest_scopes() -> None:
    from bot.service.doctor import required_scopes

    manifest = yaml.safe_load((ROOT / "slack-manifest.yaml").read_text())
    assert sorted(BOT_SCOPES) == sorted(manifest["oauth_config"]["scopes"]["bot"])
    assert required_scopes(ROOT / "slack-manifest.yaml") == manifest["oauth_config"]["scopes"]["bot"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("admins: [U1\n", "not valid YAML"),  # a bracket left open
        ("- U1\n- U2\n", "must be a mapping"),  # a list where the keys belong
        (None, "no such file"),  # ACRCHECK_CONFIG names a file that is not there (a mount gone wrong)
    ],
    ids=["broken-yaml", "not-a-mapping", "missing-file"],
)
def test_a_settings_file_that_cannot_be_read_is_named_without_a_traceback(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | None, words: str
) -> None:
    path = tmp_path / "config.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    env.setenv("ACRCHECK_CONFIG", str(path))
    code, output = _doctor(capsys)
    assert code == 1, output
    assert "Traceback" not in output
    assert str(path) in output and words in output, output
    for command in (["check", "myreg"], ["serve", "--check-config"]):
        returned = main(command)
        captured = capsys.readouterr()
        assert returned == 2, (command, captured)
        text = captured.out + captured.err
        assert "Traceback" not in text and words in text, (command, text)
