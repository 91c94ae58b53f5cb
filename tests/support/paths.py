"""Where things are in this repository, for tests at any depth of ``tests/``.

``ALERTMANAGER`` is ``tests/fixtures/alertmanager/`` (see its ``NOTES.md``): real
Alertmanager 0.25 webhook requests, copied into the project so a fresh clone tests with
nothing beside it. The benchmark's payload builder (``bench.payloads``) reads them too.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ALERTMANAGER = REPO / "tests" / "fixtures" / "alertmanager"
