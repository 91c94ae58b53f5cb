"""What every ``kubernetes.*`` action shares: the client per target, the calls, the errors.

Imported only by the action modules beside it (``remediations.kubernetes.rollout``,
``.scale``, ``.memory``, ``.env``, ``.diagnose``). The official ``kubernetes`` client is
synchronous, so every call runs on the SDK pool's threads (``ctx.calls``,
``remediations.blocking``; never asyncio's default executor) with a request
timeout, and answers come back as the API server's own JSON (``_preload_content=False``):
a pod template is copied field for field, including fields newer than the client's models.
The SDK is imported lazily, on the first call, so start-up and ``rules lint`` stay fast.

A workload is a Deployment or a StatefulSet (:class:`WorkloadParams`: exactly one of
``deployment`` and ``statefulset``); the target's allow-lists are its ``namespaces`` and,
when set, its ``workloads`` pattern over ``kind/name`` (:meth:`KubernetesAction.check_allowed`,
:func:`pod_owner` for actions on pods).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from remediations.base import Action, ActionContext, PermanentError, TargetNotAllowed
from remediations.kubernetes.calls import KubeApi, load_client
from remediations.targets import KubernetesTarget

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _dns1123_label(value: str) -> str:
    if len(value) > 63 or not _LABEL.fullmatch(value):
        raise ValueError("must be a DNS-1123 label: lower-case letters, digits and '-', "
                         "starting and ending with a letter or digit, at most 63 characters")
    return value


def _dns1123_subdomain(value: str) -> str:
    if len(value) > 253 or not _SUBDOMAIN.fullmatch(value):
        raise ValueError("must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "
                         "starting and ending with a letter or digit, at most 253 characters")
    return value


LabelName = Annotated[str, AfterValidator(_dns1123_label)]
"""A namespace or container name."""
ObjectName = Annotated[str, AfterValidator(_dns1123_subdomain)]
"""A Deployment or Pod name."""


class NamespacedParams(BaseModel):
    """Params of every Kubernetes action: the namespace, checked against the target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: LabelName = Field(description="Namespace; must be one of the target's namespaces")


WORKLOAD_KINDS = ("deployment", "statefulset")


def drop_unset_choices(dumped: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """A dump without the alternatives not chosen (``None``), as rules write params."""
    return {k: v for k, v in dumped.items() if not (k in keys and v is None)}


class WorkloadParams(NamespacedParams):
    """A Deployment or a StatefulSet: exactly one of the two names."""

    deployment: ObjectName | None = Field(default=None, description="Deployment name (or give statefulset)")
    statefulset: ObjectName | None = Field(default=None, description="StatefulSet name (or give deployment)")

    @model_serializer(mode="wrap")
    def _without_the_other_kind(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Dump only the workload given (``deployment: web``, not also ``statefulset: null``)."""
        return drop_unset_choices(handler(self), ("deployment", "statefulset"))

    @model_validator(mode="after")
    def _one_workload(self) -> Self:
        if (self.deployment is None) == (self.statefulset is None):
            raise ValueError("give exactly one of deployment or statefulset")
        return self

    @property
    def kind(self) -> str:
        """``deployment`` or ``statefulset``."""
        return "deployment" if self.deployment is not None else "statefulset"

    @property
    def name(self) -> str:
        return self.deployment or self.statefulset or ""


P = TypeVar("P", bound=NamespacedParams)


class KubernetesAction(Action[P]):
    """The shared part: target check, namespace allow-list, subject, one client per target."""

    target_kinds = frozenset({"kubernetes"})
    timeout = 30.0

    def __init__(self, *, request_timeout: float = 10.0) -> None:
        self.request_timeout = request_timeout
        self._clients: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    def target(self, ctx: ActionContext) -> KubernetesTarget:
        if not isinstance(ctx.target, KubernetesTarget):
            raise PermanentError(f"{self.name} needs a kubernetes target, got {ctx.target_name!r}")
        return ctx.target

    def object_ref(self, params: P) -> tuple[str, str]:
        """The kind and name of the object acted on; the workload unless overridden."""
        if isinstance(params, WorkloadParams):
            return params.kind, params.name
        return "object", ""

    def check_allowed(self, ctx: ActionContext, params: P) -> None:
        target = self.target(ctx)
        if params.namespace not in target.namespaces:
            raise TargetNotAllowed(f"{self.name}: namespace {params.namespace!r} is not in the namespaces "
                                   f"of target {ctx.target_name!r} ({', '.join(target.namespaces)})")
        kind, name = self.object_ref(params)
        if kind in WORKLOAD_KINDS:
            self.check_workload(ctx, kind, name)

    def check_pod(self, ctx: ActionContext, pod: Mapping[str, Any]) -> tuple[str, str] | None:
        """The pod's workload; with the target's ``workloads`` set, it must be one of them."""
        workload = pod_owner(pod)
        if self.target(ctx).workloads is not None:
            if workload is None:
                name = (pod.get("metadata") or {}).get("name")
                raise TargetNotAllowed(f"{self.name}: pod {name} belongs to no workload, and target "
                                       f"{ctx.target_name!r} allows only its workloads")
            self.check_workload(ctx, *workload)
        return workload

    def check_workload(self, ctx: ActionContext, kind: str, name: str) -> None:
        """Refuse a workload outside the target's ``workloads`` pattern (when it has one)."""
        pattern = self.target(ctx).workloads
        if pattern is not None and not re.fullmatch(pattern, f"{kind}/{name}"):
            raise TargetNotAllowed(f"{self.name}: {kind}/{name} does not match the workloads "
                                   f"{pattern!r} of target {ctx.target_name!r}")

    def subject(self, ctx: ActionContext, params: P) -> str:
        kind, name = self.object_ref(params)
        return f"{ctx.target_name}/{params.namespace}/{kind}/{name}"

    def where(self, params: P) -> str:
        """``prod/web``: how plans and summaries name the object."""
        return f"{params.namespace}/{self.object_ref(params)[1]}"

    async def api(self, ctx: ActionContext) -> KubeApi:
        """The target's client, built on first use and kept for (kubeconfig, context)."""
        target = self.target(ctx)
        client = await ctx.calls.run(self._client, target.kubeconfig, target.context)
        return KubeApi(client, self.request_timeout, ctx.calls)

    def _client(self, kubeconfig: str, context: str | None) -> Any:
        with self._lock:
            key = (kubeconfig, context)
            if key not in self._clients:
                self._clients[key] = load_client(kubeconfig, context)
            return self._clients[key]

    def close(self) -> None:
        """Close the cached clients (their connection pools)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
            client.rest_client.pool_manager.clear()


def pod_owner(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """The workload a pod belongs to, as ``(kind, name)``, read from the pod alone.

    A ReplicaSet made by a Deployment is named ``<deployment>-<pod-template-hash>`` and the
    pod carries that hash as a label, so the Deployment is known without reading the
    ReplicaSet; a StatefulSet (or DaemonSet, Job) owns its pods directly. None for a pod
    no controller owns.
    """
    meta = pod.get("metadata") or {}
    owner = next((ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")), None)
    if owner is None:
        return None
    kind, name = str(owner.get("kind", "")).lower(), str(owner.get("name", ""))
    pod_hash = (meta.get("labels") or {}).get("pod-template-hash")
    if kind == "replicaset" and pod_hash and name.endswith(f"-{pod_hash}"):
        return "deployment", name.removesuffix(f"-{pod_hash}")
    return kind, name


def label_selector(selector: Mapping[str, Any] | None) -> str:
    """A ``LabelSelector`` object as the ``labelSelector`` query string the API takes."""
    if not selector:
        raise PermanentError("the object has no selector")
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), sorted(expr.get("values") or [])
        if op == "In":
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise PermanentError(f"unknown selector operator {op!r}")
    if not parts:
        raise PermanentError("the object's selector is empty")
    return ",".join(parts)
