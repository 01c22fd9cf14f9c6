"""NumPy's own ufunc loops, called from compiled kernels without the interpreter lock.

The eager kernels take their transcendentals from NumPy (``np.exp``, ``np.tanh`` over whole
arrays: vectorised, where numba would call the scalar libm functions; see :mod:`.cpu_kernels`),
and a compiled step must give the eager kernels' bits. Inside a compiled step those calls used
to leave nopython mode (``numba.objmode``): a return to the interpreter, which takes its lock,
at each layer's SwiGLU (GPT-2: GELU), where under ``gradient serve`` the event loop's thread
may hold it, formatting and sending a token. SmolLM2's SwiGLU of one row in a compiled decode
step took 7.4 us that way, 1.6 us here (the 30 of a step: 0.22 -> 0.05 ms).

Here the loop NumPy itself runs for ``np.exp`` or ``np.tanh`` of a float32 or float64 array is
taken from the ufunc's table of loops (``functions``, ``data`` and ``types`` of NumPy's public
C struct ``PyUFuncObject``), registered with LLVM under a name of gradient's, and called by that
name from compiled code: the same machine code as ``np.exp``'s, so the same bits, and no
interpreter in between. The name is registered anew in each process (numba's disk cache keeps
the name, not an address). Each loop is checked first: the struct's fields against what the
ufunc says of itself from Python, then a call through ctypes against the ufunc on a sample of
values, special ones included. Where anything differs (another NumPy's layout, a loop that
needs data), the name is bound to a ctypes callback that calls the ufunc with the lock held
instead: the old cost, the same bits.

Example::

    >>> @compile_kernel
    ... def kernel(x):
    ...     exp_in_place(x)       # x: a C-contiguous 1-d float32 or float64 array
"""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

__all__ = ["exp_in_place", "tanh_in_place", "direct"]

#: NumPy's signature of a ufunc's inner loop: ``loop(char **args, npy_intp const *dimensions,
#: npy_intp const *steps, void *data)``.
_LOOP = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                         ctypes.c_void_p)


class _UFuncHead(ctypes.Structure):
    """The first fields of NumPy's ``PyUFuncObject`` (numpy/ufuncobject.h), after the object
    header of a CPython built with its interpreter lock."""
    _fields_ = [("ob_refcnt", ctypes.c_ssize_t), ("ob_type", ctypes.c_void_p),
                ("nin", ctypes.c_int), ("nout", ctypes.c_int), ("nargs", ctypes.c_int),
                ("identity", ctypes.c_int), ("functions", ctypes.POINTER(ctypes.c_void_p)),
                ("data", ctypes.POINTER(ctypes.c_void_p)), ("ntypes", ctypes.c_int),
                ("reserved1", ctypes.c_int), ("name", ctypes.c_char_p),
                ("types", ctypes.POINTER(ctypes.c_char))]


def _numpys_loop(ufunc, dtype) -> int | None:
    """The address of the loop ``ufunc`` runs for one array of ``dtype`` in and one out, where
    the struct reads as expected and the loop needs no data; else None."""
    head = _UFuncHead.from_address(id(ufunc))
    # the integers first: a pointer is followed only once they are the ufunc's own
    if (head.nin, head.nout, head.nargs, head.ntypes) != (1, 1, 2, ufunc.ntypes):
        return None
    if head.name != ufunc.__name__.encode():
        return None
    code = f"{dtype.char}->{dtype.char}"
    for i, signature in enumerate(ufunc.types):   # the first match is the one NumPy picks
        if signature == code:
            numbers = (ord(head.types[2 * i]), ord(head.types[2 * i + 1]))
            if numbers != (dtype.num, dtype.num) or head.data[i] is not None:
                return None
            return head.functions[i]
    return None


def _sample(dtype) -> np.ndarray:
    """Values to check a loop on: every size of argument, the edges of the range, specials,
    and a length that leaves a partial vector."""
    info = np.finfo(dtype)
    edges = [0.0, -0.0, np.inf, -np.inf, np.nan, info.max, -info.max, info.tiny, -info.tiny,
             88.72, 88.73, -87.34, -103.98, -104.0, 709.78, -745.13, 20.0, -20.0, 9.0, 0.5]
    rng = np.random.default_rng(0)
    spread = np.concatenate([rng.standard_normal(4000) * 3, rng.uniform(-120, 100, 4000),
                             rng.uniform(-800, 800, 997)])
    return np.concatenate([edges, spread]).astype(dtype)


def _calls_as(loop, ufunc, dtype) -> bool:
    """Whether ``loop`` (a ctypes function) gives ``ufunc``'s bits on the sample, in place."""
    x = _sample(dtype)
    expected = x.copy()
    with np.errstate(all="ignore"):
        ufunc(expected, out=expected)
        y = x.copy()
        _run(loop, y)
    return np.array_equal(expected.view(np.uint8), y.view(np.uint8))


def _run(loop, x: np.ndarray) -> None:
    """``loop`` over the contiguous array ``x`` in place, as NumPy calls it."""
    args = (ctypes.c_void_p * 2)(x.ctypes.data, x.ctypes.data)
    dims = (ctypes.c_ssize_t * 1)(x.size)
    steps = (ctypes.c_ssize_t * 2)(x.itemsize, x.itemsize)
    loop(ctypes.addressof(args), ctypes.addressof(dims), ctypes.addressof(steps), None)


def _with_the_lock(ufunc, dtype):
    """A loop of NumPy's signature that calls ``ufunc`` (ctypes takes the interpreter lock
    for it): what a name is bound to where NumPy's own loop cannot be."""
    item = np.dtype(dtype).itemsize

    def loop(args, dims, steps, data):
        pointers = ctypes.cast(args, ctypes.POINTER(ctypes.c_void_p))
        n = ctypes.cast(dims, ctypes.POINTER(ctypes.c_ssize_t))[0]
        if n <= 0:
            return
        src, dst = ((ctypes.c_char * (n * item)).from_address(pointers[k]) for k in (0, 1))
        ufunc(np.frombuffer(src, dtype), out=np.frombuffer(dst, dtype))
    return _LOOP(loop)


_kept = []        # the ctypes callbacks bound to names (they must outlive every call)
#: ``{symbol: True}`` for the names bound to NumPy's own loop (no lock), False for a callback
direct: dict = {}


def _bind(ufunc, dtype) -> str:
    """The LLVM name of ``ufunc``'s loop for ``dtype``, bound in this process."""
    dtype = np.dtype(dtype)
    symbol = f"gradient_numpy_{ufunc.__name__}_{dtype.name}"
    address = _numpys_loop(ufunc, dtype)
    if address is not None and _calls_as(_LOOP(address), ufunc, dtype):
        direct[symbol] = True
    else:
        callback = _with_the_lock(ufunc, dtype)
        _kept.append(callback)
        address = ctypes.cast(callback, ctypes.c_void_p).value
        direct[symbol] = False
    llvm.add_symbol(symbol, address)
    return symbol


def _caller(symbol: str):
    """An intrinsic ``f(args, dims, steps)`` (intp arrays: the operands' addresses, the
    length, the strides in bytes) calling the loop bound to ``symbol``, with null data."""
    def call(typingctx, args, dims, steps):
        def codegen(context, builder, signature, values):
            byte_pointer = ir.IntType(8).as_pointer()
            function = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer] * 4), symbol)
            pointers = [builder.bitcast(context.make_array(t)(context, builder, v).data,
                                        byte_pointer)
                        for t, v in zip(signature.args, values)]
            builder.call(function, [*pointers, ir.Constant(byte_pointer, None)])
            return context.get_dummy_value()
        return types.none(args, dims, steps), codegen
    call.__name__ = call.__qualname__ = f"call_{symbol}"
    return intrinsic(call)


_CALLERS = {(ufunc.__name__, np.dtype(dtype).name): _caller(_bind(ufunc, dtype))
            for ufunc in (np.exp, np.tanh) for dtype in (np.float32, np.float64)}


def exp_in_place(x: np.ndarray) -> None:
    """``np.exp(x, out=x)`` for a C-contiguous 1-d float32 or float64 array; in compiled code,
    NumPy's loop called without the interpreter lock (the same bits)."""
    np.exp(x, out=x)


def tanh_in_place(x: np.ndarray) -> None:
    """``np.tanh(x, out=x)``, as :func:`exp_in_place`."""
    np.tanh(x, out=x)


def _in_place(name):
    def typed(x):
        if not (isinstance(x, types.Array) and x.ndim == 1 and x.layout == "C"
                and x.dtype in (types.float32, types.float64)):
            return None
        call = _CALLERS[(name, str(x.dtype))]

        def run(x):
            args = np.empty(2, np.intp)
            args[0] = args[1] = x.ctypes.data
            dims = np.empty(1, np.intp)
            dims[0] = x.size
            steps = np.empty(2, np.intp)
            steps[0] = steps[1] = x.itemsize
            call(args, dims, steps)
        return run
    return typed


overload(exp_in_place, inline="always")(_in_place("exp"))
overload(tanh_in_place, inline="always")(_in_place("tanh"))
