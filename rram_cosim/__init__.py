"""rram-cosim: SPICE-level co-simulation of RRAM in-memory computing.

Subpackages (see README, "Architecture"):

- :mod:`rram_cosim.models`   numerical models, numpy only, and the shared parameter dataclasses
- :mod:`rram_cosim.netlists` pure functions from parameters to ngspice deck text
- :mod:`rram_cosim.cosim`    runners, backends, calibration, data, pipeline and CLI
- :mod:`rram_cosim.analysis` energy, metrics, tables, plots and reports
"""

__version__ = "0.1.0"
