"""Terminal output: colour only on a terminal (and never with NO_COLOR), aligned tables."""

from __future__ import annotations

import io

import pytest

from receiver.cli.output import paint, table


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "no_color", "expected"), [
    pytest.param(Terminal(), False, "\x1b[31mFAIL\x1b[0m", id="terminal"),
    pytest.param(Terminal(), True, "FAIL", id="terminal-with-NO_COLOR"),
    pytest.param(io.StringIO(), False, "FAIL", id="pipe"),
])
def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO, no_color: bool,
                                   expected: str) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    assert paint("FAIL", "red", stream) == expected


def test_table_aligns_columns_and_cuts_trailing_spaces() -> None:
    assert table([("A", "BB", "C"), ("long", "x", "")]) == ["A     BB  C", "long  x"]
    assert table([]) == []
