"""deploy/ is checked offline, with the tools that will read it: ``promtool`` (the alerting
rules, the compose Prometheus config), ``amtool`` (the Alertmanager config),
``kubernetes-validate`` (the Kubernetes manifests against the Kubernetes OpenAPI schemas;
the ServiceMonitor against a vendored subset of its CRD schema), and remediator's own
loaders (the configs and rules). It also ties deploy/ to the pack: the alert names match
in both directions, and the RBAC grants exactly the verbs the pack's Kubernetes actions
need. ``.ci/run`` installs promtool and amtool (Debian ``prometheus``,
``prometheus-alertmanager``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from receiver.settings import Settings, settings_from_mapping
from remediations.registry import default_registry
from rules.loader import default_pack_paths, load_rules
from rules.matchers import MatchType
from rules.model import RuleSet
from tests.support.paths import REPO

DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests promise to fit (strict schemas)
SECRET_ENV = ("REMEDIATOR_WEBHOOK_TOKEN", "REMEDIATOR_APPROVER_TOKEN", "REMEDIATOR_ADMIN_TOKEN", "PG_DSN",
              "CACHE_REDIS_URL", "SLACK_WEBHOOK_URL", "PD_ROUTING_KEY", "ARGOCD_TOKEN")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (.ci/run installs Debian prometheus, prometheus-alertmanager)")
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def manifests() -> list[tuple[str, dict[str, Any]]]:
    """Every document of every manifest of deploy/kubernetes, with its file name."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert isinstance(doc, dict), path.name
            docs.append((path.name, doc))
    return docs


def the(kind: str) -> dict[str, Any]:
    """The one manifest of ``kind`` (of the ConfigMaps, remediator's config, not the dashboard)."""
    (doc,) = [d for _, d in manifests()
              if d["kind"] == kind and d["metadata"]["name"] != "remediator-dashboard"]
    return doc


@pytest.fixture(scope="module")
def pack() -> RuleSet:
    return load_rules(default_pack_paths(), catalogue=default_registry(), targets=None).ruleset


def pack_alertnames(pack: RuleSet) -> set[str]:
    """The alertnames the pack's rules answer (``=`` values and ``=~`` alternatives)."""
    names: set[str] = set()
    for rule in pack.rules:
        for m in rule.match:
            if m.name == "alertname":
                assert m.type in (MatchType.EQUAL, MatchType.REGEX), rule.name
                names |= set(m.value.split("|")) if m.type is MatchType.REGEX else {m.value}
    return names


def alerting_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


# --- Prometheus and Alertmanager ----------------------------------------------------------

def test_promtool_checks_the_alerting_rules() -> None:
    """``promtool check rules`` accepts deploy/prometheus/alerts.yml (syntax, PromQL, templates)."""
    done = run(tool("promtool"), "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


PROMTOOL_TESTS = sorted((Path(__file__).parent / "promtool").glob("*.test.yml"))


@pytest.mark.parametrize("path", PROMTOOL_TESTS, ids=[p.name for p in PROMTOOL_TESTS])
def test_promtool_unit_tests_of_the_alerting_rules(path: Path) -> None:
    """``promtool test rules``: each alert fed the series the exporters export (named and
    labelled as they name them), firing with exactly the labels the pack matches."""
    done = subprocess.run([tool("promtool"), "test", "rules", path.name], cwd=path.parent,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_and_every_source_of_it_is_unit_tested() -> None:
    """Each alert of alerts.yml, and each of its rules where one name has several (told
    apart by their ``source`` label), fires in some promtool test."""
    fired: set[tuple[str, str | None]] = set()
    for path in PROMTOOL_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                for alert in case.get("exp_alerts", []):
                    fired.add((case["alertname"], alert["exp_labels"].get("source")))
    defined = {(r["alert"], r["labels"].get("source")) for r in alerting_rules()}
    assert defined - fired == set(), "alerts no promtool test fires"


def test_promtool_checks_the_reference_prometheus_config() -> None:
    """deploy/prometheus/prometheus.yml, the scrape jobs whose labels the alerts and the
    pack expect (static, docker_sd, cAdvisor, the exporters, blackbox), with alerts.yml."""
    done = run(tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    assert "alerts.yml" in done.stdout


def test_promtool_checks_the_compose_prometheus_config(tmp_path: Path) -> None:
    """The compose Prometheus config is valid once its rule file path points at alerts.yml."""
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml", "/etc/prometheus/remediator-alerts.yml"]
    config["rule_files"] = [str(DEPLOY / "prometheus" / n) for n in ("alerts.yml", "remediator-alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    done = run(tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_amtool_checks_the_alertmanager_config() -> None:
    """``amtool check-config`` accepts deploy/alertmanager/alertmanager.yml."""
    done = run(tool("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_alertmanager_sends_resolved_to_remediator_with_a_bearer_token_file() -> None:
    """The remediator receiver: webhook to /webhook, send_resolved, bearer token from a file."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    (receiver,) = [r for r in config["receivers"] if r["name"] == "remediator"]
    (hook,) = receiver["webhook_configs"]
    assert hook["url"].endswith("/webhook")
    assert hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    assert hook["http_config"]["authorization"]["credentials_file"].startswith("/")
    assert "credentials" not in hook["http_config"]["authorization"]


def test_alert_names_match_the_pack_in_both_directions(pack: RuleSet) -> None:
    """Every alert of alerts.yml is answered by the pack, every alert the pack answers is
    defined there, and Alertmanager routes exactly those to remediator."""
    defined = {r["alert"] for r in alerting_rules()}
    assert defined == pack_alertnames(pack)
    route = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())["route"]
    (to_remediator,) = [r for r in route["routes"] if r["receiver"] == "remediator"]
    (matcher,) = to_remediator["matchers"]
    routed = re.fullmatch(r'alertname =~ "(.*)"', matcher)
    assert routed is not None
    assert set(routed.group(1).split("|")) == defined


def test_alert_labels_carry_what_the_pack_matches(pack: RuleSet) -> None:
    """Each alert's severity is set, and the static labels the pack requires are there
    (``service="redis"`` / ``"postgres"``)."""
    alerts = alerting_rules()
    for alert in alerts:
        assert alert["labels"]["severity"] in ("critical", "warning"), alert["alert"]
        assert alert["annotations"]["summary"], alert["alert"]
    static = {a["alert"]: a["labels"] for a in alerts}
    for rule in pack.rules:
        names = [m.value for m in rule.match if m.name == "alertname" and m.type is MatchType.EQUAL]
        for m in rule.match:
            if names and m.type is MatchType.EQUAL and m.name not in ("alertname", "namespace") and m.value:
                assert static[names[0]].get(m.name) == m.value, (rule.name, m.name)


# --- remediator configs --------------------------------------------------------------------

def configmap_settings(monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, dict[str, str]]:
    for name in SECRET_ENV:
        monkeypatch.setenv(name, f"https://example.invalid/{name.lower()}")
    data = the("ConfigMap")["data"]
    return settings_from_mapping(yaml.safe_load(data["remediator.yaml"]), source="configmap.yaml"), data


def test_configmap_config_loads_and_names_every_pack_target(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    """The example config loads, and the pack plus its local rules lint with no warning
    against it: every target and notifier the rules name is defined, of the right kind."""
    settings, data = configmap_settings(monkeypatch)
    assert {n: t.kind for n, t in settings.targets.items()} == {
        "prod-cluster": "kubernetes", "compose": "docker", "main": "postgres", "cache": "redis",
        "web": "http", "superset": "http", "airflow": "http", "celery": "celery", "argocd": "argocd"}
    assert set(settings.notifiers) >= {"oncall"}
    assert settings.state.startswith("redis://")
    assert not settings.dry_run or settings.dry_run is True
    assert [str(p) for p in settings.rules or []] == ["/opt/remediator/pack", "/etc/remediator/rules"]
    (tmp_path / "local.yaml").write_text(data["local.yaml"])
    result = load_rules([*default_pack_paths(), tmp_path / "local.yaml"], catalogue=default_registry(),
                        targets={n: t.kind for n, t in settings.targets.items()})
    assert result.warnings == []
    for rule in result.ruleset.rules:
        for spec in rule.actions:
            notifier = spec.params.get("notifier")
            assert notifier is None or notifier in settings.notifiers, rule.name


def test_pack_live_rule_tests_use_the_example_configs_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/rules/pack_live.config.yaml (the pack's live rule tests) keeps the example
    config's targets and notifiers, allow-lists included."""
    settings, _ = configmap_settings(monkeypatch)
    for name in ("PACK_TEST_PG_DSN", "PACK_TEST_CACHE_URL", "PACK_TEST_SLACK_URL", "PACK_TEST_ARGOCD_TOKEN"):
        monkeypatch.setenv(name, "x")
    config = REPO / "tests" / "rules" / "pack_live.config.yaml"
    live = settings_from_mapping(yaml.safe_load(config.read_text()))

    def shape(s: Settings) -> dict[str, Any]:
        secrets = {"dsn", "url", "broker", "token"}
        secret_free = {n: t.model_dump(exclude=secrets) for n, t in s.targets.items()}
        secret_free["compose"].pop("url", None)
        return {"targets": secret_free, "notifiers": {n: v.kind for n, v in s.notifiers.items()}}

    example = shape(settings)
    example["notifiers"] = {n: k for n, k in example["notifiers"].items() if n == "oncall"}
    assert shape(live) == example


def test_compose_config_loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The compose remediator config loads (its token file swapped for a temp one)."""
    monkeypatch.setenv("ONCALL_WEBHOOK_URL", "http://oncall.invalid/hook")
    token = tmp_path / "webhook-token"
    token.write_text("t0ken\n")
    text = (DEPLOY / "compose" / "remediator.yaml").read_text()
    text = text.replace("/run/secrets/webhook-token", str(token))
    settings = settings_from_mapping(yaml.safe_load(text), source="compose/remediator.yaml")
    assert settings.listens_beyond_loopback
    assert settings.auth.configured
    assert settings.state == "redis://redis:6379/0"


def test_compose_wires_the_four_services_to_deploy_files() -> None:
    """compose.yaml runs remediator, Redis, Prometheus and Alertmanager on deploy/'s files
    (and Grafana with the dashboard under the ``grafana`` profile); Prometheus loads the
    self-monitoring rules; remediator starts once Redis is healthy, Alertmanager once
    remediator is; every service restarts unless stopped. tests/deploy/test_compose.py
    brings it up."""
    compose = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"remediator", "redis", "prometheus", "alertmanager", "grafana"}
    assert services["grafana"]["profiles"] == ["grafana"]
    assert "name" not in compose  # docker-compose 1.29 (Debian's) refuses a top-level name
    assert services["remediator"]["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert services["alertmanager"]["depends_on"] == {"remediator": {"condition": "service_healthy"}}
    assert "test" in services["redis"]["healthcheck"]
    assert {s["restart"] for s in services.values()} == {"unless-stopped"}
    assert services["remediator"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["remediator"]["read_only"] is True
    mounts = {s: [v.split(":")[0] for v in svc.get("volumes", [])] for s, svc in services.items()}
    base = DEPLOY / "compose"
    for service, wanted in [("prometheus", "prometheus/alerts.yml"), ("prometheus", "compose/prometheus.yml"),
                            ("prometheus", "prometheus/remediator-alerts.yml"),
                            ("grafana", "grafana/remediator.json"),
                            ("alertmanager", "alertmanager/alertmanager.yml"),
                            ("remediator", "compose/remediator.yaml")]:
        files = [(base / m).resolve() for m in mounts[service] if m.startswith(".")]
        assert (DEPLOY / wanted).resolve() in files, (service, wanted)
    assert services["prometheus"]["image"].endswith(":v2.42.0")
    assert services["alertmanager"]["image"].endswith(":v0.25.0")
    # The token Alertmanager sends is the one remediator accepts.
    am_token = [v for v in services["alertmanager"]["volumes"] if "webhook-token" in v]
    assert am_token == ["./webhook-token:/etc/alertmanager/secrets/remediator-webhook-token:ro"]
    assert compose["secrets"]["webhook-token"]["file"] == "./webhook-token"


def test_dockerfile_is_slim_non_root_and_bakes_the_pack_in() -> None:
    """The image: a slim base, a numeric non-root user, data under a volume, a healthcheck
    that asks /health where serve says it listens, the pack copied to where the example
    config loads it. tests/deploy/test_image.py builds and runs it."""
    lines = [ln.strip() for ln in (DEPLOY / "Dockerfile").read_text().splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    froms = [ln.split()[1] for ln in lines if ln.startswith("FROM ")]
    assert froms
    assert all(f.startswith("python:3.11-slim") for f in froms)
    (user,) = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert user.split(":")[0].isdigit()
    assert user.split(":")[0] != "0"
    assert 'VOLUME ["/var/lib/remediator"]' in lines
    assert "WORKDIR /var/lib/remediator" in lines  # the default state and audit files land in the volume
    assert "COPY rules/packs /opt/remediator/pack" in lines
    healthcheck = " ".join(lines[lines.index(next(ln for ln in lines if ln.startswith("HEALTHCHECK"))):][:2])
    assert 'CMD ["remediator", "health"]' in healthcheck  # follows the configured listen and tls
    assert any(ln.startswith("REMEDIATOR_ENDPOINT_FILE=/var/lib/remediator/") for ln in lines)
    assert lines.index(next(ln for ln in lines if ln.startswith("USER "))) > lines.index(
        "COPY rules/packs /opt/remediator/pack")


# --- Kubernetes ------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "doc"), [pytest.param(n, d, id=f"{n}:{d['kind']}:{d['metadata']['name']}")
                                           for n, d in manifests()
                                           if d["kind"] not in ("ServiceMonitor", "PrometheusRule")])
def test_manifest_validates_against_the_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    """Each manifest is valid against Kubernetes' OpenAPI schemas, strictly (unknown fields fail)."""
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{name}: {exc.message} at {list(exc.path)}")


def test_kubernetes_validate_catches_a_typo() -> None:
    """The validator is strict: a misspelt field of a Deployment fails."""
    doc = json.loads(json.dumps(the("Deployment")))
    doc["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_servicemonitor_validates_against_the_vendored_crd_schema() -> None:
    """The ServiceMonitor fits the vendored CRD subset, and selects the Service's port."""
    schema = json.loads((Path(__file__).parent / "servicemonitor.schema.json").read_text())
    monitor = the("ServiceMonitor")
    jsonschema.validate(monitor, schema)
    bad = json.loads(json.dumps(monitor))
    bad["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    service = the("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_manifests_fit_together(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two replicas on Redis state, non-root and read-only, the config from the ConfigMap,
    secrets from a Secret, probes on /ready and /health, a PDB and a NetworkPolicy that
    select the pods, and a kustomization listing every file."""
    settings, _ = configmap_settings(monkeypatch)
    deployment = the("Deployment")
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["replicas"] == 2
    assert settings.state.startswith("redis://")
    assert pod["spec"]["serviceAccountName"] == the("ServiceAccount")["metadata"]["name"]
    (container,) = pod["spec"]["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    secret_env = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert secret_env == set(SECRET_ENV)
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/var/lib/remediator", "/etc/remediator/rules", "/etc/remediator/remediator.yaml"} <= mounts
    assert str(settings.audit).startswith("/var/lib/remediator/")
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        selector = the(kind)["spec"]["selector" if kind == "PodDisruptionBudget" else "podSelector"]
        assert selector["matchLabels"].items() <= labels.items(), kind
    assert the("Service")["spec"]["selector"].items() <= labels.items()
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def needed_permissions(pack: RuleSet) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) for every Kubernetes action the pack uses, from the
    registry's ``Action.permissions`` (``verb group/resource``; core group without prefix)."""
    registry = default_registry()
    wanted: set[tuple[str, str, str]] = set()
    for rule in pack.rules:
        for spec in (*rule.diagnose, *rule.all_actions):  # every rung of a ladder too
            action = registry.get(spec.action)
            assert action is not None
            if "kubernetes" not in (action.target_kinds or ()):
                continue
            for permission in action.permissions:
                verb, _, what = permission.partition(" ")
                first = what.partition("/")[0]  # a group is apps or a dotted name (metrics.k8s.io)
                grouped = first == "apps" or "." in first
                group, _, resource = what.partition("/") if grouped else ("", "", what)
                wanted.add((group, resource, verb))
    return wanted


def granted_permissions() -> set[tuple[str, str, str]]:
    role = the("ClusterRole")
    return {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]}


def test_rbac_grants_exactly_what_the_packs_actions_need(pack: RuleSet) -> None:
    """The ClusterRole grants every permission the pack's Kubernetes actions list, and
    nothing else: no wildcard, no verb no action uses."""
    needed, granted = needed_permissions(pack), granted_permissions()
    assert needed, "the pack uses Kubernetes actions"
    assert needed - granted == set(), "missing from deploy/kubernetes/rbac.yaml"
    assert granted - needed == set(), "granted but no pack action needs it"
    assert not any("*" in part for triple in granted for part in triple)


def test_rbac_is_bound_only_in_the_targets_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ClusterRole is bound by RoleBindings (never a ClusterRoleBinding) in exactly the
    namespaces the prod-cluster target allows, to remediator's ServiceAccount."""
    settings, _ = configmap_settings(monkeypatch)
    target = settings.targets["prod-cluster"]
    assert target.kind == "kubernetes"
    bindings = [d for _, d in manifests() if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert {b["kind"] for b in bindings} == {"RoleBinding"}
    assert sorted(b["metadata"]["namespace"] for b in bindings) == sorted(target.namespaces)
    account = the("ServiceAccount")["metadata"]
    for binding in bindings:
        assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                      "name": the("ClusterRole")["metadata"]["name"]}
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                        "namespace": account["namespace"]}]
