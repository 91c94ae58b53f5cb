"""The Kubernetes actions: the shared API part, rollouts, scale, memory, diagnose."""
