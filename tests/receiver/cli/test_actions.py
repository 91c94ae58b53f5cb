"""``remediator actions list``: the catalogue as a table and as JSON, from the default registry."""

from __future__ import annotations

import json

import pytest

from receiver.cli.main import main
from remediations.registry import default_registry


def test_table_lists_every_action_with_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    """The table has a header and one row per registered action: name, destructive, kinds, permissions."""
    assert main(["actions", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ACTION", "DESTRUCTIVE", "TARGET", "KINDS", "PERMISSIONS"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    registry = default_registry()
    assert sorted(rows) == registry.names()
    assert rows["http.request"][:3] == ["yes", "http", "-"]
    assert rows["notify.log"][:3] == ["no", "-", "-"]


def test_json_is_the_registry_description(capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` prints exactly ``Registry.describe()`` of the default registry, exit 0."""
    assert main(["actions", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == default_registry().describe()
