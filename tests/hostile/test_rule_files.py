"""Hostile rule and config files as bytes: not UTF-8, control characters, wrong types, huge.

Each rule-file row goes through ``remediator rules lint`` and each config row through
``config check`` and ``serve``: the answer is a problem naming the file and its line (and the
rule, once the file reads as YAML), exit 1 or 2, no traceback, and nothing started. YAML
budgets (aliases, depth, duplicate keys, tags) are ``test_yaml_files``; these are the rows
around them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from receiver.cli.main import main

ACTION = b'    actions: [{action: notify.log, params: {text: hi}}]\n'


def rule(*lines: bytes, name: bytes = b"restart-web") -> bytes:
    return b"rules:\n  - name: " + name + b"\n" + b"".join(lines)


MATCH = b'    match: [alertname = "HighCPU"]\n'
RULE_FILES: dict[str, tuple[bytes, str]] = {  # name: (the file, a regex of what the answer says)
    "latin-1-in-a-name": (rule(MATCH, ACTION, name=b"caf\xe9"),
                          r"hostile\.yaml:2: error: not UTF-8: byte 0xe9 at column 14"),
    "latin-1-in-a-matcher": (rule(b'    match: [alertname = "\xff"]\n', ACTION),
                             r"hostile\.yaml:3: error: not UTF-8: byte 0xff"),
    "cut-utf-8-sequence": (
        rule(MATCH, b'    actions: [{action: notify.log, params: {text: "\xe2\x82"}}]\n'),
        r"hostile\.yaml:4: error: not UTF-8: byte 0xe2"),
    "utf-16-file": ("rules: []\n".encode("utf-16"),
                    r"hostile\.yaml:1: error: not UTF-8: byte 0xff at column 1"),
    "nul-in-a-matcher": (rule(b'    match: [alertname = "a\x00b"]\n', ACTION),
                         r"hostile\.yaml:3: error: YAML: character #x0000: control characters"),
    "escape-in-a-name": (rule(MATCH, ACTION, name=b"a\x1bb"),
                         r"hostile\.yaml:2: error: YAML: character #x001b"),
    "match-a-number": (rule(b"    match: 5\n", ACTION),
                       r"hostile\.yaml:3: rule 'restart-web': error: match: Input should be a valid list"),
    "actions-a-string": (
        rule(MATCH, b'    actions: "restart"\n'),
        r"hostile\.yaml:4: rule 'restart-web': error: actions: Input should be a valid list"),
    "for-bad-unit": (rule(MATCH, b"    for: 5x\n", ACTION),
                     r"hostile\.yaml:4: rule 'restart-web': error: for: unknown unit 'x'"),
    "timeout-a-number": (
        rule(MATCH, b"    actions: [{action: notify.log, params: {text: hi}, timeout: -5}]\n"),
        r"hostile\.yaml:4: rule 'restart-web': error: actions\[0\]\.timeout: a duration is a string"),
    "name-a-list": (rule(MATCH, ACTION, name=b"[a, b]"),
                    r"hostile\.yaml:2: error: name: Input should be a valid string"),
    "top-level-a-list": (b"- a\n- b\n", r"hostile\.yaml:1: error: the top level must be a mapping"),
    "rules-a-mapping": (b"rules: {a: 1}\n", r"hostile\.yaml:1: error: .*rules"),
    "unknown-action": (rule(MATCH, b"    actions: [{action: rm.rf, params: {}}]\n"),
                       r"hostile\.yaml:4: rule 'restart-web': error: .*rm\.rf"),
    "huge-string-value": (rule(MATCH, b"    actions: [{action: notify.log, params: {text: "
                               + b"x" * (4 * 1024 * 1024) + b"}}]\n", b"    for: 5x\n"),
                          r"hostile\.yaml:5: rule 'restart-web': error: for: unknown unit 'x'"),
}
CONFIGS: dict[str, tuple[bytes, str]] = {
    "latin-1-value": (b'listen: "127.0.0.1:9\xff"\n',
                      r"hostile\.yaml:1: .*not UTF-8: byte 0xff at column 21"),
    "nul-in-a-value": (b'log:\n  level: "in\x00fo"\n', r"hostile\.yaml:2: .*control characters"),
    "dry-run-a-word": (b"dry_run: maybe\n", r"hostile\.yaml:1: .*dry_run"),
    "queue-size-a-string": (b"queue:\n  size: many\n", r"hostile\.yaml:2: .*queue\.size"),
    "max-body-negative": (b"max_body_bytes: -1\n", r"hostile\.yaml:1: .*max_body_bytes"),
    "top-level-a-string": (b"hello\n", r"hostile\.yaml.*mapping"),
}


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize(("content", "says"), RULE_FILES.values(), ids=RULE_FILES.keys())
def test_a_hostile_rule_file_is_a_problem_at_its_line_and_rule(
        content: bytes, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "hostile.yaml").write_bytes(content)
    code, said = _cli(["rules", "lint", str(tmp_path / "hostile.yaml")], capsys)
    assert code == 1, said
    assert re.search(says, said), said
    assert "Traceback" not in said


@pytest.mark.parametrize("command", ["config-check", "serve"])
@pytest.mark.parametrize(("content", "says"), CONFIGS.values(), ids=CONFIGS.keys())
def test_a_hostile_config_is_a_problem_at_its_line(
        content: bytes, says: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def started(settings: Any) -> None:
        raise AssertionError("serve started with this config")

    monkeypatch.setattr("receiver.http.server.serve", started)
    config = tmp_path / "hostile.yaml"
    config.write_bytes(content)
    args = (["config", "check", str(config)] if command == "config-check"
            else ["serve", "--config", str(config), "--listen", "127.0.0.1:0"])
    code, said = _cli(args, capsys)
    assert code in (1, 2), said
    assert re.search(says, said), said
    assert "Traceback" not in said
    assert json.dumps(said)  # printable: no raw bytes the terminal would act on
    assert "\x00" not in said
