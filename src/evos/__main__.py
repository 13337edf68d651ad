"""``python -m evos`` is the ``evos`` command."""

from evos.cli import main

main()
