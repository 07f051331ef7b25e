"""One validated settings model for the whole product.

Environment variables (``ACRCHECK_*``, plus Slack's conventional ``SLACK_*`` names) and an
optional YAML file (``ACRCHECK_CONFIG``) feed one pydantic model. Every external endpoint
(ARM, DNS servers, CA bundle, Slack API, proxy, database) is a plain value here: that is
how production points at Azure and how tests point at local fakes, with no test-only paths.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

CredentialMode = Literal["none", "cli", "managed-identity", "workload-identity", "environment", "token"]
ChannelMode = Literal["passive", "mention-only", "off"]


#: Issuers of the certificates Azure serves for ``*.azurecr.io`` / ``*.data.azurecr.io`` (and the
#: sovereign clouds): the subordinate CAs of "Azure Certificate Authority details"
#: (https://learn.microsoft.com/azure/security/fundamentals/azure-ca-details). Patterns match the
#: issuer's common name (or organisation), case-insensitively, ``*`` as a wildcard.
DEFAULT_TLS_ISSUERS: tuple[str, ...] = (
    "Microsoft Azure RSA TLS Issuing CA *",
    "Microsoft Azure ECC TLS Issuing CA *",
    "Microsoft Azure TLS Issuing CA *",
    "Microsoft RSA TLS CA 0*",
    "DigiCert Basic RSA CN CA G2",
    "DigiCert Cloud Services CA-1",
    "DigiCert SHA2 Secure Server CA",
    "DigiCert TLS RSA SHA256 2020 CA1",
    "DigiCert TLS Hybrid ECC SHA384 2020 CA1",
)


class ChannelSettings(BaseModel):
    """Per-channel behaviour: how chatty the bot is and what it may check there."""

    mode: ChannelMode = Field(
        default="passive",
        description="`passive`: answers pasted errors and @mentions; `mention-only`: only @mentions; "
        "`off`: posts nothing the channel sees, an @mention gets a private answer",
    )
    mentions: bool = True  # answer @mentions here; `false` silences the bot's answers to them (set here only, `/acrcheck config` cannot)
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    allow_bots: bool = False
    registries: list[str] = Field(default_factory=list)  # allowlist; empty = any registry
    subscriptions: Annotated[list[str], NoDecode] = Field(default_factory=list)
    admins: list[str] = Field(default_factory=list)  # Slack user ids


class WatchSpec(BaseModel):
    """A scheduled health check declared in the settings file."""

    registry: str
    channel: str
    schedule: str = "hourly"  # "every 30m" | "hourly" | "daily 09:00 [TZ]"


class Settings(BaseSettings):
    """All settings. Field names map to ``ACRCHECK_<NAME>`` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix="ACRCHECK_",
        env_nested_delimiter="__",
        extra="forbid",
        populate_by_name=True,
    )

    # --- Slack -----------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_BOT_TOKEN", "slack_bot_token")
    )
    slack_app_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_APP_TOKEN", "slack_app_token")
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_SIGNING_SECRET", "slack_signing_secret")
    )
    slack_client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_CLIENT_ID", "slack_client_id")
    )
    slack_client_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SLACK_CLIENT_SECRET", "slack_client_secret")
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        validation_alias=AliasChoices("ACRCHECK_SLACK_API_URL", "slack_api_url"),
    )
    port: int = Field(default=3000, ge=1, le=65535)
    database_url: str = "sqlite:///acrcheck.db"

    # --- Operations ----------------------------------------------------------------
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for log collectors
    log_level: str = "INFO"  # DEBUG, INFO, WARNING, ERROR
    shutdown_grace: float = Field(default=20.0, ge=0)  # seconds to finish in-flight replies after SIGTERM

    # --- Behaviour ---------------------------------------------------------------
    default_mode: ChannelMode = "passive"
    reply_threshold: float = Field(default=0.40, ge=0.0, le=1.0)  # same as bot.engine.classify.REPLY_CONFIDENCE
    channels: dict[str, ChannelSettings] = Field(default_factory=dict)
    admins: Annotated[list[str], NoDecode] = Field(default_factory=list)  # workspace-wide admins
    members_can_mute: bool = False  # any channel member may mute a cause for 24 h (default: only admins, as for `/acrcheck config`)
    watches: list[WatchSpec] = Field(default_factory=list)
    user_rate_per_minute: int = Field(default=10, ge=1)
    channel_rate_per_minute: int = Field(default=30, ge=1)
    lang: Literal["en", "ja"] = "en"

    # --- Azure -----------------------------------------------------------------
    azure_credential: CredentialMode = "none"
    azure_token: SecretStr | None = None
    subscriptions: Annotated[list[str], NoDecode] = Field(default_factory=list)
    arm_endpoint: str = "https://management.azure.com"
    log_workspace_id: str | None = None
    logs_endpoint: str | None = None
    token_timeout: float = Field(default=10.0, gt=0)
    arm_timeout: float = Field(default=15.0, gt=0)

    # --- Network checks ---------------------------------------------------------
    ca_bundle: Path | None = None
    dns_servers: Annotated[list[str], NoDecode] = Field(default_factory=list)  # "host[:port]"
    dns_timeout: float = Field(default=3.0, gt=0)
    probe_port: int = Field(default=443, ge=1, le=65535)
    probe_timeout: float = Field(default=5.0, gt=0)
    proxy: str | None = None
    expected_tls_issuers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_TLS_ISSUERS),
        description="issuers a registry certificate may come from (comma-separated, `*` wildcard, matched on the "
        "issuer's CN or O); any other issuer is reported as TLS interception even when the certificate verifies. "
        "Default: Azure's public TLS issuing CAs (`Microsoft Azure RSA/ECC TLS Issuing CA *`, `Microsoft Azure TLS "
        "Issuing CA *`, `Microsoft RSA TLS CA 0*` and the DigiCert subordinates Azure lists)",
    )
    check_deadline: float = Field(default=20.0, gt=0)
    max_paste_hosts: int = Field(
        default=16,
        ge=0,
        description="endpoint names from one paste checked live (DNS and probes), in the order the paste names "
        "them; the rest are listed as not checked. The registry's login server and the data endpoints its ARM "
        "configuration names are always checked, on top of these",
    )
    vantage_name: str = "the bot's network"

    # --- Scheduled watches ---------------------------------------------------------
    watch_leader_poll: float = Field(default=1.0, gt=0)  # leader lock heartbeat, seconds
    watch_takeover_grace: float | None = Field(default=None, gt=0)  # wait before adopting a dead leader's runs
    watch_sync_interval: float = Field(default=15.0, gt=0)  # re-read watches from the database
    watch_concurrency: int = Field(default=20, ge=1)  # live checks in flight during a sweep
    watch_slack_min_interval: float = Field(default=1.0, ge=0)  # per-channel pacing of posts
    watch_misfire_grace: float = Field(default=300.0, ge=0)  # a slot missed by less still runs after takeover
    watch_error_threshold: int = Field(default=3, ge=1)  # failed checks in a row before "could not run" is posted
    watch_check_timeout: float | None = Field(default=None, gt=0)  # default: check_deadline + 10
    watch_digest: str | None = None  # e.g. "daily 09:00 Europe/Paris"
    watch_min_interval: int = Field(default=300, ge=10)  # shortest schedule the watch command accepts, seconds
    watch_retry_attempts: int = Field(default=10, ge=1)  # a post that keeps failing is given up after this many tries…
    watch_retry_window: float = Field(default=3600.0, ge=0)  # …spanning at least this many seconds
    watch_retry_backoff: float = Field(default=15.0, gt=0)  # first wait before a retry between slots (doubles, max 10 min)
    watch_demote_timeout: float = Field(default=5.0, gt=0)  # on losing leadership, wait at most this for running sweeps

    @field_validator("subscriptions", "dns_servers", "admins", "expected_tls_issuers", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        """Environment variables carry lists as comma-separated strings."""
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith("["):  # a JSON list is accepted too
                import json

                return json.loads(stripped)
            return [part.strip() for part in stripped.split(",") if part.strip()]
        return value

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, value: str | None) -> str | None:
        """http(s)://[user:password@]host[:port]; the message never repeats a password."""
        if value is None or not value.strip():
            return None
        from urllib.parse import urlsplit

        value = value.strip()
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise ValueError("proxy must look like http://host:port (the port must be a number)") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("proxy must be an http:// or https:// URL, e.g. http://proxy.corp:3128") from None
        if port is None:
            raise ValueError("proxy must include its port, e.g. http://proxy.corp:3128") from None
        return value

    @field_validator("arm_endpoint", "slack_api_url")
    @classmethod
    def _https_or_loopback(cls, value: str) -> str:
        if not value.startswith(("https://", "http://127.", "http://localhost")):
            raise ValueError("must be an https:// URL (plain http only for loopback)")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment wins over the YAML file named by ``ACRCHECK_CONFIG``."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_path = os.environ.get("ACRCHECK_CONFIG")
        if yaml_path:
            sources.append(_yaml_file_source(settings_cls, yaml_path))
        return tuple(sources)

    def channel(self, channel_id: str) -> ChannelSettings:
        """Settings for a channel, falling back to the workspace defaults."""
        found = self.channels.get(channel_id)
        if found is not None:
            return found
        return ChannelSettings(mode=self.default_mode)


def _yaml_file_source(settings_cls: type[BaseSettings], path: str) -> PydanticBaseSettingsSource:
    """The file ``ACRCHECK_CONFIG`` names, or a ``SettingsError`` that says what is wrong with it.

    pydantic-settings skips a missing file silently and lets a YAML syntax error or a file that
    is not a mapping escape as a traceback. A file the operator named but that cannot be read
    is a broken deployment (a ConfigMap mounted elsewhere, a typo in the path, a bad edit):
    every command that loads settings reports it in one line instead, and the YAML error names
    only its line, never the file's content.
    """
    import yaml
    from pydantic_settings import SettingsError

    if not Path(path).is_file():
        what = "not a file" if Path(path).exists() else "no such file"
        raise SettingsError(f"ACRCHECK_CONFIG={path}: {what}")
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "unreadable"
        raise SettingsError(f"ACRCHECK_CONFIG={path} is not valid YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"ACRCHECK_CONFIG={path} cannot be read ({type(exc).__name__})") from None
    if data is not None and not isinstance(data, dict):  # a list would be read as pairs of characters
        raise SettingsError(f"ACRCHECK_CONFIG={path}: the file must be a mapping of setting names to values")
    return YamlConfigSettingsSource(settings_cls, yaml_file=path)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and the optional YAML file."""
    return Settings(**overrides)
