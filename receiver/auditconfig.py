"""The ``audit:`` section of the service configuration: the log's path, sealing keys, rotation.

Part of ``receiver.settings.Settings`` (its ``audit_log``, written ``audit:`` in YAML); the
runtime (``receiver.runtime.open_audit``) turns it into a ``receiver.audit.AuditLog`` and
``remediator audit verify --config`` reads its keys. A module of its own because the audit
package and the settings do not import each other.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator, model_validator

from remediations.secrets import SecretRef
from rules.model import Duration


class AuditRotate(BaseModel):
    """Rotate the live audit file once it is ``size`` large or its first record ``age`` old."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: ByteSize | None = Field(default=None, ge=4096, description="e.g. 100MiB")
    age: Duration | None = Field(default=None, description="e.g. 1d")

    @model_validator(mode="after")
    def _some(self) -> AuditRotate:
        if self.size is None and self.age is None:
            raise ValueError("rotate needs a size, an age, or both")
        if self.age is not None and self.age < timedelta(minutes=1):
            raise ValueError("rotate.age must be at least 1m")
        return self


AUDIT_KEY_MIN_BYTES = 16  # receiver.audit.seal.MIN_KEY_BYTES, checked at load


class AuditSettings(BaseModel):
    """``audit: PATH``, or ``audit: {path, key, verify_keys, rotate}`` (docs/audit.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path = Path("remediator-audit.jsonl")
    key: SecretRef | None = Field(default=None, description="Seals the log (HMAC-SHA256); env: or file:")
    verify_keys: list[SecretRef] = Field(default_factory=list,
                                         description="Earlier keys `audit verify` still accepts")
    rotate: AuditRotate | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_path(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str | Path) else value

    @field_validator("key", "verify_keys")
    @classmethod
    def _long_enough(cls, value: Any) -> Any:
        for secret in value if isinstance(value, list) else [value] if value is not None else []:
            if len(secret.reveal().encode()) < AUDIT_KEY_MIN_BYTES:
                raise ValueError(f"audit key {secret.source} is shorter than {AUDIT_KEY_MIN_BYTES} bytes "
                                 "(make one with `openssl rand -hex 32`)")
        return value
