"""The README's two commands and CI (.ci/run runs exactly the README's test command), and its
configuration example, which ``config check`` accepts as written."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import trustme

from receiver.cli.main import main
from receiver.http.server import ssl_context
from receiver.settings import load_settings
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


def readme_config() -> str:
    """The README's configuration example: the first YAML block under "## Configuration"."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("\n## Configuration\n"):]
    match = re.search(r"```yaml\n(.+?)\n```", section, re.DOTALL)
    assert match is not None
    return match.group(1) + "\n"


def readme_rule() -> str:
    """The README's rule example: the first YAML block under "## Rules"."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("\n## Rules\n"):]
    match = re.search(r"```yaml\n(.+?)\n```", section, re.DOTALL)
    assert match is not None
    return match.group(1) + "\n"


def test_config_check_accepts_the_readme_configuration_as_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``remediator config check`` accepts the README's configuration example, key for key,
    and its rule example loads against it. The only edit: the absolute paths under
    /etc/remediator and /var/lib/remediator point into a temporary directory holding what
    they name there (a real TLS certificate, key and CA, the admin token file, the rules
    folder with the README's rule in it), and every ``env:`` secret's variable is set."""
    example = readme_config()
    for needed in ("response_targets: {P1: 15m, P2: 1h, P3: 4h, P4: 24h}", "levels:", "escalation:"):
        assert needed in example
    etc, var = tmp_path / "etc", tmp_path / "var"
    (etc / "rules").mkdir(parents=True)
    var.mkdir()
    ca = trustme.CA()
    cert = ca.issue_cert("remediator.internal")
    cert.cert_chain_pems[0].write_to_path(str(etc / "tls.crt"))
    cert.private_key_pem.write_to_path(str(etc / "tls.key"))
    ca.cert_pem.write_to_path(str(etc / "ca.crt"))
    for secret in re.findall(r"file:/etc/remediator/([\w.-]+)", example):
        (etc / secret).write_text(f"{secret}-value\n")
    (etc / "rules" / "readme.yaml").write_text(readme_rule())
    for name in re.findall(r"env:([A-Z_][A-Z0-9_]*)", example):
        monkeypatch.setenv(name, f"https://secret.invalid/{name.lower()}")
    config = tmp_path / "remediator.yaml"
    config.write_text(example.replace("/etc/remediator/", f"{etc}/")
                      .replace("/var/lib/remediator/", f"{var}/"))
    code = main(["config", "check", str(config)])
    out, _ = capsys.readouterr()
    assert code == 0, out
    assert out.startswith(f"{config}: ok. listen 127.0.0.1:9095, dry-run, ")
    assert ", 1 rules, " in out
    assert out.rstrip().endswith("auth on, tls on")
    settings = load_settings(config)
    assert settings.tls is not None
    assert ssl_context(settings.tls) is not None  # serve builds its TLS context from these files
    assert settings.priorities.response_target("P1") == timedelta(minutes=15)
    assert settings.priorities.response_target("P4") == timedelta(hours=24)
