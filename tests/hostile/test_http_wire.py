"""Hostile HTTP on the wire: malformed framing, encodings, origins and content types.

Every row is raw bytes written to a real socket of the app behind serve's connection gate,
and the safe outcome expected: the status, the reason in the JSON error (``None`` where
aiohttp's parser answers before any handler, in plain text), whether the connection is
closed after it (a body whose framing cannot be trusted closes it), and nothing changed:
the audit file as it was, nothing queued, no approval decided, and the service still
taking a valid webhook afterwards.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from receiver.settings import Settings, settings_from_mapping
from tests.conftest import HIGH_CPU_BODY, HIGH_CPU_RULES
from tests.hostile.wire import exchange, gated_server, request

TOKEN = "hostile-wire-token-5d1c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json", **AUTH}
RAW = HIGH_CPU_BODY
APPROVE = "/api/v1/approvals/0123456789abcdef/approve"


@dataclass(frozen=True)
class Case:
    raw: bytes
    status: int
    error: str | None  # the JSON "error"; None: aiohttp's own plain-text answer
    closed: bool | None = None  # None: either


def post(path: str, body: bytes = b"", *, headers: dict[str, str] | None = None,
         length: int | None = None) -> bytes:
    return request("POST", path, body, headers=headers, length=length)


def webhook(body: bytes = RAW, /, **headers: str) -> bytes:
    """A webhook POST; ``Content_Encoding="gzip"`` is the header ``Content-Encoding: gzip``."""
    return post("/webhook", body, headers={**JSON, **{k.replace("_", "-"): v for k, v in headers.items()}})


def chunked(*chunks: bytes, end: bytes = b"0\r\n\r\n") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + end


BOMB = gzip.compress(b" " * (4 * 1024 * 1024))  # 4 MiB of spaces: over the 1 MiB limit once inflated
TRUNCATED_GZIP = gzip.compress(RAW)[: len(gzip.compress(RAW)) // 2]

CASES: dict[str, Case] = {
    # --- Content-Encoding: only gzip, deflate or identity, and they must decode -----------------
    "gzip-that-is-not": Case(webhook(Content_Encoding="gzip"), 400, "invalid_encoding", True),
    "deflate-that-is-not": Case(webhook(Content_Encoding="deflate"), 400, "invalid_encoding", True),
    "gzip-uppercase-not-gzip": Case(webhook(Content_Encoding="GZIP"), 400, "invalid_encoding", True),
    "gzip-truncated": Case(webhook(TRUNCATED_GZIP, Content_Encoding="gzip"), 400, "invalid_encoding", True),
    "gzip-of-garbage-after-magic": Case(webhook(b"\x1f\x8b\x08\x00garbage", Content_Encoding="gzip"),
                                        400, "invalid_encoding", True),
    "encoding-bogus": Case(webhook(Content_Encoding="bogus"), 415, "unsupported_media_type", True),
    "encoding-x-gzip": Case(webhook(gzip.compress(RAW), Content_Encoding="x-gzip"), 415,
                            "unsupported_media_type", True),
    "encoding-stacked": Case(webhook(gzip.compress(gzip.compress(RAW)), Content_Encoding="gzip, gzip"),
                             415, "unsupported_media_type", True),
    "encoding-compress": Case(webhook(Content_Encoding="compress"), 415, "unsupported_media_type", True),
    "encoding-empty-token-list": Case(webhook(Content_Encoding=","), 415, "unsupported_media_type", True),
    "encoding-brotli": Case(webhook(Content_Encoding="br"), 415, "unsupported_media_type", True),
    "encoding-zstd": Case(webhook(Content_Encoding="zstd"), 415, "unsupported_media_type", True),
    "gzip-then-trailing-bytes": Case(webhook(gzip.compress(RAW) + b"junk", Content_Encoding="gzip"), 400,
                                     "invalid_encoding", True),
    "gzip-two-members": Case(webhook(gzip.compress(RAW[:40]) + gzip.compress(RAW[40:]),
                                     Content_Encoding="gzip"), 400, "invalid_encoding", True),
    "gzip-valid": Case(webhook(gzip.compress(RAW), Content_Encoding="gzip"), 202, None),
    "deflate-valid-zlib": Case(webhook(zlib.compress(RAW), Content_Encoding="deflate"), 202, None),
    "deflate-valid-raw": Case(webhook(zlib.compress(RAW)[2:-4], Content_Encoding="deflate"), 202, None),
    "identity-valid": Case(webhook(RAW, Content_Encoding="identity"), 202, None),
    "gzip-empty-body": Case(webhook(b"", Content_Encoding="gzip"), 400, "invalid_json"),
    "gzip-bomb-over-limit": Case(webhook(BOMB, Content_Encoding="gzip"), 413, "too_large", True),
    # --- bodies that never arrive whole: answered once http.body_timeout passes -----------------
    "content-length-over-body": Case(webhook(RAW[:100], **{"Content-Length": str(len(RAW))}),
                                     408, "request_timeout", True),
    "chunked-never-ended": Case(webhook(chunked(RAW[:50], end=b""), **{"Transfer-Encoding": "chunked"}),
                                408, "request_timeout", True),
    "chunk-promised-not-sent": Case(webhook(b"400\r\n" + RAW[:10], **{"Transfer-Encoding": "chunked"}),
                                    408, "request_timeout", True),
    "content-length-over-limit": Case(webhook(b"{", **{"Content-Length": str(64 * 1024 * 1024)}), 413,
                                      "too_large", True),
    "expect-continue-over-limit": Case(webhook(b"", **{"Content-Length": str(8 * 1024 * 1024),
                                                        "Expect": "100-continue"}), 413, "too_large", True),
    # --- framing aiohttp's parser refuses before any handler --------------------------------------
    "length-and-chunked": Case(webhook(chunked(RAW), **{"Transfer-Encoding": "chunked"})
                               .replace(b"\r\n\r\n", f"\r\nContent-Length: {len(RAW)}\r\n\r\n".encode(), 1),
                               400, None, True),
    "two-different-lengths": Case(webhook(RAW).replace(b"\r\n\r\n", b"\r\nContent-Length: 5\r\n\r\n", 1),
                                  400, None, True),
    "negative-length": Case(post("/webhook", RAW, headers={**JSON, "Content-Length": "-1"}), 400, None, True),
    "length-not-a-number": Case(post("/webhook", RAW, headers={**JSON, "Content-Length": "12a"}), 400, None,
                                True),
    "chunk-size-not-hex": Case(webhook(b"zz\r\n{}\r\n0\r\n\r\n", **{"Transfer-Encoding": "chunked"}),
                               400, None, True),
    "transfer-encoding-gzip-chunked": Case(webhook(chunked(gzip.compress(RAW)),
                                                   **{"Transfer-Encoding": "gzip, chunked"}), 400,
                                           "invalid_encoding", True),
    "transfer-encoding-unknown": Case(webhook(RAW, **{"Transfer-Encoding": "bogus"}), 400, None, True),
    "nul-in-header-value": Case(webhook(X_Note="a\x00b"), 400, None, True),
    "obs-fold-header": Case(webhook().replace(b"\r\n\r\n", b"\r\nX-Fold: a\r\n b\r\n\r\n", 1), 400, None,
                            True),
    "space-before-colon": Case(webhook().replace(b"\r\n\r\n", b"\r\nX-Bad : a\r\n\r\n", 1), 400, None,
                               True),
    "header-line-too-long": Case(webhook(X_Long="a" * 9000), 400, None, True),
    "too-many-headers": Case(webhook(**{f"X-H{i}": "1" for i in range(200)}), 400, None, True),
    "request-line-too-long": Case(request("GET", "/" + "a" * 9000), 400, None, True),
    "http-0.9-request": Case(b"GET /health\r\n\r\n", 200, None, True),
    "http-2-preface": Case(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, None, True),
    "garbage-line": Case(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400, None, True),
    "lf-only-line-endings": Case(b"GET /health HTTP/1.1\nHost: x\n\n", 400, None, True),
    # --- chunked oddities and Content-Length lies the parser must settle one way ------------------
    "chunk-extension": Case(webhook(b"%x;name=value\r\n%s\r\n0\r\n\r\n" % (len(RAW), RAW),
                                    **{"Transfer-Encoding": "chunked"}), 202, None),
    "chunk-trailer": Case(webhook(chunked(RAW, end=b"0\r\nX-Trailer: 1\r\n\r\n"),
                                  **{"Transfer-Encoding": "chunked"}), 202, None),
    "chunk-size-leading-zeros": Case(webhook(b"000%x\r\n%s\r\n0\r\n\r\n" % (len(RAW), RAW),
                                             **{"Transfer-Encoding": "chunked"}), 202, None),
    "chunked-uppercase": Case(webhook(chunked(RAW), **{"Transfer-Encoding": "CHUNKED"}), 202, None),
    "chunk-size-overflow": Case(webhook(b"ffffffffffffffffffff\r\nab\r\n0\r\n\r\n",
                                        **{"Transfer-Encoding": "chunked"}), 400, None, True),
    "chunk-size-negative": Case(webhook(b"-5\r\nab\r\n0\r\n\r\n", **{"Transfer-Encoding": "chunked"}),
                                400, None, True),
    "chunk-longer-than-its-size": Case(webhook(b"2\r\nabcdef\r\n0\r\n\r\n",
                                               **{"Transfer-Encoding": "chunked"}), 400, None, True),
    "chunk-lf-only": Case(webhook(b"%x\n%s\n0\n\n" % (len(RAW), RAW), **{"Transfer-Encoding": "chunked"}),
                          400, None, True),
    "chunked-twice": Case(webhook(chunked(RAW), **{"Transfer-Encoding": "chunked, chunked"}), 400, None,
                          True),
    "transfer-encoding-identity": Case(webhook(RAW, **{"Transfer-Encoding": "identity"}), 400, None, True),
    "length-with-plus-sign": Case(post("/webhook", RAW, headers={**JSON, "Content-Length": f"+{len(RAW)}"}),
                                  400, None, True),
    "length-listed-twice": Case(post("/webhook", RAW, headers={
        **JSON, "Content-Length": f"{len(RAW)}, {len(RAW)}"}), 400, None, True),
    "length-in-hex": Case(post("/webhook", RAW, headers={**JSON, "Content-Length": f"0x{len(RAW):x}"}),
                          400, None, True),
    "length-40-digits": Case(post("/webhook", RAW, headers={**JSON, "Content-Length": "9" * 40}), 400, None,
                             True),
    "length-under-body": Case(post("/webhook", RAW, headers={**JSON, "Content-Length": "10"}), 400, None,
                              True),
    "length-zero-with-body": Case(post("/webhook", RAW, headers={**JSON, "Content-Length": "0"}), 400, None,
                                  True),
    "no-host": Case(webhook().replace(b"Host: 127.0.0.1:{port}\r\n", b""), 400, None, True),
    "two-hosts": Case(webhook(Host="evil.example"), 400, None, True),
    "lowercase-method": Case(webhook().replace(b"POST", b"post", 1), 400, None, True),
    "unknown-method": Case(webhook().replace(b"POST", b"BREW", 1), 400, None, True),
    "unknown-expect": Case(webhook(Expect="200-ok"), 417, None),
    "json-in-utf-16": Case(post("/webhook", RAW, headers={
        **JSON, "Content-Type": "application/json; charset=utf-16"}), 415, "unsupported_media_type"),
    "http-1.0-closes": Case(webhook().replace(b"HTTP/1.1", b"HTTP/1.0", 1), 202, None, True),
    # --- what a browser on another site could send with cached credentials ------------------------
    "approve-form-urlencoded-empty": Case(post(APPROVE, headers={
        **AUTH, "Content-Type": "application/x-www-form-urlencoded"}, length=0), 415,
        "unsupported_media_type", True),
    "approve-form-urlencoded": Case(post(APPROVE, b"comment=ok", headers={
        **AUTH, "Content-Type": "application/x-www-form-urlencoded"}), 415, "unsupported_media_type", True),
    "approve-text-plain-json": Case(post(APPROVE, b'{"comment": "ok"}', headers={
        **AUTH, "Content-Type": "text/plain"}), 415, "unsupported_media_type", True),
    "approve-multipart": Case(post(APPROVE, b"--b\r\n\r\nx\r\n--b--\r\n", headers={
        **AUTH, "Content-Type": "multipart/form-data; boundary=b"}), 415, "unsupported_media_type", True),
    "approve-octet-stream-body": Case(post(APPROVE, b'{"comment": "ok"}', headers={
        **AUTH, "Content-Type": "application/octet-stream"}), 415, "unsupported_media_type", True),
    "approve-body-without-content-type": Case(post(APPROVE, b'{"comment": "ok"}', headers=AUTH), 415,
                                              "unsupported_media_type", True),
    "approve-json-suffix-type": Case(post(APPROVE, b'{"comment": "ok"}', headers={
        **AUTH, "Content-Type": "application/merge-patch+json"}), 415, "unsupported_media_type", True),
    "approve-json-with-charset-passes": Case(post(APPROVE, b'{"comment": "ok"}', headers={
        **AUTH, "Content-Type": "application/json; charset=utf-8"}), 404, "not_found"),
    "approve-no-body-no-type-passes": Case(post(APPROVE, headers=AUTH, length=0), 404, "not_found"),
    "approve-foreign-origin": Case(post(APPROVE, headers={**JSON, "Origin": "https://evil.example"},
                                        length=0), 403, "foreign_origin"),
    "approve-null-origin": Case(post(APPROVE, headers={**JSON, "Origin": "null"}, length=0), 403,
                                "foreign_origin"),
    "approve-foreign-referer": Case(post(APPROVE, headers={**JSON, "Referer": "https://evil.example/x"},
                                         length=0), 403, "foreign_origin"),
    "approve-sec-fetch-cross-site": Case(post(APPROVE, headers={**JSON, "Sec-Fetch-Site": "cross-site"},
                                              length=0), 403, "foreign_origin"),
    "approve-sec-fetch-same-site": Case(post(APPROVE, headers={**JSON, "Sec-Fetch-Site": "same-site"},
                                             length=0), 403, "foreign_origin"),
    "approve-origin-other-port": Case(post(APPROVE, headers={**JSON, "Origin": "http://127.0.0.1:1"},
                                           length=0), 403, "foreign_origin"),
    "approve-own-origin-passes": Case(post(APPROVE, headers={**JSON, "Origin": "http://127.0.0.1:{port}"},
                                           length=0), 404, "not_found"),
    "approve-no-origin-passes": Case(post(APPROVE, headers=JSON, length=0), 404, "not_found"),
    "pause-foreign-origin": Case(post("/api/v1/pause", b"{}", headers={**JSON, "Origin": "https://evil"}),
                                 403, "foreign_origin"),
    "resume-text-plain": Case(post("/api/v1/resume", b"x", headers={**AUTH, "Content-Type": "text/plain"}),
                              415, "unsupported_media_type", True),
    "reload-foreign-origin": Case(post("/-/reload", headers={**AUTH, "Origin": "https://evil"}, length=0),
                                  403, "foreign_origin"),
    "webhook-foreign-origin": Case(webhook(Origin="https://evil.example"), 403, "foreign_origin"),
    "webhook-text-plain": Case(post("/webhook", RAW, headers={**AUTH, "Content-Type": "text/plain"}), 415,
                               "unsupported_media_type", True),
    "webhook-form": Case(post("/webhook", b"a=b", headers={
        **AUTH, "Content-Type": "application/x-www-form-urlencoded"}), 415, "unsupported_media_type", True),
    # --- routes and methods ------------------------------------------------------------------------
    "unknown-route-with-body": Case(post("/nowhere", RAW, headers=JSON), 404, "not_found"),
    "get-on-webhook": Case(request("GET", "/webhook", headers=AUTH), 405, "method_not_allowed"),
    "dot-segments-in-url": Case(request("POST", "/api/v1/../../webhook", RAW, headers=JSON), 404,
                                "not_found"),
    "encoded-slash-in-id": Case(post("/api/v1/approvals/a%2F..%2Fb/approve", headers=JSON, length=0), 404,
                                "not_found"),
    "absolute-form-target": Case(request("GET", "http://evil.example/health"), 200, None),
}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("HOSTILE_WIRE_TOKEN", TOKEN)
    rules = tmp_path / "rules.yaml"
    rules.write_text(HIGH_CPU_RULES)
    return settings_from_mapping({
        "state": f"sqlite:///{tmp_path / 'state.db'}", "audit": str(tmp_path / "audit.jsonl"),
        "rules": [str(rules)],
        "auth": {"tokens": [{"name": "wire", "role": "admin", "token": "env:HOSTILE_WIRE_TOKEN"}]},
        "http": {"header_timeout": "500ms", "body_timeout": "500ms", "idle_timeout": "2s"},
    })


def _snapshot(audit: Path) -> bytes:
    return audit.read_bytes() if audit.exists() else b""


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_hostile_bytes_get_a_safe_answer_and_change_nothing(case: Case, settings: Settings) -> None:
    async with gated_server(settings) as served:
        before = _snapshot(settings.audit)
        raw = case.raw.replace(b"{port}", str(served.port).encode())
        answer = await exchange(served.port, raw, linger=0.3 if case.closed is not None else 0)
        assert answer is not None, "no answer at all"
        assert answer.status == case.status, answer.raw[:500]
        if case.error is not None:
            body: Any = answer.json()
            assert body["error"] == case.error, body
            assert body["detail"]
        if case.closed is not None:
            assert answer.closed == case.closed
        if case.status >= 400:  # refused: nothing recorded, queued or decided
            assert _snapshot(settings.audit) == before
            assert await served.runtime.state.backlog() == 0
            assert await served.runtime.approvals.list(None) == []
        valid = webhook().replace(b"{port}", str(served.port).encode())
        followed = await exchange(served.port, valid, linger=0)
        assert followed is not None
        assert followed.status == 202, followed.raw[:300]
