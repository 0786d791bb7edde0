"""Runners, backends, calibration, data, the end-to-end pipeline and the CLI."""
