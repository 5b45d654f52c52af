"""chainrule's command line: ``chainrule COMMAND ...`` (see :mod:`chainrule.cli.main`)."""
