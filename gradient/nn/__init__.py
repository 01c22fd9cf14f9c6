"""Neural-network building blocks. ``gradient.nn.functional`` holds the functional ops."""

from . import functional  # noqa: F401
