"""The Argo CD actions: ``argocd.rollback`` (GitOps rollback through Argo CD's API), ``argocd.diagnose``.

Run against a ``kind: argocd`` target (``remediations.targets.ArgoCdTarget``: the API
server's URL, a token as a secret reference, the applications the actions may touch).
``remediations.argocd.api`` holds the HTTP calls and the mapping of Argo CD's answers to
Temporary or Permanent errors; ``remediations.argocd.rollback`` and
``remediations.argocd.diagnose`` are the actions. A workload
Argo CD tracks is not rolled back by ``kubernetes.rollout_undo`` (its self-heal would undo
it): this is the way.
"""
