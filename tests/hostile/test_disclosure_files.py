"""What errors tell whom when a file fails: the audit log's disk is full, the SQLite state
file is closed. Anyone learns what is unavailable; where (the audit file's path, the state
database's path, the OS error) only admin credentials do, on every route such a failure can
answer: ``/ready``, the webhook, and the ``/api/v1`` routes that read or change state.
"""

from __future__ import annotations

import errno
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from receiver.audit import AuditLog
from receiver.settings import settings_from_mapping
from tests.conftest import HIGH_CPU_BODY, HIGH_CPU_RULES, ClientFactory, runtime_of

TOKENS = {"webhook": "discf-webhook-5a1", "approver": "discf-approver-7b2", "admin": "discf-admin-9c3"}
CALLERS: dict[str, str | None] = {"nobody": None, "wrong-token": "not-a-token", **TOKENS}
ROUTES = {  # name: (method, path, the role it needs or None, the failures it answers 503 for)
    "ready": ("GET", "/ready", None, {"audit", "state"}),
    "ready-prometheus-spelling": ("GET", "/-/ready", None, {"audit", "state"}),
    "webhook": ("POST", "/webhook", "webhook", {"audit", "state"}),
    "approvals": ("GET", "/api/v1/approvals", "approver", {"state"}),
    "approve": ("POST", "/api/v1/approvals/0123456789abcdef/approve", "approver", {"state"}),
    "pause-state": ("GET", "/api/v1/pause", "admin", {"state"}),
    "pause": ("POST", "/api/v1/pause", "admin", {"state", "audit"}),
    "resume": ("POST", "/api/v1/resume", "admin", {"state"}),
    "reload": ("POST", "/-/reload", "admin", {"audit"}),
}
GRANTS = {"webhook": {"webhook"}, "approver": {"approver"}, "admin": {"webhook", "approver", "admin"}}


async def _disk_full(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: AuditLog, fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(AuditLog, "_write", full)
    first = await client.post("/webhook", data=HIGH_CPU_BODY, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {TOKENS['admin']}"})
    assert first.status == 503  # the audit log now knows it is failing


async def _state_closed(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    await runtime_of(client).state.close()


FAILURES: dict[str, Callable[[Any, pytest.MonkeyPatch], Awaitable[None]]] = {
    "audit": _disk_full, "state": _state_closed}


@pytest.mark.parametrize("caller", CALLERS.values(), ids=CALLERS.keys())
@pytest.mark.parametrize("route", ROUTES.values(), ids=ROUTES.keys())
@pytest.mark.parametrize("failure", FAILURES.keys())
async def test_what_failed_to_anyone_where_to_admins(
        failure: str, route: tuple[str, str, str | None, set[str]], caller: str | None,
        make_client: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    method, path, need, answers = route
    for role, token in TOKENS.items():
        monkeypatch.setenv(f"DISCF_{role.upper()}", token)
    rules = tmp_path / "rules.yaml"
    rules.write_text(HIGH_CPU_RULES)
    secret_dir = tmp_path / "where-only-admins-look"
    secret_dir.mkdir()
    client: Any = await make_client(settings_from_mapping({
        "state": f"sqlite:///{secret_dir / 'state.db'}", "audit": str(secret_dir / "audit.jsonl"),
        "rules": [str(rules)],
        "auth": {"tokens": [{"name": r, "role": r, "token": f"env:DISCF_{r.upper()}"} for r in TOKENS]},
    }))
    await FAILURES[failure](client, monkeypatch)
    headers = {"Content-Type": "application/json"}
    if caller is not None:
        headers["Authorization"] = f"Bearer {caller}"
    resp = await client.request(method, path, data=HIGH_CPU_BODY if path == "/webhook" else None,
                                headers=headers)
    text = await resp.text()
    role = next((r for r, t in TOKENS.items() if t == caller), "")
    assert "where-only-admins-look" not in text or role == "admin", text
    assert "No space left" not in text or role == "admin", text
    if need is not None and not role:
        assert resp.status == 401
    elif need is not None and need not in GRANTS[role]:
        assert resp.status == 403
    elif failure in answers:
        assert resp.status == 503, text
        assert ("audit log" if failure == "audit" else "state store") in text
        if role == "admin" and failure == "audit":
            assert "where-only-admins-look" in text, text  # admins are told where
    else:
        assert resp.status < 500, text
