"""One module per command: ``COMMAND``, ``HELP``, ``CONFIG``, ``run``, its report and plots."""
