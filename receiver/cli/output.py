"""Terminal output shared by the CLI commands: aligned tables, colour only on a TTY, JSON.

Used by ``receiver.cli.rules``, ``receiver.cli.audit`` and the other command modules so
every command prints the same way; ``--json`` output goes through :func:`print_json`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

_CODES = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}


def colour_on(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with ``NO_COLOR`` set (no-color.org)."""
    return stream.isatty() and "NO_COLOR" not in os.environ


def paint(text: str, colour: str, stream: TextIO | None = None) -> str:
    """``text`` in ``colour`` (red, green, yellow, bold, dim) when ``stream`` shows colour."""
    if not colour_on(stream or sys.stdout):
        return text
    return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows (the first a header) as lines with aligned columns, trailing spaces cut."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False, default=str))
