"""Console sign-in: signed session cookies, CSRF tokens and the Origin check.

Used by every handler of ``receiver.http.console``. Signing in takes the credentials the
API takes (a token, or a basic-auth user and password, checked by
``receiver.http.auth.Authenticator``); the ``webhook`` role has no console. The session is
a cookie (HttpOnly, SameSite=Strict, Path=/ui, Secure under TLS) holding the credential's
name, its role, a CSRF token and an expiry, signed with HMAC-SHA256 under
``console.session_secret`` (every replica must share it; without it each process draws its
own, so a sign-in holds on one replica). Every request re-reads the credential by name:
one removed from the config, or given another role, ends its sessions.

Every state-changing request must carry the session, the CSRF token of that session (a
hidden form field) and an ``Origin`` (or, without one, a ``Referer``) of this server itself
(or of ``console.external_url``), and no ``Sec-Fetch-Site`` saying another site; anything
else is refused with 403 before it is read further, and nothing changes
(``receiver.http.origin.check_origin``, which the API's middleware uses too).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDictProxy

from receiver.clock import Clock
from receiver.http.auth import ANONYMOUS, Authenticator, Principal
from receiver.http.origin import ForeignOrigin, check_origin, external_origin
from receiver.oncall import ConsoleSettings

COOKIE = "remediator_session"
CSRF_FIELD = "csrf"


@dataclass(frozen=True, slots=True)
class Session:
    """Who is signed in, with which role, until when; ``csrf`` goes in every form."""

    name: str
    role: str
    csrf: str
    expires: float

    def may(self, need: str) -> bool:
        return Principal(self.name, self.role).may(need)  # type: ignore[arg-type]


class Refused(Exception):
    """A console request that must not go on: the status and what to tell the person."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issues and reads session cookies; checks the CSRF token and the origin of a request."""

    def __init__(self, settings: ConsoleSettings, *, authenticator: Authenticator, clock: Clock,
                 tls: bool) -> None:
        given = settings.session_secret
        secret = given.reveal().encode() if given is not None else secrets.token_bytes(32)
        self._key = hashlib.sha256(b"remediator-console\x00" + secret).digest()
        self._ttl = settings.session_ttl.total_seconds()
        self._auth = authenticator
        self._clock = clock
        self._tls = tls
        self._external = external_origin(settings.external_url)

    def _sign(self, body: bytes) -> str:
        return _b64(hmac.new(self._key, body, hashlib.sha256).digest())

    def issue(self, response: web.StreamResponse, request: web.Request, principal: Principal) -> Session:
        """Sign ``principal`` in: set the cookie on ``response``."""
        session = Session(principal.name, principal.role, secrets.token_urlsafe(24),
                          self._clock.now() + self._ttl)
        body = json.dumps({"n": session.name, "r": session.role, "c": session.csrf, "e": session.expires},
                          separators=(",", ":")).encode()
        response.set_cookie(COOKIE, f"{_b64(body)}.{self._sign(body)}", max_age=int(self._ttl), path="/ui",
                            httponly=True, samesite="Strict", secure=self._tls or request.secure)
        return session

    @staticmethod
    def clear(response: web.StreamResponse) -> None:
        response.del_cookie(COOKIE, path="/ui")

    def read(self, request: web.Request) -> Session | None:
        """The request's session, or None (no cookie, forged, expired, credential gone)."""
        raw = request.cookies.get(COOKIE, "")
        body_text, _, signature = raw.partition(".")
        try:
            body = _unb64(body_text)
            data = json.loads(body)
            valid = hmac.compare_digest(self._sign(body), signature)
        except (ValueError, binascii.Error, UnicodeError):
            return None
        if not valid or not isinstance(data, dict):
            return None
        try:
            session = Session(str(data["n"]), str(data["r"]), str(data["c"]), float(data["e"]))
        except (KeyError, TypeError, ValueError):
            return None
        current = self.principal(session.name)
        if session.expires <= self._clock.now() or current is None or current.role != session.role:
            return None
        return session

    def principal(self, name: str) -> Principal | None:
        """The configured credential of that name as it is now."""
        if not self._auth.enabled:
            return ANONYMOUS if name == ANONYMOUS.name else None
        return self._auth.named(name)

    def check_origin(self, request: web.Request) -> None:
        """Refuse a state-changing request that did not come from a page of this console."""
        try:
            check_origin(request, self._external, required=True)
        except ForeignOrigin as exc:
            raise Refused(403, str(exc)) from None

    async def guard_post(self, request: web.Request, *, need: str) -> tuple[Session, MultiDictProxy[str]]:
        """The session and form of a state-changing request that passed every check."""
        self.check_origin(request)
        session = self.read(request)
        if session is None:
            raise Refused(401, "your session has ended: sign in again; nothing was changed")
        form = await request.post()
        token = form.get(CSRF_FIELD)
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), session.csrf.encode()):
            raise Refused(403, "refused: the form's CSRF token is missing or wrong; nothing was changed")
        if not session.may(need):
            raise Refused(403, f"{session.name} (role {session.role}) may not do this")
        return session, form  # type: ignore[return-value]
