"""AgeGuard train."""
