"""Optional log check: recent failed logins in ``ContainerRegistryLoginEvents``.

The registry's own logs answer a question no probe can: did the client's requests reach the
registry at all? Failures listed with a caller IP mean traffic arrives and is refused (auth or
firewall, by IP); no events for a client that says it fails suggests it never got there
(DNS/TCP/proxy). Resource logs only exist when a diagnostic setting sends them to a workspace,
so the check runs only when ``settings.log_workspace_id`` is set and says why when it does not.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from typing import Any

from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

from bot.checks.azure import (
    LOGS_READER,
    CredentialConfigError,
    cannot_read,
    grant_command,
    make_credential,
    make_transport,
)
from bot.checks.probe import CaBundleError
from bot.config import Settings
from bot.engine.hostguard import RegistryTarget
from bot.engine.models import Evidence, Status

LOOKBACK = timedelta(hours=24)


def workspace_scope(workspace_id: str) -> str:
    """The workspace's resource id, looked up from its id (the GUID the query API takes)."""
    if not re.fullmatch(r"[0-9a-fA-F-]{36}", workspace_id or ""):  # only a GUID goes into a shell command
        return "<workspace-resource-id>"
    return (
        f"$(az monitor log-analytics workspace list --query \"[?customerId=='{workspace_id}'].id\" --output tsv)"
    )


def failed_logins_query(login_server: str) -> str:
    """KQL for failed logins per caller IP; the login server is guard-validated (no quotes possible)."""
    return (
        "ContainerRegistryLoginEvents "
        f"| where LoginServer =~ '{login_server}' "
        "| where ResultType !in ('200', 'Success') "
        "| summarize Failures = count(), LastSeen = max(TimeGenerated) "
        "by CallerIpAddress, Identity, ResultType, ResultDescription "
        "| top 10 by Failures desc"
    )


async def check_logs(target: RegistryTarget, settings: Settings, *, credential: Any = None) -> Evidence:
    """Query the workspace for failed logins; a skipped Evidence when logs are not configured."""
    started = time.perf_counter()
    subject = target.login_server

    def skipped(reason: str) -> Evidence:
        return Evidence(
            "logs", subject, settings.vantage_name, Status.SKIPPED, reason, {}, _ms(started), ["logs.skipped"]
        )

    if not settings.log_workspace_id:
        return skipped("registry logs not checked: no Log Analytics workspace configured (log_workspace_id)")
    owned = credential is None
    if owned:
        try:
            credential = make_credential(settings)
        except CredentialConfigError as exc:
            return skipped(f"registry logs not checked: {exc}")
    if credential is None:
        return skipped("registry logs not checked: no Azure credential configured")
    from azure.monitor.query.aio import LogsQueryClient

    try:
        kwargs: dict[str, Any] = {"transport": make_transport(settings), "retry_total": 0}
    except CaBundleError as exc:
        if owned:
            await credential.close()
        return skipped(f"registry logs not checked: {exc}")
    if settings.logs_endpoint:
        kwargs["endpoint"] = settings.logs_endpoint
    try:
        async with asyncio.timeout(settings.arm_timeout):
            async with LogsQueryClient(credential, **kwargs) as client:
                result = await client.query_workspace(
                    settings.log_workspace_id, failed_logins_query(target.login_server), timespan=LOOKBACK
                )
    except TimeoutError:
        return Evidence(
            "logs",
            subject,
            settings.vantage_name,
            Status.WARN,
            f"log query did not finish within {settings.arm_timeout:g} s",
            {},
            _ms(started),
            ["logs.skipped"],
        )
    except ClientAuthenticationError as exc:
        return skipped(
            f"registry logs not checked: no token ({str(exc.message or exc).splitlines()[0][:200]})"
        )
    except HttpResponseError as exc:
        if exc.status_code in (401, 403):
            scope = workspace_scope(settings.log_workspace_id)
            command = grant_command(scope, role=LOGS_READER)
            return Evidence(
                "logs",
                subject,
                settings.vantage_name,
                Status.WARN,
                f"log query refused (HTTP {exc.status_code}): "
                f"{cannot_read(f'Log Analytics workspace {settings.log_workspace_id}', LOGS_READER)} — {command}",
                {"http_status": exc.status_code, "scope": scope, "role": LOGS_READER, "command": command},
                _ms(started),
                ["logs.skipped", "logs.permission_missing"],
            )
        return Evidence(
            "logs",
            subject,
            settings.vantage_name,
            Status.WARN,
            f"log query failed: HTTP {exc.status_code}",
            {"http_status": exc.status_code},
            _ms(started),
            ["logs.skipped"],
        )
    except (AzureError, OSError) as exc:
        return Evidence(
            "logs",
            subject,
            settings.vantage_name,
            Status.WARN,
            f"log query failed: {type(exc).__name__}",
            {},
            _ms(started),
            ["logs.skipped"],
        )
    finally:
        if owned and credential is not None:
            await credential.close()
    tables = getattr(result, "tables", None) or getattr(result, "partial_data", None) or []
    rows: list[dict[str, Any]] = []
    for table in tables:
        for row in table.rows:
            rows.append({col: _plain(row[i]) for i, col in enumerate(table.columns)})
    if not rows:
        return Evidence(
            "logs",
            subject,
            settings.vantage_name,
            Status.OK,
            f"no failed logins in the last {int(LOOKBACK.total_seconds() // 3600)} h "
            "(if a client fails, its requests may not be reaching the registry)",
            {"rows": []},
            _ms(started),
            ["logs.no_events"],
        )
    total = sum(int(r.get("Failures") or 0) for r in rows)
    top = rows[0]
    detail = (
        f"{total} failed login(s) in the last {int(LOOKBACK.total_seconds() // 3600)} h; most from "
        f"{top.get('CallerIpAddress') or 'unknown IP'}: "
        f"{top.get('ResultType')} {top.get('ResultDescription') or ''}"
    ).strip()
    ips = sorted({str(r.get("CallerIpAddress")) for r in rows if r.get("CallerIpAddress")})
    return Evidence(
        "logs",
        subject,
        settings.vantage_name,
        Status.WARN,
        detail,
        {"rows": rows, "caller_ips": ips},
        _ms(started),
        ["logs.failed_logins"],
    )


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
