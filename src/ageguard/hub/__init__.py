"""AgeGuard hub."""
