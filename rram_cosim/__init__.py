"""rram-cosim: SPICE-level co-simulation of RRAM in-memory computing.

Subpackages (see README, "Architecture"):

- :mod:`rram_cosim.models`   numerical models (numpy; scipy where a solver needs it) and the
  shared parameter dataclasses
- :mod:`rram_cosim.netlists` pure functions from parameters to ngspice deck text
- :mod:`rram_cosim.cosim`    ngspice, the nodal engine and calibration, data, the commands'
  tasks and the CLI
- :mod:`rram_cosim.analysis` energy, metrics, tables, plots and reports
"""

__version__ = "0.1.0"
