"""NumPy's ufunc loops called from compiled kernels (gradient.backends.numpy_loops): the
ufunc's bits, from compiled code that never takes the interpreter lock, and the same bits from
the callback a name is bound to where NumPy's own loop cannot be used."""

import numba
import numpy as np
import pytest

from gradient.backends import numpy_loops
from gradient.backends.cpu_compile import compile_kernel
from gradient.backends.numpy_loops import exp_in_place, tanh_in_place


@compile_kernel
def _both(x, y):
    exp_in_place(x)
    tanh_in_place(y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 9021])
def test_compiled_calls_give_the_ufuncs_bits(dtype, n):
    sample = numpy_loops._sample(dtype)[:n]
    x, y = sample.copy(), sample.copy()
    _both(x, y)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(x.view(np.uint8), np.exp(sample).view(np.uint8))
        np.testing.assert_array_equal(y.view(np.uint8), np.tanh(sample).view(np.uint8))


def test_numpys_own_loops_are_bound_here():
    """On this NumPy (2.x, a CPython with its interpreter lock) every name is bound to NumPy's
    own loop; a fallback here would mean the struct or the loops changed."""
    assert numpy_loops.direct and all(numpy_loops.direct.values())


def test_a_compiled_call_holds_no_interpreter_lock():
    """The kernel calls the bound name and nothing of Python's (objmode would ensure the lock
    with PyGILState_Ensure)."""
    fresh = numba.njit(_both.py_func, nogil=True)
    x = np.ones(4, np.float32)
    fresh(x, x.copy())
    ir = fresh.inspect_llvm(fresh.signatures[0])
    assert "gradient_numpy_exp_float32" in ir and "gradient_numpy_tanh_float32" in ir
    assert "PyGILState_Ensure" not in ir


@pytest.mark.parametrize("ufunc", [np.exp, np.tanh])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_callback_with_the_lock_gives_the_same_bits(ufunc, dtype):
    loop = numpy_loops._with_the_lock(ufunc, np.dtype(dtype))
    assert numpy_loops._calls_as(loop, ufunc, np.dtype(dtype))


def test_a_struct_that_is_not_the_ufuncs_is_refused():
    """A ufunc whose head does not read as one in, one out (np.add: two in) gives no loop, and
    neither does a dtype the ufunc has no loop of its own for."""
    assert numpy_loops._numpys_loop(np.add, np.dtype(np.float32)) is None
    assert numpy_loops._numpys_loop(np.exp, np.dtype(np.int32)) is None
