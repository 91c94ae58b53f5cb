"""What errors tell whom: what is wrong to anyone, where (addresses, paths) only to admins.

The state store is a Redis that does not answer (serve waits for it), at an address only
the config and an admin should learn. Every row is a caller and a route: the answer must
say the store is unavailable, and name its address only to admin credentials.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from receiver.settings import settings_from_mapping
from tests.conftest import HIGH_CPU_BODY, HIGH_CPU_RULES, ClientFactory

TOKENS = {"webhook": "disc-webhook-2b7e", "approver": "disc-approver-91cd", "admin": "disc-admin-0f3a"}
ROUTES = {
    "ready": ("GET", "/ready", 503),
    "ready-prometheus-spelling": ("GET", "/-/ready", 503),
    "webhook": ("POST", "/webhook", 503),
    "approvals": ("GET", "/api/v1/approvals", 503),
}
CALLERS: dict[str, str | None] = {"nobody": None, "wrong-token": "not-a-token", **TOKENS}
FORBIDDEN = {("/api/v1/approvals", TOKENS["webhook"]), ("/webhook", TOKENS["approver"])}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def client(make_client: ClientFactory, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> TestClient[Any, Any]:
    for role, token in TOKENS.items():
        monkeypatch.setenv(f"DISC_{role.upper()}", token)
    rules = tmp_path / "rules.yaml"
    rules.write_text(HIGH_CPU_RULES)
    port = _port()
    settings = settings_from_mapping({
        "state": f"redis://127.0.0.1:{port}/0", "audit": str(tmp_path / "audit.jsonl"), "rules": [str(rules)],
        "auth": {"tokens": [{"name": role, "role": role, "token": f"env:DISC_{role.upper()}"}
                            for role in TOKENS]},
    })
    served = await make_client(settings)
    served.address = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
    return served


@pytest.mark.parametrize("caller", CALLERS.values(), ids=CALLERS.keys())
@pytest.mark.parametrize("route", ROUTES.values(), ids=ROUTES.keys())
async def test_where_the_store_is_is_told_to_admins_only(
        client: TestClient[Any, Any], route: tuple[str, str, int], caller: str | None) -> None:
    method, path, status = route
    headers = {"Content-Type": "application/json"}
    if caller is not None:
        headers["Authorization"] = f"Bearer {caller}"
    resp = await client.request(method, path, data=HIGH_CPU_BODY if method == "POST" else None,
                                headers=headers)
    text = await resp.text()
    address: str = client.address  # type: ignore[attr-defined]
    open_route = path.endswith("ready")
    if not open_route and caller not in TOKENS.values():
        assert resp.status == 401
    elif (path, caller) in FORBIDDEN:
        assert resp.status == 403
    else:
        assert resp.status == status, text
        assert "state store" in text
        if caller != TOKENS["admin"]:
            assert address not in text, text
        elif path != "/api/v1/approvals":  # the approvals route only says the store is not open
            assert address in text, text
