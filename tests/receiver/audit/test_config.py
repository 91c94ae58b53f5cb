"""``audit:`` in the service config: the plain path still works; the mapping adds a key (a secret
reference, long enough), older keys and rotation; mistakes are errors naming the key path."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from receiver.errors import ConfigError
from receiver.settings import settings_from_mapping


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_KEY", "k" * 32)
    monkeypatch.setenv("SHORT_KEY", "k" * 15)


@pytest.mark.parametrize(("audit", "path", "key", "size", "age"), [
    pytest.param("/var/lib/remediator/audit.jsonl", "/var/lib/remediator/audit.jsonl", None, None, None,
                 id="plain-path"),
    pytest.param({"path": "a.jsonl"}, "a.jsonl", None, None, None, id="mapping-path-only"),
    pytest.param({"key": "env:AUDIT_KEY"}, "remediator-audit.jsonl", "env:AUDIT_KEY", None, None,
                 id="key-default-path"),
    pytest.param({"path": "a.jsonl", "key": "env:AUDIT_KEY", "rotate": {"size": "100MiB", "age": "1d"}},
                 "a.jsonl", "env:AUDIT_KEY", 100 * 2**20, timedelta(days=1), id="everything"),
    pytest.param({"rotate": {"age": "6h"}}, "remediator-audit.jsonl", None, None, timedelta(hours=6),
                 id="age-only"),
])
def test_audit_forms(audit: Any, path: str, key: str | None, size: int | None, age: timedelta | None) -> None:
    s = settings_from_mapping({"audit": audit})
    assert s.audit == Path(path)
    assert (s.audit_log.key.source if s.audit_log.key else None) == key
    rotate = s.audit_log.rotate
    assert (rotate.size if rotate else None, rotate.age if rotate else None) == (size, age)


@pytest.mark.parametrize(("audit", "message"), [
    pytest.param({"key": "k" * 20}, "audit.key: a secret must be a reference", id="literal-key"),
    pytest.param({"key": "env:SHORT_KEY"}, "audit.key: audit key env:SHORT_KEY is shorter than 16 bytes",
                 id="short-key"),
    pytest.param({"key": "env:NOT_SET_ANYWHERE"}, "audit.key: environment variable NOT_SET_ANYWHERE",
                 id="unset-key"),
    pytest.param({"verify_keys": ["env:SHORT_KEY"]}, "audit.verify_keys: audit key env:SHORT_KEY",
                 id="short-old-key"),
    pytest.param({"rotate": {}}, "audit.rotate: rotate needs a size, an age, or both", id="rotate-empty"),
    pytest.param({"rotate": {"size": "1KB"}}, "audit.rotate.size: Input should be greater than or equal",
                 id="rotate-tiny"),
    pytest.param({"rotate": {"age": "10s"}}, "audit.rotate: rotate.age must be at least 1m",
                 id="rotate-too-often"),
    pytest.param({"pth": "a.jsonl"}, "audit.pth: Extra inputs are not permitted", id="unknown-key"),
])
def test_audit_mistakes(audit: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_from_mapping({"audit": audit})
    assert str(info.value).startswith(f"config: {message}"), str(info.value)
