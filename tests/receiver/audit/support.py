"""Helpers of the audit tests: keys, writing a keyed log, and an attacker's tools (who has the
code, so can recompute every hash, but not the key)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from receiver.audit import AuditEvent, AuditLog, SealKey
from receiver.audit.chain import ZERO_HASH, encode_line

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


# What someone who can write the log but lacks the key can do to its lines (the sealing
# tests and the hostile suite's `audit verify` table share them).

def append_forged_approval(data: list[bytes]) -> list[bytes]:
    last = json.loads(data[-1])
    forged = {"seq": last["seq"] + 1, "ts": last["ts"], "event": "approval.approved",
              "approval": "a1b2", "actor": "mallory", "hash": ""}
    return [*data, *rehash([forged], last["hash"])]


def append_forged_approval_and_seal(data: list[bytes]) -> list[bytes]:
    """...and a seal of it, with a mac made up (the key is not at hand)."""
    data = append_forged_approval(data)
    last = json.loads(data[-1])
    seal = {"seq": last["seq"] + 1, "ts": last["ts"], "event": "audit.sealed", "key": KEY.kid,
            "mac": "0" * 64}
    return [*data, *rehash([seal], last["hash"])]


def rewrite_middle(data: list[bytes]) -> list[bytes]:
    """Record 6 (a rule.matched) says P1, every later hash recomputed."""
    recs = records(data)
    recs[5]["priority"] = "P1"
    return [*data[:5], *rehash(recs[5:], recs[4]["hash"])]


def rewrite_middle_and_drop_later_seals(data: list[bytes]) -> list[bytes]:
    recs = records(data)
    recs[5]["priority"] = "P1"
    kept = [r for r in recs[5:] if r["event"] != "audit.sealed"]
    for seq, r in enumerate(kept, start=recs[5]["seq"]):
        r["seq"] = seq
    return [*data[:5], *rehash(kept, recs[4]["hash"])]


def rewrite_whole_log_from_scratch(data: list[bytes]) -> list[bytes]:
    """No seal at all: a fresh chain from 64 zeros, the approval in the middle."""
    recs = [r for r in records(data) if r["event"] != "audit.sealed"]
    recs[2]["event"] = "approval.approved"
    for seq, r in enumerate(recs, start=1):
        r["seq"] = seq
    return rehash(recs, ZERO_HASH)
