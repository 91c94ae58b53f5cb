"""Argo CD's REST API as ``argocd.*`` actions call it: one aiohttp session per call, errors classified.

Used by ``remediations.argocd.rollback``. Argo CD answers errors as grpc-gateway JSON
(``{"error", "code", "message"}``) with the HTTP status of the gRPC code: 401/403
(credentials, Argo CD RBAC), 404 (no such application), 400 (``FailedPrecondition``:
"another operation is already in progress", "rollback cannot be initiated when auto-sync
is enabled"; ``InvalidArgument``) are permanent; 5xx, 408, 429, timeouts and connection
errors temporary. The token is sent as a bearer token and never appears in an error.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import aiohttp

from remediations.base import PermanentError, TemporaryError
from remediations.targets import ArgoCdTarget

_TEMPORARY = frozenset({408, 429})


class ArgoCdApi:
    """One target's calls."""

    def __init__(self, target: ArgoCdTarget) -> None:
        self.target = target

    def _url(self, name: str, suffix: str = "") -> str:
        return f"{self.target.base_url}/api/v1/applications/{quote(name, safe='')}{suffix}"

    def _query(self) -> dict[str, str]:
        return {"appNamespace": self.target.app_namespace} if self.target.app_namespace else {}

    async def get_application(self, name: str) -> dict[str, Any]:
        """``GET /api/v1/applications/{name}``: spec (sync policy), status (history, sync, operation)."""
        return await self._call("GET", self._url(name), f"GET application {name}")

    async def patch_application(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """``PATCH /api/v1/applications/{name}`` with a JSON merge patch (as ``argocd app set`` sends)."""
        body: dict[str, Any] = {"name": name, "patch": json.dumps(patch, separators=(",", ":")),
                                "patchType": "merge", **self._query()}
        return await self._call("PATCH", self._url(name), f"PATCH application {name}", body)

    async def rollback(self, name: str, history_id: int, *, prune: bool) -> dict[str, Any]:
        """``POST /api/v1/applications/{name}/rollback``: sync to the revision of history entry ``id``."""
        body: dict[str, Any] = {"name": name, "id": history_id, "prune": prune, "dryRun": False,
                                **self._query()}
        return await self._call("POST", self._url(name, "/rollback"), f"rollback of application {name}", body)

    async def _call(self, method: str, url: str, what: str, body: Any = None) -> dict[str, Any]:
        target = self.target
        headers = {"Authorization": f"Bearer {target.token.reveal()}", "Accept": "application/json"}
        timeout = aiohttp.ClientTimeout(total=target.timeout)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(method, url, params=self._query() if method == "GET" else None, json=body,
                                headers=headers, allow_redirects=False, ssl=target.verify_tls) as resp,
            ):
                status, text = resp.status, (await resp.content.read(1 << 20)).decode("utf-8", "replace")
        except TimeoutError:
            raise TemporaryError(f"{what}: Argo CD did not answer within {target.timeout}s") from None
        except aiohttp.ClientConnectorCertificateError:
            raise PermanentError(f"{what}: Argo CD's TLS certificate is not trusted") from None
        except aiohttp.ClientConnectorError as exc:
            raise TemporaryError(f"{what}: cannot connect to Argo CD ({exc.__class__.__name__})",
                                 nothing_sent=True) from None
        except aiohttp.ClientError as exc:
            raise TemporaryError(f"{what}: {exc.__class__.__name__}") from None
        text = text.replace(target.token.reveal(), str(target.token))
        try:
            doc = json.loads(text) if text else {}
        except ValueError:
            doc = None
        if 200 <= status < 300:
            if not isinstance(doc, dict):
                raise TemporaryError(f"{what}: Argo CD answered {status} with something not a JSON object")
            return doc
        message = doc.get("message") or doc.get("error") if isinstance(doc, dict) else None
        text = f"{what}: Argo CD answered {status}: {message or text[:200]}"
        if status >= 500 or status in _TEMPORARY:
            error = TemporaryError(text, nothing_sent=status in (429, 503))
            error.status = status
            raise error
        raise PermanentError(text)
