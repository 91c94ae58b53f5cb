"""What a benchmark run measures and how long: the options ``bench.__main__`` sets from its flags.

Read by ``bench.run`` (the whole run) and ``bench.storm`` (the storm, also run alone).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Log = Callable[[str], None]


@dataclass
class Options:
    """What to run; the defaults are the full run the README's command makes (~10 minutes)."""

    seconds: float = 5.0
    runs: int = 3
    rule_counts: tuple[int, ...] = (10, 1_000, 10_000)
    stores: tuple[str, ...] = ("sqlite", "redis")
    storm: bool = True
    profile: bool = True  # py-spy over one extra run of the main shape per store (bench.profile)
    profile_dir: Path | None = None  # where the raw profiles stay (profile-STORE.txt); else the run's tmp
    storm_alerts: int = 100_000
    storm_seconds: float = 60.0
    drain_limit: float = 30.0  # longest wait for one run's backlog to drain
    storm_drain_limit: float = 90.0
    server_cpu: int | None = 0
    load_cpu: int | None = 1
    workdir: Path | None = None
    log: Log = field(default=print)
