"""The SRE tools behind the CLI: sandbox, simulate, rule tests, rule lint, audit views."""
