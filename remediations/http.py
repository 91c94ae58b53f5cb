"""``http.request`` (one HTTP call to a target's ``base_url``: cache invalidation, re-trigger)
and ``http.check`` (a read-only health check: status, latency, a bounded body excerpt).

Run by ``receiver.flow.workers``. The URL is the target's ``base_url`` joined with ``path``
and checked after templating and percent-decoding (``remediations.urlpath``): a label's
value stays one path segment or one query value, or the step is refused, so no label can
point it elsewhere; the plan shows the exact URL requested; redirects are not followed for
the same reason. For ``http.request``, 5xx, 408, 429, timeouts and connection
errors are temporary and any other unexpected status is permanent; ``http.check`` reports
whatever it finds (an unhealthy or unreachable endpoint is its finding, not its failure).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, field_validator
from yarl import URL

from remediations.base import (
    Action,
    ActionContext,
    InvalidParams,
    PermanentError,
    Plan,
    Result,
    TargetNotAllowed,
    TemporaryError,
)
from remediations.targets import HttpTarget
from remediations.urlpath import PathRefused, exact_url, relative_path, render_path
from remediations.urlpath import check_inside as inside_check
from rules.alert import Alert
from rules.templating import Template, render_value

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_EXCERPT = 2048
_CHECK_BODY_MAX = 65536  # bytes of a health answer one check may keep
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_TEMPORARY_STATUSES = frozenset({408, 425, 429})
_REFUSED_STATUSES = frozenset({408, 425, 429, 503})


def _path(value: str) -> str:
    try:
        return relative_path(value)
    except PathRefused as exc:
        raise ValueError(str(exc)) from None


def header_value(name: str, value: str) -> str:
    """A header value as HTTP carries it: visible ASCII, spaces and tabs; nothing a label could
    use to end the header, start another or break the request at send time."""
    if any(not (0x20 <= ord(c) < 0x7F or c == "\t") for c in value):
        raise ValueError(f"header {name} must contain only printable ASCII (no line breaks, "
                         "control or non-ASCII characters)")
    return value


class RequestParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = Field(
        default="POST", description="HTTP method; any but GET and HEAD is destructive")
    path: str = Field(default="/", max_length=2048, description="Path under the target's base_url")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="Extra request headers; they override the target's")
    body: Any = Field(default=None, alias="json", description="JSON body")
    expect_status: list[int] = Field(
        default_factory=list, description="Accepted statuses; empty means any 2xx"
    )

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        return _path(value)

    @field_validator("headers")
    @classmethod
    def _clean_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, val in value.items():
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid header name {name!r}")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name} is set by remediator, not by rules "
                                 "(Host would leave the target's base_url)")
            header_value(name, val)
        return value

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        if any(not 100 <= s <= 599 for s in value):
            raise ValueError("expect_status entries must be HTTP statuses (100-599)")
        return value


def _scrub(text: str, target: HttpTarget) -> str:
    """``text`` with every secret header value of the target replaced by its reference."""
    for secret in target.headers.values():
        text = text.replace(secret.reveal(), str(secret))
    return text


def _url(target: HttpTarget, path: str) -> str:
    return exact_url(target.base_url, path)


def http_target(action: str, ctx: ActionContext) -> HttpTarget:
    """The context's target, which must be an http target."""
    if not isinstance(ctx.target, HttpTarget):
        raise PermanentError(f"{action} needs an http target, got {ctx.target_name!r}")
    return ctx.target


def check_inside(target: HttpTarget, path: str) -> None:
    """Refuse a rendered path that, resolved as a server would, leaves ``base_url``."""
    outside = inside_check(target.base_url, _url(target, path))
    if outside is not None:
        raise TargetNotAllowed(outside)


def render_http_params(action: str, compiled: Mapping[str, Any], alert: Alert) -> dict[str, Any]:
    """``compiled`` rendered, a templated ``path`` through :func:`remediations.urlpath.render_path`."""
    rendered: dict[str, Any] = render_value({k: v for k, v in compiled.items() if k != "path"}, alert)
    path = compiled.get("path")
    if isinstance(path, Template):
        try:
            rendered["path"] = render_path(path, alert)
        except PathRefused as exc:
            raise InvalidParams(f"{action}: path: {exc}") from None
    elif "path" in compiled:
        rendered["path"] = path
    return rendered


class HttpRequest(Action[RequestParams]):
    """Send one request to the target's base URL and check the answer."""

    name = "http.request"
    description = "One HTTP request to the target's base_url; response excerpt in the outcome"
    params_model = RequestParams
    destructive = True
    target_kinds = frozenset({"http"})
    timeout = 30.0

    destructive_by = frozenset({"method"})

    def is_destructive(self, params: RequestParams) -> bool:
        return params.method not in ("GET", "HEAD")

    def subject(self, ctx: ActionContext, params: RequestParams) -> str:
        """The resource: target, method and path with its query (not headers or body, which
        often carry per-alert details)."""
        return f"{ctx.target_name}/{params.method} {params.path}"

    def _target(self, ctx: ActionContext) -> HttpTarget:
        return http_target(self.name, ctx)

    def render_params(self, compiled: Mapping[str, Any], alert: Alert) -> dict[str, Any]:
        return render_http_params(self.name, compiled, alert)

    def check_allowed(self, ctx: ActionContext, params: RequestParams) -> None:
        check_inside(self._target(ctx), params.path)

    async def plan(self, ctx: ActionContext, params: RequestParams) -> Plan:
        target = self._target(ctx)
        url = _url(target, params.path)
        steps = [f"{params.method} {url}"]
        header_names = sorted({*target.headers, *params.headers})
        if header_names:
            steps.append("with headers " + ", ".join(header_names))
        if params.body is not None:
            body = json.dumps(params.body, sort_keys=True)
            steps.append("with JSON body " + (body if len(body) <= 500 else body[:500] + "…"))
        expected = ", ".join(map(str, params.expect_status)) or "any 2xx"
        steps.append(f"expect status {expected}")
        return Plan(
            action=self.name,
            target=ctx.target_name,
            steps=tuple(steps),
            destructive=self.is_destructive(params),
            details={"method": params.method, "url": url, "json": params.body,
                     "expect_status": params.expect_status},
        )

    async def execute(self, ctx: ActionContext, params: RequestParams, plan: Plan) -> Result:
        target = self._target(ctx)
        url = _url(target, params.path)
        headers = {k: v.reveal() for k, v in target.headers.items()} | params.headers
        timeout = aiohttp.ClientTimeout(total=target.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(
                    params.method, URL(url, encoded=True), headers=headers, json=params.body,
                    allow_redirects=False, ssl=target.verify_tls,
                ) as resp,
            ):
                excerpt = (await resp.content.read(_EXCERPT)).decode("utf-8", "replace")
                status = resp.status
        except TimeoutError:
            raise TemporaryError(f"{params.method} {url} timed out after {target.timeout}s") from None
        except aiohttp.ClientConnectorCertificateError:  # retrying will not fix a certificate
            raise PermanentError(
                f"{params.method} {url}: the server's TLS certificate is not trusted") from None
        except aiohttp.ClientConnectorError as exc:  # no connection: nothing reached the server
            raise TemporaryError(f"{params.method} {url} failed: {exc.__class__.__name__}",
                                 nothing_sent=True) from None
        except aiohttp.ClientError as exc:
            raise TemporaryError(f"{params.method} {url} failed: {exc.__class__.__name__}") from None
        excerpt = _scrub(excerpt, target)  # a server that echoes the request must not leak a header
        ok = status in params.expect_status if params.expect_status else 200 <= status < 300
        if not ok:
            message = f"{params.method} {url} answered {status}: {excerpt[:200]}"
            if status >= 500 or status in _TEMPORARY_STATUSES:
                # 503, 429, 408 and 425 say the server did not take the request on.
                raise TemporaryError(message, nothing_sent=status in _REFUSED_STATUSES)
            raise PermanentError(message)
        return Result(
            summary=f"{params.method} {url} answered {status}",
            details={"status": status, "excerpt": excerpt},
        )


class CheckParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(default="/health", max_length=2048, description="Path under the target's base_url")
    method: Literal["GET", "HEAD"] = Field(default="GET", description="GET or HEAD; nothing else is a check")
    expect_status: list[int] = Field(
        default_factory=list, max_length=20,
        description="Statuses that count as healthy; empty means any 2xx")
    body_bytes: int = Field(default=1024, ge=0, le=_CHECK_BODY_MAX,
                            description="At most this many bytes of the body kept as the excerpt")
    timeout: float = Field(default=5.0, gt=0, le=60,
                           description="Seconds for the whole request (never beyond the target's timeout)")

    @field_validator("path")
    @classmethod
    def _relative_path(cls, value: str) -> str:
        return _path(value)

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, value: list[int]) -> list[int]:
        if any(not 100 <= s <= 599 for s in value):
            raise ValueError("expect_status entries must be HTTP statuses (100-599)")
        return value


class HttpCheck(Action[CheckParams]):
    """``curl -sf -w '%{http_code}' URL``: one GET, its status, latency and a body excerpt; read-only.

    An unhealthy answer or an unreachable endpoint is the finding (``healthy: false``,
    with the status or the error), never a failure of the step: a diagnosis records it.
    """

    name = "http.check"
    description = "Read-only health check: GET a path under the target's base_url; status, latency, excerpt"
    params_model = CheckParams
    read_only = True
    target_kinds = frozenset({"http"})
    timeout = 70.0

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic

    def subject(self, ctx: ActionContext, params: CheckParams) -> str:
        return f"{ctx.target_name}/{params.method} {params.path}"

    def render_params(self, compiled: Mapping[str, Any], alert: Alert) -> dict[str, Any]:
        return render_http_params(self.name, compiled, alert)

    def check_allowed(self, ctx: ActionContext, params: CheckParams) -> None:
        check_inside(http_target(self.name, ctx), params.path)

    def _limit(self, target: HttpTarget, params: CheckParams) -> float:
        return min(params.timeout, target.timeout)

    async def plan(self, ctx: ActionContext, params: CheckParams) -> Plan:
        target = http_target(self.name, ctx)
        url = _url(target, params.path)
        expected = ", ".join(map(str, params.expect_status)) or "any 2xx"
        steps = [f"{params.method} {url} (no redirects followed, at most {self._limit(target, params)}s)"]
        if target.headers:
            steps.append("with headers " + ", ".join(sorted(target.headers)))
        steps.append(f"record the status (healthy: {expected}), the latency and at most "
                     f"{params.body_bytes} bytes of the body; change nothing")
        return Plan(action=self.name, target=ctx.target_name, steps=tuple(steps), destructive=False,
                    details={"method": params.method, "url": url, "expect_status": params.expect_status,
                             "body_bytes": params.body_bytes})

    async def execute(self, ctx: ActionContext, params: CheckParams, plan: Plan) -> Result:
        target = http_target(self.name, ctx)
        url = _url(target, params.path)
        limit = self._limit(target, params)
        headers = {k: v.reveal() for k, v in target.headers.items()}
        started = self._monotonic()
        status: int | None = None
        excerpt, error, content_type = "", None, None
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=limit)) as session,
                session.request(params.method, URL(url, encoded=True), headers=headers, allow_redirects=False,
                                ssl=target.verify_tls) as resp,
            ):
                status, content_type = resp.status, resp.headers.get("Content-Type")
                raw = await resp.content.read(params.body_bytes) if params.body_bytes else b""
                excerpt = raw.decode("utf-8", "replace")
        except TimeoutError:
            error = f"no answer within {limit}s"
        except aiohttp.ClientConnectorCertificateError:
            error = "the server's TLS certificate is not trusted"
        except aiohttp.ClientError as exc:
            error = f"{exc.__class__.__name__}: {_scrub(str(exc), target)}"[:300]
        latency_ms = round((self._monotonic() - started) * 1000, 1)
        excerpt = _scrub(excerpt, target)
        healthy = status is not None and (status in params.expect_status if params.expect_status
                                          else 200 <= status < 300)
        details = {"url": url, "method": params.method, "status": status, "healthy": healthy,
                   "latency_ms": latency_ms, "content_type": content_type, "excerpt": excerpt,
                   "error": error}
        if status is None:
            summary = f"{params.method} {url}: unreachable ({error}) after {latency_ms} ms"
        else:
            summary = (f"{params.method} {url} answered {status} in {latency_ms} ms: "
                       + ("healthy" if healthy else "unhealthy"))
        return Result(summary=summary, details=details)
