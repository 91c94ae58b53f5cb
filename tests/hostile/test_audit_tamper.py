"""Tampering with the audit log, through ``remediator audit verify`` as an auditor runs it.

Each row is what someone who can write the audit files but lacks the key can do to a keyed
log (one file, or a set rotated by size): cut it, append or rewrite records with every hash
recomputed, forge seals, remove or swap files, touch the anchor, or verify with the wrong
key. Each must exit 1, naming the file and line (or the file) and what failed, with no
traceback; the untouched log and set pass. The verifier's own tests
(``tests/receiver/audit/``) hold the finer cases; these are the CLI's answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from receiver.audit.files import anchor_path
from receiver.cli.main import main
from tests.receiver.audit.support import (
    KEY,
    append_forged_approval,
    append_forged_approval_and_seal,
    lines,
    records,
    rehash,
    rewrite_middle,
    rewrite_middle_and_drop_later_seals,
    rewrite_whole_log_from_scratch,
    write,
    write_groups,
)

Tamper = Callable[[list[Path]], None]


def _on_live(change: Callable[[list[bytes]], list[bytes]]) -> Tamper:
    def tamper(files: list[Path]) -> None:
        write(files[-1], change(lines(files[-1])))
    return tamper


def _flip_mac(data: list[bytes]) -> list[bytes]:
    seal = json.loads(data[7])
    seal["mac"] = ("1" if seal["mac"][0] != "1" else "2") + seal["mac"][1:]
    return [*data[:7], *rehash([seal, *records(data[8:])], json.loads(data[6])["hash"])]


def _anchor(content: bytes | None) -> Tamper:
    def tamper(files: list[Path]) -> None:
        write(files[-1], lines(files[-1])[:-4])
        if content is None:
            anchor_path(files[-1]).unlink()
        else:
            anchor_path(files[-1]).write_bytes(content)
    return tamper


def _forged_anchor(files: list[Path]) -> None:
    data = lines(files[-1])[:-4]
    write(files[-1], data)
    seal = json.loads(data[-1]) | {"mac": "1" * 64}
    anchor_path(files[-1]).write_bytes(rehash([seal], seal["prev"])[0])


ONE_FILE: dict[str, tuple[Tamper, str]] = {
    "tail-cut-at-a-seal": (_on_live(lambda d: d[:-4]),
                           r"anchor: truncated: the anchor sealed seq 20 .*seq 16"),
    "tail-cut-mid-group": (_on_live(lambda d: d[:-6]), r"audit\.jsonl:13: records 13\.\.14 are not sealed"),
    "tail-cut-mid-line": (_on_live(lambda d: [*d[:-1], d[-1][:20]]), r"audit\.jsonl:20: torn last line"),
    "everything-cut": (_on_live(lambda d: []), r"anchor: truncated: .*the log ends at seq 0"),
    "forged-record-appended-hash-recomputed": (_on_live(append_forged_approval),
                                               r"audit\.jsonl:21: records 21\.\.21 are not sealed"),
    "forged-record-and-seal-appended": (_on_live(append_forged_approval_and_seal),
                                        r"audit\.jsonl:22: forged seal"),
    "middle-rewritten-later-hashes-recomputed": (_on_live(rewrite_middle),
                                                 r"audit\.jsonl:8: forged seal: its mac does not match"),
    "middle-rewritten-later-seals-dropped": (_on_live(rewrite_middle_and_drop_later_seals),
                                             r"audit\.jsonl:5: records 5\.\.16 are not sealed"),
    "whole-log-rewritten-from-scratch": (_on_live(rewrite_whole_log_from_scratch),
                                         r"audit\.jsonl:1: records 1\.\.15 are not sealed"),
    "middle-rewritten-hash-kept": (_on_live(lambda d: [*d[:5], d[5].replace(b'"P3"', b'"P1"'), *d[6:]]),
                                   r"audit\.jsonl:6: hash mismatch"),
    "middle-line-deleted": (_on_live(lambda d: [*d[:5], *d[6:]]),
                            r"audit\.jsonl:6: seq out of order: expected 6, found 7"),
    "two-lines-swapped": (_on_live(lambda d: [*d[:5], d[6], d[5], *d[7:]]),
                          r"audit\.jsonl:6: seq out of order: expected 6, found 7"),
    "seal-mac-flipped": (_on_live(_flip_mac), r"audit\.jsonl:8: forged seal"),
    "garbage-line-inserted": (_on_live(lambda d: [*d[:5], b"not json at all\n", *d[5:]]),
                              r"audit\.jsonl:6: not JSON"),
    "nul-bytes-inserted": (_on_live(lambda d: [*d[:5], b"\x00" * 64 + b"\n", *d[5:]]),
                           r"audit\.jsonl:6: not JSON"),
    "anchor-deleted-after-a-cut": (_anchor(None), r"no anchor"),
    "anchor-garbage-after-a-cut": (_anchor(b"garbage"), r"is not a seal"),
    "anchor-forged-after-a-cut": (_forged_anchor, r"forged seal"),
}


async def _one_file(tmp_path: Path) -> list[Path]:
    path = tmp_path / "audit.jsonl"
    await write_groups(path, 5, key=KEY)  # five group commits of three records, each sealed: 20 lines
    return [path]


async def _rotated(tmp_path: Path) -> list[Path]:
    path = tmp_path / "audit.jsonl"
    await write_groups(path, 16, key=KEY, rotate_bytes=4096)
    files = sorted(tmp_path.glob("audit.jsonl.0*"))  # noqa: ASYNC240 - a test's directory
    assert len(files) >= 3
    return [*files, path]


def _swap(files: list[Path]) -> None:
    a, b = files[1].read_bytes(), files[2].read_bytes()
    files[1].write_bytes(b)
    files[2].write_bytes(a)


def _cut_rotated(files: list[Path]) -> None:
    write(files[1], lines(files[1])[:-4])


def _forge_in_rotated(files: list[Path]) -> None:
    write(files[1], append_forged_approval(lines(files[1])))


ROTATED: dict[str, tuple[Tamper, str]] = {
    "middle-file-removed": (lambda f: f[1].unlink(), r"continues audit\.jsonl\.0"),
    "last-rotated-file-removed": (lambda f: f[-2].unlink(), r"continues audit\.jsonl\.0"),
    "live-file-removed": (lambda f: f[-1].unlink(), r"truncated: the anchor sealed seq"),
    "two-files-swapped": (_swap, r"audit\.jsonl\.0\d+:1: continues .*: a file of the set is missing or "
                                 r"out of order"),
    "rotated-file-tail-cut": (_cut_rotated, r"audit\.jsonl\.0\d+:1: continues audit\.jsonl\.0\d+ \(up to seq "
                                            r"30\), not audit\.jsonl\.0\d+ \(up to seq 26\)"),
    "forged-record-in-a-rotated-file": (_forge_in_rotated, r"audit\.jsonl\.0\d+:1: continues .*\(up to seq "
                                                           r"30\), not .*\(up to seq 31\)"),
}


def _verify(capsys: pytest.CaptureFixture[str], files: list[Path], key: str) -> tuple[int, str]:
    """The exit code and what was printed, ``FILE:LINE: broken: WHAT`` read as ``FILE:LINE: WHAT``."""
    code = main(["audit", "verify", "--key", key, str(files[-1])])
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).replace(": broken: ", ": ")


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTILE_AUDIT_KEY", "k" * 32)  # KEY's bytes
    monkeypatch.setenv("HOSTILE_OTHER_KEY", "w" * 32)


@pytest.mark.parametrize("make", [_one_file, _rotated], ids=["one-file", "rotated-set"])
async def test_an_untouched_log_passes_and_the_wrong_key_fails(
        make: Callable[[Path], object], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = await make(tmp_path)  # type: ignore[misc]
    code, out = _verify(capsys, files, "env:HOSTILE_AUDIT_KEY")
    assert code == 0, out
    assert "every record sealed" in out
    code, out = _verify(capsys, files, "env:HOSTILE_OTHER_KEY")
    assert code == 1
    assert re.search(r"audit\.jsonl[.0-9]*:\d+: sealed with key \S+, which was not given", out), out
    assert "Traceback" not in out


@pytest.mark.parametrize(("tamper", "named"), ONE_FILE.values(), ids=ONE_FILE.keys())
async def test_tampering_with_one_file_fails_verify_naming_what(
        tamper: Tamper, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = await _one_file(tmp_path)
    tamper(files)
    code, out = _verify(capsys, files, "env:HOSTILE_AUDIT_KEY")
    assert code == 1, out
    assert re.search(named, out), out
    assert "FAILED" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(("tamper", "named"), ROTATED.values(), ids=ROTATED.keys())
async def test_tampering_with_a_rotated_set_fails_verify_naming_what(
        tamper: Tamper, named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = await _rotated(tmp_path)
    tamper(files)
    code, out = _verify(capsys, files, "env:HOSTILE_AUDIT_KEY")
    assert code == 1, out
    assert re.search(named, out), out
    assert "Traceback" not in out
