"""User errors every command must turn into a clear message and an exit code, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from receiver.cli.main import main
from rules.loader import default_pack_paths
from tests.support.paths import REPO


def _not_utf8(tmp_path: Path) -> Path:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00listen: x\n")
    return path


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["config", "check", "{bin}"], 1, "binary.yaml:1: error: not UTF-8: byte 0xff at column 1"),
    (["rules", "lint", "--config", "{bin}", "{pack}"], 2, "binary.yaml:1: not UTF-8: byte 0xff at column 1"),
    (["approvals", "list", "--url", "notaurl"], 2, "--url: 'notaurl' is not an http(s) URL"),
    (["pause", "--url", "ftp://example.invalid"], 2, "--url: 'ftp://example.invalid' is not an http(s) URL"),
    (["config", "check", "{tmp}"], 2, "a directory, not a config file"),
    (["audit", "verify", "{tmp}"], 2, "a directory with no audit log"),
])
def test_bad_input_is_a_message_and_an_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 argv: list[str], code: int, message: str) -> None:
    values = {"bin": str(_not_utf8(tmp_path)), "tmp": str(tmp_path),
              "pack": str(default_pack_paths()[0])}
    assert main([a.format(**values) for a in argv]) == code
    out, err = capsys.readouterr()
    assert message in out + err
    assert "Traceback" not in out + err


def test_a_reader_that_goes_away_is_not_a_traceback() -> None:
    """`remediator rules test … | head -1`: the pipe closes; no traceback, exit 141 as a shell's."""
    tests = sorted(str(p) for p in (REPO / "rules" / "packs").glob("*.test.yaml"))
    proc = subprocess.Popen([sys.executable, "-m", "receiver", "rules", "test", *tests], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # before the command has written anything: every write meets a closed pipe
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err, err
    assert "BrokenPipeError" not in err, err
