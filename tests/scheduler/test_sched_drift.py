"""Drift detection for each configuration field, from real RegistryConfig objects."""

from __future__ import annotations

from typing import Any

import pytest
from fake_registry import make_config

from bot.checks.azure import PrivateEndpointConnection, Replication
from bot.scheduler.drift import (
    ConfigSnapshot,
    Observation,
    diff_configs,
    diff_observations,
    snapshot_config,
)


def _diff(**changes: Any) -> list[tuple[str, str, str]]:
    old = snapshot_config(make_config("reg1"))
    new = snapshot_config(make_config("reg1", **changes))
    return [(c.field, c.text, c.severity) for c in diff_configs(old, new)]


@pytest.mark.parametrize(
    ("changes", "field", "fragment", "severity"),
    [
        (
            {"ip_rules": ("203.0.113.0/24", "198.51.100.7")},
            "ip_rules",
            "IP rule added: `198.51.100.7`",
            "info",
        ),
        ({"ip_rules": ()}, "ip_rules", "IP rule removed: `203.0.113.0/24`", "warn"),
        ({"public_network_access": "Disabled"}, "public_network_access", "Enabled → Disabled", "warn"),
        ({"default_action": "Allow"}, "default_action", "Deny → Allow", "info"),
        (
            {"bypass_options": "None"},
            "network_rule_bypass_options",
            "Trusted Azure services bypass turned off",
            "warn",
        ),
        (
            {"bypass_for_tasks": False},
            "network_rule_bypass_allowed_for_tasks",
            "Tasks network bypass turned off",
            "warn",
        ),
        (
            {"data_endpoint_enabled": False, "data_endpoint_host_names": ()},
            "data_endpoint_enabled",
            "turned off",
            "warn",
        ),
        (
            {"data_endpoint_host_names": ("reg1.westeurope.data.azurecr.io", "reg1.eastus.data.azurecr.io")},
            "data_endpoint_host_names",
            "Data endpoint added: `reg1.eastus.data.azurecr.io`",
            "warn",
        ),
        (
            {"replications": (Replication(region="westeurope"), Replication(region="eastus"))},
            "regions",
            "Replica added in `eastus`",
            "warn",
        ),
        ({"replications": ()}, "regions", "Replica removed from `westeurope`", "info"),
        (
            {"private_endpoints": (PrivateEndpointConnection(name="pe-1", status="Rejected"),)},
            "private_endpoints",
            "`pe-1` is now Rejected (was Approved): traffic through it is refused",
            "warn",
        ),
        (
            {
                "private_endpoints": (
                    PrivateEndpointConnection(name="pe-1", status="Approved"),
                    PrivateEndpointConnection(name="pe-2", status="Pending"),
                )
            },
            "private_endpoints",
            "`pe-2` added (Pending)",
            "warn",
        ),
        ({"private_endpoints": ()}, "private_endpoints", "`pe-1` removed", "warn"),
        ({"sku": "Standard"}, "sku", "Premium → Standard", "info"),
        ({"provisioning_state": "Failed"}, "provisioning_state", "Succeeded → Failed", "warn"),
        ({"login_server": "reg1-abc123.azurecr.io"}, "login_server", "reg1-abc123.azurecr.io", "info"),
    ],
)
def test_each_field_is_detected(changes: dict[str, Any], field: str, fragment: str, severity: str) -> None:
    diffs = _diff(**changes)
    matching = [d for d in diffs if d[0] == field]
    assert matching, diffs
    assert any(fragment in text and sev == severity for _, text, sev in matching), matching


def test_no_change_no_drift_and_order_does_not_matter() -> None:
    a = make_config("reg1", ip_rules=("1.2.3.4", "5.6.7.8"))
    b = make_config("reg1", ip_rules=("5.6.7.8", "1.2.3.4"))
    assert diff_configs(snapshot_config(a), snapshot_config(b)) == []
    # fields outside the network picture (e.g. where the row came from) are ignored
    assert snapshot_config(make_config("reg1", source="arm")) == snapshot_config(make_config("reg1"))


def test_snapshot_round_trips_through_json_storage() -> None:
    snap = snapshot_config(make_config("reg1"))
    assert snap is not None
    obs = Observation("healthy", config=snap, problems={"dns:x": "nxdomain"})
    again = Observation.from_dict(obs.to_dict())
    assert again == obs
    assert ConfigSnapshot.from_dict(snap.to_dict()) == snap


def test_status_transitions() -> None:
    cfg = snapshot_config(make_config("reg1"))
    healthy = Observation("healthy", config=cfg)
    broken = Observation("firewall_ip_not_allowed", title="Client IP not allowed", config=cfg)
    missing = Observation("missing")
    assert diff_observations(None, broken) == []  # first run: baseline only
    assert diff_observations(healthy, healthy) == []
    assert "Problem detected: Client IP not allowed" in diff_observations(healthy, broken)[0].text
    assert "Resolved: Client IP not allowed has cleared" in diff_observations(broken, healthy)[0].text
    gone = diff_observations(healthy, missing)
    assert len(gone) == 1 and "no longer found" in gone[0].text
    assert diff_observations(missing, missing) == []
    assert "found again" in diff_observations(missing, healthy)[0].text


def test_probe_drift_such_as_data_endpoint_missing_from_dns() -> None:
    cfg = snapshot_config(make_config("reg1"))
    before = Observation("healthy", config=cfg)
    after = Observation(
        "healthy", config=cfg, problems={"dns:reg1.westeurope.data.azurecr.io": "NXDOMAIN from 10.0.0.10"}
    )
    changes = diff_observations(before, after)
    assert [c.field for c in changes] == ["problems"]
    assert "dns check for `reg1.westeurope.data.azurecr.io`" in changes[0].text
    assert "passes again" in diff_observations(after, before)[0].text
    # a changed detail (e.g. latency in the text) for the same failing check is not drift
    reworded = Observation(
        "healthy", config=cfg, problems={"dns:reg1.westeurope.data.azurecr.io": "other words"}
    )
    assert diff_observations(after, reworded) == []
