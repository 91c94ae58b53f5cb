"""Secret references: ``env:NAME`` or ``file:/path``, never a literal in a config file.

Resolved once when the service configuration loads (``receiver.settings``, target
models in ``remediations.targets``). A :class:`Secret` prints as ``<secret env:NAME>``
so it cannot leak through a log, an audit record or an error message by accident.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from rules.errors import RemediatorError


class SecretError(RemediatorError):
    """A secret reference is malformed or points at nothing."""


class Secret:
    """A resolved secret; ``reveal()`` is the only way to the value."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"<secret {self.source}>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def resolve_secret(ref: object) -> Secret:
    """Resolve ``env:NAME`` or ``file:/path`` (trailing newline stripped)."""
    if isinstance(ref, Secret):
        return ref
    if not isinstance(ref, str) or not ref.startswith(("env:", "file:")):
        raise SecretError(
            "a secret must be a reference 'env:NAME' or 'file:/path', never the value itself"
        )
    kind, _, where = ref.partition(":")
    if not where:
        raise SecretError(f"empty secret reference {ref!r}")
    if kind == "env":
        value = os.environ.get(where)
        if value is None:
            raise SecretError(f"environment variable {where} is not set (secret {ref!r})")
    else:
        try:
            value = Path(where).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SecretError(f"cannot read secret file {where}: {exc.strerror}") from None
    if value == "":
        raise SecretError(f"secret {ref!r} is empty")
    return Secret(value, ref)


def _validate(value: object) -> Secret:
    try:
        return resolve_secret(value)
    except SecretError as exc:
        raise ValueError(str(exc)) from None


SecretRef = Annotated[
    Secret,
    PlainValidator(_validate),
    PlainSerializer(lambda s: s.source, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^(env|file):.+$"}),
]
"""A config field holding a secret reference, resolved at load."""
