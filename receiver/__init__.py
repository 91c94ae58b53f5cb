"""The service around the flow: HTTP intake, settings, state, queue, workers, audit, CLI.

Entry points: ``remediator`` (``receiver.cli.main:main``) and ``python -m receiver``.
"""
