"""The console tests' setup: a live rule that needs approval, credentials of each role, and
signing in and posting forms over HTTP the way a browser does (``tests/receiver/http/``)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import rules_yaml

CONSOLE_TOKENS = {"TEST_AM_TOKEN": "am-secret", "TEST_ONCALL_TOKEN": "oncall-secret",
                  "TEST_ADMIN_TOKEN": "adm", "TEST_BOB_PASSWORD": "bob-pass"}


def console_settings(make_settings: Any, target: str, **extra: Any) -> Any:
    rule = {"name": "purge-cache", "match": ['alertname = "HighErrorRate"', 'namespace =~ ".+"'],
            "actions": [{"action": "http.request", "target": "api",
                         "params": {"method": "POST", "path": "/purge/{{ labels.namespace }}"}}]}
    return make_settings(
        rules=rules_yaml([rule]), dry_run=False,
        targets={"api": {"kind": "http", "base_url": target, "timeout": 2}},
        auth={"tokens": [{"name": "alertmanager", "role": "webhook", "token": "env:TEST_AM_TOKEN"},
                         {"name": "oncall-alice", "role": "approver", "token": "env:TEST_ONCALL_TOKEN"},
                         {"name": "sre-admin", "role": "admin", "token": "env:TEST_ADMIN_TOKEN"}],
              "basic": [{"username": "bob", "role": "approver", "password": "env:TEST_BOB_PASSWORD"}]},
        guards={"retries": 0, "blast_radius": None}, **extra)


async def sign_in(client: TestClient[Any, Any], **form: str) -> str:
    """Sign in with ``form`` (token=…, or username=… and password=…); the page's CSRF token."""
    origin = str(client.make_url("")).rstrip("/")
    resp = await client.post("/ui/login", data=form, headers={"Origin": origin}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    return await csrf_of(client, "/ui/approvals")


async def csrf_of(client: TestClient[Any, Any], path: str) -> str:
    page = await (await client.get(path)).text()
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page[:500]
    return found.group(1)
