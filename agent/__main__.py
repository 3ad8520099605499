"""``python -m agent``: the same as the ``hotconf-agent`` command."""

from agent.cli import main

main()
