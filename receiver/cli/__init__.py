"""The ``remediator`` command line: one module per command group."""
