"""The Kubernetes actions: rollouts and pods, scale, memory limits, diagnose.

One module per kind of change, registered by ``remediations.registry.default_registry``:
``remediations.kubernetes.rollout`` (``kubernetes.rollout_restart``,
``kubernetes.rollout_undo``, ``kubernetes.delete_pod``), ``remediations.kubernetes.scale``,
``remediations.kubernetes.memory`` (``kubernetes.set_memory_limit``) and
``remediations.kubernetes.diagnose``. They share ``remediations.kubernetes.api``: the
client per target (in-cluster or a kubeconfig context), the calls in worker threads, the
API server's errors as Temporary or Permanent, the params every action has (namespace,
Deployment) and the ``KubernetesAction`` base with the target's namespace allow-list. A
new Kubernetes action is one more module on ``api``. The ``kubernetes`` SDK is imported
on first use.
"""
