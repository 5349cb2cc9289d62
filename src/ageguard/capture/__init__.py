"""AgeGuard capture."""
