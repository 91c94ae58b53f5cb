"""The pool of threads the remediations tests give their ``ActionContext``s for blocking SDK calls.

One for the whole test session, as ``serve`` has one per process (``receiver.runtime``);
used by the ``tests/remediations`` modules that build contexts by hand, closed at the
session's end by ``tests/conftest.py``.
"""

from __future__ import annotations

from remediations.blocking import BlockingCalls

SDK_CALLS = BlockingCalls(8, name="tests-sdk")
