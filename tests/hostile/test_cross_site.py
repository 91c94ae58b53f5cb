"""Another site's page, in a browser that holds Basic credentials, against every state change.

The table of routes is generated from the app's own route table (every route with a role
and a method that changes state), so a route added later is attacked too; it must cover
every state-changing operation of the OpenAPI document. Each route meets what a browser on
another site can make: an ``Origin`` or ``Referer`` not this server's (``null`` too),
``Sec-Fetch-Site: cross-site``/``same-site``, a form (urlencoded, multipart, ``text/plain``,
even empty) and other non-JSON bodies. Each is refused (403 ``foreign_origin``, 415
``unsupported_media_type``) with the caller an admin whose credentials are right, and
nothing changed: the approval still pending, the kill switch as it was, the audit log as
it was. A control row per route (same origin, JSON) shows the credentials would work.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.http.openapi import load_spec
from tests.conftest import HIGH_CPU_BODY, ClientFactory
from tests.hostile.routes import BASIC, concrete, routes, served, state

_METHODS = frozenset({"post", "put", "patch", "delete"})
ROUTES = routes(changing_only=True)
JSON = {"Content-Type": "application/json"}
EVIL = "https://evil.example"
ATTACKS: dict[str, tuple[dict[str, str], bytes | None, int, str]] = {
    "foreign-origin": ({**JSON, "Origin": EVIL}, b"{}", 403, "foreign_origin"),
    "null-origin": ({**JSON, "Origin": "null"}, b"{}", 403, "foreign_origin"),
    "foreign-referer": ({**JSON, "Referer": f"{EVIL}/page"}, b"{}", 403, "foreign_origin"),
    "sec-fetch-cross-site": ({**JSON, "Sec-Fetch-Site": "cross-site"}, b"{}", 403, "foreign_origin"),
    "sec-fetch-same-site": ({**JSON, "Sec-Fetch-Site": "same-site"}, b"{}", 403, "foreign_origin"),
    "foreign-origin-no-body": ({"Origin": EVIL}, None, 403, "foreign_origin"),
    "form-empty": ({"Content-Type": "application/x-www-form-urlencoded"}, b"", 415, "unsupported_media_type"),
    "form": ({"Content-Type": "application/x-www-form-urlencoded"}, b"comment=ok", 415,
             "unsupported_media_type"),
    "multipart": ({"Content-Type": "multipart/form-data; boundary=b"}, b"--b\r\n\r\nx\r\n--b--\r\n", 415,
                  "unsupported_media_type"),
    "text-plain-json": ({"Content-Type": "text/plain"}, b'{"comment": "ok"}', 415, "unsupported_media_type"),
    "text-plain-empty": ({"Content-Type": "text/plain;charset=UTF-8"}, b"", 415, "unsupported_media_type"),
    "octet-stream-body": ({"Content-Type": "application/octet-stream"}, b"{}", 415, "unsupported_media_type"),
    "xml-body": ({"Content-Type": "application/xml"}, b"<a/>", 415, "unsupported_media_type"),
}


def test_the_table_covers_every_state_change_of_the_openapi_document() -> None:
    """Every POST/PUT/PATCH/DELETE the OpenAPI document describes is a row (and there are rows)."""
    spec = load_spec()
    documented = {f"{method.upper()} {path}" for path, ops in spec["paths"].items()
                  for method in ops if method in _METHODS}
    assert len(documented) >= 6
    assert documented <= set(ROUTES), documented - set(ROUTES)
    assert {"POST /webhook", "POST /-/reload", "POST /api/v1/approvals/{id}/approve"} <= set(ROUTES)


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
@pytest.mark.parametrize("route", ROUTES.values(), ids=ROUTES.keys())
async def test_another_sites_page_changes_nothing(
        route: tuple[str, str], attack: tuple[dict[str, str], bytes | None, int, str],
        make_client: ClientFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    method, template = route
    headers, data, status, error = attack
    client = await served(make_client, tmp_path, monkeypatch)
    before = await state(client, tmp_path / "audit.jsonl")
    resp = await client.request(method, concrete(template), data=data,
                                headers={"Authorization": BASIC, **headers})
    answer = await resp.json()
    assert (resp.status, answer["error"]) == (status, error), answer
    assert answer["detail"]
    assert await state(client, tmp_path / "audit.jsonl") == before


@pytest.mark.parametrize("route", ROUTES.values(), ids=ROUTES.keys())
async def test_the_same_credentials_from_this_sites_page_are_taken(
        route: tuple[str, str], make_client: ClientFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the same request with this server's Origin and JSON is not refused as foreign."""
    method, template = route
    client = await served(make_client, tmp_path, monkeypatch)
    origin = f"http://{client.host}:{client.port}"
    data = HIGH_CPU_BODY if template == "/webhook" else b"{}"
    resp = await client.request(method, concrete(template), data=data,
                                headers={"Authorization": BASIC, **JSON, "Origin": origin,
                                         "Sec-Fetch-Site": "same-origin"})
    assert resp.status not in (403, 415), await resp.text()
    assert resp.status < 500

