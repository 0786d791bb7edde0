"""ngspice: deck runs, raw files, the cached pool, deck checks, the SPICE backend and forming."""
