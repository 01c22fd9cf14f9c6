"""``gradient.random``: the default random generator's functions under ``torch.random``'s names,
and :func:`fork_rng`, which gives a block of code its own random numbers.

gradient has one default generator for every device (see :mod:`gradient.ops.creation`), so
these are the functions ``gradient.manual_seed`` and its neighbours already are.

Example::

    >>> gradient.random.manual_seed(0)
    >>> with gradient.random.fork_rng():
    ...     noise = gradient.randn(3)        # draws that do not move the generator outside
"""

from __future__ import annotations

import contextlib

from .ops.creation import (default_generator, get_rng_state, initial_seed, manual_seed, seed,
                           set_rng_state)

__all__ = ["manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
           "fork_rng", "default_generator"]


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, device_type=None):
    """Inside the block, random numbers are drawn as usual; after it, the default generator is
    where it was before (for every device: gradient's generator is one). ``enabled=False``
    leaves it alone. ``devices`` and ``device_type`` are taken for PyTorch's signature."""
    if not enabled:
        yield
        return
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
