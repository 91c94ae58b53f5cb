"""The README's two commands and CI: .ci/run runs exactly the README's test command."""

from __future__ import annotations

import re

from tests.support.paths import REPO


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)


def test_ci_runs_the_readme_test_command() -> None:
    """The last line of .ci/run is, character for character, the README's test command."""
    commands = readme_commands()
    test_command = next(c for c in commands if "pytest" in c)
    ci_lines = [line for line in (REPO / ".ci/run").read_text().splitlines()
                if line and not line.startswith("#")]
    assert ci_lines[-1] == test_command


def test_readme_serve_command_runs_serve() -> None:
    """The README's first command installs the project and starts ``remediator serve``."""
    first = readme_commands()[0]
    assert "pip install" in first
    assert first.rstrip().endswith("remediator serve")
