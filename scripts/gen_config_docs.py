#!/usr/bin/env python3
"""Generate docs/configuration.md from the Settings model (bot/config.py).

Every field becomes a row: environment variable, YAML key, type, default, meaning. The meaning
is the field's ``description`` if it has one, else the comment on its line in bot/config.py,
else a short text below. Sections follow the ``# --- Name ---`` comments of the model.
``tests/ship/test_config_docs.py`` fails when the committed file differs from this output:

    .venv/bin/python scripts/gen_config_docs.py          # rewrite docs/configuration.md
    .venv/bin/python scripts/gen_config_docs.py --check  # exit 1 when it is stale
"""

from __future__ import annotations

import ast
import io
import re
import sys
import tokenize
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import AliasChoices, BaseModel  # noqa: E402
from pydantic_core import PydanticUndefined  # noqa: E402

from bot.config import ChannelSettings, Settings, WatchSpec  # noqa: E402

OUTPUT = ROOT / "docs" / "configuration.md"

#: Meanings for fields whose line in bot/config.py carries no comment.
MEANING = {
    "slack_bot_token": "bot token (`xoxb-…`); not needed with OAuth installs",
    "slack_app_token": "app-level token (`xapp-…`, scope `connections:write`); set = Socket Mode",
    "slack_signing_secret": "verifies HTTP-mode requests from Slack",
    "slack_client_id": "OAuth: multi-workspace installs at `/slack/install` (HTTP mode)",
    "slack_client_secret": "OAuth client secret (with `SLACK_CLIENT_ID`)",
    "slack_api_url": "Slack Web API base URL (tests point it at a fake)",
    "port": "HTTP port: `/slack/events` in HTTP mode, `/healthz` `/readyz` `/metrics` in both modes",
    "database_url": "`sqlite:///path` (one replica) or `postgresql://user:pw@host:5432/db` (replicas share it)",
    "default_mode": "how the bot behaves in channels without their own settings",
    "reply_threshold": "minimum confidence for an unprompted (passive) reply",
    "channels": "per-channel settings, keyed by channel id (table below)",
    "watches": "scheduled health checks (table below)",
    "user_rate_per_minute": "live checks a user may start per minute",
    "channel_rate_per_minute": "live checks per channel per minute",
    "lang": "default reply language (users' Slack locale wins)",
    "azure_credential": "how to get an ARM token: `none`, `cli`, `managed-identity`, `workload-identity`, "
    "`environment`, `token`",
    "azure_token": "an ARM access token, for `token` mode",
    "subscriptions": "subscription ids to search for registries (comma-separated); empty = all readable",
    "arm_endpoint": "Azure Resource Manager (also Resource Graph); sovereign clouds differ",
    "log_workspace_id": "Log Analytics workspace with `ContainerRegistryLoginEvents` (optional)",
    "logs_endpoint": "Log Analytics query endpoint override",
    "token_timeout": "seconds for a token request",
    "arm_timeout": "seconds for each ARM call",
    "ca_bundle": "extra trusted CA (PEM) for ARM and probes (TLS-inspecting proxies)",
    "dns_servers": "`host[:port]`, comma-separated; empty = system resolver",
    "dns_timeout": "seconds per DNS query",
    "probe_port": "port probed on registry endpoints",
    "probe_timeout": "seconds per endpoint probe",
    "proxy": "explicit HTTPS proxy for probes (`http://host:port`)",
    "check_deadline": "overall deadline of a live check, seconds",
    "vantage_name": "how evidence names where the checks ran",
    "mode": "`passive`, `mention-only` or `off`",
    "threshold": "reply threshold for this channel (default: `reply_threshold`)",
    "allow_bots": "also answer messages posted by other bots",
    "registries": "allowlist of registries that may be checked here; empty = any",
    "admins": "Slack user ids (`U…`) allowed to change settings",
    "registry": "registry name or login server",
    "channel": "channel id to post in",
    "schedule": "`every 30m`, `hourly` or `daily 09:00 [TZ]`",
}


def _comments(model: type[BaseModel]) -> tuple[dict[str, str], dict[str, str]]:
    """(field -> trailing comment, field -> section) read from the class source."""
    source = (ROOT / "bot" / "config.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == model.__name__)
    by_line: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            by_line[tok.start[0]] = tok.string.lstrip("#").strip()
    comments: dict[str, str] = {}
    sections: dict[str, str] = {}
    section = ""
    header = re.compile(r"^-+\s*(.*?)\s*-+$")
    stmts = [s for s in cls.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)]
    for stmt in stmts:
        assert isinstance(stmt.target, ast.Name)
        for line in range(stmt.lineno - 1, 0, -1):  # nearest section comment above
            match = header.match(by_line.get(line, ""))
            if match:
                section = match.group(1)
                break
            if line < cls.lineno:
                break
        sections[stmt.target.id] = section
        end = stmt.end_lineno or stmt.lineno
        for line in range(stmt.lineno, end + 1):
            if line in by_line and not header.match(by_line[line]):
                comments[stmt.target.id] = by_line[line]
    return comments, sections


def _type(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation)
    text = re.sub(r"typing\.|pydantic\.types\.|bot\.config\.|pathlib\.|Annotated\[(.*?), NoDecode\]", r"\1", text)
    return text.replace("NoneType", "None").replace("SecretStr", "secret")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "`{}`" if value == {} else "`[]`" if value == [] else f"`{value}`"
    if field.default is PydanticUndefined:
        return "required"
    if field.default is None:
        return "—"
    return f"`{field.default}`"


def _env(name: str, field: Any, prefix: str) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return " / ".join(f"`{c}`" for c in alias.choices if isinstance(c, str) and c.upper() == c)
    return f"`{prefix}{name.upper()}`"


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _table(model: type[BaseModel], *, env: bool) -> list[str]:
    comments, sections = _comments(model)
    rows: list[str] = []
    current = None
    for name, field in model.model_fields.items():
        if env and sections.get(name) != current:
            current = sections.get(name)
            rows += ["", f"### {current or 'General'}", ""]
            rows += ["| environment variable | YAML key | type | default | meaning |", "|---|---|---|---|---|"]
        meaning = field.description or MEANING.get(name) or comments.get(name, "")
        secret = " **(secret: environment or Secret only)**" if "SecretStr" in str(field.annotation) else ""
        cells = [f"`{name}`", _escape(_type(field.annotation)), _escape(_default(field)), _escape(meaning) + secret]
        if env:
            cells.insert(0, _env(name, field, "ACRCHECK_"))
        rows.append("| " + " | ".join(cells) + " |")
    if not env:
        rows = ["| key | type | default | meaning |", "|---|---|---|---|", *rows]
    return rows


def render() -> str:
    lines = [
        "# Configuration",
        "",
        "<!-- Generated by scripts/gen_config_docs.py from bot/config.py; do not edit by hand. -->",
        "",
        "Every setting is an environment variable (`ACRCHECK_*`, plus Slack's own `SLACK_*` names) or",
        "a key in the YAML file named by `ACRCHECK_CONFIG`. The environment wins over the file. Lists",
        "given in the environment are comma-separated (or a JSON list); nested settings (`channels`,",
        "`watches`) belong in the YAML file. Unknown keys in the file are errors, so a typo fails at",
        "start-up (`acrcheck serve --check-config`, `acrcheck doctor`) instead of being ignored.",
        "",
        "Secrets (tokens, signing secret, database password) should come from the environment,",
        "filled from a Kubernetes Secret or Key Vault, never from the ConfigMap.",
        "",
        "## Settings",
        *_table(Settings, env=True),
        "",
        "## `channels.<channel id>`",
        "",
        *_table(ChannelSettings, env=False),
        "",
        "## `watches[]`",
        "",
        *_table(WatchSpec, env=False),
        "",
        "## Example `config.yaml`",
        "",
        "```yaml",
        "azure_credential: workload-identity",
        "subscriptions: [00000000-0000-0000-0000-000000000000]",
        "default_mode: passive",
        "log_format: json",
        "channels:",
        "  C0123456789:",
        "    mode: mention-only",
        "    registries: [myregistry]",
        "    admins: [U0123456789]",
        "watches:",
        "  - registry: myregistry",
        "    channel: C0123456789",
        "    schedule: hourly",
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run .venv/bin/python scripts/gen_config_docs.py")
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
