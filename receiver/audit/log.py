"""The audit log being written: append-only JSON Lines, one record per event, chained with SHA-256.

The webhook handler (``receiver.flow.intake``) and the workers (``receiver.flow.workers``) call
:meth:`AuditLog.record` (cheap, in memory) and then ``await`` :meth:`AuditLog.sync`, which
group-commits everything pending with one write + fsync in a worker thread. The line format
and verification are ``receiver.audit.chain``. One process writes a log at a time (an
exclusive ``flock`` while it is open); opening it continues the chain from the last
complete line and cuts (and records) a torn one.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from receiver.audit.chain import RESERVED, ZERO_HASH, check_line, seal
from receiver.audit.events import AuditError, AuditEvent

_TAIL_CHUNK = 64 * 1024


class AuditLog:
    """An open audit log: records are built in memory and made durable by :meth:`sync`."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time,
                 fsync: bool = True) -> None:
        self._path = Path(path)
        self._clock = clock
        self._fsync = fsync
        self._pending: list[bytes] = []
        self._seq = 0  # seq of the last record made
        self._durable = 0  # seq of the last record on disk
        self._last_hash = ZERO_HASH
        self._inflight: asyncio.Future[None] | None = None
        self._closed = False
        self._broken: str | None = None
        self._failure: str | None = None
        self._ts_sec = -1
        self._ts_prefix = ""
        self._size = 0  # bytes on disk that are durable records
        if not self._path.parent.is_dir():
            raise AuditError(f"cannot open audit log {self._path}: "
                             f"directory {self._path.parent} does not exist")
        created = not self._path.exists()
        try:
            self._fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                               0o640)
        except OSError as exc:
            raise AuditError(f"cannot open audit log {self._path}: {exc.strerror}") from exc
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if created and fsync:
                dfd = os.open(self._path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            self._recover()
        except BlockingIOError:
            os.close(self._fd)
            raise AuditError(f"audit log {self._path} is already open for writing "
                             "(another process or AuditLog holds its lock)") from None
        except OSError as exc:
            os.close(self._fd)
            raise AuditError(f"cannot open audit log {self._path}: {exc.strerror}") from exc
        except BaseException:
            os.close(self._fd)
            raise

    def _recover(self) -> None:
        """Continue the chain from the last complete line; cut and record a torn one."""
        self._size = size = os.fstat(self._fd).st_size
        start, buf = size, b""
        while start > 0 and buf.count(b"\n") < 2:  # the last line's both ends, or the start
            n = min(_TAIL_CHUNK, start)
            start -= n
            buf = os.pread(self._fd, n, start) + buf
        cut = buf.rfind(b"\n") + 1  # end of the last complete line, within buf
        torn = buf[cut:]
        if cut:
            last = buf[buf.rfind(b"\n", 0, cut - 1) + 1:cut - 1]
            rec, why = check_line(last)
            if rec is None:
                raise AuditError(
                    f"audit log {self._path}: the last record is unreadable ({why}); refusing "
                    f"to continue its chain. Run `remediator audit verify {self._path}` and "
                    f"move the file aside.")
            self._seq = self._durable = rec["seq"]
            self._last_hash = rec["hash"]
        # a torn record of ours starts like one (or is NULs) and does not parse unless whole
        if torn and (torn[:1] not in (b"{", b"\0")
                     or check_line(torn)[1] not in (None, "not JSON")):
            raise AuditError(f"audit log {self._path} ends in {len(torn)} bytes that are not a "
                             f"torn record. Run `remediator audit verify {self._path}` and move "
                             f"the file aside.")
        if torn:
            os.ftruncate(self._fd, start + cut)
            self._size = start + cut
            self.record(AuditEvent.ADMIN_AUDIT_RECOVERED, reason="torn last line",
                        offset=start + cut, dropped_bytes=len(torn),
                        dropped_sha256=hashlib.sha256(torn).hexdigest())
            self._commit(self._pending[0])
            self._pending.clear()
            self._durable = self._seq

    @property
    def path(self) -> Path:
        return self._path

    @property
    def pending(self) -> int:
        """Records made but not yet durable."""
        return len(self._pending)

    @property
    def problem(self) -> str | None:
        """Why the last write failed, until a write succeeds again (readiness reads it)."""
        return self._broken or self._failure

    @property
    def last_hash(self) -> str:
        """Hash of the last record made (durable or not); 64 zeros for an empty log."""
        return self._last_hash

    def _timestamp(self) -> str:
        ms = math.floor(self._clock() * 1000)
        sec, milli = divmod(ms, 1000)
        if sec != self._ts_sec:
            self._ts_sec = sec
            self._ts_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._ts_prefix}.{milli:03d}Z"

    def record(self, event: AuditEvent, /, **fields: Any) -> dict[str, Any]:
        """Build the next record and queue its line for :meth:`sync`; no I/O.

        Returns the record with its ``hash`` (field values as given, not as serialised).
        Raises TypeError for a value JSON cannot carry, ValueError for a reserved field name.
        """
        if self._closed:
            raise AuditError(f"audit log {self._path} is closed")
        if not RESERVED.isdisjoint(fields):
            raise ValueError(f"reserved audit field name(s): {sorted(RESERVED & fields.keys())}")
        seq = self._seq + 1
        rec = {"seq": seq, "ts": self._timestamp(), "event": event.value, **fields,
               "prev": self._last_hash}
        line, digest = seal(rec)
        self._pending.append(line)
        self._seq = seq
        self._last_hash = rec["hash"] = digest
        return rec

    async def sync(self) -> None:
        """Return once every record made before the call is on disk (group commit).

        Concurrent callers share one write + fsync; one write is in flight at a time. On an
        OSError raise AuditError; the file is cut back to its durable size and the records
        stay pending for the next sync.
        """
        target = self._seq
        while self._durable < target:
            if self._inflight is None:
                self._inflight = asyncio.ensure_future(self._flush())
                self._inflight.add_done_callback(_retrieve)
            await asyncio.shield(self._inflight)  # a cancelled caller does not stop the write

    async def _flush(self) -> None:
        try:
            if self._broken is not None:
                raise AuditError(self._broken)
            n = len(self._pending)
            await asyncio.to_thread(self._commit, b"".join(self._pending[:n]))
            del self._pending[:n]
            self._durable += n
            self._failure = None
        except AuditError as exc:
            self._failure = str(exc)
            raise
        finally:
            self._inflight = None

    def _write(self, fd: int, data: memoryview) -> int:
        """One ``write(2)``; the seam tests use to count writes or inject failures."""
        return os.write(fd, data)

    def _commit(self, data: bytes) -> None:
        """Write ``data`` at the end and fsync; on failure cut the file back (worker thread)."""
        view, done = memoryview(data), 0
        try:
            while done < len(data):
                n = self._write(self._fd, view[done:])
                if n <= 0:
                    raise OSError(errno.EIO, "write wrote nothing")
                done += n
            if self._fsync:
                os.fsync(self._fd)
        except OSError as exc:
            what = f"cannot write audit log {self._path}: {exc.strerror or exc}"
            try:
                os.ftruncate(self._fd, self._size)
            except OSError as cut:
                self._broken = f"{what}; cutting it back failed too ({cut.strerror}); reopen it"
                raise AuditError(self._broken) from exc
            raise AuditError(f"{what}; {len(self._pending)} record(s) kept pending") from exc
        self._size += len(data)

    async def close(self) -> None:
        """Sync, then close the file; idempotent. Records made after close raise AuditError."""
        if self._closed:
            return
        self._closed = True
        try:
            await self.sync()
        finally:
            while self._inflight is not None:  # left by a cancelled sync: let it land first
                await asyncio.wait([self._inflight])
            os.close(self._fd)


def _retrieve(fut: asyncio.Future[None]) -> None:
    """Mark a flush's exception seen when every waiter was cancelled (no 'never retrieved')."""
    if not fut.cancelled():
        fut.exception()
