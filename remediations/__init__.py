"""The action catalogue: what remediator can do, a package (or, while small, a module) per backend.

A backend with several actions is a package: what its actions share in modules of their
own (the client and the mapping of its errors to ``TemporaryError``/``PermanentError``, a
base action with the target's allow-list) and one module per action, so a new action is
one new module — ``remediations.kubernetes``, ``remediations.docker``,
``remediations.postgres``, ``remediations.notify``. ``remediations.redis`` and
``remediations.http`` are one module each. Beside them: ``remediations.base`` (the
``Action`` interface, ``Plan``, ``Result``, the errors), ``remediations.registry``,
``remediations.targets`` and ``remediations.secrets`` (the service config's targets and
their secrets) and ``remediations.notifiers``.

``receiver`` reaches actions only through a :class:`remediations.registry.Registry`; no
module here imports ``receiver``. The backend SDKs (docker, kubernetes, psycopg, redis)
are imported on first use inside the modules that call them, so start-up and
``rules lint`` do not load them.
"""
