"""What every ``kubernetes.*`` action shares: the client per target, the calls, the errors.

Imported only by the action modules beside it (``remediations.kubernetes.rollout``,
``.scale``, ``.memory``, ``.diagnose``). The official ``kubernetes`` client is synchronous, so every
call runs in a worker thread (``asyncio.to_thread``) with a request timeout, and answers
come back as the API server's own JSON (``_preload_content=False``): a pod template is
copied field for field, including fields newer than the client's models. The SDK is
imported lazily, on the first call, so start-up and ``rules lint`` stay fast.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from remediations.base import (
    Action,
    ActionContext,
    PermanentError,
    RemediationError,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.targets import KubernetesTarget

IN_CLUSTER = "in-cluster"
FIELD_MANAGER = "remediator"  # who changed a field, as the cluster's managedFields record it
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TEMPORARY_STATUSES = frozenset({0, 408, 409, 425, 429})


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


class DeploymentParams(NamespacedParams):
    deployment: ObjectName = Field(description="Deployment name")


def api_error(exc: Any, what: str) -> RemediationError:
    """Classify an ``ApiException``: 409, 408, 429, 5xx and no-status are temporary."""
    status = int(getattr(exc, "status", 0) or 0)
    body = getattr(exc, "body", None)
    message = str(getattr(exc, "reason", "") or "")
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        message = doc["message"]
    text = f"{what}: {status} {message}".rstrip()
    if status >= 500 or status in _TEMPORARY_STATUSES:
        headers = getattr(exc, "headers", None) or {}
        retry_after = headers.get("Retry-After") if isinstance(headers, Mapping) else None
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        error = TemporaryError(text, retry_after=min(delay, 300.0) if delay is not None else None,
                               nothing_sent=status == 409)  # a conflict is a write refused
        error.status = status
        return error
    return PermanentError(text)


class KubeApi:
    """One target's calls: each in a worker thread, with a timeout, answering the API's JSON."""

    def __init__(self, api_client: Any, timeout: float) -> None:
        from kubernetes import client  # noqa: PLC0415 - the SDK is imported on first use

        self._apps = client.AppsV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self.timeout = timeout

    async def read_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._call(f"GET deployment {namespace}/{name}",
                                self._apps.read_namespaced_deployment, name, namespace)

    async def patch_deployment(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        """A dict is sent as a strategic merge patch, a list as a JSON patch (the client decides)."""
        return await self._call(f"PATCH deployment {namespace}/{name}",
                                self._apps.patch_namespaced_deployment, name, namespace, body,
                                field_manager=FIELD_MANAGER)

    async def read_scale(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._call(f"GET deployment {namespace}/{name}/scale",
                                self._apps.read_namespaced_deployment_scale, name, namespace)

    async def patch_scale(self, namespace: str, name: str, body: Any) -> dict[str, Any]:
        return await self._call(f"PATCH deployment {namespace}/{name}/scale",
                                self._apps.patch_namespaced_deployment_scale, name, namespace, body,
                                field_manager=FIELD_MANAGER)

    async def list_replica_sets(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        doc = await self._call(f"LIST replicasets in {namespace}",
                               self._apps.list_namespaced_replica_set, namespace, label_selector=selector)
        return _items(doc)

    async def read_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return await self._call(f"GET pod {namespace}/{name}",
                                self._core.read_namespaced_pod, name, namespace)

    async def delete_pod(self, namespace: str, name: str, *, uid: str | None) -> dict[str, Any]:
        """Delete the pod only if it is still the one with ``uid`` (a replacement keeps its name)."""
        body = {"preconditions": {"uid": uid}} if uid else None
        what = f"DELETE pod {namespace}/{name}"
        try:
            return await self._call(what, self._core.delete_namespaced_pod, name, namespace, body=body)
        except TemporaryError as exc:
            if uid and exc.status == 409:
                raise PermanentError(f"{what}: it is no longer the pod the plan named (uid {uid}); "
                                     "not deleting its replacement") from None
            raise

    async def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        doc = await self._call(f"LIST pods in {namespace}",
                               self._core.list_namespaced_pod, namespace, label_selector=selector)
        return _items(doc)

    async def list_events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        doc = await self._call(f"LIST events of {kind} {namespace}/{name}",
                               self._core.list_namespaced_event, namespace, field_selector=selector)
        return _items(doc)

    async def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return await asyncio.to_thread(self._call_sync, what, method, *args, **kwargs)

    def _call_sync(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException  # noqa: PLC0415
        from urllib3.exceptions import HTTPError, NewConnectionError  # noqa: PLC0415
        from urllib3.exceptions import TimeoutError as Urllib3Timeout  # noqa: PLC0415

        try:
            # A (connect, read) pair: the client ignores a float given alone.
            response = method(*args, _preload_content=False,
                              _request_timeout=(self.timeout, self.timeout), **kwargs)
            data = response.data
        except ApiException as exc:
            raise api_error(exc, what) from None
        except NewConnectionError as exc:  # refused, unreachable, unknown host (before timeouts: a subclass)
            raise TemporaryError(f"{what}: cannot connect: {str(exc).split(': ', 1)[-1]}",
                                 nothing_sent=True) from None
        except Urllib3Timeout:
            raise TemporaryError(f"{what}: no answer within {self.timeout}s") from None
        except (HTTPError, OSError) as exc:
            detail = getattr(exc, "reason", None) or exc
            raise TemporaryError(f"{what}: {exc.__class__.__name__}: {detail}") from None
        if not data:
            return {}
        try:
            doc = json.loads(data)
        except ValueError:
            raise TemporaryError(f"{what}: the API server answered something that is not JSON") from None
        if not isinstance(doc, dict):
            raise TemporaryError(f"{what}: the API server answered JSON that is not an object")
        return doc


def _items(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = doc.get("items") or []
    return [item for item in items if isinstance(item, dict)]


def _load_client(kubeconfig: str, context: str | None) -> Any:
    from kubernetes import client, config  # noqa: PLC0415
    from kubernetes.config.config_exception import ConfigException  # noqa: PLC0415

    # A fresh Configuration each time: the client's global default is never read or written.
    # retries=False: one attempt per call; the executor retries temporary errors with backoff.
    configuration = client.Configuration()
    configuration.retries = False
    where = "in-cluster service account" if kubeconfig == IN_CLUSTER else f"kubeconfig {kubeconfig}"
    try:
        if kubeconfig == IN_CLUSTER:
            if context is not None:
                raise PermanentError("a kubernetes target with kubeconfig: in-cluster takes no context")
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration=configuration)
        # persist_config=False: refreshed tokens are never written back into the file.
        return config.new_client_from_config(config_file=kubeconfig, context=context,
                                             persist_config=False, client_configuration=configuration)
    except ConfigException as exc:
        raise PermanentError(f"cannot load the {where}: {exc}") from None
    except (OSError, ValueError) as exc:  # unreadable file, YAML that is not a kubeconfig
        raise PermanentError(f"cannot load the {where}: {exc.__class__.__name__}: {exc}") from None


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
        """The kind and name of the object acted on; the Deployment unless overridden."""
        return "deployment", params.deployment if isinstance(params, DeploymentParams) else ""

    def check_allowed(self, ctx: ActionContext, params: P) -> None:
        target = self.target(ctx)
        if params.namespace not in target.namespaces:
            raise TargetNotAllowed(f"{self.name}: namespace {params.namespace!r} is not in the namespaces "
                                   f"of target {ctx.target_name!r} ({', '.join(target.namespaces)})")

    def subject(self, ctx: ActionContext, params: P) -> str:
        kind, name = self.object_ref(params)
        return f"{ctx.target_name}/{params.namespace}/{kind}/{name}"

    def where(self, params: P) -> str:
        """``prod/web``: how plans and summaries name the object."""
        return f"{params.namespace}/{self.object_ref(params)[1]}"

    async def api(self, ctx: ActionContext) -> KubeApi:
        """The target's client, built on first use and kept for (kubeconfig, context)."""
        target = self.target(ctx)
        client = await asyncio.to_thread(self._client, target.kubeconfig, target.context)
        return KubeApi(client, self.request_timeout)

    def _client(self, kubeconfig: str, context: str | None) -> Any:
        with self._lock:
            key = (kubeconfig, context)
            if key not in self._clients:
                self._clients[key] = _load_client(kubeconfig, context)
            return self._clients[key]

    def close(self) -> None:
        """Close the cached clients (their connection pools)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
            client.rest_client.pool_manager.clear()


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
