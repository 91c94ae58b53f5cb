"""The Kubernetes API calls the actions make: one target's client, each call on the SDK pool's threads.

Used by ``remediations.kubernetes.api`` (``KubernetesAction.api`` builds a :class:`KubeApi`
per call on the target's cached client and the context's ``calls``,
``remediations.blocking.BlockingCalls``). Every call has a timeout, is tried once and
answers the API server's own JSON (or text, for pod logs); its failures are
``TemporaryError`` or ``PermanentError`` (:func:`api_error`). The ``kubernetes`` SDK is
imported on first use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from remediations.base import PermanentError, RemediationError, TemporaryError
from remediations.blocking import BlockingCalls

IN_CLUSTER = "in-cluster"
FIELD_MANAGER = "remediator"  # who changed a field, as the cluster's managedFields record it
_TEMPORARY_STATUSES = frozenset({0, 408, 409, 425, 429})


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
    """One target's calls: each on the pool's threads, with a timeout, answering the API's JSON."""

    def __init__(self, api_client: Any, timeout: float, calls: BlockingCalls) -> None:
        from kubernetes import client  # noqa: PLC0415 - the SDK is imported on first use

        self._apps = client.AppsV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self.timeout = timeout
        self._calls = calls

    async def read_workload(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        method = (self._apps.read_namespaced_deployment if kind == "deployment"
                  else self._apps.read_namespaced_stateful_set)
        return await self._call(f"GET {kind} {namespace}/{name}", method, name, namespace)

    async def patch_workload(self, kind: str, namespace: str, name: str, body: Any) -> dict[str, Any]:
        """A dict is sent as a strategic merge patch, a list as a JSON patch (the client decides)."""
        method = (self._apps.patch_namespaced_deployment if kind == "deployment"
                  else self._apps.patch_namespaced_stateful_set)
        return await self._call(f"PATCH {kind} {namespace}/{name}", method, name, namespace, body,
                                field_manager=FIELD_MANAGER)

    async def read_scale(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        method = (self._apps.read_namespaced_deployment_scale if kind == "deployment"
                  else self._apps.read_namespaced_stateful_set_scale)
        return await self._call(f"GET {kind} {namespace}/{name}/scale", method, name, namespace)

    async def patch_scale(self, kind: str, namespace: str, name: str, body: Any) -> dict[str, Any]:
        method = (self._apps.patch_namespaced_deployment_scale if kind == "deployment"
                  else self._apps.patch_namespaced_stateful_set_scale)
        return await self._call(f"PATCH {kind} {namespace}/{name}/scale", method, name, namespace, body,
                                field_manager=FIELD_MANAGER)

    async def list_controller_revisions(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        doc = await self._call(f"LIST controllerrevisions in {namespace}",
                               self._apps.list_namespaced_controller_revision, namespace,
                               label_selector=selector)
        return _items(doc)

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

    async def read_pod_log(self, namespace: str, name: str, container: str, *, tail_lines: int,
                           limit_bytes: int, previous: bool = False) -> str:
        """``kubectl logs POD -c C --tail=N``: the last lines, as text, at most ``limit_bytes``."""
        what = f"GET pod {namespace}/{name}/log of {container}" + (" (previous)" if previous else "")
        data = await self._calls.run(self._call_sync, what, self._core.read_namespaced_pod_log, name,
                                       namespace, container=container, tail_lines=tail_lines,
                                       limit_bytes=limit_bytes, timestamps=True,
                                       **({"previous": True} if previous else {}), _text=True)
        return str(data)

    async def list_pod_metrics(self, namespace: str, selector: str | None) -> list[dict[str, Any]]:
        """``kubectl top pods``: metrics.k8s.io's PodMetrics of the namespace (matching ``selector``)."""
        doc = await self._call(f"LIST metrics.k8s.io pods in {namespace}",
                               self._custom.list_namespaced_custom_object, "metrics.k8s.io", "v1beta1",
                               namespace, "pods", **({"label_selector": selector} if selector else {}))
        return _items(doc)

    async def _call(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        doc: dict[str, Any] = await self._calls.run(self._call_sync, what, method, *args, **kwargs)
        return doc

    def _call_sync(self, what: str, method: Callable[..., Any], *args: Any, _text: bool = False,
                   **kwargs: Any) -> Any:
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
        if _text:
            return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data or "")
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


def load_client(kubeconfig: str, context: str | None) -> Any:
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
