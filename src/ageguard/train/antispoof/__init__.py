"""Training of AgeGuard's passive liveness model (needs the ``[train]`` extra: torch)."""
