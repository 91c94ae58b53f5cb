"""The OpenAPI document is true: it names every route of /api/v1 and the webhook, and
Schemathesis, run against a live ``remediator serve``, finds no 5xx and no answer it does
not describe (status, content type, body schema, headers, auth, methods).

The property-based run is bounded: a fixed seed, ``MAX_EXAMPLES`` cases per operation and
phase, a per-request timeout and a deadline on the whole run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from receiver.http.app import create_app
from receiver.http.openapi import load_spec
from receiver.settings import settings_from_mapping
from tests.support.serveproc import listening_url, reap, start_serve

MAX_EXAMPLES = 30
DEADLINE = 240  # seconds for the whole Schemathesis run (about 12 s on an idle machine)


def _route_methods() -> set[tuple[str, str]]:
    app = create_app(settings_from_mapping({}), metrics_registry=CollectorRegistry())
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method != "HEAD" and (path.startswith("/api/v1") or path == "/webhook"):
            found.add((path, route.method.lower()))
    return found


def test_the_document_names_every_api_route() -> None:
    """Each /api/v1 route and the webhook, with its method, is in the document and nothing else is."""
    spec = load_spec()
    documented = {(path, method) for path, item in spec["paths"].items() for method in item
                  if (path.startswith("/api/v1") or path == "/webhook")}
    assert documented == _route_methods()


@pytest.fixture
def live(tmp_path: Path) -> Any:
    config = tmp_path / "remediator.yaml"
    config.write_text(yaml.safe_dump({
        "state": f"sqlite:///{tmp_path / 'state.db'}", "audit": str(tmp_path / "audit.jsonl"),
        "auth": {"tokens": [{"name": "sre-admin", "role": "admin", "token": "env:OPENAPI_TEST_TOKEN"}]},
        "targets": {"api": {"kind": "http", "base_url": "http://127.0.0.1:9/svc"}},
    }))
    proc = start_serve(tmp_path, "--config", str(config), env={"OPENAPI_TEST_TOKEN": "openapi-admin"})
    try:
        url, _ = listening_url(proc)
        yield url
    finally:
        reap(proc)


def test_served_document_is_the_shipped_one(live: str) -> None:
    with urllib.request.urlopen(f"{live}/api/v1/openapi.json", timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("application/json")
        assert json.loads(resp.read()) == load_spec()


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(live: str, tmp_path: Path) -> None:
    """Every check Schemathesis has, every phase (examples, coverage, fuzzing, stateful)."""
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{live}/api/v1/openapi.json",
         "--header", "Authorization: Bearer openapi-admin", "--checks", "all",
         "--max-examples", str(MAX_EXAMPLES), "--seed", "16", "--workers", "1",
         "--request-timeout", "10", "--no-color", "--report", "junit", "--report-dir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=DEADLINE, check=False,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "11/11" in run.stdout  # every operation was tested
