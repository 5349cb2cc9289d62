"""AgeGuard models."""
