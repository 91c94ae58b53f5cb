"""The audit log being written: append-only JSON Lines, one record per event, chained with SHA-256.

Intake and the workers call :meth:`AuditLog.record` (in memory), then ``await`` :meth:`AuditLog.sync`:
one write + fsync for all pending, on the log's own thread (not the default executor, which SDK calls
may fill). Lines: ``receiver.audit.chain``. One process writes a log at a time (``flock``); opening it
continues the chain from the last complete line (of the newest rotated file when the live one is
gone) and cuts (and records) a torn one (``receiver.audit.recovery``).

With a key (``receiver.audit.seal``) every group commit ends in a seal and the anchor
(``receiver.audit.anchor``) is rewritten after it. With ``rotate_bytes``/``rotate_age`` the live
file is renamed ``<log>.<first seq>`` once it is that large or old, and the next record goes to
a fresh live file that starts with an ``audit.rotated`` record naming it; the chain goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from receiver.audit.anchor import padded
from receiver.audit.chain import RESERVED, ZERO_HASH, encode_line
from receiver.audit.events import AuditError, AuditEvent, Damage
from receiver.audit.files import anchor_path, rotated_name
from receiver.audit.recovery import read_end
from receiver.audit.seal import KeyRing, SealKey, make_seal

# a pending line, and (on the first line of a new file) where the file before it goes
Pending = tuple[bytes, Path | None]


class AuditLog:
    """An open audit log: records are built in memory and made durable by :meth:`sync`."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time, fsync: bool = True,
                 key: SealKey | None = None, verify_keys: Sequence[SealKey] = (),
                 rotate_bytes: int | None = None, rotate_age: float | None = None) -> None:
        self._path = Path(path)
        self._clock = clock
        self._fsync = fsync
        self._key = key
        self._ring = KeyRing([key, *verify_keys] if key is not None else ())
        self._rotate_bytes = rotate_bytes
        self._rotate_age = rotate_age
        self._pending: list[Pending] = []
        self._seq = 0  # seq of the last record made
        self._durable = 0  # seq of the last record on disk
        self._last_hash = ZERO_HASH
        self._inflight: asyncio.Future[None] | None = None
        self._closed = False
        self._broken: str | None = None
        self._failure: str | None = None
        self._ts_sec = -1
        self._ts_prefix = ""
        self._size = 0  # bytes of the live file that are durable records
        self._file_bytes = 0  # bytes of the live file once every pending line is written
        self._file_first_seq = 1  # seq of the live file's first record
        self._file_started: float | None = None  # when its first record was made
        self._anchor_fd = -1
        self._sealed_seq = 0  # seq of the last seal made
        self._done = 0  # lines the running commit made durable
        if not self._path.parent.is_dir():
            raise AuditError(f"cannot open audit log {self._path}: "
                             f"directory {self._path.parent} does not exist")
        self._fd = self._open_live()
        try:
            if key is not None:
                self._anchor_fd = os.open(anchor_path(self._path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                                          0o640)
            self._recover()
        except OSError as exc:
            self._close_fds()
            raise AuditError(f"cannot open audit log {self._path}: {exc.strerror}") from exc
        except BaseException:
            self._close_fds()
            raise
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="remediator-audit")

    def _open_live(self) -> int:
        created = not self._path.exists()
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise AuditError(f"cannot open audit log {self._path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if created and self._fsync:
                self._fsync_dir()
        except BlockingIOError:
            os.close(fd)
            raise AuditError(f"audit log {self._path} is already open for writing "
                             "(another process or AuditLog holds its lock)") from None
        except OSError as exc:
            os.close(fd)
            raise AuditError(f"cannot open audit log {self._path}: {exc.strerror}") from exc
        return fd

    def _fsync_dir(self) -> None:
        dfd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _close_fds(self) -> None:
        for fd in (self._fd, self._anchor_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._anchor_fd = -1

    @property
    def path(self) -> Path:
        return self._path

    @property
    def keyed(self) -> bool:
        return self._key is not None

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

    def _timestamp(self, now: float) -> str:
        ms = math.floor(now * 1000)
        sec, milli = divmod(ms, 1000)
        if sec != self._ts_sec:
            self._ts_sec = sec
            self._ts_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        return f"{self._ts_prefix}.{milli:03d}Z"

    def _recover(self) -> None:
        """Continue the chain where the log ends; record (and seal) what recovery found."""
        end = read_end(self._fd, self._path, self._ring if self._key is not None else None)
        if end.cut_to is not None:
            os.ftruncate(self._fd, end.cut_to)
        if end.last is not None:
            self._seq = self._durable = self._sealed_seq = end.last["seq"]
            self._last_hash = end.last["hash"]
        self._size = self._file_bytes = end.file_bytes
        self._file_first_seq = end.first_seq
        self._file_started = end.started
        if end.previous is not None:
            self._rotate_next(self._clock(), previous=end.previous)
        if end.torn:
            self.record(AuditEvent.ADMIN_AUDIT_RECOVERED, reason=Damage.TORN, offset=end.cut_to,
                        dropped_bytes=len(end.torn), dropped_sha256=end.torn_sha256)
        for found in end.findings:
            self.record(AuditEvent.ADMIN_AUDIT_RECOVERED, reason=found.reason, detail=found.detail,
                        **found.fields)
        if self._pending:
            self._seal_now(self._clock())
            self.commit(self._pending[:])
            del self._pending[:]
            self._durable = self._seq

    def record(self, event: AuditEvent, /, **fields: Any) -> dict[str, Any]:
        """Build the next record and queue its line for :meth:`sync`; no I/O.

        Returns the record with its ``hash`` (field values as given, not as serialised).
        Raises TypeError for a value JSON cannot carry, ValueError for a reserved field name.
        """
        if self._closed:
            raise AuditError(f"audit log {self._path} is closed")
        if not RESERVED.isdisjoint(fields):
            raise ValueError(f"reserved audit field name(s): {sorted(RESERVED & fields.keys())}")
        now = self._clock()
        if self._rotation_due(now):
            self._rotate_next(now)
        return self._append({"seq": self._seq + 1, "ts": self._timestamp(now), "event": event.value,
                             **fields, "prev": self._last_hash}, now)

    def _append(self, rec: dict[str, Any], now: float, starts: Path | None = None) -> dict[str, Any]:
        line, digest = encode_line(rec)  # raises TypeError before anything changes
        self._pending.append((line, starts))
        self._seq = rec["seq"]
        self._last_hash = rec["hash"] = digest
        if self._file_started is None:
            self._file_started = now
        self._file_bytes += len(line)
        return rec

    def _rotation_due(self, now: float) -> bool:
        if self._file_bytes == 0 or self._broken is not None:
            return False
        if self._rotate_bytes is not None and self._file_bytes >= self._rotate_bytes:
            return True
        return (self._rotate_age is not None and self._file_started is not None
                and now - self._file_started >= self._rotate_age)

    def _rotate_next(self, now: float, previous: Path | None = None) -> None:
        """End the live file here: seal it (keyed), and start the next file with an
        ``audit.rotated`` record naming where this one goes (``previous``: a file already
        rotated out, when recovery continues one). The files move at the next commit."""
        moved = previous is None
        if previous is None:
            self._seal_now(now)
            previous = rotated_name(self._path, self._file_first_seq)
        self._file_bytes, self._file_first_seq, self._file_started = 0, self._seq + 1, None
        self._append({"seq": self._seq + 1, "ts": self._timestamp(now),
                      "event": AuditEvent.AUDIT_ROTATED.value, "previous": previous.name,
                      "prev": self._last_hash}, now, starts=previous if moved else None)

    def _seal_now(self, now: float) -> None:
        """Queue a seal of everything made so far (keyed logs; not twice in a row)."""
        if self._key is None or self._sealed_seq == self._seq:
            return
        self._append(make_seal(self._key, self._seq + 1, self._timestamp(now), self._last_hash), now)
        self._sealed_seq = self._seq

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
            if self._key is not None:
                self._seal_now(self._clock())
            batch, self._done = self._pending[:], 0
            try:
                await asyncio.get_running_loop().run_in_executor(self._writer, self.commit, batch)
            finally:
                done = self._done
                del self._pending[:done]
                self._durable += done
            self._failure = None
        except AuditError as exc:
            self._failure = str(exc)
            raise
        finally:
            self._inflight = None

    def _write(self, fd: int, data: memoryview) -> int:
        """One ``write(2)``; the seam tests use to count writes or inject failures."""
        return os.write(fd, data)

    def commit(self, batch: list[Pending]) -> None:
        """Write ``batch`` in order, moving to a new live file where a line starts one; fsync;
        rewrite the anchor (worker thread, or at open). ``_done`` counts the lines now durable,
        also when it raises AuditError."""
        self._done, start, switched = 0, 0, False
        for i, (line, starts) in enumerate(batch):
            if starts is None:
                continue
            if i > start:
                self._write_durable(b"".join(line for line, _ in batch[start:i]))
                self._done = start = i
            self._switch(starts)
            self._pending[i] = (line, None)  # moved: a retry must not move it again
            switched = True
        self._write_durable(b"".join(line for line, _ in batch[start:]))
        self._done = len(batch)
        if self._anchor_fd >= 0 and batch:
            last = batch[-1][0]
            try:
                os.pwrite(self._anchor_fd, padded(last), 0)
                if switched and self._fsync:
                    os.fsync(self._anchor_fd)
            except OSError as exc:
                raise AuditError(f"cannot write audit anchor {anchor_path(self._path)}: "
                                 f"{exc.strerror}") from exc

    def _write_durable(self, data: bytes) -> None:
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
            raise AuditError(f"{what}; {len(self._pending) - self._done} record(s) kept pending") from exc
        self._size += len(data)

    def _switch(self, rotated: Path) -> None:
        """Rename the live file to ``rotated`` and open a fresh live file (worker thread)."""
        if rotated.exists():
            raise AuditError(f"cannot rotate audit log {self._path}: {rotated} exists already")
        try:
            os.rename(self._path, rotated)
        except OSError as exc:
            raise AuditError(f"cannot rotate audit log {self._path} to {rotated}: {exc.strerror}") from exc
        os.close(self._fd)
        self._fd, self._size = -1, 0
        try:
            self._fd = self._open_live()
        except AuditError as exc:
            self._broken = f"{exc}; the log was rotated to {rotated}; reopen it"
            raise AuditError(self._broken) from exc

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
            if self._anchor_fd >= 0 and self._fsync:
                with contextlib.suppress(OSError):
                    os.fsync(self._anchor_fd)
            self._close_fds()
            self._writer.shutdown(wait=False)  # idle: the last commit has landed


def _retrieve(fut: asyncio.Future[None]) -> None:
    """Mark a flush's exception seen when every waiter was cancelled (no 'never retrieved')."""
    if not fut.cancelled():
        fut.exception()
