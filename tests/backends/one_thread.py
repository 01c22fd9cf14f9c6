"""A kernel's call on one of numba's threads, for tests that its result does not depend on the
threads (then the thread count is set back)."""

from __future__ import annotations

import numba


def on_one_thread(f, *args):
    """``f(*args)`` with numba's threads set to 1 for the call."""
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        return f(*args)
    finally:
        numba.set_num_threads(before)
