"""The command line outside ``serve``: exit codes, messages, no tracebacks."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

from receiver.audit import AuditEvent, AuditLog
from receiver.cli.main import main
from remediations.registry import default_registry
from rules.loader import default_pack_paths, load_rules
from tests.support.paths import REPO

PACK_RULES = len(load_rules(default_pack_paths(), catalogue=default_registry()).ruleset.rules)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_lint_the_shipped_pack(capsys: pytest.CaptureFixture[str]) -> None:
    """With no paths, lint checks the shipped pack and exits 0; its only warnings are the
    destructive steps it runs with approval: auto, which --ignore auto-destructive accepts."""
    code, out, _ = run(capsys, "rules", "lint")
    lines = out.splitlines()
    assert code == 0
    assert lines[:-1]
    assert all(line.endswith("[auto-destructive]") for line in lines[:-1])
    assert lines[-1] == f"{PACK_RULES} rules ok, {len(lines) - 1} warnings"
    code, out, _ = run(capsys, "rules", "lint", "--strict", "--ignore", "auto-destructive")
    assert (code, out.splitlines()) == (0, [f"{PACK_RULES} rules ok, 0 warnings"])


def test_lint_reports_every_error_with_file_line_and_rule(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A broken file exits 1 and prints each problem as FILE:LINE: rule 'NAME': error: …."""
    path = tmp_path / "r.yaml"
    path.write_text('rules:\n  - name: a\n    match: [alertname == "X"]\n'
                    "    actions: [{action: notify.nope}]\n    cooldwon: 5m\n")
    code, out, err = run(capsys, "rules", "lint", str(path))
    assert code == 1
    *lines, last = out.splitlines()
    assert (len(lines), last) == (3, "3 errors, 0 warnings")
    assert all(line.startswith(f"{path}:") and "rule 'a': error:" in line for line in lines)
    assert "Traceback" not in out + err


@pytest.mark.parametrize(("strict", "code"), [pytest.param(False, 0, id="warning-passes"),
                                              pytest.param(True, 1, id="strict-fails")])
def test_lint_warnings_fail_only_when_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             strict: bool, code: int) -> None:
    """A target missing from --config is a warning: exit 0, or 1 under --strict."""
    rules = tmp_path / "r.yaml"
    rules.write_text('rules:\n  - name: a\n    match: [alertname = "X"]\n    approval: auto\n'
                     "    actions: [{action: http.request, target: api}]\n")
    config = tmp_path / "c.yaml"
    config.write_text("targets: {}\n")
    argv = ["rules", "lint", str(rules), "--config", str(config)] + (["--strict"] if strict else [])
    got, out, _ = run(capsys, *argv)
    assert got == code
    assert "warning: target 'api' is not in the service config" in out


def test_schema_matches_the_shipped_file(capsys: pytest.CaptureFixture[str]) -> None:
    """``rules schema`` prints exactly the shipped rules/rule-file.schema.json."""
    code, out, _ = run(capsys, "rules", "schema")
    assert code == 0
    assert out == (REPO / "rules" / "rule-file.schema.json").read_text()


async def test_audit_verify_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """verify: 0 for an intact chain, 1 naming the broken line, 2 for a missing file."""
    path = tmp_path / "a.jsonl"
    log = AuditLog(path)
    for n in range(3):
        log.record(AuditEvent.ADMIN_RELOAD, ok=True, rules=n)
    await log.close()
    assert run(capsys, "audit", "verify", str(path))[0] == 0
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"rules":1', '"rules":7')
    path.write_text("".join(lines))
    code, out, _ = run(capsys, "audit", "verify", str(path))
    assert (code, f"{path}:2: broken" in out) == (1, True)
    code, _, err = run(capsys, "audit", "verify", str(tmp_path / "missing.jsonl"))
    assert (code, "no such file" in err) == (2, True)


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["serve", "--config", "/nonexistent/c.yaml"], "cannot read config", id="missing-config"),
    pytest.param(["serve", "--listen", "nope"], "listen must be HOST:PORT", id="bad-listen"),
])
def test_serve_refuses_bad_configuration_cleanly(argv: list[str], message: str,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A bad config or flag exits 2 with one clear line and starts nothing."""
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in out + err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown command is a usage error (argparse's exit 2)."""
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    """``remediator --version`` prints the distribution's version and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"remediator {importlib.metadata.version('remediator')}\n"
