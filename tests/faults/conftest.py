"""The fault suite's figures, one line per case, printed at the end of the pytest run.

``tests.faults.test_faults`` appends each case's line to ``FIGURES`` in the session's stash;
``pytest_terminal_summary`` prints them under "fault injection", so the normal run shows,
per case, firings sent and accepted, kills, hits, lost and duplicated.
"""

from __future__ import annotations

import pytest

FIGURES = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("fault injection")
        for line in lines:
            terminalreporter.write_line(line)
