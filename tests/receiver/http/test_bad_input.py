"""Bad input at ``POST /webhook``: a clear 4xx, counted, and nothing changes or runs.

Each row of one table is a malformed request (most built from the real Alertmanager
capture 01 by one mutation). For every row the test asserts the status, the JSON error
body (with the JSON path of the first problem for a 400), an audit file byte-identical to
before, an empty queue, no alert received, exactly one count of the rejection metric for
that reason, and a server that afterwards still takes a valid webhook with 202.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from receiver.decisions import Rejection
from tests.conftest import (
    HIGH_CPU_RULES,
    JSON_HEADERS,
    ClientFactory,
    fixture_body,
    runtime_of,
)
from tests.support.fakeclock import FakeClock

RULES = HIGH_CPU_RULES
FIXTURE = "01_firing_group_HighCPU_2_alerts"
RAW = fixture_body(FIXTURE)
BASE: dict[str, Any] = json.loads(RAW)
MIB = 1024 * 1024
SMALL_LIMIT = 4096
JSON = JSON_HEADERS


def mutate(change: Callable[[dict[str, Any]], object]) -> bytes:
    """Capture 01, changed by ``change`` (which edits the decoded body in place)."""
    body = copy.deepcopy(BASE)
    change(body)
    return json.dumps(body).encode()


def alert0(**fields: Any) -> bytes:
    """Capture 01 with fields of the first alert replaced."""
    return mutate(lambda b: b["alerts"][0].update(fields))


def drop(*keys: str, alert: bool = False) -> bytes:
    """Capture 01 without ``keys`` (of the first alert when ``alert``)."""

    def change(body: dict[str, Any]) -> None:
        target = body["alerts"][0] if alert else body
        for key in keys:
            del target[key]

    return mutate(change)


def label(name: str, value: Any) -> bytes:
    """Capture 01 with one label of the first alert set to ``value``."""
    return mutate(lambda b: b["alerts"][0]["labels"].__setitem__(name, value))


def raw_replace(old: bytes, new: bytes) -> bytes:
    """Capture 01's exact bytes with the first ``old`` replaced: for text JSON cannot encode."""
    assert old in RAW
    return RAW.replace(old, new, 1)


def with_extra(raw_json: bytes) -> bytes:
    """Capture 01 with an extra, ignored top-level field whose value is ``raw_json``."""
    return RAW.rstrip().removesuffix(b"}") + b', "x_extension": ' + raw_json + b"}"


def padded(size: int) -> bytes:
    """Capture 01 padded with trailing whitespace to exactly ``size`` bytes (valid JSON)."""
    assert len(RAW) <= size
    return RAW + b" " * (size - len(RAW))


def chunked(total: int, chunk: int = 64 * 1024) -> Callable[[], AsyncIterator[bytes]]:
    """A streamed body of ``total`` bytes sent with chunked transfer-encoding (no length)."""

    async def stream() -> AsyncIterator[bytes]:
        yield b'{"version": "4", "x": "'
        sent = 0
        while sent < total:
            yield b"a" * chunk
            sent += chunk
        yield b'"}'

    return stream


def ten_thousand_alerts() -> bytes:
    alert = BASE["alerts"][0]
    return mutate(lambda b: b.__setitem__("alerts", [alert] * 10_000))


def duplicate_label() -> bytes:
    return raw_replace(b'"severity": "critical"', b'"severity": "info", "severity": "critical"')


@dataclass(frozen=True)
class Bad:
    """One malformed request and the answer it must get."""

    body: bytes | Callable[[], AsyncIterator[bytes]]
    status: int
    error: Rejection
    path: str | None = None  # JSON path of the first problem, for 400s
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    method: str = "POST"
    route: str = "/webhook"
    settings: dict[str, Any] = field(default_factory=dict)
    skip_auto_headers: tuple[str, ...] = ()


def bad_json(body: bytes) -> Bad:
    return Bad(body, 400, Rejection.INVALID_JSON, "$")


def bad_payload(body: bytes, path: str) -> Bad:
    return Bad(body, 400, Rejection.INVALID_PAYLOAD, path)


def a(n: int, rest: str = "") -> str:
    return f"$.alerts[{n}]{rest}"


CASES = [
    # Not JSON at all, or not the whole of it.
    pytest.param(bad_json(b""), id="empty-body"),
    pytest.param(bad_json(b"  \r\n\t "), id="whitespace-only"),
    pytest.param(bad_json(RAW[:1]), id="truncated-after-open-brace"),
    pytest.param(bad_json(RAW[:12]), id="truncated-inside-first-key"),
    pytest.param(bad_json(RAW[:RAW.index(b"HighCPU") + 4]), id="truncated-inside-a-string"),
    pytest.param(bad_json(RAW[:RAW.index(b'"startsAt"') + 11]), id="truncated-after-a-colon"),
    pytest.param(bad_json(RAW.rstrip()[:-1]), id="truncated-before-final-brace"),
    pytest.param(bad_json(b'{"version": "4", "receiver": "\\u00'), id="truncated-inside-an-escape"),
    pytest.param(bad_json(RAW + b"x"), id="trailing-garbage"),
    pytest.param(bad_json(RAW + RAW), id="two-concatenated-objects"),
    pytest.param(bad_json(b"{'version': '4'}"), id="single-quoted-pseudo-json"),
    pytest.param(bad_json(raw_replace(b'"truncatedAlerts": 0', b'"truncatedAlerts": NaN')), id="nan-number"),
    pytest.param(bad_json(raw_replace(b'"truncatedAlerts": 0', b'"truncatedAlerts": -Infinity')),
                 id="minus-infinity-number"),
    pytest.param(bad_json(raw_replace(b'"critical"', b"NaN")), id="nan-as-label-value"),
    pytest.param(bad_json(with_extra(b"Infinity")), id="infinity-in-ignored-field"),
    pytest.param(bad_json(with_extra(b"[1, 2, NaN]")), id="nan-nested-in-ignored-field"),
    pytest.param(bad_json(raw_replace(b'"HighCPU"', b'"High\xffCPU"')), id="non-utf8-in-label-value"),
    pytest.param(bad_json(raw_replace(b'"remediation-webhook"', b'"r\xe9ceiver"')),
                 id="latin1-in-ignored-string"),
    # A lone surrogate cannot be encoded as UTF-8, so it could never reach the audit log or
    # a template intact; pydantic-core refuses it as invalid JSON, which is the safe answer.
    pytest.param(bad_json(raw_replace(b'"HighCPU"', b'"\\ud800"')), id="lone-surrogate-escape"),
    pytest.param(bad_json(b"\xef\xbb\xbf" + RAW), id="utf8-bom"),
    pytest.param(Bad(RAW.decode().encode("utf-16"), 415, Rejection.UNSUPPORTED_MEDIA_TYPE,
                     headers={"Content-Type": "application/json; charset=utf-16"}), id="utf16-body"),
    pytest.param(Bad(RAW.decode().encode("utf-16"), 400, Rejection.INVALID_JSON, "$"),
                 id="utf16-body-without-charset"),
    pytest.param(bad_json(with_extra(b"[" * 10_000 + b"]" * 10_000)), id="nested-10000-levels"),
    pytest.param(bad_json(with_extra(b"1" + b"0" * 5000)), id="5000-digit-number"),
    # JSON, but not an Alertmanager v4 webhook.
    pytest.param(bad_payload(b"null", "$"), id="top-level-null"),
    pytest.param(bad_payload(b"[" + RAW + b"]", "$"), id="top-level-array"),
    pytest.param(bad_payload(b'"4"', "$"), id="top-level-string"),
    pytest.param(bad_payload(b"4", "$"), id="top-level-number"),
    pytest.param(bad_payload(mutate(lambda b: b.update(version="3")), "$.version"), id="version-3"),
    pytest.param(bad_payload(mutate(lambda b: b.update(version=4)), "$.version"), id="version-int-4"),
    pytest.param(bad_payload(drop("version"), "$.version"), id="version-missing"),
    pytest.param(bad_payload(raw_replace(b'"version": "4"', b'"version": "3", "version": "4"'), "$.version"),
                 id="duplicate-version-key"),
    pytest.param(bad_payload(duplicate_label(), a(0, ".labels.severity")), id="duplicate-label-key"),
    # A key twice, with escaped quotes and backslashes and colons in strings around it.
    pytest.param(bad_payload(raw_replace(b'"severity": "critical"',
                                         b'"severity": "a\\\\\\": b\\\\", "severity": "critical"'),
                             a(0, ".labels.severity")), id="duplicate-label-key-among-escapes"),
    pytest.param(bad_payload(with_extra(b'{"k\\"": "v:\\\\", "k\\"": 1}'), '$.x_extension["k\\""]'),
                 id="duplicate-key-in-ignored-field"),
    pytest.param(bad_payload(with_extra(b'{"k": ":x", "m": "xx\\u00e9x", "k": 1}'), "$.x_extension.k"),
                 id="duplicate-key-after-unicode-escape"),
    pytest.param(bad_payload(drop("alerts"), "$.alerts"), id="alerts-missing"),
    pytest.param(bad_payload(mutate(lambda b: b.update(alerts={})), "$.alerts"), id="alerts-object"),
    pytest.param(bad_payload(mutate(lambda b: b.update(alerts=[])), "$.alerts"), id="alerts-empty"),
    pytest.param(bad_payload(mutate(lambda b: b.update(alerts=[None])), a(0)), id="alert-null"),
    pytest.param(bad_payload(mutate(lambda b: b.update(status="pending")), "$.status"),
                 id="group-status-pending"),
    pytest.param(bad_payload(mutate(lambda b: b.update(receiver=7)), "$.receiver"), id="receiver-int"),
    pytest.param(bad_payload(mutate(lambda b: b["groupLabels"].update(alertname=["x"])),
                             "$.groupLabels.alertname"), id="group-label-list"),
    pytest.param(bad_payload(drop("status", alert=True), a(0, ".status")), id="alert-status-missing"),
    pytest.param(bad_payload(drop("labels", alert=True), a(0, ".labels")), id="alert-labels-missing"),
    pytest.param(bad_payload(drop("startsAt", alert=True), a(0, ".startsAt")), id="alert-startsAt-missing"),
    pytest.param(bad_payload(drop("fingerprint", alert=True), a(0, ".fingerprint")),
                 id="alert-fingerprint-missing"),
    pytest.param(bad_payload(mutate(lambda b: b["alerts"][1].update(status="pending")), a(1, ".status")),
                 id="second-alert-status-pending"),
    pytest.param(bad_payload(label("severity", 1), a(0, ".labels.severity")), id="label-value-int"),
    pytest.param(bad_payload(label("severity", None), a(0, ".labels.severity")), id="label-value-null"),
    pytest.param(bad_payload(label("severity", ["critical"]), a(0, ".labels.severity")),
                 id="label-value-list"),
    pytest.param(bad_payload(label("severity", {"v": "critical"}), a(0, ".labels.severity")),
                 id="label-value-object"),
    pytest.param(bad_payload(label("1team", "x"), a(0, '.labels["1team"]')), id="label-name-leading-digit"),
    pytest.param(bad_payload(label("team-name", "x"), a(0, '.labels["team-name"]')), id="label-name-dash"),
    pytest.param(bad_payload(label("n" * 100_000, "x"), a(0, f'.labels["{"n" * 128}…"]')),
                 id="label-name-100k-chars"),
    pytest.param(bad_payload(mutate(lambda b: b["alerts"][0].update(labels=[])), a(0, ".labels")),
                 id="labels-list"),
    pytest.param(bad_payload(alert0(annotations=["summary"]), a(0, ".annotations")), id="annotations-list"),
    pytest.param(bad_payload(mutate(lambda b: b["alerts"][0]["annotations"].update(summary=97.5)),
                             a(0, ".annotations.summary")), id="annotation-value-number"),
    pytest.param(bad_payload(alert0(fingerprint="07f12413zz941787"), a(0, ".fingerprint")),
                 id="fingerprint-non-hex"),
    pytest.param(bad_payload(alert0(fingerprint="a" * 100_000), a(0, ".fingerprint")),
                 id="fingerprint-100k-chars"),
    pytest.param(bad_payload(alert0(fingerprint=0x07F1241324941787), a(0, ".fingerprint")),
                 id="fingerprint-int"),
    pytest.param(bad_payload(alert0(startsAt=1795416148), a(0, ".startsAt")), id="startsAt-int"),
    pytest.param(bad_payload(alert0(startsAt="2026-11-23T06:42:28.909"), a(0, ".startsAt")),
                 id="startsAt-without-zone"),
    pytest.param(bad_payload(alert0(startsAt="yesterday"), a(0, ".startsAt")), id="startsAt-not-a-date"),
    pytest.param(bad_payload(alert0(startsAt="2026-11-23 06:42:28Z"), a(0, ".startsAt")),
                 id="startsAt-space-separator"),
    pytest.param(bad_payload(alert0(startsAt="2026-13-23T06:42:28Z"), a(0, ".startsAt")),
                 id="startsAt-month-13"),
    pytest.param(bad_payload(alert0(startsAt="2026-02-30T06:42:28Z"), a(0, ".startsAt")),
                 id="startsAt-february-30"),
    pytest.param(bad_payload(alert0(startsAt="2026-11-23T06:42:28.1234567890Z"), a(0, ".startsAt")),
                 id="startsAt-10-fraction-digits"),
    pytest.param(bad_payload(alert0(endsAt="garbage"), a(0, ".endsAt")), id="endsAt-garbage"),
    pytest.param(bad_payload(mutate(lambda b: b.update(truncatedAlerts=-1)), "$.truncatedAlerts"),
                 id="truncatedAlerts-negative"),
    pytest.param(bad_payload(mutate(lambda b: b.update(truncatedAlerts="4")), "$.truncatedAlerts"),
                 id="truncatedAlerts-string"),
    pytest.param(bad_payload(mutate(lambda b: b.update(truncatedAlerts=1.5)), "$.truncatedAlerts"),
                 id="truncatedAlerts-float"),
    # 1e400 is valid JSON that decodes to infinity: refused where a count is expected.
    pytest.param(bad_payload(raw_replace(b'"truncatedAlerts": 0', b'"truncatedAlerts": 1e400'),
                             "$.truncatedAlerts"), id="truncatedAlerts-overflowing-float"),
    # Too large: refused before the body is read whole.
    pytest.param(Bad(ten_thousand_alerts(), 413, Rejection.TOO_LARGE), id="10000-alerts"),
    pytest.param(Bad(label("description", "x" * MIB), 413, Rejection.TOO_LARGE), id="1MB-label-value"),
    pytest.param(Bad(padded(SMALL_LIMIT + 1), 413, Rejection.TOO_LARGE,
                     settings={"max_body_bytes": SMALL_LIMIT}), id="one-byte-over-configured-limit"),
    pytest.param(Bad(RAW, 413, Rejection.TOO_LARGE, headers={**JSON, "Content-Length": str(2 * MIB)}),
                 id="content-length-lies-over-limit"),
    pytest.param(Bad(chunked(MIB + 64 * 1024), 413, Rejection.TOO_LARGE), id="chunked-over-limit"),
    pytest.param(Bad(chunked(SMALL_LIMIT), 413, Rejection.TOO_LARGE,
                     settings={"max_body_bytes": SMALL_LIMIT}), id="chunked-over-configured-limit"),
    # Wrong media type, method or route.
    pytest.param(Bad(RAW, 415, Rejection.UNSUPPORTED_MEDIA_TYPE, headers={"Content-Type": "text/plain"}),
                 id="content-type-text-plain"),
    pytest.param(Bad(RAW, 415, Rejection.UNSUPPORTED_MEDIA_TYPE, headers={},
                     skip_auto_headers=("Content-Type",)), id="content-type-missing"),
    pytest.param(Bad(b"version=4&alerts=x", 415, Rejection.UNSUPPORTED_MEDIA_TYPE,
                     headers={"Content-Type": "application/x-www-form-urlencoded"}), id="content-type-form"),
    pytest.param(Bad(RAW, 415, Rejection.UNSUPPORTED_MEDIA_TYPE,
                     headers={"Content-Type": "multipart/form-data; boundary=x"}),
                 id="content-type-multipart"),
    pytest.param(Bad(b"", 405, Rejection.METHOD_NOT_ALLOWED, method="GET", headers={}), id="get-webhook"),
    pytest.param(Bad(RAW, 405, Rejection.METHOD_NOT_ALLOWED, method="PUT"), id="put-webhook"),
    pytest.param(Bad(RAW, 404, Rejection.NOT_FOUND, route="/nope"), id="post-unknown-route"),
    pytest.param(Bad(RAW, 404, Rejection.NOT_FOUND, route="/webhook/"), id="post-webhook-trailing-slash"),
]


@pytest.fixture
def fresh_clock(clock: FakeClock) -> FakeClock:
    """Capture 01 fired at 2026-11-23T06:42:28Z; put now five minutes later."""
    clock.t = 1_795_416_148.909 + 300
    return clock


def rejections(client: Any) -> dict[str, float]:
    """The non-zero ``remediator_requests_rejected_total`` counts by reason."""
    registry = runtime_of(client).metrics.registry
    counts = {r.value: registry.get_sample_value("remediator_requests_rejected_total", {"reason": r.value})
              for r in Rejection}
    return {reason: value for reason, value in counts.items() if value}


def alerts_received(client: Any) -> float:
    registry = runtime_of(client).metrics.registry
    return sum(registry.get_sample_value("remediator_alerts_received_total", {"status": s}) or 0
               for s in ("firing", "resolved"))


async def assert_still_serves(client: Any) -> None:
    resp = await client.post("/webhook", data=RAW, headers=JSON)
    assert resp.status == 202
    assert await resp.json() == {"received": 2, "matched": 2, "queued": 2}


def test_the_table_is_large_and_distinct() -> None:
    """The table drives at least 45 malformed requests, no two of them the same."""
    assert len(CASES) >= 45
    assert len({p.id for p in CASES}) == len(CASES)
    rows: list[Bad] = [p.values[0] for p in CASES]  # type: ignore[misc]
    keys = {(c.method, c.route, c.body if isinstance(c.body, bytes) else id(c.body),
             tuple(sorted(c.headers.items())), tuple(sorted(c.settings.items()))) for c in rows}
    assert len(keys) == len(CASES)


@pytest.mark.parametrize("case", CASES)
async def test_malformed_request_is_refused_and_changes_nothing(
        case: Bad, make_client: ClientFactory, make_settings: Any, fresh_clock: FakeClock) -> None:
    """A malformed request gets its 4xx with a JSON error (and path), is counted, and changes nothing."""
    settings = make_settings(rules=RULES, **case.settings)
    client = await make_client(settings)
    runtime = runtime_of(client)
    await runtime.audit.sync()
    audit_before = settings.audit.read_bytes()
    assert b'"admin.started"' in audit_before

    body = io.BytesIO(case.body) if isinstance(case.body, bytes) else case.body()
    resp = await client.request(case.method, case.route, data=body, headers=case.headers,
                                skip_auto_headers=case.skip_auto_headers)

    sent = resp.request_info.headers
    if not isinstance(case.body, bytes):  # streamed: the server cannot know the size up front
        assert (sent.get("Transfer-Encoding"), sent.get("Content-Length")) == ("chunked", None)
    for name in case.skip_auto_headers:
        assert name not in sent
    assert resp.status == case.status
    assert resp.content_type == "application/json"
    assert len(await resp.read()) < 2048  # an answer never echoes a big input back
    answer = await resp.json()
    assert answer["error"] == case.error.value
    assert isinstance(answer["detail"], str)
    assert answer["detail"]
    assert answer.get("path") == case.path
    if case.status == 405:
        assert "POST" in resp.headers["Allow"]
    if case.status == 413:
        assert resp.headers["Connection"] == "close"
    await runtime.audit.sync()
    assert settings.audit.read_bytes() == audit_before
    assert (runtime.queue.depth(), runtime.queue.unfinished) == (0, 0)
    assert alerts_received(client) == 0
    assert rejections(client) == {case.error.value: 1}
    await assert_still_serves(client)


VALID_BIG = [
    pytest.param(mutate(lambda b: b["alerts"][0]["labels"].update({f"label_{i}": "v" for i in range(1000)})),
                 {}, id="1000-labels"),
    pytest.param(label("description", "x" * (MIB // 2)), {}, id="half-MiB-label-value"),
    pytest.param(mutate(lambda b: b.update(alerts=[{**b["alerts"][i % 2], "fingerprint": f"{i:016x}"}
                                                   for i in range(1000)])), {}, id="1000-alerts"),
    pytest.param(padded(SMALL_LIMIT), {"max_body_bytes": SMALL_LIMIT}, id="exactly-the-configured-limit"),
    pytest.param(mutate(lambda b: b.update(x_future_field={"deep": [[[{"ok": True}]]]})), {},
                 id="unknown-fields-ignored"),
    pytest.param(mutate(lambda b: b.update(truncatedAlerts=4.0)), {},
                 id="a-count-written-as-a-whole-float"),  # JSON Schema's integer, as the OpenAPI says
]


@pytest.mark.parametrize(("body", "overrides"), VALID_BIG)
async def test_big_but_valid_payload_is_accepted(body: bytes, overrides: dict[str, Any],
                                                 make_client: ClientFactory, make_settings: Any,
                                                 fresh_clock: FakeClock) -> None:
    """A large but valid webhook within the body limit is accepted with 202 and nothing refused."""
    client = await make_client(make_settings(rules=RULES, **overrides))
    resp = await client.post("/webhook", data=io.BytesIO(body), headers=JSON)
    assert resp.status == 202, await resp.text()
    answer = await resp.json()
    assert answer["received"] == len(json.loads(body)["alerts"])
    assert rejections(client) == {}
