"""``python -m gradient ...`` runs the ``gradient`` command (see :mod:`gradient.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
