"""Numerical models, numpy only. Imports no other rram_cosim subpackage."""
