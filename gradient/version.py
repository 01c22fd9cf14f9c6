"""gradient's version, low enough in the package for any layer to read."""

__version__ = "0.1.0"
