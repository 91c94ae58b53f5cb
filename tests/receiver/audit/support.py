"""Helpers of the audit tests: keys, writing a keyed log, and an attacker's tools (who has the
code, so can recompute every hash, but not the key)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from receiver.audit import AuditEvent, AuditLog, SealKey
from receiver.audit.chain import encode_line

KEY = SealKey(b"k" * 32, "env:AUDIT_KEY")
OLD_KEY = SealKey(b"o" * 32, "file:/etc/remediator/old.key")
T0 = 1_700_000_000.0


class Clock:
    """A clock the test moves; it does not move by itself."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def write_groups(path: Path, groups: int, *, per: int = 3, clock: Clock | None = None,
                       **kw: Any) -> None:
    """``groups`` group commits of ``per`` records each (a request's worth), then close."""
    clock = clock or Clock()
    log = AuditLog(path, clock=clock, fsync=False, **kw)
    for g in range(groups):
        for i in range(per):
            log.record(AuditEvent.RULE_MATCHED, decision=f"d-{g}-{i}", rule="restart-web",
                       fingerprint=f"{g:016x}", priority="P3")
        await log.sync()
        clock.t += 1
    await log.close()


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write(path: Path, data: list[bytes]) -> None:
    path.write_bytes(b"".join(data))


def size(path: Path) -> int:
    return path.stat().st_size


def rehash(recs: list[dict[str, Any]], prev: str) -> list[bytes]:
    """What an attacker without the key can do: rechain records from ``prev``, every hash
    recomputed (a seal's mac kept, as it cannot be remade)."""
    out = []
    for rec in recs:
        body = {k: v for k, v in rec.items() if k != "hash"} | {"prev": prev}
        line, prev = encode_line(body)
        out.append(line)
    return out


def records(data: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data]
