"""deploy/k8s: schema-valid for Kubernetes (offline, bundled schemas) and shaped for AKS operations."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import Settings
from tests.ship.conftest import ROOT

K8S = ROOT / "deploy" / "k8s"
MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _validator() -> str:
    found = Path(sys.executable).with_name("kubernetes-validate")
    return str(found) if found.exists() else (shutil.which("kubernetes-validate") or pytest.skip("not installed"))


def _docs() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in MANIFESTS:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return docs


def test_manifests_pass_strict_schema_validation() -> None:
    result = subprocess.run(
        [_validator(), "--strict", *map(str, MANIFESTS)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") >= len(MANIFESTS)


def test_validator_rejects_a_broken_manifest(tmp_path: Path) -> None:
    broken = yaml.safe_load((K8S / "deployment.yaml").read_text())
    broken["spec"]["replicas"] = "two"
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/x"
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = subprocess.run([_validator(), "--strict", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0


def test_kustomization_lists_every_resource_but_the_example_secret() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in MANIFESTS} - {"secret.example.yaml"}


def test_deployment_is_ready_for_aks() -> None:
    docs = _docs()
    deployment = docs["Deployment/acrcheck"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert spec["replicas"] >= 2
    assert spec["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["serviceAccountName"] == "acrcheck"
    assert docs["ServiceAccount/acrcheck"]["metadata"]["annotations"]["azure.workload.identity/client-id"]
    assert env["ACRCHECK_AZURE_CREDENTIAL"]["value"] == "workload-identity"
    assert env["ACRCHECK_CONFIG"]["value"] == "/etc/acrcheck/config.yaml"
    assert env["ACRCHECK_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "acrcheck-database"
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "acrcheck-slack"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"requests", "limits"} <= set(container["resources"])
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/etc/acrcheck", "/tmp"} <= mounts  # writable /tmp despite the read-only root
    # SIGTERM handling must fit in the termination grace period: preStop sleep + drain + scheduler stop.
    config = yaml.safe_load(docs["ConfigMap/acrcheck-config"]["data"]["config.yaml"])
    assert pod["terminationGracePeriodSeconds"] >= 5 + config["shutdown_grace"] + 15


def test_pdb_and_service_select_the_pods() -> None:
    docs = _docs()
    labels = docs["Deployment/acrcheck"]["spec"]["template"]["metadata"]["labels"]
    pdb = docs["PodDisruptionBudget/acrcheck"]["spec"]
    assert pdb["minAvailable"] == 1
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    service = docs["Service/acrcheck"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] == "http"


def test_configmap_is_valid_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(_docs()["ConfigMap/acrcheck-config"]["data"]["config.yaml"])
    monkeypatch.setenv("ACRCHECK_CONFIG", str(config))
    settings = Settings()
    assert settings.azure_credential == "workload-identity" and settings.log_format == "json"
