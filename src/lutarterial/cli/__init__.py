"""Command-line interface; see :mod:`lutarterial.cli.main`."""
