"""``python -m receiver``: the same command line as ``remediator``."""

from __future__ import annotations

from receiver.cli.main import main

raise SystemExit(main())
