"""Which files make up an audit log, in which order: the live file, its rotated siblings, its anchor.

A log is a *set*: the live file ``audit.jsonl`` that :class:`receiver.audit.log.AuditLog` appends
to, the files it rotated out, each renamed ``audit.jsonl.<first seq, 12 digits>`` (so names sort
in chain order), and, when the log is keyed, ``audit.jsonl.anchor`` holding its last seal. Every
reader asks :func:`audit_sets` which files to read and in which order, and reads them with
:func:`read_lines` (streamed, with progress): ``audit verify`` (``receiver.audit.verify``),
``audit list``/``timeline`` (``receiver.tools.auditview``), and the writer itself when it
continues a rotated log. Also here: reading a file's lines from the end (:func:`lines_from_end`),
which the writer's recovery uses.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ANCHOR_SUFFIX = ".anchor"
_ROTATED = re.compile(r"^(?P<base>.+)\.(?P<seq>\d{12,})$")
_CHUNK = 64 * 1024


def rotated_name(base: Path, first_seq: int) -> Path:
    """Where the live file goes when it is rotated: ``<base>.<first seq, 12 digits>``."""
    return base.with_name(f"{base.name}.{first_seq:012d}")


def anchor_path(base: Path) -> Path:
    return base.with_name(base.name + ANCHOR_SUFFIX)


@dataclass(frozen=True)
class AuditSet:
    """One log: its rotated files oldest first, then the live file (when it exists); or, with
    ``lone``, one rotated file read on its own (``base`` is that file: no anchor applies)."""

    base: Path
    rotated: tuple[Path, ...]
    live: bool
    lone: bool = False

    @property
    def files(self) -> list[Path]:
        return [*self.rotated, *([self.base] if self.live else [])]

    @property
    def anchor(self) -> Path:
        return anchor_path(self.base)


def _siblings(base: Path) -> tuple[Path, ...]:
    """``base``'s rotated files, in chain order (by their first seq)."""
    try:
        names = os.listdir(base.parent)
    except OSError:
        return ()
    found = []
    for name in names:
        m = _ROTATED.match(name)
        if m and m["base"] == base.name:
            found.append((int(m["seq"]), base.with_name(name)))
    return tuple(p for _, p in sorted(found))


def audit_set(base: Path) -> AuditSet:
    """The set whose live file is ``base`` (which need not exist: a log rotated out whole)."""
    return AuditSet(base, _siblings(base), base.is_file())


def audit_sets(paths: Sequence[Path]) -> list[AuditSet]:
    """The sets named by ``paths``: a live file (with its rotated siblings), a rotated file
    alone, or a directory (every ``*.jsonl`` log in it). Raises OSError (ENOENT, EISDIR...)
    for a path that names no audit file."""
    sets: list[AuditSet] = []
    for path in paths:
        if path.is_dir():
            bases = sorted({_base_of(path / name) for name in os.listdir(path)
                            if _base_of(path / name).name.endswith(".jsonl")})
            if not bases:
                raise FileNotFoundError(2, "no audit log (*.jsonl) in this directory", str(path))
            sets.extend(audit_set(b) for b in bases)
        elif _ROTATED.match(path.name) and path.is_file():
            sets.append(AuditSet(path, (), True, lone=True))
        else:
            found = audit_set(path)
            if not found.files:
                raise FileNotFoundError(2, "No such file or directory", str(path))
            sets.append(found)
    return sets


def _base_of(path: Path) -> Path:
    name = path.name.removesuffix(ANCHOR_SUFFIX)
    m = _ROTATED.match(name)
    return path.with_name(m["base"] if m else name)


def lines_from_end(fd: int, size: int, *, limit: int) -> Iterator[tuple[int, bytes]]:
    """The complete lines of the file open at ``fd`` (of ``size`` bytes), last first, each with
    its offset and without its newline, reading at most about ``limit`` bytes back. A torn end
    (bytes after the last newline) is not yielded."""
    pos, rest, found_end = size, b"", False
    while pos > 0 and size - pos < limit:
        n = min(_CHUNK, pos)
        pos -= n
        rest = os.pread(fd, n, pos) + rest
        if not found_end:
            nl = rest.rfind(b"\n")
            if nl < 0:
                continue
            rest, found_end = rest[:nl + 1], True
        while (nl := rest.rfind(b"\n", 0, len(rest) - 1)) >= 0:  # rest: [pos, end of a line)
            yield pos + nl + 1, rest[nl + 1:-1]
            rest = rest[:nl + 1]
    if pos == 0 and found_end and rest:
        yield 0, rest[:-1]


Progress = Callable[[int], None]
_PROGRESS_EVERY = 1 << 20


def read_lines(files: Sequence[Path], progress: Progress | None = None) -> Iterator[tuple[Path, int, bytes]]:
    """Every line (with its newline, if it has one) of ``files`` in order, with its file and line
    number; streamed, never a whole file in memory. ``progress`` hears the bytes read so far
    every MiB. Raises OSError for a file that cannot be opened."""
    done, told = 0, 0
    for path in files:
        with path.open("rb") as f:
            for number, line in enumerate(f, start=1):
                yield path, number, line
                done += len(line)
                if progress is not None and done - told >= _PROGRESS_EVERY:
                    told = done
                    progress(done)
    if progress is not None:
        progress(done)


def total_bytes(sets: Sequence[AuditSet]) -> int:
    total = 0
    for aset in sets:
        for path in aset.files:
            with contextlib.suppress(OSError):
                total += path.stat().st_size
    return total
