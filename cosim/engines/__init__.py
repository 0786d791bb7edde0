"""Engines beside ngspice: the nodal circuit solver, surrogate calibration, backends by name."""
