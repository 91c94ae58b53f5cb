"""A fake Argo CD API server for the ``argocd.*`` action tests.

Used by ``tests/remediations/test_argocd.py``: Argo CD cannot run here, so the action's real
HTTP client talks to this aiohttp app. It keeps Applications in a dict, serves the
endpoints the actions use — ``GET``/``PATCH /api/v1/applications/{name}`` and ``POST
…/rollback`` — with Argo CD's own rules (a bearer token; rollback refused while automated
sync is on or an operation runs, an unknown history id refused; a merge patch applied),
answers errors as grpc-gateway JSON, and records every request.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_CODES = {400: 9, 401: 16, 403: 7, 404: 5, 500: 13, 503: 14}


@dataclass(frozen=True, slots=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: Any


def grpc_error(status: int, message: str, code: int | None = None) -> web.Response:
    return web.json_response({"error": message, "code": code or _CODES.get(status, 2), "message": message},
                             status=status)


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


@dataclass
class FakeArgoCd:
    token: str
    apps: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)

    def add_app(self, name: str, revisions: list[str], *, automated: dict[str, Any] | None = None,
                running: bool = False) -> dict[str, Any]:
        """An application deployed once per revision (ids 0…), the last one current."""
        source = {"repoURL": "https://git.example.com/gitops.git", "path": "apps/" + name}
        history = [{"id": i, "revision": rev, "deployedAt": f"2026-03-0{i + 1}T10:00:00Z",
                    "source": {**source, "targetRevision": "main"}} for i, rev in enumerate(revisions)]
        app: dict[str, Any] = {
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "default", "source": {**source, "targetRevision": "main"},
                     "syncPolicy": {"automated": automated} if automated is not None else {}},
            "status": {"history": history, "sync": {"status": "Synced", "revision": revisions[-1]},
                       "health": {"status": "Degraded"},
                       "operationState": {"phase": "Running" if running else "Succeeded",
                                          "message": "waiting for healthy state" if running else "done"}},
        }
        self.apps[name] = app
        return app

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/api/v1/applications/{name}", self._get)
        app.router.add_patch("/api/v1/applications/{name}", self._patch)
        app.router.add_post("/api/v1/applications/{name}/rollback", self._rollback)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(request.method, request.path, dict(request.query),
                                      request.headers.get("Authorization"), body))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return grpc_error(401, "no session information")
        if self.fail_next:
            return grpc_error(self.fail_next.pop(0), "injected by the test")
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPNotFound:
            return grpc_error(404, f"the fake does not serve {request.method} {request.path}")
        return response

    def _find(self, request: web.Request) -> dict[str, Any] | web.Response:
        name = request.match_info["name"]
        found = self.apps.get(name)
        return found if found is not None else grpc_error(
            404, f'applications.argoproj.io "{name}" not found', 5)

    async def _get(self, request: web.Request) -> web.Response:
        found = self._find(request)
        return found if isinstance(found, web.Response) else web.json_response(found)

    async def _patch(self, request: web.Request) -> web.Response:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        body = await request.json()
        if body.get("patchType") != "merge" or body.get("name") != request.match_info["name"]:
            return grpc_error(400, "patchType merge and the name are required", 3)
        merge_patch(found, json.loads(body["patch"]))
        return web.json_response(found)

    async def _rollback(self, request: web.Request) -> web.Response:
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        body = await request.json()
        if (found["spec"].get("syncPolicy") or {}).get("automated") is not None:
            return grpc_error(400, "rollback cannot be initiated when auto-sync is enabled")
        if found["status"]["operationState"]["phase"] == "Running":
            return grpc_error(400, "another operation is already in progress")
        entry = next((h for h in found["status"]["history"] if h["id"] == body.get("id")), None)
        if entry is None:
            name = found["metadata"]["name"]
            return grpc_error(400, f"application {name} does not have deployment with id {body.get('id')}", 3)
        found["operation"] = {"sync": {"revision": entry["revision"], "prune": bool(body.get("prune"))}}
        history = found["status"]["history"]
        history.append({**copy.deepcopy(entry), "id": history[-1]["id"] + 1,
                        "deployedAt": "2026-03-09T10:00:00Z"})
        found["status"]["sync"] = {"status": "OutOfSync", "revision": entry["revision"]}
        found["status"]["operationState"] = {"phase": "Running", "message": "rolling back"}
        answer = copy.deepcopy(found)
        del found["operation"]  # the controller took the operation up
        found["status"]["operationState"] = {"phase": "Succeeded", "message": "successfully synced"}
        return web.json_response(answer)
