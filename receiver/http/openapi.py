"""The OpenAPI document of ``/webhook`` and ``/api/v1``, served at ``/api/v1/openapi.json``.

The document is ``receiver/http/openapi.yaml`` (shipped with the package), read once when
the app is built by ``receiver.http.app.create_app``. ``tests/receiver/http/test_openapi.py``
keeps it true: it runs Schemathesis against a live ``remediator serve`` and fails on a 5xx
or on any answer the document does not describe.
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

from aiohttp import web

from rules.yamldoc import read_yaml

_SPEC = web.AppKey("openapi", bytes)


def load_spec() -> dict[str, Any]:
    """The document as data, read as every YAML of the project is (``rules.yamldoc``)."""
    text = files("receiver.http").joinpath("openapi.yaml").read_text(encoding="utf-8")
    document = read_yaml(text, "receiver/http/openapi.yaml")
    if document.found or not isinstance(document.data, dict):
        raise RuntimeError("; ".join(map(str, document.problems())) or "openapi.yaml is not a mapping")
    spec: dict[str, Any] = document.data
    return spec


async def openapi(request: web.Request) -> web.Response:
    """``GET /api/v1/openapi.json``: open, like ``/health`` (it holds no secret)."""
    return web.Response(body=request.app[_SPEC], content_type="application/json")


def add_openapi_route(app: web.Application) -> None:
    app[_SPEC] = json.dumps(load_spec(), indent=1).encode()
    app.router.add_get("/api/v1/openapi.json", openapi)
