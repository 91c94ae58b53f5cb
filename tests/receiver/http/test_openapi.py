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
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from receiver.http.app import create_app
from receiver.http.openapi import load_spec
from receiver.settings import settings_from_mapping
from tests.conftest import rules_yaml
from tests.support.serveproc import listening_url, reap, start_serve
from tests.support.webhooks import alert, body

MAX_EXAMPLES = 30
DEADLINE = 240  # seconds for the whole Schemathesis run (12 s idle, 30 s on a busy 2-core machine)


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
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_yaml([{  # a live rule whose POST waits for an approval
        "name": "purge-cache", "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"'],
        "actions": [{"action": "http.request", "target": "api",
                     "params": {"method": "POST", "path": "/purge/{{ labels.namespace }}"}}]}]))
    config.write_text(yaml.safe_dump({
        "state": f"sqlite:///{tmp_path / 'state.db'}", "audit": str(tmp_path / "audit.jsonl"),
        "dry_run": False, "rules": [str(rules)],
        "auth": {"tokens": [{"name": "sre-admin", "role": "admin", "token": "env:OPENAPI_TEST_TOKEN"}]},
        "targets": {"api": {"kind": "http", "base_url": "http://127.0.0.1:9/svc", "timeout": 1}},
        "guards": {"retries": 0},
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


def _call(url: str, *, data: bytes | None = None) -> Any:
    request = urllib.request.Request(url, data=data, headers={
        "Authorization": "Bearer openapi-admin", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def pending_approval(live: str) -> str:
    """Fire an alert the live rule answers and wait (bounded) for its approval."""
    _call(f"{live}/webhook", data=body(alert()))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        approvals = _call(f"{live}/api/v1/approvals?status=pending")["approvals"]
        if approvals:
            return str(approvals[0]["id"])
        time.sleep(0.1)
    pytest.fail("no approval was requested")


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(live: str, tmp_path: Path) -> None:
    """Every check Schemathesis has, every phase (examples, coverage, fuzzing, stateful); the
    approval routes are also called with a real pending approval's id and the circuit reset
    with a configured target, so their 200 and 409 answers are checked too."""
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(f'''
[parameters]
"path.id" = "{pending_approval(live)}"
"path.target" = "api"
''')
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(settings), "run",
         f"{live}/api/v1/openapi.json",
         "--header", "Authorization: Bearer openapi-admin", "--checks", "all",
         "--max-examples", str(MAX_EXAMPLES), "--seed", "16", "--workers", "1",
         "--request-timeout", "10", "--no-color", "--report", "junit", "--report-dir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=DEADLINE, check=False,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "11/11" in run.stdout  # every operation was tested
