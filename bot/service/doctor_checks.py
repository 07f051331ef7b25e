"""The checks behind ``acrcheck doctor``: can this deployment do its job, and what is missing?

Each check returns :class:`Finding` objects that name the problem *and* its fix, with the
real names filled in (scope, registry resource id, identity client id) so a platform engineer
can paste the fix. Checks never raise and each is bounded by the settings' own timeouts;
they only read (``auth.test``, ``apps.connections.open``, Resource Graph, ``registries.get``,
a Log Analytics query, the database catalogue).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx

from bot.config import Settings

Status = Literal["ok", "problem", "warning", "info"]

#: Why each bot scope is needed (from slack-manifest.yaml), so a missing one is explained.
SCOPE_PURPOSE = {
    "app_mentions:read": "answer when mentioned (app_mention events)",
    "channels:history": "read pasted errors in public channels",
    "groups:history": "read pasted errors in private channels",
    "im:history": "read errors sent to the bot directly",
    "chat:write": "post replies",
    "commands": "/acrcheck and the message shortcut",
    "files:read": "read pasted text snippets",
    "reactions:write": "the progress reactions",
    "users:read": "reply in the user's language",
}
REINSTALL = (
    "add it under OAuth & Permissions -> Bot Token Scopes (or re-create the app from slack-manifest.yaml), "
    "then reinstall the app to the workspace and update SLACK_BOT_TOKEN"
)


@dataclass(slots=True)
class Finding:
    """One line of the doctor's report."""

    area: str  # settings | slack | azure | database | logs
    name: str
    status: Status
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ============================================================================ settings


def settings_findings(settings: Settings) -> list[Finding]:
    """The same validation as ``serve --check-config``, as findings."""
    from bot.service.config_check import check_config

    errors, summary = check_config(settings)
    found = [Finding("settings", "config", "problem", error, _settings_fix(error)) for error in errors]
    transport = next((line for line in summary if line.startswith("transport:")), "")
    if not errors:
        found.append(Finding("settings", "config", "ok", f"settings are valid ({transport})"))
    return found


def _settings_fix(error: str) -> str:
    if "SLACK_BOT_TOKEN" in error:
        return "copy the Bot User OAuth Token (xoxb-…) from the Slack app's OAuth & Permissions page into the Secret"
    if "SLACK_SIGNING_SECRET" in error:
        return "copy the Signing Secret from Basic Information, or use Socket Mode (SLACK_APP_TOKEN)"
    if "SLACK_APP_TOKEN" in error:
        return "Basic Information -> App-Level Tokens: create one with connections:write (xapp-…)"
    if "database_url" in error:
        return "set ACRCHECK_DATABASE_URL to sqlite:///path or postgresql://user:password@host:5432/db"
    return "see docs/configuration.md"


# ============================================================================ Slack


def _granted(headers: httpx.Headers) -> set[str] | None:
    raw = headers.get("x-oauth-scopes")
    if raw is None:
        return None
    return {s.strip() for s in raw.split(",") if s.strip()}


async def slack_findings(settings: Settings, required_scopes: Iterable[str], *, timeout: float = 10.0) -> list[Finding]:
    """``auth.test`` with the bot token, its granted scopes, and the app token in Socket Mode."""
    found: list[Finding] = []
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    bot_token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else ""
    app_token = settings.slack_app_token.get_secret_value() if settings.slack_app_token else ""
    async with httpx.AsyncClient(timeout=timeout, trust_env=True) as http:
        if not bot_token:
            if settings.slack_client_id:
                found.append(Finding("slack", "auth.test", "info", "OAuth installs: tokens are per workspace"))
            else:
                found.append(
                    Finding("slack", "auth.test", "problem", "no bot token to test", _settings_fix("SLACK_BOT_TOKEN"))
                )
        else:
            found += await _auth_test(http, base, bot_token, set(required_scopes))
        if app_token:
            found.append(await _app_token(http, base, app_token))
    return found


async def _auth_test(http: httpx.AsyncClient, base: str, token: str, required: set[str]) -> list[Finding]:
    try:
        response = await http.post(base + "auth.test", headers={"Authorization": f"Bearer {token}"})
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return [
            Finding(
                "slack",
                "auth.test",
                "problem",
                f"cannot reach the Slack API at {base} ({type(exc).__name__})",
                "allow egress to slack.com:443 (or set HTTPS_PROXY); check ACRCHECK_SLACK_API_URL",
            )
        ]
    if not body.get("ok"):
        error = str(body.get("error") or f"HTTP {response.status_code}")
        return [
            Finding(
                "slack",
                "auth.test",
                "problem",
                f"Slack rejected the bot token ({error})",
                "the token was revoked or belongs to another app: reinstall the app and copy the new "
                "Bot User OAuth Token (xoxb-…) into SLACK_BOT_TOKEN",
            )
        ]
    found = [
        Finding(
            "slack",
            "auth.test",
            "ok",
            f"bot token valid: team {body.get('team') or body.get('team_id')}, bot user {body.get('user_id')}",
        )
    ]
    granted = _granted(response.headers)
    if granted is None:
        found.append(Finding("slack", "scopes", "warning", "Slack did not report the granted scopes (x-oauth-scopes)"))
        return found
    missing = sorted(required - granted)
    for scope in missing:
        purpose = SCOPE_PURPOSE.get(scope, "required by slack-manifest.yaml")
        found.append(Finding("slack", f"scope {scope}", "problem", f"missing scope {scope} (needed to {purpose})", REINSTALL))
    if not missing:
        found.append(Finding("slack", "scopes", "ok", f"all {len(required)} scopes of slack-manifest.yaml granted"))
    return found


async def _app_token(http: httpx.AsyncClient, base: str, token: str) -> Finding:
    """``apps.connections.open`` proves the app-level token; the returned URL is not used."""
    try:
        response = await http.post(base + "apps.connections.open", headers={"Authorization": f"Bearer {token}"})
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Finding(
            "slack", "app token", "problem", f"cannot reach the Slack API ({type(exc).__name__})",
            "allow egress to slack.com:443 and wss-primary.slack.com:443",
        )  # fmt: skip
    if body.get("ok"):
        return Finding("slack", "app token", "ok", "app-level token valid: Socket Mode can connect")
    return Finding(
        "slack",
        "app token",
        "problem",
        f"Slack rejected the app-level token ({body.get('error')})",
        "enable Socket Mode and create an App-Level Token with connections:write (Basic Information); "
        "put it in SLACK_APP_TOKEN",
    )


# ============================================================================ Azure


def reader_fix(scope: str, *, role: str = "Reader", object_id: str | None = None) -> str:
    """The same ``az role assignment create`` the live checks put in their evidence."""
    from bot.checks.azure import grant_command, identity_assignee

    return grant_command(scope, role=role, assignee=identity_assignee(object_id))


def _permission_finding(area: str, name: str, evidence_detail: str, command: str) -> Finding:
    """A missing permission, worded exactly as the live evidence words it."""
    return Finding(area, name, "problem", evidence_detail.split(" — ", 1)[0], command)


async def azure_findings(settings: Settings, registries: Iterable[str]) -> list[Finding]:
    """Credential mode, a token within the timeout, what Resource Graph shows, Reader on each registry."""
    from bot.checks.azure import CredentialConfigError, arm_scope, make_credential

    mode = settings.azure_credential
    if mode == "none":
        return [
            Finding(
                "azure",
                "credential",
                "warning",
                "no Azure credential (azure_credential none): live checks cannot read registry configuration",
                "on AKS set ACRCHECK_AZURE_CREDENTIAL=workload-identity (see docs/deployment.md)",
            )
        ]
    found = [Finding("azure", "credential", "info", f"credential mode: {mode}")]
    found += _workload_identity_env(mode)
    try:
        credential = make_credential(settings)
    except CredentialConfigError as exc:
        return [*found, Finding("azure", "credential", "problem", str(exc), _credential_fix(mode))]
    assert credential is not None
    try:
        started = time.perf_counter()
        try:
            await credential.get_token(arm_scope(settings))
        except Exception as exc:
            message = str(getattr(exc, "message", None) or exc).strip().splitlines()
            detail = message[0][:300] if message else type(exc).__name__
            found.append(Finding("azure", "token", "problem", f"no ARM token ({mode}): {detail}", _credential_fix(mode)))
            return found
        found.append(
            Finding("azure", "token", "ok", f"ARM token obtained in {(time.perf_counter() - started) * 1000:.0f} ms")
        )
        found += await _resource_graph(settings, credential)
        found += await _registries(settings, credential, registries)
        if settings.log_workspace_id:
            found.append(await _logs(settings, credential))
    finally:
        await credential.close()
    return found


def _workload_identity_env(mode: str) -> list[Finding]:
    if mode != "workload-identity":
        return []
    missing = [k for k in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE") if not os.environ.get(k)]
    if not missing:
        return [Finding("azure", "workload identity", "ok", "the workload identity webhook injected its variables")]
    return [
        Finding(
            "azure",
            "workload identity",
            "problem",
            f"{', '.join(missing)} not set: the workload identity webhook did not inject this pod",
            "label the pod azure.workload.identity/use: \"true\", annotate its service account with "
            "azure.workload.identity/client-id: <client id>, and create the federated credential "
            "(docs/deployment.md)",
        )
    ]


def _credential_fix(mode: str) -> str:
    return {
        "token": "set ACRCHECK_AZURE_TOKEN (az account get-access-token --query accessToken -o tsv)",
        "cli": "run az login as the user the bot runs as",
        "managed-identity": "assign a managed identity to the VM/node pool; set AZURE_CLIENT_ID for a user-assigned one",
        "workload-identity": "check the federated credential (issuer = the cluster's OIDC issuer, subject = "
        "system:serviceaccount:<namespace>:<service account>) and the service account annotation",
        "environment": "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a certificate)",
    }.get(mode, "see docs/deployment.md")


async def _resource_graph(settings: Settings, credential: Any) -> list[Finding]:
    """Which subscriptions and registries the identity can read."""
    from bot.checks.azure import ArmFailure, _translate, resource_graph_rows

    deadline = asyncio.get_running_loop().time() + settings.arm_timeout
    subs_query = "resourcecontainers | where type =~ 'microsoft.resources/subscriptions' | project subscriptionId, name"
    regs_query = (
        "resources | where type =~ 'microsoft.containerregistry/registries' "
        "| project id, name, resourceGroup, subscriptionId, location, sku, properties"
    )
    try:
        async with asyncio.timeout(settings.arm_timeout):
            subs, regs = await asyncio.gather(
                resource_graph_rows(subs_query, credential, settings, deadline),
                resource_graph_rows(regs_query, credential, settings, deadline),
            )
    except Exception as exc:
        failure = exc if isinstance(exc, ArmFailure) else _translate(exc, "Resource Graph query", settings)
        if "arm.permission_missing" in failure.findings:
            return [_permission_finding("azure", "resource graph", failure.detail, str(failure.data.get("command", "")))]
        return [
            Finding(
                "azure", "resource graph", "problem", failure.detail,
                "check egress to management.azure.com:443 and ACRCHECK_ARM_ENDPOINT",
            )
        ]  # fmt: skip
    found: list[Finding] = []
    names = sorted(str(s.get("subscriptionId") or "") for s in subs)
    scope = ", ".join(settings.subscriptions) if settings.subscriptions else "all readable subscriptions"
    found.append(
        Finding("azure", "subscriptions", "info", f"{len(names)} subscription(s) readable: {', '.join(names[:10]) or '-'}")
    )
    if not regs:
        found.append(
            Finding(
                "azure",
                "registries",
                "problem",
                f"Resource Graph shows no container registry in {scope}: the identity has Reader on none",
                reader_fix("<registry resource id>"),
            )
        )
    else:
        listed = ", ".join(sorted(str(r.get("name")) for r in regs)[:20])
        found.append(Finding("azure", "registries", "ok", f"{len(regs)} registr(y/ies) readable in {scope}: {listed}"))
    return found


async def _registries(settings: Settings, credential: Any, registries: Iterable[str]) -> list[Finding]:
    """``check_arm`` on each configured registry: a 403 is exactly "Reader is missing"."""
    from bot.checks.azure import check_arm
    from bot.engine.hostguard import UnsafeTarget, registry_target

    found: list[Finding] = []
    targets = []
    for name in sorted(set(registries)):
        try:
            targets.append(registry_target(name))
        except UnsafeTarget as exc:
            found.append(Finding("azure", f"registry {name}", "problem", f"not an Azure registry: {exc}", ""))
    results = await asyncio.gather(*(check_arm(t, settings, credential=credential) for t in targets))
    for target, result in zip(targets, results, strict=True):
        findings = {f for ev in result.evidence for f in ev.findings}
        resource_id = result.config.resource_id if result.config else ""
        label = f"registry {target.name}"
        missing = next((ev for ev in result.evidence if "arm.permission_missing" in ev.findings), None)
        if missing is not None:
            found.append(_permission_finding("azure", label, missing.detail, str(missing.data.get("command", ""))))
        elif "arm.not_found" in findings:
            found.append(
                Finding(
                    "azure",
                    label,
                    "problem",
                    f"{target.name} is not visible: wrong name, another tenant or subscription, or no Reader on it",
                    reader_fix(f"<resource id of {target.name}>") + " (az acr show -n NAME --query id -o tsv)",
                )
            )
        elif result.config is not None and "arm.found" in findings:
            found.append(Finding("azure", label, "ok", f"configuration readable ({resource_id})"))
        else:
            detail = "; ".join(ev.detail for ev in result.evidence if ev.check == "arm")[:300]
            found.append(Finding("azure", label, "problem", detail or "could not read the registry", ""))
    return found


async def _logs(settings: Settings, credential: Any) -> Finding:
    from bot.checks.logs import check_logs
    from bot.engine.hostguard import registry_target

    evidence = await check_logs(registry_target("acrcheckdoctor"), settings, credential=credential)
    if "logs.permission_missing" in evidence.findings:
        return _permission_finding("logs", "log analytics", evidence.detail, str(evidence.data.get("command", "")))
    if "logs.skipped" in evidence.findings:
        return Finding(
            "logs",
            "log analytics",
            "problem",
            f"workspace {settings.log_workspace_id}: {evidence.detail}",
            "check ACRCHECK_LOG_WORKSPACE_ID and egress to api.loganalytics.io:443",
        )
    return Finding("logs", "log analytics", "ok", f"workspace {settings.log_workspace_id} can be queried")


# ============================================================================ database


async def database_findings(settings: Settings, *, timeout: float = 10.0) -> list[Finding]:
    """Connect, then compare the tables with what the bot and the scheduler expect."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(_database_sync, settings.database_url), timeout)
    except TimeoutError:
        return [
            Finding(
                "database", "connect", "problem", f"no answer within {timeout:g} s",
                "check the host/port in ACRCHECK_DATABASE_URL and network policy to the database",
            )
        ]  # fmt: skip


def _expected_tables() -> dict[str, set[str]]:
    from bot import store

    tables: dict[str, set[str]] = {t.name: {c.name for c in t.columns} for t in store.metadata.sorted_tables}
    try:
        from bot.scheduler import store as scheduler_store

        tables.update({t.name: {c.name for c in t.columns} for t in scheduler_store.metadata.sorted_tables})
    except ImportError:
        pass
    return tables


def _database_sync(url: str) -> list[Finding]:
    from sqlalchemy import inspect, text

    from bot.service.config_check import mask_url
    from bot.store import make_engine

    masked = mask_url(url)
    try:
        if url.startswith(("postgresql://", "postgres://")):  # bounded connect: never hang the doctor
            from sqlalchemy import create_engine

            engine = create_engine("postgresql+psycopg://" + url.split("://", 1)[1], connect_args={"connect_timeout": 5})
        else:
            engine = make_engine(url)
    except Exception as exc:
        return [Finding("database", "connect", "problem", f"invalid database URL ({type(exc).__name__})", "")]
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            present = inspect(conn)
            existing = set(present.get_table_names())
            expected = _expected_tables()
            found = [Finding("database", "connect", "ok", f"connected to {masked}")]
            missing = sorted(set(expected) - existing)
            for name in sorted(set(expected) & existing):
                columns = {c["name"] for c in present.get_columns(name)}
                lacking = sorted(expected[name] - columns)
                if lacking:
                    found.append(
                        Finding(
                            "database", f"table {name}", "problem",
                            f"table {name} lacks column(s) {', '.join(lacking)} (created by an older version?)",
                            "back up, then drop the table so acrcheck serve recreates it",
                        )
                    )  # fmt: skip
        if missing:
            found.append(
                Finding(
                    "database",
                    "tables",
                    "warning",
                    f"{len(missing)} table(s) not created yet: {', '.join(missing)}",
                    "acrcheck serve creates them at start; its database user needs CREATE on the schema",
                )
            )
        else:
            found.append(Finding("database", "tables", "ok", f"all {len(expected)} tables present"))
        return found
    except Exception as exc:
        return [
            Finding(
                "database",
                "connect",
                "problem",
                f"cannot connect to {masked} ({type(exc).__name__})",
                "check host, port, credentials and TLS in ACRCHECK_DATABASE_URL, and that the server "
                "accepts connections from the bot (firewall rules / network policy)",
            )
        ]
    finally:
        engine.dispose()
