"""The audit log: what happened, durably, in a hash chain that proves itself to the key holder.

``events`` names what a record is about, ``chain`` is the line format, ``seal`` the keyed seals,
``anchor`` the copy of the last seal kept beside the log, ``files`` which files make up a
(rotated) log, ``log`` writes (group commit, fsync, seals, rotation) with ``recovery`` at open,
``verify`` checks. Everyone imports from here.
"""

from receiver.audit.events import AuditError, AuditEvent, Damage
from receiver.audit.files import AuditSet, audit_sets, read_lines, total_bytes
from receiver.audit.log import AuditLog
from receiver.audit.seal import KeyRing, SealKey
from receiver.audit.verify import Problem, VerifyReport, verify_file, verify_set

__all__ = ["AuditError", "AuditEvent", "AuditLog", "AuditSet", "Damage", "KeyRing", "Problem", "SealKey",
           "VerifyReport", "audit_sets", "read_lines", "total_bytes", "verify_file", "verify_set"]
