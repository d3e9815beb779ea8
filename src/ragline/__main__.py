"""``python -m ragline`` runs the command line."""

from ragline.cli import main

main()
