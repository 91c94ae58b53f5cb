"""Whether a state-changing request comes from a browser on another site (CSRF), refused if so.

Used by the console for its forms (``receiver.http.console.session``) and by the request
middleware (``receiver.http.middlewares``) for ``/webhook``, ``/-/reload`` and ``/api/v1``:
with Basic credentials cached by a browser, a form on any site could otherwise post there.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web


class ForeignOrigin(Exception):
    """The request comes from another site (or names no origin where one is required)."""


def _allowed(request: web.Request, external: str | None) -> set[str]:
    """This server's own origin and ``external``: asked only of a request that names an origin
    (most callers name none, and ``request.host`` and ``request.scheme`` are not free)."""
    allowed = {f"{request.scheme}://{request.host}"}
    if external:
        allowed.add(external)
    return allowed


def check_origin(request: web.Request, external: str | None, *, required: bool) -> None:
    """Refuse (:class:`ForeignOrigin`) a state-changing request a browser sent from another site.

    The browser's word decides: ``Sec-Fetch-Site: cross-site`` or ``same-site``, an ``Origin``
    (``null`` included) or, without one, a ``Referer`` that is not this server's own origin
    (``scheme://host``) or ``external`` (``console.external_url``'s). A request naming no
    origin at all passes unless ``required`` (the console's forms always name one; the API's
    clients, Alertmanager and the CLI, are not browsers and name none).
    """
    headers = request.headers
    if headers.get("Sec-Fetch-Site", "").lower() in ("cross-site", "same-site"):
        raise ForeignOrigin("refused: the browser says this request comes from another site; "
                            "nothing was changed")
    origin = headers.get("Origin")
    if origin is not None and origin != "null":
        if origin not in _allowed(request, external):
            raise ForeignOrigin(f"refused: a request from {origin[:100]} (another site) changes nothing")
        return
    referer = headers.get("Referer", "")
    if referer:
        parts = urlsplit(referer)
        if f"{parts.scheme}://{parts.netloc}" in _allowed(request, external):
            return
        raise ForeignOrigin("refused: the request comes from a page of another site; nothing was changed")
    if required or origin == "null":
        raise ForeignOrigin("refused: the request names no origin of this service; nothing was changed")


def external_origin(external_url: str | None) -> str | None:
    """``scheme://host[:port]`` of ``console.external_url``, or None."""
    parts = urlsplit(external_url) if external_url else None
    return f"{parts.scheme}://{parts.netloc}" if parts else None
