"""Duplicate, conflicting and malformed credentials on every route that needs a role.

The routes come from the app's route table (``tests.hostile.routes``), so a new route is
covered. Each row is raw header bytes (two ``Authorization`` headers, both schemes in one,
a right token with words after it, credentials over the length limit, bytes that are not
UTF-8) sent with otherwise right admin credentials: the answer is 400
``ambiguous_credentials`` or 401 ``unauthorized`` with a reason that quotes nothing sent
(and ``WWW-Authenticate``), never a 500 and never the route's work; nothing changed. A
control row per route shows the admin's credentials alone are taken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HIGH_CPU_BODY, ClientFactory
from tests.hostile.routes import BASIC, BEARER, TOKEN, concrete, routes, served, state
from tests.hostile.wire import exchange

ROUTES = routes(changing_only=False)
B, BA = BEARER.encode(), BASIC.encode()
ATTACKS: dict[str, tuple[list[bytes], int]] = {
    "no-header": ([], 401),
    "two-headers-right-first": ([B, b"Bearer wrong"], 400),
    "two-headers-right-second": ([b"Bearer wrong", B], 400),
    "two-headers-both-right": ([B, B], 400),
    "bearer-and-basic-headers": ([B, BA], 400),
    "bearer-then-basic-in-one": ([B + b", " + BA], 401),
    "basic-then-bearer-in-one": ([BA + b", " + B], 401),
    "right-token-then-junk": ([B + b" junk"], 401),
    "right-token-comma": ([B + b","], 401),
    "right-basic-then-junk": ([BA + b" x"], 401),
    "token-over-length-limit": ([b"Bearer " + TOKEN.encode() * 200], 401),
    "right-token-then-non-utf8": ([B + b"\xff\xfe"], 401),
    "non-utf8-scheme": ([b"B\xe9arer " + TOKEN.encode()], 401),
    "scheme-only": ([b"Bearer"], 401),
    "token-without-scheme": ([TOKEN.encode()], 401),
}
SECRETS = (TOKEN.encode(), BA[6:], b"junk", b"wrong")


def _raw(method: str, path: str, authorization: list[bytes]) -> bytes:
    body = HIGH_CPU_BODY if path == "/webhook" else b"{}" if method == "POST" else b""
    head = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    head += [b"Authorization: " + value for value in authorization]
    if body:
        head += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@pytest.mark.parametrize("attack", ATTACKS.values(), ids=ATTACKS.keys())
@pytest.mark.parametrize("route", ROUTES.values(), ids=ROUTES.keys())
async def test_bad_credentials_are_refused_with_a_reason_on_every_route(
        route: tuple[str, str], attack: tuple[list[bytes], int], make_client: ClientFactory,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    method, template = route
    authorization, status = attack
    client: Any = await served(make_client, tmp_path, monkeypatch)
    before = await state(client, tmp_path / "audit.jsonl")
    answer = await exchange(client.port, _raw(method, concrete(template), authorization), linger=0)
    assert answer is not None
    assert answer.status == status, answer.raw[:400]
    error = answer.json()
    assert error["error"] == ("ambiguous_credentials" if status == 400 else "unauthorized")
    assert error["detail"]
    assert error["detail"] != "internal error; see the server log"
    assert not any(secret in answer.body for secret in SECRETS), answer.body
    if status == 401:
        assert "Bearer" in answer.headers["www-authenticate"]
    assert await state(client, tmp_path / "audit.jsonl") == before


@pytest.mark.parametrize("authorization", [BEARER.encode(), BASIC.encode()], ids=["bearer", "basic"])
@pytest.mark.parametrize("route", ROUTES.values(), ids=ROUTES.keys())
async def test_the_admins_credentials_alone_are_taken(
        route: tuple[str, str], authorization: bytes, make_client: ClientFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: one header with the right credentials is neither 400 nor 401 anywhere."""
    method, template = route
    client: Any = await served(make_client, tmp_path, monkeypatch)
    answer = await exchange(client.port, _raw(method, concrete(template), [authorization]), linger=0)
    assert answer is not None
    assert answer.status not in (400, 401), answer.raw[:400]
    assert answer.status < 500, answer.raw[:400]
