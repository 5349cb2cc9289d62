"""Image bytes to verdicts. Knows nothing of HTTP or the database."""
