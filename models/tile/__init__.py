"""tile."""
