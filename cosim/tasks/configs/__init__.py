"""The frozen run configurations of the commands, one module per command.

Every field is a command-line option whose help (unit, allowed values) is the field's metadata
(:func:`~.fields.option`); a run saves its configuration as ``config.json`` and replays it from
there. These modules import no pandas, matplotlib, scipy or dask, so ``rram-cosim --help``
builds its parser from them quickly; the task modules beside this package hold the code that
runs them.
"""
