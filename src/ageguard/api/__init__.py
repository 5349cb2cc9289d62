"""AgeGuard api."""
