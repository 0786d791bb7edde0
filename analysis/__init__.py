"""Energy, metrics, tables, plots and reports. Imports models only."""
