"""What every ``docker.*`` action shares: the Engine API client per engine, and its errors.

The base of ``remediations.docker.containers`` (and through it of
``remediations.docker.restart`` and ``remediations.docker.diagnose``); a new Docker action
derives from :class:`DockerAction` (or from ``ContainerAction`` when it acts on containers
chosen by name or label). The ``docker`` SDK is synchronous: every call runs on the SDK
pool's threads (``ctx.calls``, ``remediations.blocking``) with one ``DockerClient`` per
engine URL, cached on the action instance and closed by :meth:`DockerAction.close`. A
missing container, 4xx and a refused container are permanent; 5xx, timeouts and an
unreachable engine are temporary, so the executor retries them (:func:`engine_error`). The
SDK is imported on first use, so start-up and ``rules lint`` do not pay for it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

from pydantic import BaseModel

from remediations.base import Action, ActionContext, PermanentError, RemediationError, TemporaryError
from remediations.targets import DockerTarget

if TYPE_CHECKING:
    import docker

CLIENT_TIMEOUT = 20  # seconds per Engine API call; a restart adds its stop timeout
_TEMPORARY_STATUSES = frozenset({408, 429})

T = TypeVar("T")
P = TypeVar("P", bound=BaseModel)


def transport_errors() -> tuple[type[BaseException], ...]:
    """What an SDK call raises when the engine or the way to it fails (the SDK is loaded by then)."""
    import requests  # noqa: PLC0415 - the SDK is imported on first use
    from docker.errors import DockerException  # noqa: PLC0415

    return (DockerException, requests.exceptions.RequestException, OSError)


def engine_error(exc: BaseException, what: str) -> RemediationError:
    """An SDK or transport failure as the executor's Permanent/Temporary error."""
    import requests  # noqa: PLC0415 - the SDK is imported on first use
    from docker.errors import APIError, DockerException, NotFound  # noqa: PLC0415

    if isinstance(exc, RemediationError):
        return exc
    if isinstance(exc, NotFound):
        return PermanentError(f"{what}: not found: {exc.explanation or exc}")
    if isinstance(exc, APIError):
        status = exc.status_code
        message = f"{what}: engine answered {status}: {exc.explanation or exc}"
        if status is None or status >= 500 or status in _TEMPORARY_STATUSES:
            return TemporaryError(message)
        return PermanentError(message)
    if isinstance(exc, requests.exceptions.Timeout):
        return TemporaryError(f"{what}: engine did not answer in time ({exc.__class__.__name__})")
    if isinstance(exc, (requests.exceptions.ConnectionError, OSError)):
        return TemporaryError(f"{what}: engine unreachable ({exc.__class__.__name__})")
    if isinstance(exc, DockerException):
        # Building a client asks the engine for its API version and wraps a transport
        # failure in a bare DockerException; anything else (a malformed URL) is permanent.
        if isinstance(exc.__cause__, (requests.exceptions.RequestException, OSError)):
            return TemporaryError(f"{what}: engine unreachable: {exc}")
        return PermanentError(f"{what}: {exc}")
    return PermanentError(f"{what}: {exc.__class__.__name__}: {exc}")


def _probe_unix_socket(path: str) -> None:
    """Connect once and close, so a missing engine is found without the SDK.

    docker-py's unix adapter leaves the socket of a failed connect unclosed; probing
    here keeps the common case (no engine at that path) from leaking one per attempt.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(CLIENT_TIMEOUT)
        probe.connect(path)


class DockerAction(Action[P]):
    """What every Docker action shares: the target check and the client cache."""

    target_kinds: ClassVar[frozenset[str]] = frozenset({"docker"})

    def __init__(self) -> None:
        self._clients: dict[str, docker.DockerClient] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every cached client (at shutdown, or when a test is done with the action)."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def check_allowed(self, ctx: ActionContext, params: P) -> None:
        self._target(ctx)

    def _target(self, ctx: ActionContext) -> DockerTarget:
        if not isinstance(ctx.target, DockerTarget):
            raise PermanentError(f"{self.name} needs a docker target, got {ctx.target_name!r}")
        return ctx.target

    def _client(self, url: str) -> docker.DockerClient:
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                if url.startswith("unix://"):
                    _probe_unix_socket(url.removeprefix("unix://"))
                import docker  # noqa: PLC0415 - the SDK is imported on first use

                # version "auto" asks the engine, so this call already needs it reachable.
                client = docker.DockerClient(base_url=url, version="auto", timeout=CLIENT_TIMEOUT)
                self._clients[url] = client
            return client

    async def _in_thread(self, ctx: ActionContext, fn: Callable[[docker.DockerClient], T]) -> T:
        """Run ``fn`` with the target's client on the SDK pool's threads; classify what it raises."""
        target = self._target(ctx)
        what = f"{self.name} on {ctx.target_name}"

        def call() -> T:
            return fn(self._client(target.url))

        try:
            return await ctx.calls.run(call)
        except transport_errors() as exc:
            raise engine_error(exc, what) from None
