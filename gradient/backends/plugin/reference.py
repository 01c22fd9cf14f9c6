"""The reference plugin: gradient's NumPy backend in a process of its own, behind the plugin
protocol (``docs/plugin-protocol.md``). Run it as ``python -m gradient.backends.plugin.reference``;
gradient does that for the device ``"plugin:reference"``.

It tests the protocol, and it is the template for a plugin author: read a frame, run the
request, keep the first error for the next synchronising reply, repeat. Everything device
specific is in :class:`ReferencePlugin`'s use of ``self.backend``: a plugin for another device
keeps the loop and replaces the arrays and the primitives.

It offers a few fused kernels too (:data:`KERNELS`: softmax, the norms, SiLU, a Linear's bias,
the Adam step), written in NumPy. The environment variable ``GRADIENT_REFERENCE_PRIMITIVES``
(a comma-separated list) limits the primitives it offers, and then it offers no kernels, so
that the client's host fallback and the composed ops can be tested on a plugin that
implements only a few.

Example::

    $ python -m gradient.backends.plugin.reference < requests.bin > replies.bin
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from ..host_memory import landing_array
from .frames import FrameReader, decode_float, final_header, spin_seconds, write_frame
from .shared import attached
from .wire import (IN_PLACE, PRIMITIVES, PROTOCOL, SIGNATURES, VIEWS, WireDType, decode_index,
                   dtype_name)
from ...errors import ArgumentValueError

_SYNCHRONISING = ("hello", "sync", "to_bytes")


class ReferencePlugin:
    """The state of one session: arrays by handle, failed handles, the first error not yet
    reported."""

    kernel_dtypes = ("float32", "float64")   # what its fused kernels take

    def __init__(self, backend, primitives, kernels=()):
        self.backend = backend
        self.primitives = primitives
        self.kernels = tuple(kernels)
        self.arrays: dict = {}      # handle -> array (or a random generator)
        self.failed: set = set()
        self.error: dict | None = None

    # -- the loop
    def serve(self, stdin, stdout) -> None:
        requests, blas = _Requests(stdin.fileno()), _BlasThreads()
        spin, replied = spin_seconds(), False
        while True:
            blas.use_all(requests.client_waits)
            # after a reply the client is likely to send again at once; while it streams
            # requests that get none, polling would only take a CPU from it
            frame = requests.read(spin=spin if replied else 0.0)
            if frame is None:
                return
            header, payload = frame
            reply = self.handle(header, payload)
            replied = reply is not None
            if replied:
                requests.client_waits = False
                write_frame(stdout, *reply)
                if header.get("op") == "hello" and not reply[0]["ok"]:
                    return

    def handle(self, request: dict, payload) -> tuple | None:
        """The reply ``(header, payload)`` to one request, or None for a request that gets none."""
        op, rid = request.get("op"), request.get("id")
        if op == "hello":
            return self._hello(request), b""
        if op == "free":
            for h in request.get("handles", ()):
                self.arrays.pop(h, None)
                self.failed.discard(h)
            return None
        reply_wanted = op in _SYNCHRONISING or request.get("reply", False)
        result_payload = b""
        info = {}
        try:
            if op == "sync":
                pass
            elif op == "to_bytes":
                result_payload, info = self._to_bytes(request)
            else:
                info = self._run(op, request, payload)
        except Exception as e:   # noqa: BLE001  (reported to the client, the plugin goes on)
            self._fail(request, e)
        if not reply_wanted:
            return None
        if self.error is not None:
            error, self.error = self.error, None
            return {"id": rid, "ok": False, "error": error}, b""
        return {"id": rid, "ok": True, **info}, result_payload

    def _hello(self, request) -> dict:
        if request.get("protocol") != PROTOCOL:
            return {"id": request.get("id"), "ok": False,
                    "error": {"message": f"the reference plugin speaks protocol {PROTOCOL}"}}
        return {"id": request.get("id"), "ok": True, "protocol": PROTOCOL, "name": "reference",
                "devices": [{"name": "host memory (NumPy, in a separate process)"}],
                "dtypes": ["float32", "float64", "float16", "bfloat16", "int8", "int16",
                           "int32", "int64", "uint8", "bool"],
                "primitives": list(self.primitives),
                "kernels": [{"name": k, "dtypes": list(self.kernel_dtypes)} for k in self.kernels],
                "shared_memory": True, "max_inline_bytes": 1 << 62}

    # -- requests
    def _to_bytes(self, request):
        a = self._host_array(self._array(request["x"]))
        data = np.ascontiguousarray(a).reshape(-1).view(np.uint8)
        if "shm" in request:   # into the client's segment, before the reply
            np.frombuffer(attached(request["shm"]), np.uint8)[:] = data
            return b"", {"shape": list(a.shape), "dtype": dtype_name(a.dtype)}
        return memoryview(data), {"shape": list(a.shape), "dtype": dtype_name(a.dtype)}

    def _run(self, op, request, payload) -> dict:
        if op == "from_bytes":
            dtype = WireDType(request["dtype"]).numpy
            if "shm" in request:   # copied out of the client's segment, which it reuses
                result = landing_array(tuple(request["shape"]), dtype)
                result.reshape(-1)[...] = np.frombuffer(attached(request["shm"]), dtype)
            else:
                result = np.frombuffer(payload, dtype).reshape(request["shape"])
            self._store(request, (result,))
            return {}
        if op == "kernel":
            return self._kernel(request)
        if op not in self.primitives:
            raise NotImplementedError(f"the primitive {op!r} is not offered by this plugin")
        args = [self._argument(kind, request[name]) for name, kind in SIGNATURES[op]]
        results = self._compute(op, args, request)
        if results is None:     # in place
            return {}
        self._store(request, results)
        if not request.get("reply"):
            return {}
        return {"outs": [{"shape": list(r.shape), "dtype": dtype_name(r.dtype),
                          "strides": [s // r.itemsize for s in r.strides]} for r in results]}

    def _kernel(self, request) -> dict:
        """A fused kernel (section 5.1): its array arguments by handle, the rest as they are."""
        name = request["name"]
        if name not in self.kernels:
            raise NotImplementedError(f"the kernel {name!r} is not offered by this plugin")
        args = [self._array(a["array"]) if type(a) is dict else a for a in request["args"]]
        kwargs = {k: decode_float(v) for k, v in request.get("kwargs", {}).items()}
        self._store(request, self._fused(name, args, kwargs))
        return {}

    def _fused(self, name, args, kwargs) -> tuple:
        """The results of fused kernel ``name``, new C-contiguous arrays (none for one that
        writes in place): the part a plugin for another device replaces."""
        return tuple(np.ascontiguousarray(r) for r in KERNELS[name](*args, **kwargs))

    def _host_array(self, array) -> np.ndarray:
        """An array as host memory, for ``to_bytes`` (here it already is)."""
        return array

    def _compute(self, op, args, request) -> tuple | None:
        """The results of primitive ``op`` on decoded ``args`` (None for an in-place one): the
        part a plugin for another device replaces."""
        inputs = [a for a in args if isinstance(a, np.ndarray)]
        if op == "einsum":   # the method takes the operands one by one
            args = [args[0], *args[1]]
        result = getattr(self.backend, op)(*args)
        if op in IN_PLACE:
            return None
        results = result if type(result) is tuple else (result,)
        if op not in VIEWS or _gathers(op, request):
            # new arrays are C-contiguous and share nothing with the inputs
            results = tuple(self._fresh(r, inputs) for r in results)
        return results

    def _argument(self, kind, value):
        if kind == "array" or kind == "gen":
            return self._array(value)
        if kind == "arrays":
            return [self._array(h) for h in value]
        if kind == "dtype":
            return WireDType(value)
        if kind == "index":
            return decode_index(value, self._array)
        if kind == "float":
            return decode_float(value)
        return tuple(value) if type(value) is list and _is_shape(value) \
            else value

    @staticmethod
    def _fresh(result, inputs):
        if not isinstance(result, np.ndarray):
            return result        # a random generator
        if not result.flags.c_contiguous:
            return np.array(result, order="C")
        if result.base is None and all(a is not result and a.base is not result for a in inputs):
            return result        # memory of its own (most results; may_share_memory is slower)
        if any(np.may_share_memory(result, a) for a in inputs):
            return np.array(result, order="C")
        return result

    def _array(self, handle):
        if handle in self.failed:
            raise _FailedInput(handle)
        try:
            return self.arrays[handle]
        except KeyError:
            raise ArgumentValueError(
                f"no array has the handle {handle} (freed, or never made)") from None

    def _store(self, request, results) -> None:
        outs = request.get("out", ())
        if len(outs) != len(results):
            raise ArgumentValueError(
                f"{request.get('op')} makes {len(results)} arrays, the request "
                f"names {len(outs)}")
        for h, r in zip(outs, results):
            self.arrays[h] = r

    def _fail(self, request, exc) -> None:
        op = request.get("op")
        outs = list(request.get("out", ()))
        if op in IN_PLACE:
            outs.append(request.get("x", request.get("a")))
        self.failed.update(h for h in outs if h is not None)
        if self.error is not None or isinstance(exc, _FailedInput):
            return   # the first failure is the one reported; what follows from it is not news
        shapes, dtypes = [], []
        if op == "kernel":      # its arrays are among its args
            op = f"kernel {request.get('name')}"
            handles = [a["array"] for a in request.get("args", ()) if type(a) is dict]
        else:
            handles = []
            for name, kind in SIGNATURES.get(op, ()):
                value = request.get(name)
                handles += value if kind == "arrays" else [value] if kind == "array" else []
        for h in handles:
            a = self.arrays.get(h)
            if hasattr(a, "shape") and hasattr(a, "dtype"):
                shapes.append(list(a.shape))
                dtypes.append(dtype_name(a.dtype))
        self.error = {"request": request.get("id"), "op": op, "type": _builtin_name(exc),
                      "message": str(exc), "shapes": shapes, "dtypes": dtypes}


def _builtin_name(exc: BaseException) -> str:
    """The protocol's ``type`` of a failure: the name of the first built-in exception class
    ``exc`` is an instance of (a ShapeError or an ArgumentValueError is a ``ValueError``), so
    that the client raises that class too."""
    return next(c.__name__ for c in type(exc).__mro__ if c.__module__ == "builtins")


class _Requests(FrameReader):
    """The client's requests, and whether the client waits for a reply: when the last frame
    it wrote is a synchronising request, it sends nothing more until that is answered. The
    pipe is looked at every :data:`_LOOK_AHEAD` seconds while requests are run, so that a
    wait is seen when it begins, not when the requests before it are done."""

    client_waits = False
    _next_look = 0.0

    def read(self, deadline=None, spin=0.0):
        if not self.client_waits and (now := time.perf_counter()) >= self._next_look:
            self._next_look = now + _LOOK_AHEAD
            self.read_ahead()
        return super().read(deadline, spin)

    def _arrived(self) -> None:
        last = final_header(self._buffer)
        if last is not None and (last.get("op") in _SYNCHRONISING or last.get("reply", False)):
            self.client_waits = True


#: seconds between two looks at the client's pipe while requests are run (each costs a
#: system call, a few microseconds)
_LOOK_AHEAD = 200e-6


class _BlasThreads:
    """NumPy's BLAS threads: one fewer than it has while the client runs beside this process
    sending requests (a thread of ours on the client's core would wait for it, and the
    products with it), all of them while the client waits for a reply. On 2 cores the char_gpt
    step took 36-39 ms against 41-43 with one thread throughout (``bench/plugin.py``)."""

    def __init__(self):
        from threadpoolctl import ThreadpoolController
        self._pools = ThreadpoolController().select(user_api="blas").lib_controllers
        self._all = max((pool.num_threads for pool in self._pools), default=1)
        self._now = None

    def use_all(self, all_of_them: bool) -> None:
        n = self._all if all_of_them else max(1, self._all - 1)
        if n != self._now:
            for pool in self._pools:
                pool.set_num_threads(n)
            self._now = n


class _FailedInput(Exception):
    def __init__(self, handle):
        super().__init__(f"reads the array {handle}, which an earlier request failed to make")


# ------------------------------------------------------------------ fused kernels (NumPy)
# Over the last dimension, in the input's dtype: what gradient.kernels.declarations says.
def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True),)


def _log_softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    return (shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True)),)


def _rms_norm(x, weight, eps):
    rstd = 1 / np.sqrt((x * x).mean(axis=-1) + x.dtype.type(eps))
    y = x * rstd[..., None]
    return (y if weight is None else y * weight), rstd


def _layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1)
    centred = x - mean[..., None]
    rstd = 1 / np.sqrt((centred * centred).mean(axis=-1) + x.dtype.type(eps))
    y = centred * rstd[..., None]
    y = y if weight is None else y * weight
    return (y if bias is None else y + bias), mean, rstd


def _silu(x):
    return (x / (1 + np.exp(-x)),)


def _add_to_rows(out, row):
    out += row
    return ()


def _adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, beta1, beta2, eps,
               weight_decay, decoupled_weight_decay, maximize, step):
    """One Adam/AdamW update in place, in the order of gradient.optim.adam's composition (in
    place where that gives the same roundings: a += b is a + b)."""
    k = param.dtype.type
    g = -grad if maximize else grad
    if weight_decay and not decoupled_weight_decay:
        g = g + k(weight_decay) * param
    w1 = 1 - beta1
    if w1 < 0.5:
        exp_avg += (g - exp_avg) * k(w1)
    else:
        exp_avg[...] = g - (g - exp_avg) * k(1 - w1)
    exp_avg_sq *= k(beta2)
    exp_avg_sq += g * k(1 - beta2) * g
    second = exp_avg_sq
    if max_exp_avg_sq is not None:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    update = np.sqrt(second)
    update /= k((1 - beta2 ** step) ** 0.5)
    update += k(eps)
    np.divide(exp_avg, update, out=update)
    update *= k(-(lr / (1 - beta1 ** step)))
    if weight_decay and decoupled_weight_decay:
        param *= k(1 - lr * weight_decay)
    param += update
    return ()


KERNELS = {"softmax": _softmax, "log_softmax": _log_softmax, "rms_norm": _rms_norm,
           "layer_norm": _layer_norm, "silu": _silu,
           "swiglu": lambda gate, up: (_silu(gate)[0] * up,),
           "add_to_rows": _add_to_rows, "adam_step": _adam_step}


def _gathers(op, request) -> bool:
    """An index with arrays: the result is a new array, not a view."""
    return op == "getitem" and any(type(i) is dict and "array" in i for i in request["index"])


def _is_shape(value) -> bool:
    return all(type(v) is int for v in value)


def main() -> int:
    from ..numpy_backend import ArrayBackend
    offered = os.environ.get("GRADIENT_REFERENCE_PRIMITIVES")
    primitives = [p for p in PRIMITIVES if p not in ("from_bytes", "to_bytes")] + [
        "getitem_arrays", "setitem_arrays"]
    if offered:
        primitives = [p for p in primitives if p in offered.split(",")]
    kernels = [] if offered else list(KERNELS)
    plugin = ReferencePlugin(ArrayBackend(np, "plugin:reference"), primitives, kernels)
    # replies only on the real stdout: anything printed by mistake goes to stderr
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr
    plugin.serve(sys.stdin.buffer, stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
