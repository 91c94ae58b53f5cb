"""The audit log: what happened, durably, in a hash chain anyone can verify.

``events`` names what a record is about, ``chain`` is the line format and verification,
``log`` writes (group commit, fsync, recovery of a torn end). Everyone imports from here.
"""

from receiver.audit.chain import VerifyReport, verify_file
from receiver.audit.events import AuditError, AuditEvent
from receiver.audit.log import AuditLog

__all__ = ["AuditError", "AuditEvent", "AuditLog", "VerifyReport", "verify_file"]
