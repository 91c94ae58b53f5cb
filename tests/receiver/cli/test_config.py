"""``remediator config check``: every problem serve would stop at, each with its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from receiver.cli.main import main

RULES = 'rules:\n  - name: a\n    match: [\'alertname = "X"\']\n    approval: required\n' \
        "    actions: [{action: kubernetes.rollout_restart, target: prod,\n"\
        "               params: {namespace: shop, deployment: w}}]\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_good_config_says_what_serve_would_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    monkeypatch.setenv("CHECK_STATE_URL", "redis://:pw@cache.internal:6379/0")
    path = tmp_path / "remediator.yaml"
    path.write_text("dry_run: false\nstate: env:CHECK_STATE_URL\n"
                    f"audit: {tmp_path / 'a.jsonl'}\n"
                    f"rules: [{tmp_path / 'rules.yaml'}]\n"
                    "targets:\n  prod: {kind: kubernetes, namespaces: [shop]}\n")
    code, out, err = run(capsys, "config", "check", str(path))
    assert (code, err) == (0, "")
    assert out == (f"{path}: ok. listen 127.0.0.1:9095, LIVE, state env:CHECK_STATE_URL, "
                   f"audit {tmp_path / 'a.jsonl'}, 1 rules, 1 targets, 0 notifiers, auth off, tls off\n")
    code, out, _ = run(capsys, "config", "check", str(path), "--json")
    report = json.loads(out)
    assert (code, report["ok"], report["problems"]) == (0, True, [])
    assert report["config"]["targets"] == ["prod"]
    assert "pw" not in out


@pytest.mark.parametrize("state", [
    "redis://:pw@cache.internal:6379/0",
    "redis://user:pw@cache.internal:6379/0",
    "redis://cache.internal:6379/0?password=pw",
    "redis+sentinel://s1:26379/mymaster?sentinel_password=pw",
    "redis+cluster://u:pw@h1:7000,h2:7000",
])
def test_a_password_written_into_state_is_refused(state: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Secrets are references, never literals: the state URL's password too."""
    path = tmp_path / "remediator.yaml"
    path.write_text(f"dry_run: true\nstate: '{state}'\n")
    code, out, _ = run(capsys, "config", "check", str(path))
    assert code == 1
    assert f"{path}:2: state: state holds a password: give the URL as a secret reference" in out
    assert "pw" not in out.replace(str(path), "")


def test_every_problem_is_reported_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "remediator.yaml"
    path.write_text("listen: 0.0.0.0:9000\n"  # 1: fine alone
                    "cooldwn: 5m\n"  # 2: unknown key
                    "queue: {workers: 0}\n"  # 3: out of range
                    "targets:\n"
                    "  prod: {kind: kubernetes}\n"  # 5: namespaces missing
                    "auth:\n  tokens:\n"
                    "    - {name: am, role: webhook, token: 'env:CHECK_NOT_SET_ANYWHERE'}\n")
    code, out, err = run(capsys, "config", "check", str(path))
    lines = out.splitlines()
    assert code == 1
    assert sorted(lines[:-1]) == sorted([
        f"{path}:2: cooldwn: unknown key 'cooldwn'",
        f"{path}:3: queue.workers: Input should be greater than or equal to 1",
        f"{path}:5: targets.prod.kubernetes.namespaces: Field required",
        f"{path}:8: auth.tokens.0.token: environment variable CHECK_NOT_SET_ANYWHERE is not set "
        "(secret 'env:CHECK_NOT_SET_ANYWHERE')",
    ]), out
    assert lines[-1] == f"{path}: 4 problems; serve would not start"
    assert "Traceback" not in out + err


@pytest.mark.parametrize(("text", "problem"), [
    pytest.param("rules: [RULES]\ntargets:\n  prod: {kind: docker, containers: 'w.*'}\n",
                 "rules: RULES:5: rule 'a': error: ", id="rules-against-the-config-targets"),
    pytest.param("listen: 0.0.0.0:9000\nrules: [RULES]\n"
                 "targets:\n  prod: {kind: kubernetes, namespaces: [x]}\n",
                 "CONFIG: listen: refusing to listen on 0.0.0.0:9000 with no credentials", id="listen-open"),
    pytest.param("audit: /nonexistent-dir/a.jsonl\nrules: [RULES]\n"
                 "targets:\n  prod: {kind: kubernetes, namespaces: [x]}\n",
                 "CONFIG: audit: directory /nonexistent-dir does not exist", id="audit-dir"),
    pytest.param("targets: [1, 2\n", "CONFIG:2: error: YAML:", id="bad-yaml"),
])
def test_what_serve_would_refuse(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                 problem: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    path = tmp_path / "remediator.yaml"
    path.write_text(text.replace("RULES", str(rules)))
    code = main(["config", "check", str(path), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert (code, report["ok"], report["config"]) == (1, False, None)
    want = problem.replace("RULES", str(rules)).replace("CONFIG", str(path))
    assert any(p.startswith(want) for p in report["problems"]), report["problems"]


def test_a_missing_file_is_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "check", str(tmp_path / "nope.yaml"))
    assert (code, out) == (2, f"remediator: {tmp_path / 'nope.yaml'}: no such file\n")
