"""``python -m controller`` is the ``hotconf`` command."""

from controller.cli import main

main(prog_name="hotconf")
