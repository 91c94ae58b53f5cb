"""Where the server's time goes: a py-spy profile of one extra run, summed into parts of the flow.

Called by ``bench.run`` after the measured runs of the main shape (10 alerts per request,
concurrency 16, +10 rules) on each store: py-spy (the ``bench`` extra) records the server's
stacks for one more run that no figure counts, and :func:`shares` sorts every sample into one
part of the flow (:data:`PARTS`) by the innermost frame that names one. ``bench.report``
prints the shares beside the server's CPU per alert, so a missed target comes with what the
time is spent on. Pure apart from :func:`record`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

RATE = 200  # samples per second


@dataclass(frozen=True, slots=True)
class Part:
    """A part of the flow: a sample is in it when a frame's function (``Class.method``) is
    one of ``functions`` or its file ends with one of ``files``."""

    name: str
    functions: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    anywhere: bool = False  # a thread's own part: any frame of the stack decides, before the rest

    def holds(self, function: str, file: str) -> bool:
        return function in self.functions or file.endswith(self.files)


# The parts marked ``anywhere`` (threads of their own) first, by any frame; then the others from
# the innermost frame outwards, the first frame one holds deciding (so the rules matched inside
# intake count as matching, not as intake), in this order per frame.
PARTS: tuple[Part, ...] = (
    Part("decode and validate the body", ("parse_webhook",),
         ("receiver/flow/payload.py", "receiver/flow/payload_fast.py")),
    Part("match rules", ("RuleIndex.match",)),
    Part("audit: write and fsync (its own thread, mostly waiting on the disk)", ("AuditLog.commit",),
         anywhere=True),
    Part("audit: build and chain records", (), ("receiver/audit/log.py", "receiver/audit/chain.py")),
    Part("dedup claim and enqueue (store)", ("Enqueuer.decisions", "Enqueuer._claim")),
    Part("close resolved alerts (store)", ("Resolutions.close", "Resolutions._close")),
    Part("take work (feeder, store)", ("Feeder._feed", "Feeder.run")),
    Part("complete work (store)", ("Completer._loop",)),
    Part("SQLite checkpoint (its own thread)", ("Checkpointer._run",), anywhere=True),
    Part("decide: plan, guards, record (workers)", ("Executor.run", "Executor._work", "Executor.run_item",
                                                        "Executor._carry")),
    Part("intake: classify, build decisions, metrics", ("Intake.accept",)),
    Part("remediator's HTTP layer (middlewares, handler)", (), ("receiver/http/middlewares.py",
                                                              "receiver/http/handlers.py",
                                                              "receiver/http/body.py")),
)
# What no part holds: remediator's other code when a frame of it (the entry point apart) is on
# the stack, else the web server and event loop underneath, what the floor spends too.
OURS = ("receiver/", "rules/", "remediations/")
ENTRY = ("receiver/__main__.py", "receiver/cli/main.py")
SERVER = "aiohttp, asyncio, sockets (the floor's own work)"
OTHER = "other remediator code"
_THREADS = tuple(p for p in PARTS if p.anywhere)
_FLOW = tuple(p for p in PARTS if not p.anywhere)
# Where every whole stack starts: the main thread (``python -m receiver``) and the others.
_ROOTS = frozenset({"_run_module_as_main", "Thread._bootstrap"})
# A thread parked in its pool or on its timer, waiting: idle, not counted.
_IDLE_LEAVES = frozenset({"_worker (concurrent/futures/thread.py)", "Condition.wait (threading.py)"})


def _frame(text: str) -> tuple[str, str]:
    """``Class.method (path/file.py:12)`` → (``Class.method``, ``path/file.py``)."""
    function, _, where = text.partition(" (")
    return function, where.rpartition(":")[0] or where.rstrip(")")


def _leaf_key(text: str) -> str:
    function, file = _frame(text)
    return f"{function} ({file})"


def part_of(stack: list[str]) -> str | None:
    """The part one sample (frames outermost first) is in; None for an idle thread, or a stack
    not read whole (its outermost frame is not where a thread starts)."""
    if not stack or _leaf_key(stack[-1]) in _IDLE_LEAVES or _frame(stack[0])[0] not in _ROOTS:
        return None
    frames = [_frame(text) for text in reversed(stack)]
    for part in _THREADS:
        if any(part.holds(function, file) for function, file in frames):
            return part.name
    for function, file in frames:
        for part in _FLOW:
            if part.holds(function, file):
                return part.name
    ours = any(file.startswith(OURS) and not file.startswith(ENTRY) for _, file in frames)
    return OTHER if ours else SERVER


def shares(raw: Iterable[str]) -> dict[str, float]:
    """py-spy's raw output (``frame;frame;… count`` per line) as each part's share of the
    samples that were not idle, largest first; empty when there were none."""
    counts: Counter[str] = Counter()
    for line in raw:
        stack_text, _, count = line.rstrip("\n").rpartition(" ")
        if not stack_text or not count.isdigit():
            continue
        part = part_of(stack_text.split(";"))
        if part is not None:
            counts[part] += int(count)
    total = sum(counts.values())
    return {name: n / total for name, n in counts.most_common()} if total else {}


def py_spy() -> str | None:
    """py-spy beside this interpreter (the ``bench`` extra), or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | str:
    """Start recording ``pid`` for ``seconds`` into ``out`` (raw); the process, or why not."""
    tool = py_spy()
    if tool is None:
        return "py-spy is not installed (pip install -e '.[bench]')"
    argv = [tool, "record", "--rate", str(RATE), "--duration", str(max(1, round(seconds))),
            "--pid", str(pid), "--format", "raw", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})


def finish(proc: subprocess.Popen[bytes], out: Path) -> dict[str, float] | str:
    """Wait for a recording; its shares, or why there are none."""
    _, err = proc.communicate(timeout=120)
    if proc.returncode != 0 or not out.exists():
        return f"py-spy failed ({proc.returncode}): {err.decode(errors='replace').strip()[-300:]}"
    with out.open() as f:
        found = shares(f)
    return found or "py-spy recorded no samples"
