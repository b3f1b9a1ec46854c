"""``python -m edirecon``: the same command as the installed ``edirecon`` script."""

from edirecon.cli import app

app(prog_name="edirecon")
