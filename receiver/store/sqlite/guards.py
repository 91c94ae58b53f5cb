"""What the guards keep in the SQLite store: the pause, budgets, circuit breakers, target locks.

A part of ``receiver.store.sqlite.store.SqliteStateStore``, which calls it for the pause
(``get_pause``, ``set_pause``, ``clear_pause``), ``admit``, the circuit operations and the
lock operations. Tables: ``kv`` (the pause), ``cooldown``, ``spent`` (rate-limit and
blast-radius spends by clock time), ``circuit`` and ``lock`` (a row stays once released,
so the next fencing token is larger than any before).
"""

from __future__ import annotations

import json

from receiver.store.sqlite.core import SqliteCore
from receiver.store.values import Admission, Budget, Circuit, Pause, Verdict

_BLAST_KEY = "\x00blast"


class SqliteGuards:
    """Guard state in ``core``'s file; each check-and-spend one transaction."""

    def __init__(self, core: SqliteCore) -> None:
        self._core = core

    # -- pause
    async def get_pause(self) -> Pause | None:
        rows = self._core.read("SELECT value FROM kv WHERE key = 'pause'")
        return Pause.from_dict(json.loads(rows[0][0])) if rows else None

    async def set_pause(self, pause: Pause) -> bool:
        with self._core.tx() as db:
            cur = db.execute("INSERT INTO kv (key, value) VALUES ('pause', ?) ON CONFLICT DO NOTHING",
                             (json.dumps(pause.as_dict()),))
            return cur.rowcount == 1

    async def clear_pause(self) -> Pause | None:
        with self._core.tx() as db:
            row = db.execute("DELETE FROM kv WHERE key = 'pause' RETURNING value").fetchone()
        return Pause.from_dict(json.loads(row[0])) if row else None

    # -- budgets
    async def admit(self, budget: Budget, *, spend: bool) -> Admission:
        now = self._core.clock.now()
        with self._core.tx() as db:
            if budget.cooldown_key is not None:
                row = db.execute("SELECT until, member FROM cooldown WHERE key = ?",
                                 (budget.cooldown_key,)).fetchone()
                if row is not None and row[0] > now and row[1] != budget.member:
                    return Admission(Verdict.COOLDOWN, row[0] - now)
            windows = []
            if budget.rate_key is not None:
                windows.append((budget.rate_key, budget.rate_max, budget.rate_window, Verdict.RATE_LIMIT))
            if budget.blast_max is not None:
                windows.append((_BLAST_KEY, budget.blast_max, budget.blast_window, Verdict.BLAST_RADIUS))
            unspent = []
            for key, limit, window, verdict in windows:
                db.execute("DELETE FROM spent WHERE key = ? AND at <= ?", (key, now - window))
                if db.execute("SELECT 1 FROM spent WHERE key = ? AND member = ?",
                              (key, budget.member)).fetchone():
                    continue  # this execution paid already (it is being taken up again)
                count, oldest = db.execute("SELECT count(*), min(at) FROM spent WHERE key = ?",
                                           (key,)).fetchone()
                if count >= limit:
                    return Admission(verdict, oldest + window - now if oldest is not None else None)
                unspent.append(key)
            if spend:
                if budget.cooldown_key is not None and budget.cooldown > 0:
                    db.execute("INSERT INTO cooldown (key, until, member) VALUES (?, ?, ?) ON CONFLICT(key) "
                               "DO UPDATE SET until = excluded.until, member = excluded.member "
                               "WHERE cooldown.member != excluded.member",
                               (budget.cooldown_key, now + budget.cooldown, budget.member))
                db.executemany("INSERT INTO spent (key, at, member) VALUES (?, ?, ?)",
                               [(key, now, budget.member) for key in unspent])
        return Admission(Verdict.OK)

    # -- circuit breakers
    async def circuit(self, target: str) -> Circuit:
        rows = self._core.read("SELECT failures, open_until FROM circuit WHERE target = ?", (target,))
        return Circuit(rows[0][0], rows[0][1]) if rows else Circuit()

    async def record_result(self, target: str, *, ok: bool, threshold: int, cooloff: float) -> Circuit:
        now = self._core.clock.now()
        with self._core.tx() as db:
            if ok:
                db.execute("DELETE FROM circuit WHERE target = ?", (target,))
                return Circuit()
            row = db.execute("SELECT failures FROM circuit WHERE target = ?", (target,)).fetchone()
            failures = (row[0] if row else 0) + 1
            open_until = now + cooloff if failures >= threshold else None
            db.execute("INSERT INTO circuit (target, failures, open_until) VALUES (?, ?, ?) "
                       "ON CONFLICT(target) DO UPDATE SET failures = excluded.failures, "
                       "open_until = excluded.open_until", (target, failures, open_until))
        return Circuit(failures, open_until)

    async def reset_circuit(self, target: str) -> Circuit:
        with self._core.tx() as db:
            row = db.execute("DELETE FROM circuit WHERE target = ? RETURNING failures, open_until",
                             (target,)).fetchone()
        return Circuit(row[0], row[1]) if row else Circuit()

    # -- target locks
    async def acquire_lock(self, key: str, owner: str, *, ttl: float, breaking: str | None) -> int | None:
        now = self._core.clock.now()
        with self._core.tx() as db:
            row = db.execute("SELECT owner, token, expires_at FROM lock WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] is not None and row[2] > now and row[0] != breaking:
                return None
            token = (row[1] if row else 0) + 1
            db.execute("INSERT INTO lock (key, owner, token, expires_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET owner = excluded.owner, token = excluded.token, "
                       "expires_at = excluded.expires_at", (key, owner, token, now + ttl))
        return int(token)

    async def lock_valid(self, key: str, token: int) -> bool:
        rows = self._core.read("SELECT owner, token, expires_at FROM lock WHERE key = ?", (key,))
        return bool(rows) and rows[0][0] is not None and rows[0][1] == token \
            and rows[0][2] > self._core.clock.now()

    async def release_lock(self, key: str, token: int) -> None:
        # The row stays (owner cleared) so the next token is still larger than this one.
        with self._core.tx() as db:
            db.execute("UPDATE lock SET owner = NULL WHERE key = ? AND token = ?", (key, token))
