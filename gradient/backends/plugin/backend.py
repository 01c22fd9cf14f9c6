"""The client backend of a plugin device: every primitive of the backend contract becomes a
request to the plugin's process (``docs/plugin-protocol.md``).

The client names each result with a handle it chooses and works out the result's shape, dtype
and strides itself (:mod:`.arrays`' shadows; dtypes from the NumPy backend's own rules, run
once on one-element arrays and remembered), so a request is written and the client goes on:
only reading data back, ``synchronize`` and the few primitives whose result the data decides
(``nonzero``, indexing with arrays, the LAPACK decompositions, ``einsum``) wait for the
plugin. Errors the plugin reports raise there, as :class:`~gradient.errors.PluginError` (also
an instance of the built-in class the host would have raised: ``IndexError``,
``ZeroDivisionError``, ...).

A primitive the plugin does not offer runs on the host: its inputs are downloaded, the NumPy
backend computes, the results are uploaded (in-place primitives write back through
``setitem``); a warning names it the first time.

Example::

    >>> b = get_backend("plugin:reference")
    >>> x = b.from_numpy(np.ones((2, 3), np.float32))
    >>> b.to_numpy(b.unary("exp", x))
"""

from __future__ import annotations

import builtins
import itertools
import warnings

import numpy as np

from ...errors import ArgumentValueError, PluginError
from ..base import Backend
from ..host_memory import landing_array
from ..numpy_backend import ArrayBackend
from . import kernels
from .arrays import PluginArray, contiguous_shadow, shadow_of
from .frames import encode_float
from .discovery import environment
from .session import Session
from .shared import THRESHOLD, Segment
from .wire import IN_PLACE, SIGNATURES, VIEWS, dtype_name, encode_index, numpy_dtype

__all__ = ["PluginBackend"]

#: what a plugin must offer besides from_bytes/to_bytes: views share storage, and the host
#: fallback of an in-place primitive writes its result back with setitem
REQUIRED = VIEWS + ("setitem",)
# Frees are sent once this many are queued, or once they hold this much memory: soon, so
# that the plugin reuses memory while it is still in the caches (64 and 64 MiB made the
# plugin's elementwise ops up to 2x slower, char_gpt's step 73-77 ms against 68-70)
_FREE_BATCH = 64
_FREE_BYTES = 1 << 20


class PluginBackend(Backend):
    """The backend of device ``plugin:NAME:INDEX``, over the plugin started by ``argv``. The
    process starts on first use and again after it failed."""

    def __init__(self, plugin: str, argv: list[str], index: int = 0):
        self.name = f"plugin:{plugin}:{index}"
        self.plugin, self.index, self._argv = plugin, index, list(argv)
        self.session: Session | None = None
        self._host = ArrayBackend(np, "cpu")
        self._offered: dict = {}   # primitive -> None (any input) or (dtypes, names) it takes
        self._handles = itertools.count(1)
        self._frees: list = []
        self._freed_bytes = 0
        self._warned: set = set()
        self._dtypes: dict = {}
        self._segment = Segment()     # shared memory for large transfers

    # ------------------------------------------------------------------ the session
    def _live(self) -> Session:
        session = self.session
        if session is None or session.dead is not None:
            session = self.session = Session(self.plugin, self._argv, {
                **environment(self.plugin), "GRADIENT_PLUGIN_DEVICE": str(self.index)})
            offered = _capabilities(session.hello.get("primitives", ()))
            missing = [p for p in REQUIRED if offered.get(p, False) is not None]
            if missing:
                session.close()
                raise PluginError(f"plugin {self.plugin!r} does not offer {', '.join(missing)} "
                                  "for every dtype, which every plugin must "
                                  "(docs/plugin-protocol.md, section 7)")
            self._offered = offered
            kernels.offer(self, session.hello.get("kernels", ()))
            self._handles = itertools.count(1)
            self._frees = []
            self._segment.close()
        return session

    def hello(self) -> dict:
        """The plugin's handshake reply (its name, devices, dtypes, primitives)."""
        return self._live().hello

    def close(self) -> None:
        """Stop the plugin's process; tensors on the device are lost."""
        if self.session is not None:
            self.session.close()
        self._segment.close()

    def _release(self, session, handle: int, nbytes: int) -> None:
        if session is self.session and session.dead is None:
            self._frees.append(handle)   # sent with the next request once enough are queued
            self._freed_bytes += nbytes

    def _frees_due(self, session) -> None:
        """Send the queued frees once there are enough of them (by count or by bytes): before
        any request that makes an array, so that memory freed here is free in the plugin
        before it holds more."""
        if len(self._frees) >= _FREE_BATCH or self._freed_bytes >= _FREE_BYTES:
            self._flush_frees(session)

    def _flush_frees(self, session) -> None:
        if self._frees:
            handles, self._frees, self._freed_bytes = self._frees, [], 0
            session.send({"op": "free", "handles": handles})

    def _handle(self, a) -> int:
        if type(a) is not PluginArray:
            # a NumPy value among the arguments: uploaded first (its handle is freed after
            # the request that reads it, with the next batch of frees)
            a = self.from_numpy(np.asarray(a))
        if a.session is not self.session or a.session.dead is not None:
            raise PluginError(f"a tensor on {self.name} was lost when its plugin stopped "
                              f"({a.session.dead}); make it again")
        return a.handle

    # ------------------------------------------------------------------ requests
    def _send(self, op: str, args: tuple, shadows) -> tuple:
        """Send primitive ``op`` with ``args`` (in the signature's order); its results will
        have ``shadows``. Returns the results' proxies."""
        session = self._live()
        return self._write(session, self._header(op, args), shadows)

    def _write(self, session, header: dict, shadows) -> tuple:
        """Send a request that makes arrays with ``shadows``, without waiting: their proxies."""
        self._frees_due(session)
        outs = [next(self._handles) for _ in shadows]
        header["out"] = outs
        session.send(header)
        return tuple(PluginArray(self, h, s) for h, s in zip(outs, shadows))

    @property
    def kernel_kind(self) -> str:
        """The kind the kernel registry files this plugin's fused kernels under (see
        :mod:`.kernels`): each plugin offers its own."""
        return f"plugin:{self.plugin}"

    def kernel(self, name: str, args: tuple, results, kwargs=None) -> tuple:
        """The plugin's fused kernel ``name`` (one it listed, see :mod:`.kernels`) on ``args``,
        in the declaration's order, and keyword arguments ``kwargs``; ``results`` their
        (shape, dtype) pairs (none for a kernel that writes in place)."""
        session = self._live()
        header = {"op": "kernel", "name": name, "args": [self._kernel_value(a) for a in args]}
        if kwargs:
            header["kwargs"] = {k: self._kernel_value(v) for k, v in kwargs.items()}
        return self._write(session, header,
                           [contiguous_shadow(shape, dtype) for shape, dtype in results])

    def _kernel_value(self, a):
        """A kernel argument as section 5.1 writes it."""
        if isinstance(a, (PluginArray, np.ndarray)):
            return {"array": self._handle(a)}
        if isinstance(a, (bool, np.bool_)):
            return bool(a)
        if isinstance(a, (float, np.floating)):
            return encode_float(float(a))
        return int(a) if isinstance(a, np.integer) else a

    def _header(self, op, args) -> dict:
        header = {"op": op}
        for (name, kind), value in zip(SIGNATURES[op], args):
            if kind in ("array", "gen"):
                value = self._handle(value)
            elif kind == "arrays":
                value = [self._handle(a) for a in value]
            elif kind == "dtype":
                value = dtype_name(value.numpy)
            elif kind == "index":
                value = encode_index(value, self._handle)
            elif kind == "float":
                value = encode_float(float(value) if isinstance(value, np.floating) else
                                     int(value) if isinstance(value, np.integer) else value)
            else:
                value = _plain(value)
            header[name] = value
        return header

    def _call(self, op: str, args: tuple, shadows):
        """``op`` on the plugin, or on the host when the plugin does not offer it; one result
        or a tuple, as the contract's method returns."""
        if not self._offers(op, args):
            return self._on_host(op, args)
        results = self._send(op, args, shadows)
        return results[0] if len(results) == 1 else results

    def _offers(self, op: str, args: tuple = ()) -> bool:
        """Whether the plugin runs ``op`` on these arguments: it lists the primitive, for the
        dtypes of its arrays (and a dtype argument) and the op name (unary, binary, reduce)."""
        self._live()
        entry = self._offered.get(op, False)
        if entry is None or entry is False:
            return entry is None
        dtypes, names = entry
        if names is not None and args and args[0] not in names:
            return False
        if dtypes is not None:
            for (_, kind), value in zip(SIGNATURES[op], args):
                if kind == "array" and dtype_name(value.dtype) not in dtypes:
                    return False
                if kind == "arrays" and any(dtype_name(v.dtype) not in dtypes for v in value):
                    return False
                if kind == "dtype" and dtype_name(value.numpy) not in dtypes:
                    return False
        return True

    def _ask(self, op: str, args: tuple, n_results: int = 1):
        """``op``, whose ``n_results`` results' metadata the plugin replies with: the data
        decides them (nonzero, a boolean mask, einsum, the decompositions)."""
        if not self._offers(op, args):
            return self._on_host(op, args)
        session = self._live()
        self._flush_frees(session)
        header = self._header(op, args)
        header["reply"] = True
        outs = [next(self._handles) for _ in range(n_results)]
        header["out"] = outs
        reply, _ = session.request(header)
        self._raise_if_failed(reply)
        metas = reply["outs"]
        results = tuple(PluginArray(self, h, shadow_of(numpy_dtype(m["dtype"]), m["shape"],
                                                       m["strides"]))
                        for h, m in zip(outs, metas))
        return results[0] if len(results) == 1 else results

    def _raise_if_failed(self, reply: dict) -> None:
        if reply.get("ok", False):
            return
        e = reply.get("error", {})
        args = ", ".join(f"{d} {tuple(s)}" for s, d in zip(e.get("shapes", ()),
                                                           e.get("dtypes", ())))
        message = (f"plugin {self.plugin!r}: {e.get('op', '?')}({args}) failed (request "
                   f"{e.get('request', '?')}): {e.get('message', 'no message')}")
        builtin = getattr(builtins, str(e.get("type", "")), None)
        if isinstance(builtin, type) and issubclass(builtin, Exception) and \
                builtin.__module__ == "builtins" and builtin not in (Exception, RuntimeError):
            raise type(f"Plugin{builtin.__name__}", (PluginError, builtin), {})(message)
        raise PluginError(message)

    def synchronize(self) -> None:
        session = self._live()
        self._flush_frees(session)
        reply, _ = session.request({"op": "sync"})
        self._raise_if_failed(reply)

    # ------------------------------------------------------------------ the host fallback
    def _on_host(self, op: str, args: tuple):
        if op not in self._warned:
            self._warned.add(op)
            warnings.warn(f"the plugin {self.plugin!r} does not implement {op!r}: it runs on the "
                          "host (the inputs are copied there and the result back), which is "
                          "slow. This warning is shown once.", stacklevel=4)
        host_args = [self._host_value(a) for a in args]
        if op == "einsum":   # the method takes the operands one by one
            host_args = [host_args[0], *host_args[1]]
        result = getattr(self._host, op)(*host_args)
        if op in IN_PLACE:   # the written array (the first array argument) gets the result
            written = next(i for i, (_, kind) in enumerate(SIGNATURES[op]) if kind == "array")
            self.setitem(args[written], (Ellipsis,), self.from_numpy(host_args[written]))
            return args[written] if op == "binary_" else None
        if type(result) is tuple:
            return tuple(self._upload(r) for r in result)
        return self._upload(result)

    def _host_value(self, a):
        if type(a) is PluginArray:
            return self.to_numpy(a).copy()
        if type(a) in (list, tuple):
            return type(a)(self._host_value(x) for x in a)
        return a

    def _upload(self, r):
        return r if isinstance(r, np.random.Generator) else self.from_numpy(np.asarray(r))

    # ------------------------------------------------------------------ dtypes
    def _result_dtype(self, key, compute):
        """The dtype of a result, from the host backend's rules on one-element arrays."""
        dtype = self._dtypes.get(key)
        if dtype is None:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dtype = self._dtypes[key] = np.asarray(compute()).dtype
        return dtype

    # ------------------------------------------------------------------ creation and transfer
    def empty(self, shape, dtype):
        return self._call("empty", (shape, dtype), [contiguous_shadow(shape, dtype.numpy)])

    def full(self, shape, value, dtype):
        return self._call("full", (shape, value, dtype), [contiguous_shadow(shape, dtype.numpy)])

    def arange(self, start, stop, step, dtype):
        n = max(0, int(np.ceil((stop - start) / step)))
        return self._call("arange", (start, stop, step, dtype), [contiguous_shadow((n,), dtype.numpy)])

    def from_numpy(self, array):
        array = np.asarray(array, order="C")   # (ascontiguousarray makes 0-d arrays 1-d)
        name = dtype_name(array.dtype)
        numpy_dtype(name)   # one the protocol knows (ValueError otherwise)
        session = self._live()
        self._frees_due(session)
        h = next(self._handles)
        header = {"op": "from_bytes", "shape": list(array.shape), "dtype": name, "out": [h]}
        if self._shares(array.nbytes):   # through the segment, which is free once answered
            header["shm"], header["reply"] = self._segment.write(array), True
            reply, _ = session.request(header)
            self._raise_if_failed(reply)
        else:
            session.send(header, memoryview(array).cast("B") if array.size else b"")
        return PluginArray(self, h, contiguous_shadow(array.shape, array.dtype))

    def _shares(self, nbytes: int) -> bool:
        """Whether a transfer of ``nbytes`` goes through shared memory."""
        return nbytes >= THRESHOLD and bool(self.session.hello.get("shared_memory"))

    def to_numpy(self, x):
        if type(x) is not PluginArray:
            return np.asarray(x)
        session = self._live()
        self._flush_frees(session)
        header = {"op": "to_bytes", "x": self._handle(x)}
        shared = self._shares(x.nbytes)
        if shared:
            buffer, header["shm"] = self._segment.view(x.nbytes)
        reply, payload = session.request(header)
        self._raise_if_failed(reply)
        if shared:   # copied out: the segment serves the next transfer
            out = landing_array(x.shape, x.dtype)
            out.reshape(-1)[...] = np.frombuffer(buffer, x.dtype)
            return out
        return np.frombuffer(payload, x.dtype).reshape(x.shape)

    # ------------------------------------------------------------------ random numbers
    def generator(self, seed):
        if not self._offers("generator"):
            return self._host.generator(seed)
        return self._call("generator", (int(seed),), [contiguous_shadow((), np.uint8)])

    def _random(self, op, args, shape, dtype):
        if type(args[0]) is not PluginArray:      # a host generator (see generator)
            return self._upload(getattr(self._host, op)(*args))
        return self._call(op, args, [contiguous_shadow(shape, dtype.numpy)])

    def uniform(self, gen, shape, low, high, dtype):
        return self._random("uniform", (gen, shape, low, high, dtype), shape, dtype)

    def normal(self, gen, shape, mean, std, dtype):
        return self._random("normal", (gen, shape, mean, std, dtype), shape, dtype)

    def randint(self, gen, low, high, shape, dtype):
        return self._random("randint", (gen, low, high, shape, dtype), shape, dtype)

    def permutation(self, gen, n, dtype):
        return self._random("permutation", (gen, n, dtype), (n,), dtype)

    # ------------------------------------------------------------------ elementwise
    def unary(self, op, x):
        dtype = self._result_dtype(("unary", op, x.dtype),
                                   lambda: self._host.unary(op, np.ones(1, x.dtype)))
        return self._call("unary", (op, x), [contiguous_shadow(x.shape, dtype)])

    def binary_(self, op, a, b):
        self._call("binary_", (op, a, b), [])
        return a

    def binary(self, op, a, b):
        dtype = self._result_dtype(("binary", op, a.dtype, b.dtype), lambda: self._host.binary(
            op, np.ones(1, a.dtype), np.ones(1, b.dtype)))
        shape = np.broadcast_shapes(a.shape, b.shape)
        return self._call("binary", (op, a, b), [contiguous_shadow(shape, dtype)])

    def where(self, cond, a, b):
        dtype = self._result_dtype(("where", a.dtype, b.dtype), lambda: self._host.where(
            np.ones(1, bool), np.ones(1, a.dtype), np.ones(1, b.dtype)))
        shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
        return self._call("where", (cond, a, b), [contiguous_shadow(shape, dtype)])

    def cast(self, x, dtype):
        if x.dtype == dtype.numpy:
            return x
        return self._call("cast", (x, dtype), [contiguous_shadow(x.shape, dtype.numpy)])

    # ------------------------------------------------------------------ reductions and scans
    def reduce(self, op, x, axis, keepdims):
        dtype = self._result_dtype(("reduce", op, x.dtype), lambda: self._host.reduce(
            op, np.ones(1, x.dtype), 0, False))
        shape = _reduced_shape(x.shape, axis, keepdims)
        return self._call("reduce", (op, x, axis, keepdims), [contiguous_shadow(shape, dtype)])

    def cumsum(self, x, axis):
        dtype = self._result_dtype(("cumsum", x.dtype),
                                   lambda: self._host.cumsum(np.ones(1, x.dtype), 0))
        return self._call("cumsum", (x, axis), [contiguous_shadow(x.shape, dtype)])

    # ------------------------------------------------------------------ linear algebra
    def matmul(self, a, b):
        dtype = self._result_dtype(("matmul", a.dtype, b.dtype), lambda: self._host.matmul(
            np.ones((1, 1), a.dtype), np.ones((1, 1), b.dtype)))
        return self._call("matmul", (a, b), [contiguous_shadow(_matmul_shape(a.shape, b.shape),
                                                               dtype)])

    def einsum(self, equation, *operands):
        return self._ask("einsum", (equation, list(operands)))

    def solve(self, a, b):
        return self._ask("solve", (a, b), 2)

    def solve_triangular(self, a, b, upper, unitriangular):
        return self._ask("solve_triangular", (a, b, upper, unitriangular))

    def cholesky(self, a):
        return self._ask("cholesky", (a,), 2)

    def det(self, a):
        return self._ask("det", (a,))

    def slogdet(self, a):
        return self._ask("slogdet", (a,), 2)

    def qr(self, a, complete):
        return self._ask("qr", (a, complete), 2)

    def eigh(self, a, upper):
        return self._ask("eigh", (a, upper), 2)

    def svd(self, a, full_matrices):
        return self._ask("svd", (a, full_matrices), 3)

    def matrix_exp(self, a):
        return self._ask("matrix_exp", (a,))

    # ------------------------------------------------------------------ views
    def reshape(self, x, shape):
        try:
            shadow, copied = np.reshape(x.shadow, shape, copy=False), False
        except ValueError:   # NumPy would copy: so does the plugin
            shadow, copied = contiguous_shadow(_resolved_shape(x.size, shape), x.dtype), True
        return self._view("reshape", (x, tuple(shape)), shadow, copied)

    def permute(self, x, axes):
        return self._view("permute", (x, tuple(axes)), x.shadow.transpose(axes))

    def broadcast_to(self, x, shape):
        return self._view("broadcast_to", (x, tuple(shape)), np.broadcast_to(x.shadow, shape))

    def windows(self, x, axes, sizes, steps, dilations):
        shadow = self._host.windows(x.shadow, axes, sizes, steps, dilations)
        return self._view("windows", (x, axes, sizes, steps, dilations), shadow)

    def _view(self, op, args, shadow, copied=False):
        view = self._send(op, args, [shadow])[0]
        if not copied:
            x = args[0]
            view.base = x if x.base is None else x.base
        return view

    # ------------------------------------------------------------------ copies
    def copy(self, x):
        return self._call("copy", (x,), [contiguous_shadow(x.shape, x.dtype)])

    def contiguous(self, x):
        if x.flags.c_contiguous:
            return x
        return self._call("contiguous", (x,), [contiguous_shadow(x.shape, x.dtype)])

    def concatenate(self, xs, axis):
        xs = list(xs)
        dtype = self._result_dtype(("concatenate",) + tuple(x.dtype for x in xs),
                                   lambda: np.concatenate([np.ones(1, x.dtype) for x in xs]))
        shape = list(xs[0].shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        return self._call("concatenate", (xs, axis), [contiguous_shadow(shape, dtype)])

    def pad(self, x, widths, mode, value):
        shape = tuple(n + int(lo) + int(hi) for n, (lo, hi) in zip(x.shape, widths))
        return self._call("pad", (x, [list(map(int, w)) for w in widths], mode, value),
                          [contiguous_shadow(shape, x.dtype)])

    # ------------------------------------------------------------------ indexing
    def getitem(self, x, index):
        items = index if type(index) is tuple else (index,)
        if all(i is None or i is Ellipsis or type(i) in (int, slice) or isinstance(i, np.integer)
               for i in items):
            # a view (ints included: a 0-d view, as the plugin makes it)
            full = items if Ellipsis in items else items + (Ellipsis,)
            return self._view("getitem", (x, full), x.shadow[full])
        if not self._offers("getitem_arrays"):
            return self._on_host("getitem", (x, index))
        shape = _gathered_shape(x.shape, items)
        if shape is None:   # a boolean mask: the data decides the shape
            return self._ask("getitem", (x, index))
        return self._send("getitem", (x, index), [contiguous_shadow(shape, x.dtype)])[0]

    def setitem(self, x, index, value):
        if type(value) is not PluginArray:
            value = self.from_numpy(np.asarray(value, dtype=x.dtype))
        items = index if type(index) is tuple else (index,)
        if not all(i is None or i is Ellipsis or type(i) in (int, slice)
                   or isinstance(i, np.integer) for i in items) and \
                not self._offers("setitem_arrays"):
            self._on_host("setitem", (x, index, value))
            return
        self._call("setitem", (x, index, value), [])

    def index_add(self, x, index, value):
        self._call("index_add", (x, index, value), [])

    def take_along_axis(self, x, index, axis):
        axis = axis % x.ndim
        shape = np.broadcast_shapes(tuple(1 if d == axis else n for d, n in enumerate(x.shape)),
                                    index.shape)
        return self._call("take_along_axis", (x, index, axis), [contiguous_shadow(shape, x.dtype)])

    def scatter_add(self, x, axis, index, src):
        self._call("scatter_add", (x, axis, index, src), [])

    def put_along_axis(self, x, index, values, axis):
        self._call("put_along_axis", (x, index, values, axis), [])

    def sort(self, x, axis, descending, stable):
        return self._call("sort", (x, axis, descending, stable),
                          [contiguous_shadow(x.shape, x.dtype), contiguous_shadow(x.shape, np.int64)])

    def nonzero(self, x):
        return self._ask("nonzero", (x,))

    def searchsorted(self, sorted_rows, values, right=True):
        return self._call("searchsorted", (sorted_rows, values, right),
                          [contiguous_shadow(values.shape, np.int64)])


def _capabilities(entries) -> dict:
    """The handshake's ``primitives``: names (for every dtype), or objects naming a primitive
    with the ``dtypes`` and the op ``names`` it takes."""
    offered = {}
    for entry in entries:
        if type(entry) is str:
            offered[entry] = None
        elif type(entry) is dict and type(entry.get("name")) is str:
            dtypes, names = entry.get("dtypes"), entry.get("names")
            offered[entry["name"]] = (None if dtypes is None else frozenset(dtypes),
                                      None if names is None else frozenset(names))
    return offered


def _plain(value):
    """A JSON value from Python and NumPy scalars, tuples and lists."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return encode_float(float(value))
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _reduced_shape(shape, axis, keepdims) -> tuple:
    ndim = len(shape)
    axes = range(ndim) if axis is None else [a % ndim if ndim else a for a in
                                             (axis if isinstance(axis, (tuple, list)) else (axis,))]
    axes = set(axes)
    if keepdims:
        return tuple(1 if d in axes else n for d, n in enumerate(shape))
    return tuple(n for d, n in enumerate(shape) if d not in axes)


def _matmul_shape(a, b) -> tuple:
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    if a2[-1] != b2[-2]:
        raise ArgumentValueError(f"matmul: shapes {tuple(a)} and {tuple(b)} do not align: "
                                 f"{a2[-1]} != {b2[-2]}")
    batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _gathered_shape(shape, items) -> tuple | None:
    """The shape of ``x[items]`` for an index with integer arrays (NumPy's advanced indexing
    rules), or None when a boolean array makes it depend on the data."""
    arrays = [i for i in items if not (i is None or i is Ellipsis or type(i) is slice
                                       or isinstance(i, (int, np.integer)))]
    if any(np.dtype(a.dtype).kind == "b" for a in arrays):
        return None
    consumed = sum(1 for i in items if i is not None and i is not Ellipsis)
    ellipsis = [k for k, i in enumerate(items) if i is Ellipsis]
    if ellipsis:
        at = ellipsis[0]
        items = items[:at] + (slice(None),) * (len(shape) - consumed) + items[at + 1:]
    else:
        items = items + (slice(None),) * (len(shape) - consumed)
    advanced = np.broadcast_shapes(*[tuple(a.shape) for a in arrays])
    out, where, dim = [], [], 0
    for position, item in enumerate(items):
        if item is None:
            out.append(1)
        elif type(item) is slice:
            out.append(len(range(*item.indices(shape[dim]))))
            dim += 1
        else:   # an integer or an integer array: an advanced index
            where.append((position, len(out)))
            dim += 1
    positions = [p for p, _ in where]
    adjacent = positions == list(range(positions[0], positions[0] + len(positions)))
    at = where[0][1] if adjacent else 0
    return tuple(out[:at]) + tuple(advanced) + tuple(out[at:])


def _resolved_shape(size: int, shape) -> tuple:
    shape = tuple(int(n) for n in shape)
    if -1 in shape:
        known = 1
        for n in shape:
            if n != -1:
                known *= n
        shape = tuple(size // known if n == -1 and known else (0 if n == -1 else n) for n in shape)
    return shape
