"""``python -m lutarterial`` is the same as the ``lutarterial`` command."""

from lutarterial.cli.main import run

run()
