"""``python -m evos`` is the ``evos`` command."""

from evos._entry import main

main()
