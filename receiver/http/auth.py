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
        """The caller, or None when the credentials are missing or wrong."""
        if not self.enabled:
            return ANONYMOUS
        if not header:
            return None
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        scheme = scheme.lower()
        if scheme == "bearer" and value:
            return _find(self._tokens, _digest(value))
        if scheme == "basic" and value:
            try:
                decoded = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
            except (UnicodeError, binascii.Error):  # not ASCII, not base64, not UTF-8 inside
                return None
            return _find(self._basic, _digest(decoded))
        return None


def _find(candidates: list[tuple[bytes, Principal]], digest: bytes) -> Principal | None:
    found = None
    for expected, principal in candidates:  # no early exit: every comparison runs
        if hmac.compare_digest(expected, digest):
            found = principal
    return found
