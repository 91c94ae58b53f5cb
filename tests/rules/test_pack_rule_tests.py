"""The shipped pack's rule tests (``rules/packs/*.test.yaml``) run through ``remediator rules test``.

Each file is one pytest test, run through the CLI entry point exactly as CI or an SRE
would run it; a failing case fails the suite with the command's own diff.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from receiver.cli.main import main
from rules.loader import default_pack_paths
from tests.support.paths import REPO

PACKS = REPO / "rules" / "packs"
TEST_FILES = sorted(PACKS.glob("*.test.yaml"))


def test_every_pack_file_has_rule_tests() -> None:
    """Each shipped rule file has its rule tests beside it (cpu.yaml: cpu.test.yaml)."""
    packs = default_pack_paths()
    assert packs
    missing = [p.name for p in packs if p.with_suffix(".test.yaml") not in TEST_FILES]
    assert missing == [], f"pack files without rule tests: {missing}"


@pytest.mark.parametrize("path", TEST_FILES, ids=[p.name for p in TEST_FILES])
def test_pack_rule_tests_pass(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rules", "test", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, f"remediator rules test {path.name} exited {code}:\n{out}{err}"
    assert "0 failed" in out.splitlines()[-1]
