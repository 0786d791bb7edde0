"""The 1T1R cell: forming (breakdown) model, conductance maps, level-1 MOSFET, parameter files."""
