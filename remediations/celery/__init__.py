"""The Celery actions: ``celery.inspect`` (read-only) and ``celery.purge`` (one named queue).

Run against a ``kind: celery`` target (``remediations.targets.CeleryTarget``: the broker
URL as a secret reference, the queues the actions may touch). One module per action,
registered by ``remediations.registry.default_registry``: ``remediations.celery.inspect``
and ``remediations.celery.purge``, on ``remediations.celery.broker`` (``CeleryAction``: the
target check, the queue allow-list, a Celery app per target run in worker threads, broker
errors as Temporary or Permanent). Restarting a hung worker is not a Celery command: it
is ``docker.restart`` or ``kubernetes.rollout_restart`` of the worker's container or
Deployment. Celery is imported on first use.
"""
