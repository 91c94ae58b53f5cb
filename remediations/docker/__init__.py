"""The Docker Engine actions: ``docker.restart``, ``docker.diagnose``.

Run against a ``kind: docker`` target (``remediations.targets.DockerTarget``). One module
per action, registered by ``remediations.registry.default_registry``:
``remediations.docker.restart`` and ``remediations.docker.diagnose``. They share
``remediations.docker.engine`` (``DockerAction``: the target check, one SDK client per
engine URL run in worker threads, the SDK's errors as Temporary or Permanent) and
``remediations.docker.containers`` (``ContainerAction``: containers chosen by exact name
or label, never outside the target's name pattern). A new Docker action is one more
module: on ``ContainerAction`` when it acts on chosen containers (a container's limits),
on ``DockerAction`` when it chooses otherwise (a Compose service by its project and
service labels). The ``docker`` SDK is imported on first use.
"""
