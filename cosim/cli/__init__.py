"""The ``rram-cosim`` command line: entry point, run folders and one module per command."""
