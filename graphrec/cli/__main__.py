"""``python -m graphrec.cli``: the same as the ``graphrec`` command."""

from graphrec.cli import main

main()
