"""Targets: the named things actions act on, as the service config declares them.

Parsed by ``receiver.settings`` (the ``targets:`` map); handed to an action through its
``ActionContext``. Each target carries its allow-list (namespaces and workloads,
container-name pattern, databases, base URL, Celery queues, Argo CD applications, variable
names), which actions check after templating, so a label value can never steer an action
outside it.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from remediations.secrets import SecretRef


class _Target(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HttpTarget(_Target):
    """An HTTP service; ``http.request`` may only call URLs under ``base_url``."""

    kind: Literal["http"]
    base_url: str
    headers: dict[str, SecretRef] = Field(default_factory=dict)
    timeout: float = Field(default=10.0, gt=0, le=300)
    verify_tls: bool = True

    @field_validator("base_url")
    @classmethod
    def _absolute_http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an absolute http:// or https:// URL")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("base_url must not carry a query, fragment or credentials")
        return value.rstrip("/")


def _valid_regex(value: str | None, what: str) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{what} is not a valid regex: {exc}") from None
    return value


_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


class KubernetesTarget(_Target):
    """A Kubernetes cluster; actions may touch only ``namespaces`` (and ``workloads``, when set)."""

    kind: Literal["kubernetes"]
    kubeconfig: str = Field(default="in-cluster", description="'in-cluster' or a kubeconfig path")
    context: str | None = None
    namespaces: list[str] = Field(min_length=1)
    workloads: str | None = Field(
        default=None, description="Regex 'kind/name' must fully match (deployment/web|statefulset/pg-.*)")
    min_replicas: int = Field(default=0, ge=0, description="kubernetes.scale never goes below")
    max_replicas: int = Field(default=100, ge=1, description="kubernetes.scale never goes above")
    env_names: list[Annotated[str, Field(pattern=_ENV_NAME)]] = Field(
        default_factory=list, description="Variables kubernetes.set_env may set (or a rule's allowed_names)")
    argocd_instance_label: str | None = Field(
        default=None, max_length=253,
        description="Label key Argo CD tracks resources by, when it tracks by label "
                    "(its application.instanceLabelKey)")

    @field_validator("workloads")
    @classmethod
    def _workloads_regex(cls, value: str | None) -> str | None:
        return _valid_regex(value, "workloads")


class DockerTarget(_Target):
    """A Docker engine; actions may touch only containers whose name fully matches."""

    kind: Literal["docker"]
    url: str = "unix:///var/run/docker.sock"
    containers: str = Field(description="Regex a container name must fully match")

    @field_validator("containers")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"containers is not a valid regex: {exc}") from None
        return value


class PostgresTarget(_Target):
    """A PostgreSQL server; actions may touch only ``databases``."""

    kind: Literal["postgres"]
    dsn: SecretRef
    databases: list[str] = Field(min_length=1)
    allow_superuser: bool = Field(default=False, description="May sessions of superusers be ended")
    allow_replication: bool = Field(default=False, description="May replication sessions be ended")


class RedisTarget(_Target):
    """A Redis server; actions may touch only logical databases in ``dbs``."""

    kind: Literal["redis"]
    url: SecretRef
    dbs: list[int] = Field(default_factory=lambda: [0])


_QUEUE = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}$"
QueueName = Annotated[str, Field(pattern=_QUEUE)]
"""A Celery queue name: letters, digits and ``_ . : @ -``, no spaces or wildcards."""


class CeleryTarget(_Target):
    """A Celery broker; actions may touch only the ``queues`` listed."""

    kind: Literal["celery"]
    broker: SecretRef = Field(description="Broker URL (redis://…, amqp://…), a secret reference")
    queues: list[QueueName] = Field(min_length=1,
                                    description="Queues celery.inspect and celery.purge may touch")
    control_exchange: str = Field(default="celery", pattern=r"^[A-Za-z0-9_.-]{1,100}$",
                                  description="The app's control_exchange setting (default celery)")
    global_keyprefix: str | None = Field(
        default=None, max_length=100,
        description="The Redis transport's global_keyprefix, when the app sets one")
    timeout: float = Field(default=2.0, gt=0, le=30, description="Seconds to wait for workers' replies")


class ArgoCdTarget(_Target):
    """An Argo CD API server; actions may touch only ``applications``."""

    kind: Literal["argocd"]
    base_url: str = Field(description="Argo CD's URL (https://argocd.example.com)")
    token: SecretRef = Field(description="An API token (a secret reference), sent as a bearer token")
    applications: list[Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")]] = Field(
        min_length=1, description="Applications the actions may touch")
    app_namespace: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
                                      description="The Applications' namespace (apps in any namespace)")
    timeout: float = Field(default=10.0, gt=0, le=120)
    verify_tls: bool = True

    @field_validator("base_url")
    @classmethod
    def _absolute_http(cls, value: str) -> str:
        return HttpTarget._absolute_http(value)


Target = Annotated[
    HttpTarget | KubernetesTarget | DockerTarget | PostgresTarget | RedisTarget | CeleryTarget | ArgoCdTarget,
    Field(discriminator="kind"),
]
TargetConfig = (HttpTarget | KubernetesTarget | DockerTarget | PostgresTarget | RedisTarget | CeleryTarget
                | ArgoCdTarget)
