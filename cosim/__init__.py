"""ngspice (spice/), the nodal engine and calibration (engines/), data, tasks and the CLI."""
