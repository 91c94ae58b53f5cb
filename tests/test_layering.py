"""The dependency rules of the packages, checked on the source itself.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``) and import-linter checks
them: ``bench`` → ``receiver`` → ``remediations`` → ``rules``; inside ``receiver``, ``cli``
on top, then ``http``, ``tools``, ``runtime``, ``flow``, ``store`` and the shared base
modules; ``rules`` pure (no other package of ours, no I/O library); no import circle among
the modules of any package. The checks below are the ones import-linter has no contract for.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

from tests.support.paths import REPO


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def test_import_contracts_hold() -> None:
    """import-linter keeps every contract in pyproject.toml (its report names each broken import)."""
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True) == 0


@pytest.mark.parametrize(("package", "forbidden"), [
    pytest.param("rules", {"receiver", "remediations", "aiohttp", "asyncio", "socket", "sqlite3",
                           "redis", "docker", "kubernetes", "psycopg", "structlog", "prometheus_client"},
                 id="rules-is-pure"),
    pytest.param("remediations", {"receiver"}, id="remediations-below-receiver"),
])
def test_layers_point_one_way(package: str, forbidden: set[str]) -> None:
    """No module of a lower layer imports a higher layer or an I/O library it must not use."""
    offenders = {str(p.relative_to(REPO)): sorted(imports(p) & forbidden) for p in modules(package)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_grab_bag_modules() -> None:
    """No utils.py or helpers.py: every module is named for what it is."""
    names = {p.name for pkg in ("receiver", "rules", "remediations") for p in modules(pkg)}
    assert not names & {"utils.py", "helpers.py", "misc.py", "common.py"}


def test_every_module_says_what_it_is() -> None:
    """Every module starts with a docstring."""
    missing = [str(p.relative_to(REPO)) for pkg in ("receiver", "rules", "remediations")
               for p in modules(pkg) if ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []
