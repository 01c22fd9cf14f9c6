"""How the int8 product kernels of repacked weights read a weight's codes: its layout, as a
constant of their compilation.

Each layout is a number: nibbles (Q4_0, Q4_1, Q4_K), bytes in 32-value blocks below 128
(Q5_0, Q5_1, Q5_K) or whole (Q8_0), bytes in 16-value blocks (Q2_K, Q3_K), and Q6_K's six
bits (see :mod:`.interleaved` for the layouts themselves). A kernel compiled for one layout
has its trip counts and its unpacking fixed (read at run time, they made 8 rows of a Q8_0
product 1.7x slower, spilling registers), and only the layouts a model uses are compiled
(a cost at compile time: the int8 and float32 products of all ten types compiled in 102 s with
the layout read at run time, 167 s with the int8 ones per layout, 214 s with both; the float32
products, only 4-8% faster per layout, still read it at run time). The
layout travels to a kernel as an empty array whose number of dimensions is the layout's
number, which numba makes a constant: ``layout.ndim``.

Example::

    >>> carrier = LAYOUTS[NIBBLES]        # what a Q4_1 weight's kernels are given
    >>> carrier.ndim == NIBBLES
    True
"""

from __future__ import annotations

import numpy as np

__all__ = ["NIBBLES", "BYTES", "WHOLE_BYTES", "BYTES_16", "SIX_BITS", "LAYOUTS"]

NIBBLES, BYTES, WHOLE_BYTES, BYTES_16, SIX_BITS = 1, 2, 3, 4, 5

#: The array that carries each layout to the kernels.
LAYOUTS = {number: np.empty((0,) * number, np.uint8) for number in range(1, 6)}
