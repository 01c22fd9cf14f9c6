"""The op table's vocabulary: an OpInfo names an op and how to call it; Samples are its inputs.

One callable serves both libraries: ``op(lib, *args, **kwargs)`` is called with ``lib`` set to
``gradient`` and to ``torch``, so a sample runs the same code in both, which is also a check
that gradient's API matches PyTorch's. Where the APIs differ on purpose, ``ref`` gives the torch
version.

Array arguments of a Sample (NumPy arrays) become tensors: floating ones in the dtype under
test (float32 for the parity checks, float64 for gradcheck), integer and bool ones as they are.
Floating arrays require grad unless ``grad`` lists the argument positions that do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class Sample:
    args: tuple
    kwargs: dict = field(default_factory=dict)
    grad: tuple | None = None       # positions of args that require grad (None: every float array)
    name: str = ""                  # shown in the test id, e.g. "broadcast" or "0-d"


@dataclass
class OpInfo:
    name: str
    op: Callable                    # op(lib, *args, **kwargs) with lib = gradient or torch
    samples: Callable               # samples(rng) -> list[Sample]
    ref: Callable | None = None     # torch version, when the call differs
    grad: bool = True               # has a backward to check
    gradgrad: bool = True           # twice differentiable: run gradgradcheck
    atol: float = 1e-5              # float32 parity tolerances
    rtol: float = 1e-4
    gradcheck_atol: float = 1e-5
    gradcheck_rtol: float = 1e-3
    noncontiguous: bool = True      # also run the forward check on non-contiguous inputs
    skip_forward_dtype: bool = False  # don't compare result dtypes


def arr(rng, *shape, low=-2.0, high=2.0):
    """A float64 array of uniform values (the driver casts it to the dtype under test)."""
    return rng.uniform(low, high, size=shape)


def positive(rng, *shape, low=0.5, high=2.0):
    return rng.uniform(low, high, size=shape)


def away_from_zero(rng, *shape, low=0.3, high=2.0):
    """Values whose magnitude stays clear of 0 (for abs, sign, division, kinks)."""
    mags = rng.uniform(low, high, size=shape)
    return mags * rng.choice([-1.0, 1.0], size=shape)


def distinct(rng, *shape):
    """Values all different and spaced apart, so max/sort/median have no ties to break."""
    n = int(np.prod(shape)) if shape else 1
    vals = rng.permutation(n).astype(np.float64) * 0.37 - n * 0.18
    return vals.reshape(shape)


def ints(rng, *shape, low=0, high=5):
    return rng.integers(low, high, size=shape).astype(np.int64)
