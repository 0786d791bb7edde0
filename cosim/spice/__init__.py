"""spice."""
