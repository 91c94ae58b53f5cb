"""Who is calling: bearer tokens and basic auth, each with a role.

The middleware in ``receiver.http.middlewares`` asks :meth:`Authenticator.authenticate` for every
request to a route that needs a role. Secrets are compared as SHA-256 digests with
``hmac.compare_digest`` against every configured credential, so timing tells nothing
about which one was close. With no credentials configured (loopback only, or
``--insecure-no-auth``), every caller is the anonymous admin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from receiver.settings import AuthSettings, Role

Need = Literal["webhook", "approver", "admin"]
_GRANTS: dict[Role, frozenset[Need]] = {
    "webhook": frozenset({"webhook"}),
    "approver": frozenset({"approver"}),
    "admin": frozenset({"webhook", "approver", "admin"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the credential's name and its role."""

    name: str
    role: Role

    def may(self, need: Need) -> bool:
        return need in _GRANTS[self.role]


ANONYMOUS = Principal("anonymous", "admin")
MAX_CREDENTIALS = 4096  # characters of one Authorization header; longer is refused unread


@dataclass(frozen=True, slots=True)
class BadCredentials:
    """Why a request's credentials were refused: ``status`` 401 (missing, malformed or wrong)
    or 400 (more than one ``Authorization`` header: which one counts is ambiguous). The
    ``detail`` never quotes what was sent."""

    status: int
    detail: str


_WRONG = BadCredentials(401, "invalid credentials")


def _digest(secret: str) -> bytes:
    # surrogateescape: aiohttp hands over header bytes that are not UTF-8 as lone surrogates
    # (so does os.environ); encode them back to the bytes that were sent instead of failing.
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).digest()


class Authenticator:
    """Checks an ``Authorization`` header against the configured credentials."""

    def __init__(self, settings: AuthSettings) -> None:
        self._tokens = [(_digest(t.token.reveal()), Principal(t.name, t.role)) for t in settings.tokens]
        self._basic = [
            (_digest(f"{b.username}:{b.password.reveal()}"), Principal(b.username, b.role))
            for b in settings.basic
        ]
        self.enabled = settings.configured
        self.takes_tokens = bool(self._tokens)
        self.takes_basic = bool(self._basic)

    def named(self, name: str) -> Principal | None:
        """The configured credential called ``name`` (the console re-reads it on every request)."""
        for _, principal in self._tokens + self._basic:
            if principal.name == name:
                return principal
        return None

    @property
    def challenge(self) -> str:
        schemes = []
        if self._tokens:
            schemes.append('Bearer realm="remediator"')
        if self._basic:
            schemes.append('Basic realm="remediator"')
        return ", ".join(schemes) or 'Bearer realm="remediator"'

    def authenticate(self, header: str | None) -> Principal | None:
        """The caller, or None when the credentials are missing or wrong (the console's sign-in)."""
        found = self.identify([header] if header else [])
        return found if isinstance(found, Principal) else None

    def identify(self, headers: Sequence[str]) -> Principal | BadCredentials:
        """The caller named by a request's ``Authorization`` headers, or why not.

        Exactly one header, one scheme (``Bearer`` or ``Basic``, any case) and one credential:
        two headers, two schemes in one header, trailing words, more than
        :data:`MAX_CREDENTIALS` characters or Basic credentials that are not base64 of UTF-8
        ``user:password`` are refused before any comparison, so no header is half-read.
        """
        if not self.enabled:
            return ANONYMOUS
        if len(headers) > 1:
            return BadCredentials(400, f"{len(headers)} Authorization headers: send exactly one")
        header = headers[0].strip() if headers else ""
        if not header:
            return BadCredentials(401, "no credentials: send Authorization: Bearer <token> or Basic")
        if len(header) > MAX_CREDENTIALS:
            return BadCredentials(401, f"credentials longer than {MAX_CREDENTIALS} characters")
        scheme, _, value = header.partition(" ")
        value = value.strip()
        scheme = scheme.lower()
        if scheme not in ("bearer", "basic"):
            return BadCredentials(401, "unknown authorization scheme: send Bearer or Basic")
        if not value:
            return BadCredentials(401, f"{scheme.title()} with no credentials after it")
        if any(c.isspace() or c == "," for c in value):
            return BadCredentials(401, "one scheme and one credential per header: no spaces or commas "
                                       "after it")
        if scheme == "bearer":
            return _find(self._tokens, _digest(value)) or _WRONG
        try:
            decoded = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
        except (UnicodeError, binascii.Error):  # not ASCII, not base64, not UTF-8 inside
            return BadCredentials(401, "Basic credentials must be base64 of UTF-8 user:password")
        return _find(self._basic, _digest(decoded)) or _WRONG


def _find(candidates: list[tuple[bytes, Principal]], digest: bytes) -> Principal | None:
    found = None
    for expected, principal in candidates:  # no early exit: every comparison runs
        if hmac.compare_digest(expected, digest):
            found = principal
    return found
