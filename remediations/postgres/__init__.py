"""The PostgreSQL actions: ``postgres.terminate_idle``, ``.cancel_long_queries``, ``.activity``.

One module per action (its params, its SQL, its class): ``remediations.postgres.terminate_idle``,
``remediations.postgres.cancel_long_queries`` and ``remediations.postgres.activity``,
registered by ``remediations.registry.default_registry``. They share
``remediations.postgres.connection`` (one autocommit connection per call, psycopg's errors
as Temporary or Permanent), ``remediations.postgres.target`` (the ``PostgresAction`` base:
the target, its database allow-list, the subject) and, for the two that end sessions,
``remediations.postgres.sessions`` (which sessions may be ended, how a plan lists them,
the re-check before each signal, the outcomes). A new PostgreSQL action is one more
module on these.

SQL is fixed text in every module: each value that comes from params, and so possibly
from alert labels, is a bound parameter. psycopg is imported on first use, so start-up
and ``rules lint`` do not pay for it.
"""
