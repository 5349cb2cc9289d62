"""AgeGuard eval."""
