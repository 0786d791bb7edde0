"""Numerical models (numpy; scipy where a solver needs it). Imports no other rram_cosim
subpackage."""
