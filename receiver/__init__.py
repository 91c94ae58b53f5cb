"""The service around the flow: HTTP intake, settings, state, queue, workers, audit, CLI.

Entry points: ``remediator`` (``receiver.cli.main:main``) and ``python -m receiver``.
:func:`version` is what ``remediator --version`` prints and ``remediator_build_info`` carries.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _distribution_version


def version() -> str:
    """The installed distribution's version (``0+unknown`` when run from a bare source tree)."""
    try:
        return _distribution_version("remediator")
    except PackageNotFoundError:
        return "0+unknown"
