"""A fake Kubernetes API server for the ``kubernetes.*`` action tests (and for kubectl).

Used by ``tests/remediations/test_kubernetes.py``: no API server can run here, so the real
``kubernetes`` client (and ``kubectl``, where installed) talks over HTTP to this aiohttp app.
It keeps Deployments, StatefulSets, ReplicaSets, ControllerRevisions, Pods, Events, pod
logs and metrics.k8s.io PodMetrics in dicts, speaks exactly the endpoints the actions use
(plus the legacy discovery documents kubectl reads first), applies strategic merge (with
``$patch: replace``), JSON and JSON merge patches, records every request, and can be told
to answer the next request with an error or to hang until the test is over.
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
APPS = "/apis/apps/v1/namespaces/{ns}"
CORE = "/api/v1/namespaces/{ns}"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
MERGE = "application/merge-patch+json"
# Lists that a strategic merge patch merges by a key instead of replacing (the ones in a pod template).
_MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
               "volumeMounts": "mountPath", "ports": "containerPort", "imagePullSecrets": "name"}
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
            415: "UnsupportedMediaType", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
            503: "ServiceUnavailable"}


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    body: Any  # the JSON body, None when there was none


@dataclass(slots=True)
class Fault:
    status: int | None  # None: hang until the test ends
    message: str
    method: str | None  # only the next request with this method; None: the next request


class PatchError(Exception):
    """A patch the API server would refuse with 422."""


def status(code: int, message: str) -> web.Response:
    """A ``Status`` object, as the API server answers errors."""
    reason = _REASONS.get(code, "Unknown")
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code}, status=code)


def strategic_merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Apply a strategic merge patch: maps merge, null deletes, keyed lists merge by their key."""
    for key, value in patch.items():
        if key.startswith("$"):
            raise PatchError(f"the fake does not support the directive {key}")
        if isinstance(value, dict) and value.get("$patch") == "replace":
            target[key] = {k: copy.deepcopy(v) for k, v in value.items() if k != "$patch"}
        elif value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            strategic_merge(target[key], value)
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(target.get(key), list):
            merge_key = _MERGE_KEYS[key]
            for item in value:
                if not isinstance(item, dict) or merge_key not in item:
                    raise PatchError(f"{key}: every item needs its merge key {merge_key!r}")
                existing = next((x for x in target[key] if x.get(merge_key) == item[merge_key]), None)
                if existing is None:
                    target[key].append(copy.deepcopy(item))
                else:
                    strategic_merge(existing, item)
        else:
            target[key] = copy.deepcopy(value)


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """RFC 7386: maps merge, null deletes, lists are replaced."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def json_patch(target: dict[str, Any], ops: list[Any]) -> None:
    """RFC 6902 ``add``, ``replace``, ``remove`` and ``test`` on object members."""
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("path"), str) or not op["path"].startswith("/"):
            raise PatchError(f"bad operation {op!r}")
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"][1:].split("/")]
        node: Any = target
        for part in parents:
            if not isinstance(node, dict) or part not in node:
                raise PatchError(f"{op['path']}: no such path")
            node = node[part]
        if not isinstance(node, dict):
            raise PatchError(f"{op['path']}: not an object member")
        kind = op.get("op")
        if kind in ("replace", "remove", "test") and last not in node:
            raise PatchError(f"{kind} {op['path']}: no such path")
        if kind == "test" and node[last] != op.get("value"):
            raise PatchError(f"test {op['path']}: value differs")
        if kind in ("add", "replace"):
            node[last] = copy.deepcopy(op.get("value"))
        elif kind == "remove":
            del node[last]
        elif kind != "test":
            raise PatchError(f"unsupported op {kind!r}")


def matches_labels(labels: dict[str, str], selector: str) -> bool:
    """A ``labelSelector``: ``k=v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``."""
    parts, depth, current = [], 0, ""
    for ch in selector:  # split on commas outside parentheses
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    for part in (p.strip() for p in parts if p.strip()):
        if " notin " in part or " in " in part:
            key, _, values = part.partition(" notin " if " notin " in part else " in ")
            allowed = {v.strip() for v in values.strip()[1:-1].split(",")}
            inside = labels.get(key.strip()) in allowed
            if inside == (" notin " in part):
                return False
        elif "!=" in part:
            key, _, value = part.partition("!=")
            if labels.get(key) == value:
                return False
        elif "=" in part:
            key, _, value = part.partition("==" if "==" in part else "=")
            if labels.get(key) != value:
                return False
        elif part.startswith("!"):
            if part[1:] in labels:
                return False
        elif part not in labels:
            return False
    return True


def matches_fields(obj: dict[str, Any], selector: str) -> bool:
    """A ``fieldSelector`` of ``dotted.path=value`` terms."""
    for term in filter(None, selector.split(",")):
        path, _, value = term.partition("=")
        node: Any = obj
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if str(node) != value:
            return False
    return True


def pod_template(app: str, containers: list[dict[str, Any]], **labels: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app, **labels}}, "spec": {"containers": copy.deepcopy(containers)}}


def container(name: str = "app", image: str = "registry.local/web:1.0", memory: str | None = "512Mi",
              ) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image}
    if memory is not None:
        c["resources"] = {"limits": {"memory": memory}, "requests": {"memory": memory}}
    return c


@dataclass
class FakeKube:
    """The cluster state and the app that serves it."""

    deployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    statefulsets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    revisions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    logs: dict[tuple[str, str, str, bool], str] = field(default_factory=dict)
    metrics: list[dict[str, Any]] | None = None  # None: metrics-server is not installed (404)
    replicasets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    _faults: deque[Fault] = field(default_factory=deque)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _version: int = 1000

    # ---- what tests set up and look at ------------------------------------------------------

    def fail_next(self, code: int, message: str = "injected by the test", *,
                  method: str | None = None) -> None:
        """Answer the next request (with this method, if given) with an error Status."""
        self._faults.append(Fault(code, message, method))

    def hang_next(self, *, method: str | None = None) -> None:
        """Never answer the next request (with this method, if given) until the test ends."""
        self._faults.append(Fault(None, "", method))

    def release(self) -> None:
        """Let hanging requests finish (the fixture calls it at teardown)."""
        self._release.set()

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method not in ("GET", "HEAD")]

    def state(self) -> str:
        """Everything the cluster holds, to compare before and after."""
        keyed = [{"/".join(k): v for k, v in objects.items()}
                 for objects in (self.deployments, self.statefulsets, self.replicasets, self.revisions,
                                 self.pods)]
        return json.dumps([*keyed, self.events], sort_keys=True)

    def add_deployment(self, ns: str, name: str, *, replicas: int = 3,
                       containers: list[dict[str, Any]] | None = None, paused: bool = False,
                       revision: int = 1) -> dict[str, Any]:
        template = pod_template(name, containers or [container()])
        deployment: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()), "generation": 1,
                         "resourceVersion": self._next_version(), "labels": {"app": name},
                         "annotations": {"deployment.kubernetes.io/revision": str(revision)}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template,
                     "strategy": {"type": "RollingUpdate"}},
            "status": {"replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas,
                       "availableReplicas": replicas, "observedGeneration": 1},
        }
        if paused:
            deployment["spec"]["paused"] = True
        self.deployments[ns, name] = deployment
        return deployment

    def add_replica_set(self, deployment: dict[str, Any], revision: int, template: dict[str, Any], *,
                        owner_uid: str | None = None, name: str | None = None,
                        annotations: dict[str, str] | None = None) -> dict[str, Any]:
        """A ReplicaSet of ``deployment`` at ``revision`` (owned by another uid if given)."""
        meta = deployment["metadata"]
        template = copy.deepcopy(template)
        pod_hash = uuid.uuid4().hex[:10]
        template["metadata"].setdefault("labels", {})["pod-template-hash"] = pod_hash
        rs: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name or f"{meta['name']}-{pod_hash}", "namespace": meta["namespace"],
                         "uid": str(uuid.uuid4()), "resourceVersion": self._next_version(),
                         "labels": dict(template["metadata"]["labels"]),
                         "annotations": {"deployment.kubernetes.io/revision": str(revision),
                                         **(annotations or {})},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                              "name": meta["name"], "uid": owner_uid or meta["uid"],
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": {"replicas": 0, "selector": {"matchLabels": dict(template["metadata"]["labels"])},
                     "template": template},
        }
        self.replicasets[meta["namespace"], rs["metadata"]["name"]] = rs
        return rs

    def add_history(self, ns: str, name: str, images: list[str], **kwargs: Any) -> dict[str, Any]:
        """A Deployment whose ReplicaSets hold one revision per image; the last is current."""
        deployment = self.add_deployment(ns, name, revision=len(images), **kwargs)
        for number, image in enumerate(images, start=1):
            template = copy.deepcopy(deployment["spec"]["template"])
            template["spec"]["containers"][0]["image"] = image
            template["metadata"]["annotations"] = {"build": f"b{number}"}
            self.add_replica_set(deployment, number, template, annotations={"note": f"revision {number}"})
        deployment["spec"]["template"] = copy.deepcopy(template)
        return deployment

    def add_statefulset(self, ns: str, name: str, *, replicas: int = 3,
                        containers: list[dict[str, Any]] | None = None,
                        update_strategy: str = "RollingUpdate", images: list[str] | None = None,
                        annotations: dict[str, str] | None = None) -> dict[str, Any]:
        """A StatefulSet; with ``images``, one ControllerRevision per image, the last current."""
        template = pod_template(name, containers or [container()])
        sts: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()), "generation": 1,
                         "resourceVersion": self._next_version(), "labels": {"app": name},
                         "annotations": dict(annotations or {})},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template,
                     "serviceName": name, "updateStrategy": {"type": update_strategy}},
            "status": {"replicas": replicas, "readyReplicas": replicas, "currentReplicas": replicas,
                       "updatedReplicas": replicas, "availableReplicas": replicas, "observedGeneration": 1},
        }
        for number, image in enumerate(images or [], start=1):
            revision_template = copy.deepcopy(template)
            revision_template["spec"]["containers"][0]["image"] = image
            self.add_controller_revision(sts, number, revision_template)
            sts["spec"]["template"] = copy.deepcopy(revision_template)
        self.statefulsets[ns, name] = sts
        return sts

    def add_controller_revision(self, sts: dict[str, Any], number: int, template: dict[str, Any], *,
                                owner_uid: str | None = None) -> dict[str, Any]:
        """What the StatefulSet controller records: the template as a ``$patch: replace`` patch."""
        meta = sts["metadata"]
        data_template = {**copy.deepcopy(template), "$patch": "replace"}
        name = f"{meta['name']}-{uuid.uuid4().hex[:10]}"
        revision: dict[str, Any] = {
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": name, "namespace": meta["namespace"], "uid": str(uuid.uuid4()),
                         "labels": dict(template["metadata"]["labels"]),
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                              "name": meta["name"], "uid": owner_uid or meta["uid"],
                                              "controller": True, "blockOwnerDeletion": True}]},
            "data": {"spec": {"template": data_template}}, "revision": number,
        }
        self.revisions[meta["namespace"], name] = revision
        return revision

    def add_pod(self, ns: str, name: str, *, app: str, phase: str = "Running", restarts: int = 0,
                oom_killed: bool = False, ready: bool = True, owner: dict[str, Any] | None = None,
                labels: dict[str, str] | None = None,
                containers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        last = {"terminated": {"reason": "OOMKilled", "exitCode": 137}} if oom_killed else {}
        state = {"running": {"startedAt": "2026-01-01T00:00:00Z"}} if phase == "Running" else {
            "waiting": {"reason": "ContainerCreating"}}
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()),
                         "labels": {"app": app, **(labels or {})},
                         "resourceVersion": self._next_version(),
                         "ownerReferences": [owner] if owner else []},
            "spec": {"nodeName": "node-1", "terminationGracePeriodSeconds": 30,
                     "containers": copy.deepcopy(containers or [container()])},
            "status": {"phase": phase, "containerStatuses": [
                {"name": "app", "ready": ready, "restartCount": restarts, "state": state,
                 "lastState": last}]},
        }
        self.pods[ns, name] = pod
        return pod

    def add_event(self, ns: str, kind: str, name: str, reason: str, message: str, *, at: str,
                  type_: str = "Normal") -> dict[str, Any]:
        event = {"apiVersion": "v1", "kind": "Event",
                 "metadata": {"name": f"{name}.{uuid.uuid4().hex[:8]}", "namespace": ns},
                 "involvedObject": {"kind": kind, "name": name, "namespace": ns},
                 "reason": reason, "message": message, "type": type_, "count": 1,
                 "firstTimestamp": at, "lastTimestamp": at}
        self.events.append(event)
        return event

    # ---- the server ------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        workload = APPS + "/{plural:deployments|statefulsets}/{name}"
        app.router.add_get("/api", self._api_versions)
        app.router.add_get("/apis", self._api_groups)
        app.router.add_get("/api/v1", self._core_resources)
        app.router.add_get("/apis/apps/v1", self._apps_resources)
        app.router.add_get(workload, self._get_deployment)
        app.router.add_patch(workload, self._patch_deployment)
        app.router.add_get(workload + "/scale", self._get_scale)
        app.router.add_patch(workload + "/scale", self._patch_scale)
        app.router.add_get(APPS + "/replicasets", self._list_replicasets)
        app.router.add_get(APPS + "/controllerrevisions", self._list_revisions)
        app.router.add_get(CORE + "/pods", self._list_pods)
        app.router.add_get(CORE + "/pods/{name}", self._get_pod)
        app.router.add_get(CORE + "/pods/{name}/log", self._pod_log)
        app.router.add_get("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods", self._list_metrics)
        app.router.add_delete(CORE + "/pods/{name}", self._delete_pod)
        app.router.add_get(CORE + "/events", self._list_events)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, app: web.Application) -> None:
        self.release()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        content_type = request.headers.get("Content-Type")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return status(400, "body is not JSON")
        self.requests.append(Recorded(request.method, request.path, dict(request.query), content_type, body))
        fault = next((f for f in self._faults if f.method in (None, request.method)), None)
        if fault is not None:
            self._faults.remove(fault)
            if fault.status is None:
                await self._release.wait()
                return status(504, "released at the end of the test")
            return status(fault.status, fault.message)
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return status(404, f"the fake API server does not serve {request.method} {request.path}")
        except web.HTTPMethodNotAllowed:
            return status(405, f"the fake API server does not serve {request.method} {request.path}")

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    async def _api_versions(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]})

    async def _api_groups(self, request: web.Request) -> web.Response:
        version = {"groupVersion": "apps/v1", "version": "v1"}
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": "apps", "versions": [version], "preferredVersion": version}]})

    async def _core_resources(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "shortNames": ["po"],
             "verbs": ["delete", "get", "list", "patch"]},
            {"name": "events", "singularName": "event", "namespaced": True, "kind": "Event",
             "shortNames": ["ev"], "verbs": ["get", "list"]}]})

    async def _apps_resources(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
                                  "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": True, "kind": "Deployment",
             "shortNames": ["deploy"], "verbs": ["get", "list", "patch"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": True, "kind": "Scale",
             "group": "autoscaling", "version": "v1", "verbs": ["get", "patch"]},
            {"name": "replicasets", "singularName": "replicaset", "namespaced": True, "kind": "ReplicaSet",
             "shortNames": ["rs"], "verbs": ["get", "list"]},
            {"name": "statefulsets", "singularName": "statefulset", "namespaced": True, "kind": "StatefulSet",
             "shortNames": ["sts"], "verbs": ["get", "list", "patch"]},
            {"name": "statefulsets/scale", "singularName": "", "namespaced": True, "kind": "Scale",
             "group": "autoscaling", "version": "v1", "verbs": ["get", "patch"]},
            {"name": "controllerrevisions", "singularName": "controllerrevision", "namespaced": True,
             "kind": "ControllerRevision", "verbs": ["get", "list"]}]})

    def _deployment(self, request: web.Request) -> dict[str, Any] | web.Response:
        ns, name, plural = request.match_info["ns"], request.match_info["name"], request.match_info["plural"]
        found = (self.deployments if plural == "deployments" else self.statefulsets).get((ns, name))
        return found if found is not None else status(404, f'{plural}.apps "{name}" not found')

    async def _get_deployment(self, request: web.Request) -> web.Response:
        found = self._deployment(request)
        return found if isinstance(found, web.Response) else web.json_response(found)

    async def _patch(self, request: web.Request, obj: dict[str, Any]) -> dict[str, Any] | web.Response:
        body = await request.json()
        patched = copy.deepcopy(obj)
        try:
            content_type = request.headers.get("Content-Type", "")
            if content_type == STRATEGIC and isinstance(body, dict):
                strategic_merge(patched, body)
            elif content_type == MERGE and isinstance(body, dict):
                merge_patch(patched, body)
            elif content_type == JSON_PATCH and isinstance(body, list):
                json_patch(patched, body)
            else:
                return status(415, f"the server does not support {content_type} with this body")
        except PatchError as exc:
            return status(422, str(exc))
        return patched

    async def _patch_deployment(self, request: web.Request) -> web.Response:
        found = self._deployment(request)
        if isinstance(found, web.Response):
            return found
        patched = await self._patch(request, found)
        if isinstance(patched, web.Response):
            return patched
        names = [c.get("name") for c in patched["spec"]["template"]["spec"].get("containers") or []]
        if not names or None in names:
            return status(422, "spec.template.spec.containers: every container needs a name")
        if patched["spec"] != found["spec"]:
            patched["metadata"]["generation"] = found["metadata"]["generation"] + 1
        patched["metadata"]["resourceVersion"] = self._next_version()
        found.clear()
        found.update(patched)
        return web.json_response(found)

    def _scale(self, deployment: dict[str, Any]) -> dict[str, Any]:
        meta = deployment["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                             "resourceVersion": meta["resourceVersion"]},
                "spec": {"replicas": deployment["spec"]["replicas"]},
                "status": {"replicas": deployment["status"]["replicas"], "selector": f"app={meta['name']}"}}

    async def _get_scale(self, request: web.Request) -> web.Response:
        found = self._deployment(request)
        return found if isinstance(found, web.Response) else web.json_response(self._scale(found))

    async def _patch_scale(self, request: web.Request) -> web.Response:
        found = self._deployment(request)
        if isinstance(found, web.Response):
            return found
        patched = await self._patch(request, self._scale(found))
        if isinstance(patched, web.Response):
            return patched
        replicas = patched.get("spec", {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            return status(422, f"spec.replicas: Invalid value: {replicas!r}")
        if replicas != found["spec"]["replicas"]:
            found["spec"]["replicas"] = replicas
            found["metadata"]["generation"] += 1
        found["metadata"]["resourceVersion"] = self._next_version()
        return web.json_response(self._scale(found))

    def _list(self, kind: str, items: list[dict[str, Any]], api_version: str = "v1") -> web.Response:
        return web.json_response({"kind": kind, "apiVersion": api_version,
                                  "metadata": {"resourceVersion": str(self._version)}, "items": items})

    async def _list_replicasets(self, request: web.Request) -> web.Response:
        ns, selector = request.match_info["ns"], request.query.get("labelSelector", "")
        items = [rs for (n, _), rs in sorted(self.replicasets.items()) if n == ns
                 and matches_labels(rs["metadata"].get("labels") or {}, selector)]
        return self._list("ReplicaSetList", items, "apps/v1")

    async def _list_revisions(self, request: web.Request) -> web.Response:
        ns, selector = request.match_info["ns"], request.query.get("labelSelector", "")
        items = [r for (n, _), r in sorted(self.revisions.items()) if n == ns
                 and matches_labels(r["metadata"].get("labels") or {}, selector)]
        return self._list("ControllerRevisionList", items, "apps/v1")

    async def _pod_log(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        pod = self.pods.get((ns, name))
        if pod is None:
            return status(404, f'pods "{name}" not found')
        container = request.query.get("container", "")
        previous = request.query.get("previous", "false") in ("1", "t", "T", "true", "True", "TRUE")
        text = self.logs.get((ns, name, container, previous))
        if text is None:
            which = "previous terminated container" if previous else "container"
            return status(400, f'{which} "{container}" in pod "{name}" not found')
        lines = text.splitlines(keepends=True)
        if "tailLines" in request.query:
            tail = int(request.query["tailLines"])
            lines = lines[len(lines) - tail:] if tail else []
        body = "".join(lines).encode()
        if "limitBytes" in request.query:
            body = body[:int(request.query["limitBytes"])]
        return web.Response(body=body, content_type="text/plain")

    async def _list_metrics(self, request: web.Request) -> web.Response:
        if self.metrics is None:
            return status(404, "the server could not find the requested resource")
        ns = request.match_info["ns"]
        items = [m for m in self.metrics if m["metadata"]["namespace"] == ns]
        return self._list("PodMetricsList", items, "metrics.k8s.io/v1beta1")

    async def _list_pods(self, request: web.Request) -> web.Response:
        ns, selector = request.match_info["ns"], request.query.get("labelSelector", "")
        items = [p for (n, _), p in sorted(self.pods.items()) if n == ns
                 and matches_labels(p["metadata"].get("labels") or {}, selector)]
        return self._list("PodList", items)

    async def _get_pod(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        pod = self.pods.get((ns, name))
        return web.json_response(pod) if pod else status(404, f'pods "{name}" not found')

    async def _delete_pod(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        pod = self.pods.get((ns, name))
        if pod is None:
            return status(404, f'pods "{name}" not found')
        raw = await request.read()  # already read (and recorded) by the recording middleware
        options = json.loads(raw) if raw else {}
        wanted = ((options or {}).get("preconditions") or {}).get("uid")
        if wanted and wanted != pod["metadata"].get("uid"):
            return status(409, f"Precondition failed: UID in precondition: {wanted}, "
                               f"UID in object meta: {pod['metadata'].get('uid')}")
        del self.pods[(ns, name)]
        pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return web.json_response(pod)

    async def _list_events(self, request: web.Request) -> web.Response:
        ns, selector = request.match_info["ns"], request.query.get("fieldSelector", "")
        items = [e for e in self.events if e["metadata"]["namespace"] == ns and matches_fields(e, selector)]
        return self._list("EventList", items)
