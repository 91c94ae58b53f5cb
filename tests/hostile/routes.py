"""The hostile suite's route tables, read off the app itself, and a service worth attacking.

``routes()`` lists every route of the real app (``create_app``, built and never started)
that needs a role, so a route added later is attacked by every table built on it
(``test_cross_site``, ``test_auth_routes``). ``served`` starts that app with an admin
(Basic and Bearer) and a pending approval, so a request that got through would change
something; ``state`` is what must stay as it was after a refusal.
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Any

import pytest

from receiver.http.app import create_app
from receiver.settings import Settings, settings_from_mapping
from receiver.store.values import Approval, ApprovalStatus
from tests.conftest import HIGH_CPU_RULES, ClientFactory, runtime_of
from tests.support.approvals import stored_request

PASSWORD = "hostile-routes-pw-7c1e"
TOKEN = "hostile-routes-token-40d2"
BASIC = "Basic " + base64.b64encode(f"sre:{PASSWORD}".encode()).decode()
BEARER = f"Bearer {TOKEN}"
APPROVAL_ID = "0123456789abcdef"
TARGET = "api"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def settings(tmp: Path) -> Settings:
    rules = tmp / "rules.yaml"
    rules.write_text(HIGH_CPU_RULES)
    return settings_from_mapping({
        "state": f"sqlite:///{tmp / 'state.db'}", "audit": str(tmp / "audit.jsonl"), "rules": [str(rules)],
        "auth": {"basic": [{"username": "sre", "role": "admin", "password": "env:HOSTILE_ROUTES_PASSWORD"}],
                 "tokens": [{"name": "sre-token", "role": "admin", "token": "env:HOSTILE_ROUTES_TOKEN"}]},
        "targets": {TARGET: {"kind": "http", "base_url": "http://127.0.0.1:9"}},
    })


def _secrets(env: pytest.MonkeyPatch) -> None:
    env.setenv("HOSTILE_ROUTES_PASSWORD", PASSWORD)
    env.setenv("HOSTILE_ROUTES_TOKEN", TOKEN)


def routes(*, changing_only: bool) -> dict[str, tuple[str, str]]:
    """``{"POST /api/v1/pause": ("POST", "/api/v1/pause"), …}``: the app's routes with a role."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as env:
        _secrets(env)
        app = create_app(settings(Path(tmp)))  # built, never started: nothing opens
        found = {}
        for route in app.router.routes():
            if not getattr(route.handler, "required_role", None) or route.method == "HEAD":
                continue
            if changing_only and route.method in SAFE_METHODS:
                continue
            path = route.resource.canonical if route.resource else ""
            found[f"{route.method} {path}"] = (route.method, path)
    return found


def concrete(template: str) -> str:
    """A route's path with its parameters filled in: the pending approval, the configured target."""
    return template.replace("{id}", APPROVAL_ID).replace("{target}", TARGET)


async def served(make_client: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app running in-process with a pending approval."""
    _secrets(monkeypatch)
    client = await make_client(settings(tmp_path))
    runtime = runtime_of(client)
    now = runtime.clock.now()
    await runtime.state.put_approval(Approval(
        id=APPROVAL_ID, status=ApprovalStatus.PENDING, created_at=now, expires_at=now + 3600,
        decision="d1", rule="high-cpu", fingerprint="f00d", payload=stored_request()))
    await runtime.audit.sync()
    return client


async def state(client: Any, audit: Path) -> tuple[Any, ...]:
    """What a refused request must leave as it was: the audit log, the approval, the kill
    switch, the backlog."""
    runtime = runtime_of(client)
    await runtime.audit.sync()
    approval = await runtime.state.get_approval(APPROVAL_ID)
    audited = audit.read_bytes() if audit.exists() else b""  # noqa: ASYNC240 - a test's small file
    return (audited, approval.status if approval else None, await runtime.killswitch.state(),
            await runtime.state.backlog())
