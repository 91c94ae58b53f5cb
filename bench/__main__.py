"""``python -m bench``: run the benchmark, write results JSON + Markdown, optionally the README.

The full run (the README's command) takes about ten minutes; ``--quick`` is a short
smoke run (1,000 rules at most, 2 s runs, a 10 s storm), ``--storm-only`` the storm alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.options import Options
from bench.report import markdown, replace_section
from bench.run import run

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results",
                        help="where latest.json and latest.md go (default: bench/results)")
    parser.add_argument("--write-readme", action="store_true", help="put the table into README.md")
    parser.add_argument("--note", default="", help="a sentence printed under the machine line")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (figures are not stable)")
    parser.add_argument("--storm-only", action="store_true", help="only the storm")
    parser.add_argument("--no-storm", action="store_true", help="everything but the storm")
    parser.add_argument("--no-profile", action="store_true",
                        help="no py-spy profile of the main shape (bench/profile.py)")
    parser.add_argument("--seconds", type=float, help="length of each measured run (default 5)")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3)")
    args = parser.parse_args(argv)

    options = Options(log=lambda line: print(line, file=sys.stderr, flush=True))
    if args.quick:
        options.seconds, options.rule_counts = 2.0, (10, 1_000)
        options.storm_alerts, options.storm_seconds = 10_000, 10.0
    if args.seconds:
        options.seconds = args.seconds
    if args.runs:
        options.runs = max(1, args.runs)
    if args.no_storm:
        options.storm = False
    if args.no_profile:
        options.profile = False
    options.profile_dir = args.out
    if args.storm_only:
        from bench.storm import run_alone  # noqa: PLC0415

        result = run_alone(options)
        print(json.dumps(result, indent=2))
        return 0 if all(result["checks"].values()) else 1
    results = run(options)
    table = markdown(results, note=args.note)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "latest.md").write_text(table)
    if args.write_readme:
        readme = REPO / "README.md"
        readme.write_text(replace_section(readme.read_text(), table))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
