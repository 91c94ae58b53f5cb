"""StatefulSets, ``kubernetes.set_env``, the ``workloads`` allow-list, Argo CD-tracked workloads, and
``kubernetes.diagnose``'s logs and metrics: the real ``kubernetes`` client against the in-test API
server (tests.support.kubeapi), every request asserted."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from remediations.base import InvalidParams, PermanentError, TargetNotAllowed
from remediations.kubernetes.diagnose import KubernetesDiagnose
from remediations.kubernetes.env import KubernetesSetEnv
from remediations.kubernetes.evidence import filter_lines
from remediations.kubernetes.memory import KubernetesSetMemoryLimit
from remediations.kubernetes.rollout import KubernetesDeletePod, KubernetesRolloutRestart
from remediations.kubernetes.scale import KubernetesScale
from remediations.kubernetes.undo import KubernetesRolloutUndo
from tests.remediations.test_kubernetes import (  # the same cluster fixture and helpers
    NOW,
    Cluster,
    kube,
    plan_only,
    roundtrip,
    run,
)
from tests.support.kubeapi import STRATEGIC, container

__all__ = ["kube"]  # the fixture, used by name
PG = {"namespace": "prod", "statefulset": "postgres-read"}
STS = "/apis/apps/v1/namespaces/prod/statefulsets/postgres-read"


def with_target(cluster: Cluster, **changes: Any) -> None:
    cluster.target = cluster.target.model_copy(update=changes)


# ---- StatefulSets wherever Deployments work ---------------------------------------------------------

async def test_scale_a_statefulset_through_its_scale_subresource(kube: Cluster) -> None:
    """`kubectl scale statefulset postgres-read --replicas=3`: GET and PATCH of statefulsets/scale."""
    kube.fake.add_statefulset("prod", "postgres-read", replicas=1)
    action = kube.action(KubernetesScale)
    raw = {**PG, "replicas": 3, "max": 5}
    plan = await plan_only(kube, action, raw)
    assert plan.steps == ("scale prod/postgres-read from 1 to 3 replicas (asked 3)",
                          "PATCH statefulset prod/postgres-read/scale (strategic merge patch): "
                          "spec.replicas = 3")
    assert plan.details["statefulset"] == "postgres-read"
    result = await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    assert [(r.method, r.path, r.content_type, r.body) for r in kube.fake.requests] == [
        ("GET", STS + "/scale", "application/json", None),
        ("PATCH", STS + "/scale", STRATEGIC, {"spec": {"replicas": 3}})]
    assert kube.fake.statefulsets["prod", "postgres-read"]["spec"]["replicas"] == 3
    assert result.summary == "scaled prod/postgres-read from 1 to 3 replicas"


async def test_restart_a_statefulset_and_refuse_one_that_updates_on_delete(kube: Cluster) -> None:
    """The restartedAt patch on the StatefulSet; updateStrategy OnDelete would replace nothing: refused."""
    kube.fake.add_statefulset("prod", "postgres-read")
    kube.fake.add_statefulset("prod", "legacy", update_strategy="OnDelete")
    action = kube.action(KubernetesRolloutRestart, now=lambda: NOW)
    plan, result = await run(action, kube.ctx(), PG)
    assert plan.steps[1] == ("the StatefulSet controller then replaces its 3 pod(s) (RollingUpdate, one at a "
                             "time from the highest ordinal)")
    patch = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2026-03-01T12:30:05Z"}}}}}
    assert [(r.method, r.path, r.body) for r in kube.fake.writes()] == [("PATCH", STS, patch)]
    assert result.summary == "restarted statefulset prod/postgres-read (restartedAt 2026-03-01T12:30:05Z)"
    kube.fake.requests.clear()
    with pytest.raises(PermanentError, match="updateStrategy is OnDelete"):
        await run(action, kube.ctx(), {"namespace": "prod", "statefulset": "legacy"})
    assert kube.fake.writes() == []


async def test_rollout_undo_of_a_statefulset_applies_the_previous_controller_revision(kube: Cluster) -> None:
    """kubectl's StatefulSetRollbacker: the previous ControllerRevision's data as a strategic merge patch."""
    sts = kube.fake.add_statefulset("prod", "postgres-read", images=["pg:15.1", "pg:15.2", "pg:15.3"])
    # Same labels and a higher revision, another owner: not this StatefulSet's history.
    kube.fake.add_controller_revision(sts, 9, sts["spec"]["template"], owner_uid="someone-else")
    previous = next(r for r in kube.fake.revisions.values() if r["revision"] == 2)
    action = kube.action(KubernetesRolloutUndo)
    plan = await plan_only(kube, action, PG)
    assert plan.steps[0].startswith("roll back statefulset prod/postgres-read from revision 3 (")
    assert plan.steps[1] == "images: app pg:15.3 → pg:15.2"
    assert plan.steps[2] == (f"PATCH statefulset prod/postgres-read (strategic merge patch): the data of "
                             f"ControllerRevision {previous['metadata']['name']}, which replaces "
                             "spec.template")
    await action.execute(kube.ctx(), action.parse_params(PG), roundtrip(plan))
    assert [(r.method, r.path, r.query) for r in kube.fake.requests[:2]] == [
        ("GET", STS, {}),
        ("GET", "/apis/apps/v1/namespaces/prod/controllerrevisions", {"labelSelector": "app=postgres-read"})]
    assert [(r.method, r.path, r.content_type, r.body) for r in kube.fake.writes()] == [
        ("PATCH", STS, STRATEGIC, previous["data"])]
    restored = kube.fake.statefulsets["prod", "postgres-read"]["spec"]["template"]
    assert restored["spec"]["containers"][0]["image"] == "pg:15.2"
    assert "$patch" not in restored
    kube.fake.requests.clear()
    again = await action.execute(kube.ctx(), action.parse_params(PG), roundtrip(plan))
    assert (kube.fake.writes(), again.details["patched"]) == ([], False)


async def test_rollout_undo_of_a_statefulset_without_history_is_permanent(kube: Cluster) -> None:
    kube.fake.add_statefulset("prod", "postgres-read", images=["pg:15.1"])
    with pytest.raises(PermanentError, match=r"has 1 revision\(s\) in its ControllerRevisions"):
        await run(kube.action(KubernetesRolloutUndo), kube.ctx(), PG)


async def test_memory_limit_and_diagnose_of_a_statefulset(kube: Cluster) -> None:
    """set_memory_limit patches the StatefulSet; diagnose reads it, its pods and their events."""
    kube.fake.add_statefulset("prod", "postgres-read", replicas=1)
    kube.fake.add_pod("prod", "postgres-read-0", app="postgres-read", oom_killed=True, restarts=2,
                      owner={"kind": "StatefulSet", "name": "postgres-read", "controller": True})
    raise_it = kube.action(KubernetesSetMemoryLimit)
    _, result = await run(raise_it, kube.ctx(), {**PG, "container": "app", "limit": "1Gi", "max": "2Gi"})
    assert result.summary == "raised the memory limit of app in prod/postgres-read from 512Mi to 1Gi"
    assert [(r.method, r.path) for r in kube.fake.writes()] == [("PATCH", STS)]
    kube.fake.requests.clear()
    _, found = await run(kube.action(KubernetesDiagnose), kube.ctx(), {**PG, "events": 5})
    assert found.details["statefulset"]["replicas"] == 1
    assert found.details["oom_killed"] == ["postgres-read-0/app"]
    assert [(r.path, r.query) for r in kube.fake.requests][:3] == [
        (STS, {}), ("/api/v1/namespaces/prod/pods", {"labelSelector": "app=postgres-read"}),
        ("/api/v1/namespaces/prod/events",
         {"fieldSelector": "involvedObject.kind=StatefulSet,involvedObject.name=postgres-read"})]


# ---- the workloads allow-list --------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "allowed"), [
    pytest.param({"namespace": "prod", "deployment": "web"}, True, id="listed-deployment"),
    pytest.param({"namespace": "prod", "deployment": "api"}, False, id="other-deployment"),
    pytest.param({"namespace": "prod", "statefulset": "postgres-read"}, True, id="listed-statefulset"),
    pytest.param({"namespace": "prod", "statefulset": "web"}, False, id="kind-counts"),
    pytest.param({"namespace": "prod", "statefulset": "postgres-read-x"}, False, id="full-match"),
])
def test_the_workloads_pattern_holds_after_templating(kube: Cluster, raw: dict[str, str],
                                                      allowed: bool) -> None:
    """A target's workloads regex must fully match kind/name, whatever a label rendered."""
    with_target(kube, workloads="deployment/web|statefulset/postgres-read")
    action = KubernetesRolloutRestart()
    params = action.parse_params(raw)
    if allowed:
        action.check_allowed(kube.ctx(), params)
    else:
        with pytest.raises(TargetNotAllowed, match="does not match the workloads"):
            action.check_allowed(kube.ctx(), params)


async def test_delete_pod_names_its_workload_and_keeps_to_the_allowed_ones(kube: Cluster) -> None:
    """A pod is judged by the workload that owns it (a Deployment through its ReplicaSet's hash)."""
    with_target(kube, workloads="deployment/web")
    rs_owner = {"kind": "ReplicaSet", "name": "web-7c9f6d", "controller": True}
    kube.fake.add_pod("prod", "web-7c9f6d-abcde", app="web", owner=rs_owner,
                      labels={"pod-template-hash": "7c9f6d"})
    kube.fake.add_pod("prod", "api-5d4f-x", app="api", labels={"pod-template-hash": "5d4f"},
                      owner={"kind": "ReplicaSet", "name": "api-5d4f", "controller": True})
    kube.fake.add_pod("prod", "debug", app="debug")
    action = kube.action(KubernetesDeletePod)
    plan = await plan_only(kube, action, {"namespace": "prod", "pod": "web-7c9f6d-abcde"})
    assert plan.steps[1] == "its controller ReplicaSet web-7c9f6d (of deployment web) will replace it"
    assert plan.details["workload"] == "deployment/web"
    with pytest.raises(TargetNotAllowed, match="deployment/api does not match"):
        await plan_only(kube, action, {"namespace": "prod", "pod": "api-5d4f-x"})
    with pytest.raises(TargetNotAllowed, match="belongs to no workload"):
        await plan_only(kube, action, {"namespace": "prod", "pod": "debug"})
    assert kube.fake.writes() == []


async def test_diagnose_of_a_pod_keeps_to_the_allowed_workloads(kube: Cluster) -> None:
    """Read-only, yet still inside the allow-list: a pod of another workload is not read further."""
    with_target(kube, workloads="statefulset/postgres-read")
    kube.fake.add_pod("prod", "postgres-read-0", app="postgres-read",
                      owner={"kind": "StatefulSet", "name": "postgres-read", "controller": True})
    kube.fake.add_pod("prod", "api-5d4f-x", app="api", labels={"pod-template-hash": "5d4f"},
                      owner={"kind": "ReplicaSet", "name": "api-5d4f", "controller": True})
    _, found = await run(kube.action(KubernetesDiagnose), kube.ctx(),
                         {"namespace": "prod", "pod": "postgres-read-0"})
    assert found.details["pods"][0]["name"] == "postgres-read-0"
    kube.fake.requests.clear()
    with pytest.raises(TargetNotAllowed, match="deployment/api does not match"):
        await run(kube.action(KubernetesDiagnose), kube.ctx(), {"namespace": "prod", "pod": "api-5d4f-x"})
    assert [r.path for r in kube.fake.requests] == ["/api/v1/namespaces/prod/pods/api-5d4f-x"]


# ---- Argo CD-tracked workloads are not rolled back under it -------------------------------------

@pytest.mark.parametrize(("annotations", "labels", "label_key", "why"), [
    pytest.param({"argocd.argoproj.io/tracking-id": "seekapa-bi-agent:apps/Deployment:prod/web"}, {}, None,
                 "annotation argocd.argoproj.io/tracking-id (application seekapa-bi-agent)", id="annotation"),
    pytest.param({}, {"app.kubernetes.io/instance": "seekapa-bi-agent"}, "app.kubernetes.io/instance",
                 "label app.kubernetes.io/instance (application seekapa-bi-agent)", id="configured-label"),
])
async def test_rollout_undo_refuses_a_workload_argo_cd_tracks(
        kube: Cluster, annotations: dict[str, str], labels: dict[str, str], label_key: str | None,
        why: str) -> None:
    """Argo CD's self-heal would revert the undo: refused with the reason, nothing written."""
    with_target(kube, argocd_instance_label=label_key)
    web = kube.fake.add_history("prod", "web", ["web:1", "web:2"])
    web["metadata"]["annotations"] |= annotations
    web["metadata"]["labels"] |= labels
    with pytest.raises(PermanentError) as caught:
        await run(kube.action(KubernetesRolloutUndo), kube.ctx(), {"namespace": "prod", "deployment": "web"})
    assert str(caught.value) == (
        f"deployment prod/web is tracked by Argo CD ({why}): its self-heal would put the newer template "
        "back, so a rollout undo is refused; roll back through Argo CD (argocd.rollback) or revert the "
        "change in Git")
    assert kube.fake.writes() == []


async def test_the_instance_label_alone_is_helms_too_unless_the_target_says_argo_cd_uses_it(
        kube: Cluster) -> None:
    """app.kubernetes.io/instance is also Helm's label: without argocd_instance_label it does not refuse."""
    web = kube.fake.add_history("prod", "web", ["web:1", "web:2"])
    web["metadata"]["labels"]["app.kubernetes.io/instance"] = "web"
    _, result = await run(kube.action(KubernetesRolloutUndo), kube.ctx(),
                             {"namespace": "prod", "deployment": "web"})
    assert result.details["patched"] is True


# ---- kubernetes.set_env ----------------------------------------------------------------------------

def env_of(cluster: Cluster, name: str = "web") -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = cluster.fake.deployments["prod", name]["spec"]["template"]["spec"][
        "containers"][0].get("env", [])
    return env


@pytest.mark.parametrize(("target_names", "rule_names", "env", "allowed"), [
    pytest.param(["DB_POOL_SIZE"], None, "DB_POOL_SIZE", True, id="target-allows"),
    pytest.param([], ["PYTHONTRACEMALLOC"], "PYTHONTRACEMALLOC", True, id="rule-allows"),
    pytest.param(["DB_POOL_SIZE", "X"], ["X"], "X", True, id="both-allow"),
    pytest.param(["DB_POOL_SIZE"], ["X"], "X", False, id="target-does-not"),
    pytest.param(["X"], ["DB_POOL_SIZE"], "X", False, id="rule-does-not"),
    pytest.param([], None, "DB_POOL_SIZE", False, id="nobody-allows"),
    pytest.param(["DB_POOL_SIZE"], None, "DATABASE_URL", False, id="rendered-elsewhere"),
])
def test_set_env_names_come_from_the_allow_lists(kube: Cluster, target_names: list[str],
                                                 rule_names: list[str] | None, env: str,
                                                 allowed: bool) -> None:
    """The variable must be on the target's env_names and/or the rule's allowed_names (both, when both)."""
    with_target(kube, env_names=target_names)
    action = KubernetesSetEnv()
    raw: dict[str, Any] = {"namespace": "prod", "deployment": "web", "container": "app", "env": env,
                           "value": "1"}
    if rule_names is not None:
        raw["allowed_names"] = rule_names
    params = action.parse_params(raw)
    if allowed:
        action.check_allowed(kube.ctx(), params)
    else:
        with pytest.raises(TargetNotAllowed):
            action.check_allowed(kube.ctx(), params)


@pytest.mark.parametrize(("raw", "field"), [
    pytest.param({"env": "DB-POOL"}, "env", id="name-dash"),
    pytest.param({"env": "1X"}, "env", id="name-digit-first"),
    pytest.param({"value": "a\nb"}, "value", id="value-newline"),
    pytest.param({"value": "x" * 1025}, "value", id="value-too-long"),
    pytest.param({"allowed_names": []}, "allowed_names", id="empty-allow-list"),
    pytest.param({"container": None}, "container", id="no-container"),
])
def test_set_env_params_are_strict(raw: dict[str, Any], field: str) -> None:
    base = {"namespace": "prod", "deployment": "web", "container": "app", "env": "X", "value": "1"}
    with pytest.raises(InvalidParams, match=rf"kubernetes\.set_env: {field}"):
        KubernetesSetEnv().parse_params({k: v for k, v in {**base, **raw}.items() if v is not None})


async def test_set_env_patches_one_variable_and_always_asks(kube: Cluster) -> None:
    """kubectl set env's strategic merge patch; approval always; a retry does nothing."""
    with_target(kube, env_names=["DB_POOL_SIZE"])
    app = container()
    app["env"] = [{"name": "DB_POOL_SIZE", "value": "10"}, {"name": "LOG_LEVEL", "value": "info"}]
    kube.fake.add_deployment("prod", "web", containers=[app])
    action = kube.action(KubernetesSetEnv)
    assert (action.approval_always, action.destructive) == (True, True)
    raw = {"namespace": "prod", "deployment": "web", "container": "app", "env": "DB_POOL_SIZE", "value": "20"}
    plan = await plan_only(kube, action, raw)
    assert plan.steps[:2] == (
        "set DB_POOL_SIZE of container app in deployment prod/web from '10' to '20', as `kubectl set env` "
        "does",
        "PATCH deployment prod/web (strategic merge patch): containers[name=app].env[name=DB_POOL_SIZE]")
    result = await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "env": [{"name": "DB_POOL_SIZE", "value": "20"}]}]}}}}
    assert [(r.method, r.path, r.content_type, r.body) for r in kube.fake.writes()] == [
        ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web", STRATEGIC, patch)]
    assert env_of(kube) == [{"name": "DB_POOL_SIZE", "value": "20"}, {"name": "LOG_LEVEL", "value": "info"}]
    assert result.summary == "set DB_POOL_SIZE of app in deployment prod/web to '20' (was '10')"
    kube.fake.requests.clear()
    again = await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    assert (kube.fake.writes(), again.details["patched"]) == ([], False)


async def test_set_env_replaces_a_value_from_and_adds_an_unset_variable(kube: Cluster) -> None:
    """A variable read from a Secret gets its valueFrom removed (null) so the pod spec stays valid."""
    with_target(kube, env_names=["DB_POOL_SIZE", "PYTHONTRACEMALLOC"])
    app = container()
    app["env"] = [{"name": "DB_POOL_SIZE", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]
    kube.fake.add_deployment("prod", "web", containers=[app])
    action = kube.action(KubernetesSetEnv)
    base = {"namespace": "prod", "deployment": "web", "container": "app"}
    plan, _ = await run(action, kube.ctx(), {**base, "env": "DB_POOL_SIZE", "value": "20"})
    assert plan.details["from"] == "from configMapKeyRef"
    assert kube.fake.writes()[0].body["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "DB_POOL_SIZE", "value": "20", "valueFrom": None}]
    await run(action, kube.ctx(), {**base, "env": "PYTHONTRACEMALLOC", "value": "1"})
    assert env_of(kube) == [{"name": "DB_POOL_SIZE", "value": "20"},
                            {"name": "PYTHONTRACEMALLOC", "value": "1"}]


async def test_set_env_refuses_a_variable_changed_since_the_plan(kube: Cluster) -> None:
    with_target(kube, env_names=["DB_POOL_SIZE"])
    kube.fake.add_deployment("prod", "web")
    action = kube.action(KubernetesSetEnv)
    raw = {"namespace": "prod", "deployment": "web", "container": "app", "env": "DB_POOL_SIZE", "value": "20"}
    plan = await plan_only(kube, action, raw)
    assert plan.details["from"] == "unset"
    kube.fake.deployments["prod", "web"]["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "DB_POOL_SIZE", "value": "50"}]
    with pytest.raises(PermanentError, match="changed since the plan: '50', planned from unset"):
        await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    assert kube.fake.writes() == []


# ---- kubernetes.diagnose: logs and metrics --------------------------------------------------------

@pytest.mark.parametrize(("pattern", "keep", "lines", "read"), [
    pytest.param(None, 3, ["b ERROR x", "c", "d error y"], 3, id="tail"),
    pytest.param("error", 3, ["b ERROR x", "d error y"], 3, id="grep-case-insensitive"),
    pytest.param("(exception|traceback|fatal)", 10, ["FATAL z"], 5, id="alternation"),
])
def test_log_lines_are_tailed_then_filtered(pattern: str | None, keep: int, lines: list[str],
                                           read: int) -> None:
    """`--tail N | grep -iE PATTERN`: the last N lines first, then the ones that match."""
    text = "FATAL z\na\nb ERROR x\nc\nd error y\n"
    assert filter_lines(text, pattern, keep) == (lines, read)


async def test_diagnose_reads_logs_filtered_and_the_previous_instance_after_a_restart(kube: Cluster) -> None:
    """GET pods/{pod}/log with container, tailLines, limitBytes, timestamps; previous=true after a restart."""
    kube.fake.add_deployment("prod", "web", replicas=2)
    kube.fake.add_pod("prod", "web-1", app="web")
    kube.fake.add_pod("prod", "web-2", app="web", restarts=1, ready=False)
    kube.fake.logs |= {
        ("prod", "web-1", "app", False): "t1 GET / 200\nt2 ERROR db timeout\n",
        ("prod", "web-2", "app", False): "t3 starting\n",
        ("prod", "web-2", "app", True): "t0 Traceback\nt0 MemoryError\n",
    }
    action = kube.action(KubernetesDiagnose)
    raw = {"namespace": "prod", "deployment": "web", "events": 0, "log_lines": 100,
           "log_pattern": "error|traceback"}
    plan = await plan_only(kube, action, raw)
    assert plan.steps[2] == ("GET the last 100 log lines of each container, keeping those matching "
                             "/error|traceback/i (at most 5 pods, unhealthy first; a restarted container's "
                             "previous instance too)")
    result = await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    log_reads = [(r.path, r.query) for r in kube.fake.requests if r.path.endswith("/log")]
    # The client writes booleans as Python does; the API server parses them as Go's ParseBool.
    query = {"container": "app", "tailLines": "100", "limitBytes": str(512 * 1024), "timestamps": "True"}
    assert log_reads == [
        ("/api/v1/namespaces/prod/pods/web-2/log", query),
        ("/api/v1/namespaces/prod/pods/web-2/log", {**query, "previous": "True"}),
        ("/api/v1/namespaces/prod/pods/web-1/log", query),
    ]
    assert result.details["logs"] == [
        {"pod": "web-2", "container": "app", "previous": False, "lines": [], "read": 1, "error": None},
        {"pod": "web-2", "container": "app", "previous": True, "lines": ["t0 Traceback", "t0 MemoryError"],
         "read": 2, "error": None},
        {"pod": "web-1", "container": "app", "previous": False, "lines": ["t2 ERROR db timeout"], "read": 2,
         "error": None},
    ]
    assert result.summary.endswith("; 3 log line(s) matching /error|traceback/i")


async def test_a_container_without_a_log_is_recorded_not_fatal(kube: Cluster) -> None:
    kube.fake.add_pod("prod", "web-1", app="web", phase="Pending")
    _, result = await run(kube.action(KubernetesDiagnose), kube.ctx(),
                          {"namespace": "prod", "pod": "web-1", "events": 0, "log_lines": 10})
    (entry,) = result.details["logs"]
    assert entry["lines"] == []
    assert entry["error"].startswith('GET pod prod/web-1/log of app: 400 container "app" in pod')


async def test_diagnose_reports_usage_from_metrics_k8s_io(kube: Cluster) -> None:
    """kubectl top pods: CPU and memory per container, memory as a share of the limit."""
    kube.fake.add_deployment("prod", "web", replicas=1)
    kube.fake.add_pod("prod", "web-1", app="web")
    kube.fake.add_pod("prod", "other", app="other")
    kube.fake.metrics = [
        {"metadata": {"name": name, "namespace": "prod"}, "timestamp": "2026-03-01T12:30:00Z",
         "window": "15s",
         "containers": [{"name": "app", "usage": {"cpu": cpu, "memory": memory}}]}
        for name, cpu, memory in (("web-1", "250000000n", "471859200"), ("other", "5m", "10Mi"))]
    raw = {"namespace": "prod", "deployment": "web", "events": 0, "metrics": True}
    _, result = await run(kube.action(KubernetesDiagnose), kube.ctx(), raw)
    assert ("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/prod/pods") in [
        (r.method, r.path) for r in kube.fake.requests]
    assert result.details["usage"] == [{
        "pod": "web-1", "container": "app", "cpu_millicores": 250, "memory_bytes": 471859200,
        "memory_limit_bytes": 512 * 2**20, "cpu_limit_millicores": None, "memory_percent_of_limit": 87.9,
        "cpu_percent_of_limit": None, "window": "15s", "timestamp": "2026-03-01T12:30:00Z"}]
    assert result.summary.endswith("; most memory: web-1/app 450Mi (87.9% of its limit), 250m CPU")


async def test_a_cluster_without_metrics_server_is_recorded(kube: Cluster) -> None:
    kube.fake.add_pod("prod", "web-1", app="web")
    _, result = await run(kube.action(KubernetesDiagnose), kube.ctx(),
                          {"namespace": "prod", "pod": "web-1", "events": 0, "metrics": True})
    assert result.details["usage"] == []
    assert result.details["metrics_error"].startswith("LIST metrics.k8s.io pods in prod: 404")
    assert result.summary.endswith("; metrics unavailable")


@pytest.mark.parametrize(("raw", "field"), [
    pytest.param({"log_lines": 1001}, "log_lines", id="too-many-lines"),
    pytest.param({"log_lines": 10, "log_pattern": "("}, "params", id="bad-regex"),
    pytest.param({"log_pattern": "error"}, "params", id="pattern-without-lines"),
    pytest.param({"log_lines": 10, "log_pattern": "x" * 201}, "log_pattern", id="pattern-too-long"),
    pytest.param({"statefulset": "pg"}, "params", id="two-objects"),
])
def test_diagnose_log_params_are_bounded(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParams, match=rf"kubernetes\.diagnose: {field}"):
        KubernetesDiagnose().parse_params({"namespace": "prod", "pod": "web-1", **copy.deepcopy(raw)})
