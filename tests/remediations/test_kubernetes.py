"""``kubernetes.*``: the real ``kubernetes`` client against the in-test API server (tests.support.kubeapi)."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestServer

from remediations.base import (
    Action,
    ActionContext,
    InvalidParams,
    PermanentError,
    Plan,
    Result,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.kubernetes.api import KubernetesAction, label_selector
from remediations.kubernetes.diagnose import KubernetesDiagnose
from remediations.kubernetes.env import KubernetesSetEnv
from remediations.kubernetes.memory import KubernetesSetMemoryLimit, new_limit
from remediations.kubernetes.rollout import KubernetesDeletePod, KubernetesRolloutRestart
from remediations.kubernetes.scale import KubernetesScale
from remediations.kubernetes.undo import KubernetesRolloutUndo
from remediations.quantity import format_bytes, parse_quantity
from remediations.registry import Registry
from remediations.replicas import compute
from remediations.targets import HttpTarget, KubernetesTarget
from rules.alert import Alert
from rules.loader import load_rules
from rules.model import ActionSpec
from tests.support.kubeapi import JSON_PATCH, STRATEGIC, FakeKube, container
from tests.support.paths import REPO
from tests.support.sdkpool import SDK_CALLS

ServerFactory = Callable[..., Awaitable[TestServer]]
WEB = {"namespace": "prod", "deployment": "web"}
A = TypeVar("A", bound=KubernetesAction[Any])
NOW = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
ALL_ACTIONS: list[type[KubernetesAction[Any]]] = [
    KubernetesRolloutRestart, KubernetesScale, KubernetesRolloutUndo, KubernetesDeletePod,
    KubernetesSetMemoryLimit, KubernetesSetEnv, KubernetesDiagnose,
]


def alert(**labels: str) -> Alert:
    return Alert(fingerprint="f1", status="firing", labels={"alertname": "X", **labels}, annotations={},
                 starts_at=NOW, starts_at_raw="2026-03-01T12:30:05Z")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def kubeconfig_text(port: int, dead_port: int) -> str:
    return f"""apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {{server: "http://127.0.0.1:{port}"}}
- name: dead
  cluster: {{server: "http://127.0.0.1:{dead_port}"}}
users:
- name: nobody
  user: {{}}
contexts:
- name: fake
  context: {{cluster: fake, user: nobody}}
- name: dead
  context: {{cluster: dead, user: nobody}}
current-context: fake
"""


@dataclass
class Cluster:
    fake: FakeKube
    kubeconfig: Path
    target: KubernetesTarget
    actions: list[KubernetesAction[Any]]

    def ctx(self, target: Any = None, **labels: str) -> ActionContext:
        return ActionContext(calls=SDK_CALLS,
                             decision_id="d1", rule="r1", alert=alert(**labels), target_name="prod-cluster",
                             target=target or self.target, dry_run=False)

    def action(self, cls: type[A], **kwargs: Any) -> A:
        made = cls(request_timeout=kwargs.pop("request_timeout", 5.0), **kwargs)
        self.actions.append(made)
        return made


@pytest.fixture
async def kube(aiohttp_server: ServerFactory, tmp_path: Path) -> AsyncIterator[Cluster]:
    """A fake API server, a kubeconfig pointing at it, and a target with prod and staging allowed."""
    fake = FakeKube()
    server = await aiohttp_server(fake.app())
    kubeconfig = tmp_path / "kubeconfig"
    assert server.port is not None
    kubeconfig.write_text(kubeconfig_text(server.port, free_port()))
    target = KubernetesTarget(kind="kubernetes", kubeconfig=str(kubeconfig), namespaces=["prod", "staging"])
    cluster = Cluster(fake, kubeconfig, target, [])
    yield cluster
    fake.release()
    for made in cluster.actions:
        made.close()


def roundtrip(plan: Plan) -> Plan:
    """The plan as an approval would carry it: through JSON and back."""
    data = json.loads(json.dumps(plan.as_dict()))
    return Plan(action=data["action"], target=data["target"], steps=tuple(data["steps"]),
                destructive=data["destructive"], details=data["details"])


async def run(action: Action[Any], ctx: ActionContext, raw: dict[str, Any]) -> tuple[Plan, Result]:
    params = action.parse_params(raw)
    action.check_allowed(ctx, params)
    plan = await action.plan(ctx, params)
    return plan, await action.execute(ctx, params, roundtrip(plan))


async def plan_only(cluster: Cluster, action: Action[Any], raw: dict[str, Any]) -> Plan:
    """Plan, and prove it only read: GET requests, the same state after."""
    before = cluster.fake.state()
    params = action.parse_params(raw)
    action.check_allowed(cluster.ctx(), params)
    plan = await action.plan(cluster.ctx(), params)
    assert {r.method for r in cluster.fake.requests} <= {"GET"}
    assert cluster.fake.state() == before
    cluster.fake.requests.clear()
    return plan


# ---- params --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "raw"), [
    pytest.param(KubernetesRolloutRestart, {"namespace": "prod", "deployment": "web"}, id="restart"),
    pytest.param(KubernetesRolloutRestart, {"namespace": "a" * 63, "deployment": "web.v2-x"},
                 id="long-ns-dotted"),
    pytest.param(KubernetesScale, {**WEB, "replicas": 5}, id="scale-count"),
    pytest.param(KubernetesScale, {**WEB, "replicas": "5"}, id="scale-text"),
    pytest.param(KubernetesScale, {**WEB, "replicas": "+2"}, id="scale-up"),
    pytest.param(KubernetesScale, {**WEB, "replicas": "-1"}, id="scale-down"),
    pytest.param(KubernetesScale, {"namespace": "prod", "deployment": "web", "replicas": "x1.5",
                                   "min": 2, "max": 10}, id="scale-factor"),
    pytest.param(KubernetesScale, {"namespace": "prod", "deployment": "web", "replicas": 0,
                                   "allow_zero": True}, id="scale-zero-allowed"),
    pytest.param(KubernetesRolloutUndo, {"namespace": "prod", "deployment": "web"}, id="undo"),
    pytest.param(KubernetesDeletePod, {"namespace": "prod", "pod": "web-5d4f-x2"}, id="delete-pod"),
    pytest.param(KubernetesSetMemoryLimit, {"namespace": "prod", "deployment": "web", "container": "app",
                                            "factor": 1.5, "max": "4Gi"}, id="memory-factor"),
    pytest.param(KubernetesSetMemoryLimit, {"namespace": "prod", "deployment": "web", "container": "app",
                                            "limit": "2Gi", "max": "4Gi"}, id="memory-limit"),
    pytest.param(KubernetesDiagnose, {"namespace": "prod", "deployment": "web"}, id="diagnose-deployment"),
    pytest.param(KubernetesDiagnose, {"namespace": "prod", "pod": "web-1", "events": 0}, id="diagnose-pod"),
])
def test_good_params_are_accepted(cls: type[KubernetesAction[Any]], raw: dict[str, Any]) -> None:
    """Well-formed params validate."""
    cls().parse_params(raw)


@pytest.mark.parametrize(("cls", "raw", "where"), [
    pytest.param(KubernetesRolloutRestart, {"namespace": "Prod", "deployment": "web"}, "namespace",
                 id="ns-upper"),
    pytest.param(KubernetesRolloutRestart, {"namespace": "a" * 64, "deployment": "web"}, "namespace",
                 id="ns-too-long"),
    pytest.param(KubernetesRolloutRestart, {"namespace": "prod.x", "deployment": "web"}, "namespace",
                 id="ns-dot"),
    pytest.param(KubernetesRolloutRestart, {"namespace": "prod", "deployment": "web/../x"}, "deployment",
                 id="name-slash"),
    pytest.param(KubernetesRolloutRestart, {"namespace": "prod", "deployment": "-web"}, "deployment",
                 id="name-leading-dash"),
    pytest.param(KubernetesRolloutRestart, {"namespace": "prod", "deployment": ""}, "deployment",
                 id="name-empty"),
    pytest.param(KubernetesRolloutRestart, {"namespace": "prod"}, "params", id="name-missing"),
    pytest.param(KubernetesRolloutRestart, {"namespace": "prod", "deployment": "a", "statefulset": "b"},
                 "params", id="two-workloads"),
    pytest.param(KubernetesScale, {"namespace": "prod", "statefulset": "Pg", "replicas": 2}, "statefulset",
                 id="statefulset-upper"),
    pytest.param(KubernetesRolloutRestart, {"namespace": "prod", "deployment": "web", "force": True}, "force",
                 id="unknown-param"),
    pytest.param(KubernetesDeletePod, {"namespace": "prod", "pod": "web pod"}, "pod", id="pod-space"),
    pytest.param(KubernetesScale, {"namespace": "prod", "deployment": "web", "replicas": "x0"}, "replicas",
                 id="factor-zero"),
    pytest.param(KubernetesScale, {"namespace": "prod", "deployment": "web", "replicas": "++2"}, "replicas",
                 id="double-sign"),
    pytest.param(KubernetesScale, {"namespace": "prod", "deployment": "web", "replicas": 1.5}, "replicas",
                 id="fraction"),
    pytest.param(KubernetesScale, {"namespace": "prod", "deployment": "web", "replicas": -1}, "replicas",
                 id="negative"),
    pytest.param(KubernetesScale, {"namespace": "prod", "deployment": "web", "replicas": "five"}, "replicas",
                 id="words"),
    pytest.param(KubernetesScale, {"namespace": "prod", "deployment": "web", "replicas": 0}, "params",
                 id="zero-not-allowed"),
    pytest.param(KubernetesScale, {"namespace": "prod", "deployment": "web", "replicas": 3, "min": 5,
                                   "max": 2}, "params", id="min-above-max"),
    pytest.param(KubernetesSetMemoryLimit, {"namespace": "prod", "deployment": "web", "container": "app",
                                            "factor": 1.5, "limit": "2Gi", "max": "4Gi"}, "params",
                 id="factor-and-limit"),
    pytest.param(KubernetesSetMemoryLimit, {"namespace": "prod", "deployment": "web", "container": "app",
                                            "max": "4Gi"}, "params", id="neither-factor-nor-limit"),
    pytest.param(KubernetesSetMemoryLimit, {"namespace": "prod", "deployment": "web", "container": "app",
                                            "factor": 1, "max": "4Gi"}, "factor", id="factor-not-raising"),
    pytest.param(KubernetesSetMemoryLimit, {"namespace": "prod", "deployment": "web", "container": "app",
                                            "factor": 11, "max": "4Gi"}, "factor", id="factor-too-big"),
    pytest.param(KubernetesSetMemoryLimit, {"namespace": "prod", "deployment": "web", "container": "app",
                                            "limit": "4GB", "max": "4Gi"}, "limit", id="limit-not-quantity"),
    pytest.param(KubernetesSetMemoryLimit, {"namespace": "prod", "deployment": "web", "container": "app",
                                            "limit": "0", "max": "4Gi"}, "limit", id="limit-zero"),
    pytest.param(KubernetesSetMemoryLimit, {"namespace": "prod", "deployment": "web", "container": "app",
                                            "limit": "2Gi"}, "max", id="max-missing"),
    pytest.param(KubernetesSetMemoryLimit, {"namespace": "prod", "deployment": "web", "container": "App",
                                            "limit": "2Gi", "max": "4Gi"}, "container", id="container-upper"),
    pytest.param(KubernetesDiagnose, {"namespace": "prod", "deployment": "web", "pod": "web-1"}, "params",
                 id="deployment-and-pod"),
    pytest.param(KubernetesDiagnose, {"namespace": "prod"}, "params", id="neither-deployment-nor-pod"),
    pytest.param(KubernetesDiagnose, {"namespace": "prod", "pod": "p", "events": 201}, "events",
                 id="too-many-events"),
])
def test_bad_params_are_refused(cls: type[KubernetesAction[Any]], raw: dict[str, Any], where: str) -> None:
    """Bad params are InvalidParams naming the action and the field."""
    with pytest.raises(InvalidParams, match=rf"^{cls.name}: {where}: "):
        cls().parse_params(raw)


def test_a_rendered_count_is_a_count() -> None:
    """A template renders "5"; the params hold the number 5, the same as an absolute count."""
    params = KubernetesScale().parse_params({"namespace": "prod", "deployment": "web", "replicas": "5"})
    assert params.replicas == 5


# ---- allow-list, target, subject -----------------------------------------------------------------

@pytest.mark.parametrize(("namespace", "outcome"), [
    pytest.param("prod", None, id="allowed"),
    pytest.param("staging", None, id="allowed-too"),
    pytest.param("kube-system", TargetNotAllowed, id="outside-allow-list"),
    pytest.param("prod/../kube-system", InvalidParams, id="path-tricks-are-not-names"),
    pytest.param("prod,kube-system", InvalidParams, id="list-tricks-are-not-names"),
])
@pytest.mark.parametrize("cls", ALL_ACTIONS, ids=lambda c: c.name)
def test_allow_list_is_checked_after_templating(
    cls: type[KubernetesAction[Any]], namespace: str, outcome: type[Exception] | None,
) -> None:
    """A namespace taken from a label is checked after rendering, so no label steers outside the list."""
    extra: dict[str, dict[str, Any]] = {"kubernetes.scale": {"replicas": "+1"},
             "kubernetes.set_memory_limit": {"container": "app", "factor": "1.5", "max": "4Gi"},
             "kubernetes.set_env": {"container": "app", "env": "X", "value": "1", "allowed_names": ["X"]}}
    name_key = "pod" if cls is KubernetesDeletePod else "deployment"
    spec = ActionSpec(action=cls.name, target="prod-cluster",
                      params={"namespace": "{{ labels.namespace }}", name_key: "{{ labels.app }}",
                              **extra.get(cls.name, {})})
    action = cls()
    target = KubernetesTarget(kind="kubernetes", namespaces=["prod", "staging"])
    ctx = ActionContext(calls=SDK_CALLS,
                        decision_id="d", rule="r", alert=alert(namespace=namespace, app="web"),
                        target_name="prod-cluster", target=target, dry_run=True)
    if outcome is None:
        action.check_allowed(ctx, action.parse_params(spec.render_params(ctx.alert)))
        return
    with pytest.raises(outcome):
        action.check_allowed(ctx, action.parse_params(spec.render_params(ctx.alert)))


@pytest.mark.parametrize("cls", ALL_ACTIONS, ids=lambda c: c.name)
def test_a_target_of_another_kind_is_a_permanent_error(cls: type[KubernetesAction[Any]]) -> None:
    """A kubernetes action pointed at an http target: a permanent error, not an allow-list one."""
    action = cls()
    raw: dict[str, Any] = {"namespace": "prod", "pod": "web-1"} if cls is KubernetesDeletePod else {
        **WEB, **({"replicas": 2} if cls is KubernetesScale else {}),
        **({"container": "app", "limit": "1Gi", "max": "2Gi"} if cls is KubernetesSetMemoryLimit else {}),
        **({"container": "app", "env": "X", "value": "1"} if cls is KubernetesSetEnv else {})}
    ctx = ActionContext(calls=SDK_CALLS,
                        decision_id="d", rule="r", alert=alert(), target_name="api", dry_run=True,
                        target=HttpTarget(kind="http", base_url="http://x"))
    with pytest.raises(PermanentError, match="needs a kubernetes target") as caught:
        action.check_allowed(ctx, action.parse_params(raw))
    assert type(caught.value) is PermanentError


def test_subject_names_the_object_so_actions_on_it_share_a_lock() -> None:
    """A restart and a scale of one Deployment have one subject; a pod has its own."""
    ctx = ActionContext(calls=SDK_CALLS,
                        decision_id="d", rule="r", alert=alert(), target_name="prod-cluster", dry_run=True,
                        target=KubernetesTarget(kind="kubernetes", namespaces=["prod"]))
    restart, scale = KubernetesRolloutRestart(), KubernetesScale()
    assert restart.subject(ctx, restart.parse_params({"namespace": "prod", "deployment": "web"})) == \
        "prod-cluster/prod/deployment/web"
    assert scale.subject(ctx, scale.parse_params({**WEB, "replicas": 2})) == \
        "prod-cluster/prod/deployment/web"
    delete, diagnose = KubernetesDeletePod(), KubernetesDiagnose()
    assert delete.subject(ctx, delete.parse_params({"namespace": "prod", "pod": "web-1"})) == \
        "prod-cluster/prod/pod/web-1"
    assert diagnose.subject(ctx, diagnose.parse_params({"namespace": "prod", "pod": "web-1"})) == \
        "prod-cluster/prod/pod/web-1"


WORKLOADS = ("get apps/deployments", "patch apps/deployments", "get apps/statefulsets",
             "patch apps/statefulsets")


@pytest.mark.parametrize(("cls", "destructive", "read_only", "permissions"), [
    (KubernetesRolloutRestart, True, False, WORKLOADS),
    (KubernetesScale, True, False, ("get apps/deployments/scale", "patch apps/deployments/scale",
                                    "get apps/statefulsets/scale", "patch apps/statefulsets/scale")),
    (KubernetesRolloutUndo, True, False,
     ("get apps/deployments", "list apps/replicasets", "patch apps/deployments",
      "get apps/statefulsets", "list apps/controllerrevisions", "patch apps/statefulsets")),
    (KubernetesDeletePod, True, False, ("get pods", "delete pods")),
    (KubernetesSetMemoryLimit, True, False, WORKLOADS),
    (KubernetesSetEnv, True, False, WORKLOADS),
    (KubernetesDiagnose, False, True, ("get apps/deployments", "get apps/statefulsets", "get pods",
                                       "list pods", "list events", "get pods/log",
                                       "list metrics.k8s.io/pods")),
], ids=lambda v: getattr(v, "name", None) if isinstance(v, type) else None)
def test_flags_and_permissions(cls: type[KubernetesAction[Any]], destructive: bool, read_only: bool,
                               permissions: tuple[str, ...]) -> None:
    """Each action says honestly whether it changes things and which RBAC verbs it needs."""
    assert (cls.destructive, cls.read_only, cls.permissions) == (destructive, read_only, permissions)
    assert cls.target_kinds == frozenset({"kubernetes"})


# ---- pure logic: replica arithmetic, quantities ----------------------------------------------------

@pytest.mark.parametrize(("current", "asked", "low", "high", "to", "clamp"), [
    pytest.param(3, 5, 0, 100, 5, None, id="count"),
    pytest.param(3, "+2", 0, 100, 5, None, id="plus"),
    pytest.param(3, "-1", 0, 100, 2, None, id="minus"),
    pytest.param(3, "x1.5", 0, 100, 5, None, id="factor-rounds-up"),
    pytest.param(10, "x1.1", 0, 100, 11, None, id="factor-is-decimal-not-float"),
    pytest.param(3, "x0.5", 0, 100, 2, None, id="factor-down-rounds-up"),
    pytest.param(3, "x1.5", 0, 4, 4, "max 4", id="clamped-max"),
    pytest.param(3, "-5", 1, 100, 1, "min 1", id="clamped-min"),
    pytest.param(3, "-5", 0, 100, 0, "min 0", id="negative-to-zero"),
    pytest.param(0, "x2", 0, 100, 0, None, id="factor-of-zero"),
    pytest.param(5, 5, 0, 100, 5, None, id="unchanged"),
])
def test_replica_arithmetic(current: int, asked: int | str, low: int, high: int, to: int,
                            clamp: str | None) -> None:
    """Counts, changes and factors (rounded up, in decimal) land within the bounds."""
    change = compute(current, asked, low=low, high=high)
    assert (change.replicas, change.clamp) == (to, clamp)


def test_conflicting_bounds_are_a_permanent_error() -> None:
    """min above max (params against target) cannot be satisfied: permanent, not retried."""
    with pytest.raises(PermanentError, match="min 5 is above max 3"):
        compute(2, 4, low=5, high=3)


@pytest.mark.parametrize(("replicas", "destructive"), [
    (5, True), ("-1", True), ("x0.5", True), ("+2", False), ("x1", False), ("x1.5", False),
])
def test_scale_is_destructive_unless_it_can_only_grow(replicas: int | str, destructive: bool) -> None:
    """Without reading the cluster, a count, a minus or a factor below 1 may scale down."""
    action = KubernetesScale()
    params = action.parse_params({"namespace": "prod", "deployment": "web", "replicas": replicas})
    assert action.is_destructive(params) is destructive


@pytest.mark.parametrize(("text", "value"), [
    ("512Mi", 512 * 2**20), ("1.5Gi", 3 * 2**29), ("1Ki", 1024), ("129M", 129 * 10**6), ("1G", 10**9),
    ("128974848", 128974848), ("129e6", 129 * 10**6), ("1E3", 1000), ("1E", 10**18), ("1k", 1000),
    ("100m", Decimal("0.1")), (".5Gi", 2**29), ("1.", 1),
])
def test_quantities_parse_as_kubernetes_reads_them(text: str, value: int | Decimal) -> None:
    """Binary and decimal suffixes, exponents and bare numbers mean what the API server says."""
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["4GB", "1Mb", "Gi", "1 Gi", "0x10", "1.2.3", "", "1e", "Mi1"])
def test_malformed_quantities_are_refused(text: str) -> None:
    """Anything the API server would refuse is refused here too."""
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(("value", "binary", "text"), [
    (768 * 2**20, True, "768Mi"), (2**30, True, "1Gi"), (1536 * 2**20, True, "1536Mi"),
    (10**9, True, "1G"), (1500 * 10**6, False, "1500M"), (2**30, False, "1Gi"), (1000, True, "1k"),
    (1023, True, "1023"),
])
def test_bytes_format_with_the_largest_whole_suffix(value: int, binary: bool, text: str) -> None:
    """A limit is written with the largest suffix that divides it, in the family of its source."""
    assert format_bytes(value, binary=binary) == text
    assert parse_quantity(text) == value


@pytest.mark.parametrize(("current", "change", "expected"), [
    pytest.param("512Mi", {"factor": "1.5"}, "768Mi", id="factor"),
    pytest.param("1Gi", {"factor": "1.3"}, "1332Mi", id="factor-rounds-up-to-mi"),
    pytest.param("1G", {"factor": "1.5"}, "1500M", id="decimal-stays-decimal"),
    pytest.param("1Gi", {"factor": "8"}, "4Gi", id="capped"),
    pytest.param("1Gi", {"limit": "3Gi"}, "3Gi", id="limit"),
    pytest.param("1Gi", {"limit": "3000M"}, "3G", id="limit-decimal"),
    pytest.param("1Gi", {"limit": "6Gi"}, "4Gi", id="limit-capped"),
])
def test_new_limit(current: str, change: dict[str, str], expected: str) -> None:
    """Factor or value, bounded by max, written as a readable quantity."""
    params = KubernetesSetMemoryLimit().parse_params(
        {"namespace": "prod", "deployment": "web", "container": "app", "max": "4Gi", **change})
    assert new_limit(current, params)[1] == expected


@pytest.mark.parametrize(("selector", "text"), [
    ({"matchLabels": {"app": "web", "tier": "fe"}}, "app=web,tier=fe"),
    ({"matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]},
                           {"key": "x", "operator": "Exists"}, {"key": "y", "operator": "DoesNotExist"},
                           {"key": "z", "operator": "NotIn", "values": ["q"]}]},
     "env in (a,b),x,!y,z notin (q)"),
])
def test_label_selector(selector: dict[str, Any], text: str) -> None:
    """A Deployment's selector becomes the labelSelector query the API takes."""
    assert label_selector(selector) == text


# ---- kubernetes.rollout_restart -------------------------------------------------------------------

async def test_rollout_restart_patches_the_restarted_at_annotation_only(kube: Cluster) -> None:
    """plan only reads; execute sends kubectl's strategic merge patch, and only it, once."""
    kube.fake.add_deployment("prod", "web")
    other = kube.fake.add_deployment("prod", "api")
    untouched = copy.deepcopy(other)
    action = kube.action(KubernetesRolloutRestart, now=lambda: NOW)
    raw = {"namespace": "prod", "deployment": "web"}
    plan = await plan_only(kube, action, raw)
    assert plan.steps[0].startswith("PATCH deployment prod/web (strategic merge patch): set the pod template "
                                    "annotation kubectl.kubernetes.io/restartedAt")
    assert plan.destructive
    result = await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    assert [r.method for r in kube.fake.requests] == ["GET", "PATCH"]  # paused since the plan? refused
    assert [(r.method, r.path, r.query, r.content_type, r.body) for r in kube.fake.writes()] == [
        ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web", {"fieldManager": "remediator"}, STRATEGIC,
         {"spec": {"template": {"metadata": {"annotations": {
             "kubectl.kubernetes.io/restartedAt": "2026-03-01T12:30:05Z"}}}}}),
    ]
    web = kube.fake.deployments["prod", "web"]
    assert web["spec"]["template"]["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/restartedAt": "2026-03-01T12:30:05Z"}
    assert kube.fake.deployments["prod", "api"] == untouched
    assert result.summary == "restarted deployment prod/web (restartedAt 2026-03-01T12:30:05Z)"


async def test_rollout_restart_refuses_a_paused_deployment(kube: Cluster) -> None:
    """As kubectl does: a paused Deployment is not restarted, and nothing is written."""
    kube.fake.add_deployment("prod", "web", paused=True)
    action = kube.action(KubernetesRolloutRestart)
    with pytest.raises(PermanentError, match="paused"):
        await action.plan(kube.ctx(), action.parse_params({"namespace": "prod", "deployment": "web"}))
    assert kube.fake.writes() == []


# ---- kubernetes.scale -----------------------------------------------------------------------------

@pytest.mark.parametrize(("current", "raw", "step", "to"), [
    pytest.param(3, {"replicas": "x1.5", "max": 4},
                 "scale prod/web from 3 to 4 replicas (asked x1.5, clamped to max 4)", 4,
                 id="factor-clamped"),
    pytest.param(3, {"replicas": "+2"}, "scale prod/web from 3 to 5 replicas (asked +2)", 5, id="up"),
    pytest.param(4, {"replicas": "-1"}, "scale prod/web from 4 to 3 replicas (asked -1)", 3, id="down"),
    pytest.param(3, {"replicas": 50},
                 "scale prod/web from 3 to 10 replicas (asked 50, clamped to max 10)", 10,
                 id="target-max"),
    pytest.param(3, {"replicas": "-5"}, "scale prod/web from 3 to 2 replicas (asked -5, clamped to min 2)", 2,
                 id="target-min"),
    pytest.param(3, {"replicas": "-3", "allow_zero": True, "min": 0},
                 "scale prod/web from 3 to 2 replicas (asked -3, clamped to min 2)", 2,
                 id="allow-zero-still-bounded-by-target"),
])
async def test_scale_patches_the_scale_subresource(kube: Cluster, current: int, raw: dict[str, Any],
                                                   step: str, to: int) -> None:
    """plan reads the scale subresource and says from/to; execute patches spec.replicas, nothing else."""
    kube.target = kube.target.model_copy(update={"min_replicas": 2, "max_replicas": 10})
    kube.fake.add_deployment("prod", "web", replicas=current)
    action = kube.action(KubernetesScale)
    full = {"namespace": "prod", "deployment": "web", **raw}
    plan = await plan_only(kube, action, full)
    assert plan.steps[0] == step
    assert plan.destructive is (to < current)
    await action.execute(kube.ctx(), action.parse_params(full), roundtrip(plan))
    scale_path = "/apis/apps/v1/namespaces/prod/deployments/web/scale"
    assert [(r.method, r.path, r.body) for r in kube.fake.requests] == [
        ("GET", scale_path, None), ("PATCH", scale_path, {"spec": {"replicas": to}})]
    assert [(r.query, r.content_type) for r in kube.fake.writes()] == [
        ({"fieldManager": "remediator"}, STRATEGIC)]
    assert kube.fake.deployments["prod", "web"]["spec"]["replicas"] == to


async def test_scale_to_the_current_count_does_nothing(kube: Cluster) -> None:
    """Asked for what is already there: the plan says so and execute sends nothing."""
    kube.fake.add_deployment("prod", "web", replicas=5)
    action = kube.action(KubernetesScale)
    raw = {"namespace": "prod", "deployment": "web", "replicas": 5}
    plan = await plan_only(kube, action, raw)
    assert plan.steps == ("deployment prod/web already has 5 replicas (asked 5): nothing to do",)
    result = await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    assert kube.fake.requests == []
    assert result.details["patched"] is False


async def test_scale_to_zero_needs_allow_zero(kube: Cluster) -> None:
    """A change that would reach 0 is refused without allow_zero and done with it."""
    kube.fake.add_deployment("prod", "web", replicas=2)
    action = kube.action(KubernetesScale)
    with pytest.raises(PermanentError, match="needs allow_zero"):
        await action.plan(kube.ctx(), action.parse_params({"namespace": "prod", "deployment": "web",
                                                           "replicas": "-2"}))
    await run(action, kube.ctx(), {**WEB, "replicas": "-2", "allow_zero": True})
    assert kube.fake.deployments["prod", "web"]["spec"]["replicas"] == 0


async def test_scale_refuses_a_count_that_moved_since_the_plan(kube: Cluster) -> None:
    """An approved "3 → 5" is not applied to a Deployment that now has 7: permanent, nothing written."""
    kube.fake.add_deployment("prod", "web", replicas=3)
    action = kube.action(KubernetesScale)
    params = action.parse_params({"namespace": "prod", "deployment": "web", "replicas": "+2"})
    plan = await action.plan(kube.ctx(), params)
    kube.fake.deployments["prod", "web"]["spec"]["replicas"] = 7
    with pytest.raises(PermanentError, match="changed since the plan"):
        await action.execute(kube.ctx(), params, roundtrip(plan))
    assert kube.fake.writes() == []


# ---- kubernetes.rollout_undo ----------------------------------------------------------------------

def _without_hash(template: dict[str, Any]) -> dict[str, Any]:
    template = copy.deepcopy(template)
    del template["metadata"]["labels"]["pod-template-hash"]
    return template


async def test_rollout_undo_puts_back_the_previous_revision(kube: Cluster) -> None:
    """kubectl's JSON patch: revision 2's template (minus its hash) and annotations; a retry does nothing."""
    web = kube.fake.add_history("prod", "web", ["web:1", "web:2", "web:3"])
    web["metadata"]["annotations"] |= {"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "a"}
    # Same labels, higher revision, but another owner: not part of this Deployment's history.
    kube.fake.add_replica_set(web, 9, web["spec"]["template"], owner_uid="someone-else", name="impostor")
    previous = next(rs for rs in kube.fake.replicasets.values()
                    if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
    action = kube.action(KubernetesRolloutUndo)
    raw = {"namespace": "prod", "deployment": "web"}
    plan = await plan_only(kube, action, raw)
    name = previous["metadata"]["name"]
    assert plan.steps[:2] == (
        f"roll back deployment prod/web from revision 3 ({plan.details['from']['replicaset']}) to revision 2 "
        f"({name}), as `kubectl rollout undo` does",
        "images: app web:3 → web:2",
    )
    await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    expected = [
        {"op": "replace", "path": "/spec/template", "value": _without_hash(previous["spec"]["template"])},
        {"op": "replace", "path": "/metadata/annotations",
         "value": {"deployment.kubernetes.io/revision": "3", "note": "revision 2",
                   "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
    ]
    reads = [("GET", "/apis/apps/v1/namespaces/prod/deployments/web", {}),
             ("GET", "/apis/apps/v1/namespaces/prod/replicasets", {"labelSelector": "app=web"})]
    assert [(r.method, r.path, r.query) for r in kube.fake.requests[:2]] == reads
    assert [(r.method, r.path, r.content_type, r.body) for r in kube.fake.writes()] == [
        ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web", JSON_PATCH, expected)]
    restored = kube.fake.deployments["prod", "web"]["spec"]["template"]
    assert restored == _without_hash(previous["spec"]["template"])
    kube.fake.requests.clear()
    again = await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    assert kube.fake.writes() == []
    assert again.details["patched"] is False


async def test_rollout_undo_refuses_a_history_that_moved_since_the_plan(kube: Cluster) -> None:
    """A new rollout between plan and approval: the approved undo is not applied to it."""
    web = kube.fake.add_history("prod", "web", ["web:1", "web:2"])
    action = kube.action(KubernetesRolloutUndo)
    params = action.parse_params(WEB)
    plan = await action.plan(kube.ctx(), params)
    template = copy.deepcopy(web["spec"]["template"])
    template["spec"]["containers"][0]["image"] = "web:3"
    kube.fake.add_replica_set(web, 3, template)
    web["spec"]["template"] = template
    with pytest.raises(PermanentError, match="changed since the plan: revision 3"):
        await action.execute(kube.ctx(), params, roundtrip(plan))
    assert kube.fake.writes() == []


async def test_rollout_undo_without_a_previous_revision_is_permanent(kube: Cluster) -> None:
    """One revision only (another owner's ReplicaSet does not count): a clear permanent error."""
    web = kube.fake.add_history("prod", "web", ["web:1"])
    kube.fake.add_replica_set(web, 5, web["spec"]["template"], owner_uid="someone-else")
    action = kube.action(KubernetesRolloutUndo)
    with pytest.raises(PermanentError, match="no previous revision to roll back to: deployment web has 1"):
        await action.plan(kube.ctx(), action.parse_params({"namespace": "prod", "deployment": "web"}))
    assert kube.fake.writes() == []


async def test_rollout_undo_when_the_template_already_matches_does_nothing(kube: Cluster) -> None:
    """As kubectl's "skipped rollback": the previous revision's template is already the current one."""
    web = kube.fake.add_history("prod", "web", ["web:1", "web:2"])
    previous = next(rs for rs in kube.fake.replicasets.values()
                    if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1")
    web["spec"]["template"] = _without_hash(previous["spec"]["template"])
    action = kube.action(KubernetesRolloutUndo)
    plan, result = await run(action, kube.ctx(), {"namespace": "prod", "deployment": "web"})
    assert "nothing to do" in plan.steps[0]
    assert kube.fake.writes() == []
    assert result.details["patched"] is False


# ---- kubernetes.delete_pod ------------------------------------------------------------------------

async def test_delete_pod_deletes_that_pod_only(kube: Cluster) -> None:
    """plan reads the pod and says who replaces it; execute sends one DELETE for it."""
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d4f", "uid": "u",
             "controller": True}
    kube.fake.add_pod("prod", "web-5d4f-a", app="web", owner=owner)
    kube.fake.add_pod("prod", "web-5d4f-b", app="web", owner=owner)
    action = kube.action(KubernetesDeletePod)
    raw = {"namespace": "prod", "pod": "web-5d4f-a"}
    plan = await plan_only(kube, action, raw)
    assert plan.steps == ("DELETE pod prod/web-5d4f-a (phase Running, node node-1, grace period 30s)",
                          "its controller ReplicaSet web-5d4f will replace it")
    await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    uid = plan.details["uid"]
    assert [(r.method, r.path, r.query, r.body) for r in kube.fake.requests] == [
        ("DELETE", "/api/v1/namespaces/prod/pods/web-5d4f-a", {}, {"preconditions": {"uid": uid}})]
    assert set(kube.fake.pods) == {("prod", "web-5d4f-b")}


async def test_delete_pod_never_deletes_a_replacement_with_the_same_name(kube: Cluster) -> None:
    """A StatefulSet pod replaced since the plan keeps its name, not its uid: it is not deleted."""
    kube.fake.add_pod("prod", "db-0", app="db")
    action = kube.action(KubernetesDeletePod)
    raw = {"namespace": "prod", "pod": "db-0"}
    plan = await plan_only(kube, action, raw)
    del kube.fake.pods["prod", "db-0"]
    replacement = kube.fake.add_pod("prod", "db-0", app="db")
    with pytest.raises(PermanentError, match="no longer the pod the plan named"):
        await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    assert kube.fake.pods["prod", "db-0"] is replacement


async def test_rollout_restart_refuses_a_deployment_paused_since_the_plan(kube: Cluster) -> None:
    """Paused after the plan (while it waited for approval): execute reads again and refuses."""
    kube.fake.add_deployment("prod", "web")
    action = kube.action(KubernetesRolloutRestart, now=lambda: NOW)
    raw = {"namespace": "prod", "deployment": "web"}
    plan = await plan_only(kube, action, raw)
    kube.fake.deployments["prod", "web"]["spec"]["paused"] = True
    with pytest.raises(PermanentError):
        await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    assert kube.fake.writes() == []


async def test_delete_pod_plan_warns_when_nothing_recreates_it(kube: Cluster) -> None:
    """A bare pod is not replaced; the plan a human approves says so."""
    kube.fake.add_pod("prod", "debug", app="debug")
    action = kube.action(KubernetesDeletePod)
    plan = await plan_only(kube, action, {"namespace": "prod", "pod": "debug"})
    assert plan.steps[1] == "it has no controller: nothing will recreate it"


# ---- kubernetes.set_memory_limit ------------------------------------------------------------------

async def test_set_memory_limit_raises_one_container(kube: Cluster) -> None:
    """A strategic merge patch on the container by name; the sidecar's limit stays as it was."""
    kube.fake.add_deployment("prod", "web", containers=[container("app", memory="512Mi"),
                                                        container("sidecar", memory="64Mi")])
    action = kube.action(KubernetesSetMemoryLimit)
    raw = {"namespace": "prod", "deployment": "web", "container": "app", "factor": 1.5, "max": "4Gi"}
    plan = await plan_only(kube, action, raw)
    assert plan.steps[0] == ("raise the memory limit of container app in deployment prod/web "
                             "from 512Mi to 768Mi (asked x1.5)")
    await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "resources": {"limits": {"memory": "768Mi"}}}]}}}}
    assert [(r.method, r.path, r.query, r.content_type, r.body) for r in kube.fake.writes()] == [
        ("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web", {"fieldManager": "remediator"}, STRATEGIC,
         patch)]
    containers = kube.fake.deployments["prod", "web"]["spec"]["template"]["spec"]["containers"]
    assert [c["resources"] for c in containers] == [
        {"limits": {"memory": "768Mi"}, "requests": {"memory": "512Mi"}},
        {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}},
    ]
    kube.fake.requests.clear()
    again = await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))  # a retry
    assert kube.fake.writes() == []
    assert again.details["patched"] is False


async def test_set_memory_limit_refuses_a_limit_that_moved_since_the_plan(kube: Cluster) -> None:
    """Someone set 2Gi after a plan of 512Mi → 1Gi: applying it would lower the limit; nothing written."""
    web = kube.fake.add_deployment("prod", "web")
    action = kube.action(KubernetesSetMemoryLimit)
    params = action.parse_params({**WEB, "container": "app", "limit": "1Gi", "max": "4Gi"})
    plan = await action.plan(kube.ctx(), params)
    web["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] = "2Gi"
    with pytest.raises(PermanentError, match="changed since the plan: 2Gi, planned from 512Mi to 1Gi"):
        await action.execute(kube.ctx(), params, roundtrip(plan))
    assert kube.fake.writes() == []


@pytest.mark.parametrize(("memory", "change", "step"), [
    pytest.param("2Gi", {"limit": "1Gi"}, "container app of deployment prod/web has memory limit 2Gi, "
                 "not below 1Gi (asked 1Gi): nothing to do, a limit is never lowered", id="lower"),
    pytest.param("4Gi", {"factor": 2}, "container app of deployment prod/web has memory limit 4Gi, not below "
                 "4Gi (asked x2, capped at max 4Gi): nothing to do, a limit is never lowered", id="at-max"),
    pytest.param(None, {"limit": "1Gi"}, "container app of deployment prod/web has no memory limit, and "
                 "setting one would lower it: nothing to do", id="unlimited"),
])
async def test_set_memory_limit_never_lowers(kube: Cluster, memory: str | None, change: dict[str, Any],
                                             step: str) -> None:
    """A result that is not higher is planned as nothing to do, and execute writes nothing."""
    kube.fake.add_deployment("prod", "web", containers=[container("app", memory=memory)])
    action = kube.action(KubernetesSetMemoryLimit)
    raw = {"namespace": "prod", "deployment": "web", "container": "app", "max": "4Gi", **change}
    plan = await plan_only(kube, action, raw)
    assert plan.steps == (step,)
    assert not plan.destructive
    await action.execute(kube.ctx(), action.parse_params(raw), roundtrip(plan))
    assert kube.fake.requests == []


async def test_set_memory_limit_of_a_missing_container_is_permanent(kube: Cluster) -> None:
    """A container name the Deployment lacks is a permanent error that names the ones it has."""
    kube.fake.add_deployment("prod", "web")
    action = kube.action(KubernetesSetMemoryLimit)
    params = action.parse_params({**WEB, "container": "nope", "limit": "1Gi", "max": "2Gi"})
    with pytest.raises(PermanentError, match=r"no container 'nope' \(containers: app\)"):
        await action.plan(kube.ctx(), params)


# ---- kubernetes.diagnose --------------------------------------------------------------------------

async def test_diagnose_a_deployment_reports_pods_oom_and_recent_events(kube: Cluster) -> None:
    """plan makes no call; execute only reads: phases, restarts, OOMKilled and the newest events."""
    kube.fake.add_deployment("prod", "web")
    kube.fake.add_pod("prod", "web-a", app="web", restarts=4, oom_killed=True)
    kube.fake.add_pod("prod", "web-b", app="web", phase="Pending", ready=False)
    kube.fake.add_pod("prod", "api-a", app="api")
    kube.fake.add_event("prod", "Pod", "web-a", "OOMKilling", "Memory cgroup out of memory",
                        at="2026-03-01T12:00:00Z", type_="Warning")
    kube.fake.add_event("prod", "Pod", "web-a", "BackOff", "Back-off restarting", at="2026-03-01T12:10:00Z",
                        type_="Warning")
    kube.fake.add_event("prod", "Pod", "web-b", "Scheduled", "assigned", at="2026-03-01T11:00:00Z")
    kube.fake.add_event("prod", "Deployment", "web", "ScalingReplicaSet", "scaled up",
                        at="2026-03-01T12:20:00Z")
    kube.fake.add_event("prod", "Pod", "api-a", "Pulled", "not ours", at="2026-03-01T12:25:00Z")
    action = kube.action(KubernetesDiagnose)
    raw = {"namespace": "prod", "deployment": "web", "events": 3}
    params = action.parse_params(raw)
    before = kube.fake.state()
    plan = await action.plan(kube.ctx(), params)
    assert kube.fake.requests == []
    assert plan.steps[-1] == ("report pod phases, restarts, OOMKilled containers and the 3 most recent "
                              "events; change nothing")
    result = await action.execute(kube.ctx(), params, roundtrip(plan))
    assert kube.fake.state() == before
    pod_events = "involvedObject.kind=Pod,involvedObject.name="
    assert [(r.method, r.path, r.query) for r in kube.fake.requests] == [
        ("GET", "/apis/apps/v1/namespaces/prod/deployments/web", {}),
        ("GET", "/api/v1/namespaces/prod/pods", {"labelSelector": "app=web"}),
        ("GET", "/api/v1/namespaces/prod/events",
         {"fieldSelector": "involvedObject.kind=Deployment,involvedObject.name=web"}),
        ("GET", "/api/v1/namespaces/prod/events", {"fieldSelector": pod_events + "web-b"}),
        ("GET", "/api/v1/namespaces/prod/events", {"fieldSelector": pod_events + "web-a"}),
    ]
    assert result.summary == ("prod/web: 2 pod(s) (1 Pending, 1 Running), 4 restart(s), "
                              "OOMKilled: web-a/app; 3 recent event(s), 2 warning(s)")
    assert [e["reason"] for e in result.details["events"]] == ["OOMKilling", "BackOff", "ScalingReplicaSet"]
    assert result.details["oom_killed"] == ["web-a/app"]
    assert [(p["name"], p["phase"], p["restarts"], p["ready"]) for p in result.details["pods"]] == [
        ("web-a", "Running", 4, True), ("web-b", "Pending", 0, False)]
    json.dumps(result.as_dict())  # lands in the audit log as it is


async def test_diagnose_a_pod(kube: Cluster) -> None:
    """One pod: its own state and its events, two reads."""
    kube.fake.add_pod("prod", "web-a", app="web", restarts=1)
    action = kube.action(KubernetesDiagnose)
    _, result = await run(action, kube.ctx(), {"namespace": "prod", "pod": "web-a"})
    assert [r.path for r in kube.fake.requests] == ["/api/v1/namespaces/prod/pods/web-a",
                                                    "/api/v1/namespaces/prod/events"]
    assert result.summary == ("prod/web-a: 1 pod(s) (1 Running), 1 restart(s), OOMKilled: none; "
                              "0 recent event(s), 0 warning(s)")
    kube.fake.requests.clear()
    plan, _ = await run(action, kube.ctx(), {"namespace": "prod", "pod": "web-a", "events": 0})
    assert plan.steps[0] == "GET pod prod/web-a"
    assert [r.path for r in kube.fake.requests] == ["/api/v1/namespaces/prod/pods/web-a"]


# ---- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "error"), [
    pytest.param(401, PermanentError, id="401"), pytest.param(403, PermanentError, id="403"),
    pytest.param(404, PermanentError, id="404"), pytest.param(422, PermanentError, id="422"),
    pytest.param(409, TemporaryError, id="409"), pytest.param(429, TemporaryError, id="429"),
    pytest.param(500, TemporaryError, id="500"), pytest.param(503, TemporaryError, id="503"),
])
async def test_api_errors_are_classified(kube: Cluster, code: int, error: type[Exception]) -> None:
    """The API's status decides: auth, missing and invalid are permanent; conflicts and 5xx are retried."""
    kube.fake.add_deployment("prod", "web")
    action = kube.action(KubernetesScale)
    kube.fake.fail_next(code, f"the API says {code}")
    with pytest.raises(error, match=f"^GET deployment prod/web/scale: {code} the API says {code}$") as caught:
        await action.plan(kube.ctx(), action.parse_params({"namespace": "prod", "deployment": "web",
                                                           "replicas": 2}))
    assert type(caught.value) is error


async def test_a_conflict_on_the_write_is_temporary(kube: Cluster) -> None:
    """409 on the PATCH itself (someone else wrote first) is retried by the executor."""
    kube.fake.add_deployment("prod", "web")
    action = kube.action(KubernetesRolloutRestart)
    params = action.parse_params({"namespace": "prod", "deployment": "web"})
    plan = await action.plan(kube.ctx(), params)
    kube.fake.fail_next(409, 'Operation cannot be fulfilled on deployments.apps "web"', method="PATCH")
    with pytest.raises(TemporaryError, match="PATCH deployment prod/web: 409 Operation cannot be fulfilled"):
        await action.execute(kube.ctx(), params, plan)


async def test_a_missing_object_is_permanent_with_the_api_message(kube: Cluster) -> None:
    """A Deployment that does not exist: 404, the API server's own words, no retry."""
    action = kube.action(KubernetesRolloutUndo)
    message = r'^GET deployment prod/nope: 404 deployments\.apps "nope" not found$'
    with pytest.raises(PermanentError, match=message):
        await action.plan(kube.ctx(), action.parse_params({"namespace": "prod", "deployment": "nope"}))


async def test_a_hanging_api_server_is_a_temporary_timeout(kube: Cluster) -> None:
    """No answer within the request timeout: temporary, after one attempt, in about that time."""
    kube.fake.add_pod("prod", "web-a", app="web")
    action = kube.action(KubernetesDeletePod, request_timeout=0.3)
    kube.fake.hang_next()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TemporaryError, match=r"^GET pod prod/web-a: no answer within 0.3s$"):
        await action.plan(kube.ctx(), action.parse_params({"namespace": "prod", "pod": "web-a"}))
    assert loop.time() - started < 2
    assert len(kube.fake.requests) == 1  # the client did not retry on its own


async def test_an_unreachable_api_server_is_temporary(kube: Cluster) -> None:
    """Connection refused (the kubeconfig's other context points at a closed port) is retried later."""
    action = kube.action(KubernetesRolloutRestart)
    dead = kube.target.model_copy(update={"context": "dead"})
    with pytest.raises(TemporaryError, match=r"^GET deployment prod/web: cannot connect: .*refused"):
        await action.plan(kube.ctx(dead), action.parse_params({"namespace": "prod", "deployment": "web"}))


# ---- clients --------------------------------------------------------------------------------------

async def test_one_client_per_kubeconfig_and_context_and_never_the_global_one(kube: Cluster) -> None:
    """Clients are cached per (kubeconfig, context), each with its own configuration."""
    from kubernetes import client  # noqa: PLC0415 - the SDK, as the module under test imports it

    default_host = client.Configuration.get_default_copy().host
    action = kube.action(KubernetesRolloutRestart)
    kubeconfig = str(kube.kubeconfig)
    first, again = action._client(kubeconfig, None), action._client(kubeconfig, None)
    dead = action._client(kubeconfig, "dead")
    assert first is again
    assert dead is not first
    assert first.configuration.host != dead.configuration.host
    assert client.Configuration.get_default_copy().host == default_host


async def test_a_missing_kubeconfig_is_permanent(kube: Cluster, tmp_path: Path) -> None:
    """A kubeconfig path that does not exist is a configuration error, not worth retrying."""
    action = kube.action(KubernetesRolloutRestart)
    target = kube.target.model_copy(update={"kubeconfig": str(tmp_path / "absent")})
    with pytest.raises(PermanentError, match="cannot load the kubeconfig"):
        await action.plan(kube.ctx(target), action.parse_params({"namespace": "prod", "deployment": "web"}))


@pytest.fixture
def in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A service account token and CA where the in-cluster loader looks, and the service env vars."""
    from kubernetes.config import incluster_config  # noqa: PLC0415

    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("not really a certificate")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")


async def test_in_cluster_uses_the_service_account(in_cluster: None) -> None:
    """kubeconfig: in-cluster reads the pod's service account into a client of its own."""
    from kubernetes import client  # noqa: PLC0415

    default = client.Configuration.get_default_copy()
    action = KubernetesRolloutRestart()
    made = action._client("in-cluster", None)
    try:
        assert made.configuration.host == "https://10.0.0.1:443"
        assert made.configuration.api_key["authorization"] == "bearer sa-token"
        after = client.Configuration.get_default_copy()
        assert (after.host, after.api_key) == (default.host, default.api_key)
    finally:
        action.close()


async def test_in_cluster_outside_a_cluster_is_permanent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the service env vars the in-cluster loader fails; that is a permanent error."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    action = KubernetesRolloutRestart()
    target = KubernetesTarget(kind="kubernetes", namespaces=["prod"])
    ctx = ActionContext(calls=SDK_CALLS,
                        decision_id="d", rule="r", alert=alert(), target_name="c", target=target,
                        dry_run=True)
    with pytest.raises(PermanentError, match="cannot load the in-cluster service account"):
        await action.plan(ctx, action.parse_params({"namespace": "prod", "deployment": "web"}))


# ---- kubectl as a second client -------------------------------------------------------------------

async def kubectl(cluster: Cluster, *args: str) -> None:
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is not installed")
        pytest.skip("kubectl is not installed")
    home = cluster.kubeconfig.parent
    proc = await asyncio.create_subprocess_exec(
        path, f"--kubeconfig={cluster.kubeconfig}", f"--cache-dir={home / 'kubectl-cache'}",
        "--request-timeout=10s", *args, env={"HOME": str(home), "PATH": os.environ.get("PATH", "")},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, (out + err).decode()


@pytest.mark.parametrize(("args", "cls"), [
    pytest.param(("rollout", "undo", "deployment/web"), KubernetesRolloutUndo, id="rollout-undo"),
    pytest.param(("rollout", "restart", "deployment/web"), KubernetesRolloutRestart, id="rollout-restart"),
])
async def test_the_write_is_the_one_kubectl_makes(kube: Cluster, args: tuple[str, ...],
                                                  cls: type[KubernetesAction[Any]]) -> None:
    """kubectl and the action, from the same state, send the same PATCH (content type and body)."""
    kube.fake.add_history("prod", "web", ["web:1", "web:2", "web:3"])
    kube.fake.deployments["prod", "web"]["metadata"]["annotations"]["team"] = "a"
    saved = copy.deepcopy(kube.fake.deployments), copy.deepcopy(kube.fake.replicasets)
    await kubectl(kube, "-n", "prod", *args)
    theirs = [(r.method, r.path, r.content_type, r.body) for r in kube.fake.writes()]
    kube.fake.deployments, kube.fake.replicasets = copy.deepcopy(saved[0]), copy.deepcopy(saved[1])
    kube.fake.requests.clear()
    await run(kube.action(cls), kube.ctx(), {"namespace": "prod", "deployment": "web"})
    ours = [(r.method, r.path, r.content_type, r.body) for r in kube.fake.writes()]
    if cls is KubernetesRolloutUndo:  # Go marshals the template's zero creationTimestamp as null
        for write in theirs:
            metadata = write[3][0]["value"]["metadata"]
            assert metadata.pop("creationTimestamp", None) is None
    if cls is KubernetesRolloutRestart:  # the time differs; the shape must not
        stamp = ("spec", "template", "metadata", "annotations", "kubectl.kubernetes.io/restartedAt")
        for write in (*theirs, *ours):
            node = write[3]
            for key in stamp[:-1]:
                node = node[key]
            assert datetime.fromisoformat(node[stamp[-1]]).tzinfo is not None
            node[stamp[-1]] = "<now>"
    assert ours == theirs
    assert len(ours) == 1


# ---- the reference page ---------------------------------------------------------------------------

def test_the_rule_examples_of_the_reference_page_load(tmp_path: Path) -> None:
    """docs/actions/kubernetes.md's rule examples load cleanly: no errors, no warnings."""
    page = (REPO / "docs" / "actions" / "kubernetes.md").read_text()
    example = page.split("## Rule examples", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "rules.yaml").write_text(example)
    registry = Registry([cls() for cls in ALL_ACTIONS])
    loaded = load_rules([tmp_path / "rules.yaml"], catalogue=registry, targets={"prod-cluster": "kubernetes"})
    assert loaded.warnings == []
    assert [r.name for r in loaded.ruleset.rules] == ["web-oom", "web-high-cpu", "raise-pool-size",
                                                      "read-replicas", "bad-release"]
