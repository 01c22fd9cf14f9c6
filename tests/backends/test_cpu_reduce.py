"""Sums in lanes (gradient.backends.cpu_reduce): the float32 dot product that keeps its lanes
in registers gives the bits of the lane loop it replaces, whatever the length (whole lanes, a
tail, none), and keeps the sign of a zero sum."""

import numpy as np
import pytest

from gradient.backends.cpu_compile import compile_kernel
from gradient.backends.cpu_reduce import LANES, _lane_dot_loop, lane_dot


@compile_kernel
def _in_registers(a, b):
    return lane_dot(a, b, np.empty(LANES, np.float32))


@compile_kernel
def _in_memory(a, b):
    return _lane_dot_loop(a, b, np.empty(LANES, np.float32))


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 576, 1000])
def test_the_register_dot_gives_the_lane_loops_bits(n):
    rng = np.random.default_rng(n)
    a = (rng.standard_normal(n) * 10.0 ** rng.integers(-3, 4, n)).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    ours, loop = np.float32(_in_registers(a, b)), np.float32(_in_memory(a, b))
    assert ours.view(np.int32) == loop.view(np.int32)
    assert ours == pytest.approx(float(a.astype(np.float64) @ b.astype(np.float64)), rel=1e-4,
                                 abs=1e-3)


def test_a_sum_of_negative_zeros_stays_negative():
    a = np.full(130, -0.0, np.float32)
    b = np.ones(130, np.float32)
    assert np.signbit(_in_registers(a, b)) and np.signbit(_in_memory(a, b))
