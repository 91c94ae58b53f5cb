"""The fault-injection suite: real ``remediator serve`` processes under load and under faults.

Each case (``tests.faults.cases.CASES``) starts one or two ``serve`` processes on SQLite or
Redis (``tests.faults.fleet``), a target that counts the HTTP calls the rule's action makes
per firing (``tests.faults.target``), and a sender that re-sends like Alertmanager 0.25
(``tests.faults.sender``). While the firings flow, the case's faults strike at seeded
random moments (``tests.faults.inject``): SIGKILL and restart of a replica, SIGTERM
mid-action, Redis killed and restarted on its append-only file or frozen with SIGSTOP, a
target answering 500 or hanging. Then every firing answered 202 is judged from the target's
hits and the audit logs (``tests.faults.ledger``): lost (no hit and no meaningful ending)
or duplicated (more than one hit) fails the case, naming the firings and their audit trail.
``tests.faults.test_faults`` runs the table in the normal ``pytest`` run (marker ``faults``).
"""
