"""Hostile YAML through every reader the project has: each refused with its line, quickly,
in bounded memory, and nothing started.

Rows are documents (alias bombs, nesting, recursion, duplicate keys, tags, broken text);
columns are the readers: ``rules lint`` (rule files), ``config check`` and ``serve`` (the
service config: serve used to keep the last of two duplicate keys where config check
refused them), ``rules test`` (rule test files) and ``POST /-/reload`` (rule files, served).
Every one must answer with a problem naming the file and the line and the words expected,
never a traceback, while holding less than :data:`PEAK` of memory (a 700-byte bomb took
1.3 GB at six levels before the budget).
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from receiver.cli.main import main
from tests.conftest import HIGH_CPU_RULES, ClientFactory

PEAK = 64 * 1024 * 1024


def laughs(levels: int, width: int = 10, *, under: str = "rules") -> str:
    """The billion laughs: each anchor a list of ``width`` aliases of the one before."""
    lines = ['l0: &l0 "lol"']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join([*lines, f"{under}: *l{levels}", ""])


def merge_laughs(levels: int, width: int = 10) -> str:
    """The same through merge keys: each mapping merges ``width`` aliases of the one before."""
    lines = ["m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * width)}], k{i}: [*m{i - 1}, *m{i - 1}]}}"
              for i in range(1, levels + 1)]
    return "\n".join([*lines, f"rules: [*m{levels}]", ""])


def chain(levels: int) -> str:
    """Anchors nesting the one before: deep once expanded, shallow as written."""
    lines = ["c0: &c0 [x]"] + [f"c{i}: &c{i} [*c{i - 1}]" for i in range(1, levels + 1)]
    return "\n".join([*lines, f"rules: *c{levels}", ""])


DOCUMENTS: dict[str, tuple[str, int | None, str]] = {
    # name: (text, line of the problem (None: any), words in it)
    "billion-laughs-6": (laughs(6), 6, "aliases expand"),
    "billion-laughs-9": (laughs(9), 6, "aliases expand"),
    "billion-laughs-wide": (laughs(4, width=40), 5, "aliases expand"),
    "billion-laughs-merge-keys": (merge_laughs(10), None, "aliases expand"),
    "nested-900-flow": ("rules: " + "[" * 900 + "]" * 900 + "\n", None, "nested"),
    "nested-100-block": ("rules:\n" + "".join("  " * i + "- \n" for i in range(1, 100)), None, "nested"),
    "nested-by-anchors": (chain(80), None, "nested"),
    "recursive-alias": ("rules: &r [*r]\n", 1, "recursive alias"),
    "duplicate-top-level-key": ("rules: []\nrules: []\n", 2, "duplicate key"),
    "non-scalar-key": ("? [a, b]\n: 1\n", 1, "plain value"),
    "python-object-tag": ('rules: !!python/object/apply:os.system ["true"]\n', 1, "is not read here"),
    "python-name-tag-scalar": ("rules: !!python/name:os.system x\n", 1, "YAML"),
    "set-tag": ("rules: !!set {a, b}\n", 1, "is not read here"),
    "custom-tag": ("rules: !mine x\n", 1, "YAML"),
    "two-documents": ("rules: []\n---\nrules: []\n", 2, "single document"),
    "merge-of-a-scalar": ("a: &a 1\nrules: {<<: *a}\n", None, "for merging"),
    "tab-indentation": ("rules:\n\t- name: x\n", 2, "YAML"),
    "unclosed-quote": ('rules: "open\n', None, "YAML"),
    "nul-byte": ("rules: [a\x00b]\n", 1, "control characters"),
    "nul-byte-line-3": ("a: 1\nb: 2\nrules: [a\x00b]\n", 3, "control characters"),
    "undefined-alias": ("rules: *nowhere\n", 1, "undefined alias"),
}
READERS = ("rules-lint", "config-check", "serve", "rules-test", "reload")


def _config(tmp_path: Path, rules: Path | None = None) -> Path:
    config = tmp_path / "remediator.yaml"
    config.write_text(json.dumps({
        "state": f"sqlite:///{tmp_path / 'state.db'}", "audit": str(tmp_path / "audit.jsonl"),
        "rules": [str(rules or tmp_path / "ok.yaml")]}))
    return config


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out + out.err


Reader = Callable[[Path, str, pytest.CaptureFixture[str]], tuple[int, str]]


def _rules_lint(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "hostile.yaml").write_text(text)
    return _cli(["rules", "lint", str(tmp_path / "hostile.yaml")], capsys)


def _config_check(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "hostile.yaml").write_text(text)
    return _cli(["config", "check", str(tmp_path / "hostile.yaml")], capsys)


def _serve(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "hostile.yaml").write_text(text)
    return _cli(["serve", "--config", str(tmp_path / "hostile.yaml"), "--listen", "127.0.0.1:0"], capsys)


def _rules_test(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "hostile.test.yaml").write_text(text)
    return _cli(["rules", "test", str(tmp_path / "hostile.test.yaml")], capsys)


READ: dict[str, Reader] = {"rules-lint": _rules_lint, "config-check": _config_check, "serve": _serve,
                           "rules-test": _rules_test}


@pytest.mark.parametrize("reader", [r for r in READERS if r != "reload"])
@pytest.mark.parametrize("document", DOCUMENTS.values(), ids=DOCUMENTS.keys())
def test_a_hostile_document_is_a_problem_at_its_line(
        document: tuple[str, int | None, str], reader: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    text, line, words = document

    async def started(settings: Any) -> None:
        raise AssertionError("serve started with this config")

    monkeypatch.setattr("receiver.http.server.serve", started)
    tracemalloc.start()
    try:
        code, said = READ[reader](tmp_path, text, capsys)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code in (1, 2), said
    assert "Traceback" not in said
    assert words in said, said
    if line is not None:
        assert f"hostile{'.test' if reader == 'rules-test' else ''}.yaml:{line}" in said, said
    assert peak < PEAK, f"{peak / 2**20:.0f} MiB"
    assert not (tmp_path / "state.db").exists()


@pytest.mark.parametrize("document", DOCUMENTS.values(), ids=DOCUMENTS.keys())
async def test_a_reload_of_a_hostile_rule_file_keeps_the_rules_in_force(
        document: tuple[str, int | None, str], tmp_path: Path, make_client: ClientFactory,
        make_settings: Any) -> None:
    text, line, words = document
    settings = make_settings(rules=HIGH_CPU_RULES)
    client = await make_client(settings)
    Path(str(settings.rules[0])).write_text(text)  # noqa: ASYNC240 -- a small file, before any request
    tracemalloc.start()
    try:
        resp = await client.post("/-/reload")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    body = await resp.json()
    assert resp.status == 422, body
    assert any(words in p and (line is None or f"rules.yaml:{line}" in p) for p in body["problems"]), body
    assert "the 1 rules in force stay" in body["detail"]
    assert peak < PEAK, f"{peak / 2**20:.0f} MiB"
