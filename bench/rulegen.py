"""Generated rule files: N realistic rules on top of the shipped pack.

Called by ``bench.run`` (serve with N extra rules), ``bench.matchtime`` (the index in
process) and ``bench.payloads`` (alerts that hit them). Every rule has its own alert name
(the equality matcher the index files it under); every fourth adds regex matchers on
labels the generated alerts carry, so matching does real regex work, not only a lookup.
They are written as a rules folder of files of 100 rules, as large rule sets are kept.
"""

from __future__ import annotations

import json
from pathlib import Path

GENERATED_ALERT = "BenchAlert{:05d}"
NAMESPACES = ("prod", "staging", "dev")
_REGEX_EVERY = 4


def alert_name(i: int) -> str:
    """The alert name the ``i``-th generated rule matches."""
    return GENERATED_ALERT.format(i)


def rule_yaml(n: int, start: int = 0) -> str:
    """A rule file (YAML) with rules ``start`` … ``start + n - 1``; JSON-style flow YAML."""
    rules = []
    for i in range(start, start + n):
        match = [f'alertname = "{alert_name(i)}"']
        text = f"bench rule {i}: runbook step for {alert_name(i)}"
        if i % _REGEX_EVERY == 0:
            match += ['namespace =~ "prod|staging|dev"', 'instance =~ "[a-z]+-[0-9a-f]+:[0-9]+"',
                      'severity !~ "info|none"']
            text += " on {{ labels.namespace }}/{{ labels.instance }}"
        else:
            match.append('severity =~ "critical|warning"')
        rules.append({"name": f"bench-rule-{i:05d}", "description": f"generated rule {i}",
                      "match": match,
                      "actions": [{"action": "notify.log", "params": {"level": "warning", "text": text}}],
                      "cooldown": "15m"})
    return "rules:\n" + "".join(f"  - {json.dumps(r)}\n" for r in rules)


def write_rules(folder: Path, n: int, *, per_file: int = 100) -> Path:
    """``n`` generated rules as ``folder/generated-NNNN.yaml`` files of ``per_file`` rules."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, start in enumerate(range(0, n, per_file)):
        (folder / f"generated-{number:04d}.yaml").write_text(rule_yaml(min(per_file, n - start), start))
    return folder


def storm_rule_yaml() -> str:
    """The storm's one live rule: a log line per deployment, so each deployment is its own subject."""
    rule = {"name": "bench-storm", "description": "storm: one log line per deployment",
            "match": ['alertname = "BenchStorm"', 'deployment =~ ".+"'],
            "actions": [{"action": "notify.log",
                         "params": {"level": "warning", "text": "storm on {{ labels.deployment }}"}}],
            "cooldown": "10m", "approval": "auto"}
    return f"rules:\n  - {json.dumps(rule)}\n"
