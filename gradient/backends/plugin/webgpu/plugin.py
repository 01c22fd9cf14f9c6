"""The WebGPU plugin's request loop: the reference plugin's (:mod:`..reference`) with GPU
arrays in place of NumPy's. A primitive runs as a shader (:mod:`.compute`, :mod:`.indexing`)
where one applies, and otherwise with NumPy in this process on the arrays downloaded, its
results staying in host memory until a shader reads them.

Example::

    $ python -m gradient.backends.plugin.webgpu < requests.bin > replies.bin
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ..reference import ReferencePlugin, _gathers
from ..wire import IN_PLACE, PRIMITIVES, VIEWS
from . import compute, indexing
from .memory import F16, F32, GPU, MAXD, WGSL, GPUArray, view_of
from .shaders import (BINARY, BOOL_UNARY, COMPARE, FLOAT_COMPARE, INT_BINARY, INT_UNARY, LOGICAL,
                      REDUCE, SILU, SOFTMAXES, UNARY, as_bool)

__all__ = ["WebGPUPlugin", "main"]

_I32, _BOOL = np.dtype(np.int32), np.dtype(np.bool_)
_UNARY = {F32: UNARY, F16: UNARY, _I32: INT_UNARY, _BOOL: BOOL_UNARY}
# binary ops by operand dtype: their expression and the result's dtype (None: the operands')
_BINARY = {
    F32: {**{op: (e, None) for op, e in BINARY.items()},
          **{op: (as_bool(e), _BOOL) for op, e in FLOAT_COMPARE.items()}},
    _I32: {**{op: (e, None) for op, e in INT_BINARY.items()},
           **{op: (as_bool(e), _BOOL) for op, e in COMPARE.items()}},
    _BOOL: {**{op: (as_bool(e), None) for op, e in LOGICAL.items()},
            **{op: (as_bool(COMPARE[op]), None) for op in ("eq", "ne")}},
}
_BINARY[F16] = _BINARY[F32]       # float16 is computed in float32 (see shaders.compute_type)
_FLOATS = (F32, F16)


class WebGPUPlugin(ReferencePlugin):
    """The reference plugin's loop over GPU arrays (see the module docstring)."""

    name = "webgpu"
    kernel_dtypes = ("float32",)

    def __init__(self, backend, primitives, gpu: GPU):
        super().__init__(backend, primitives, ("softmax", "log_softmax", "rms_norm",
                                               "layer_norm", "silu", "swiglu"))
        self.gpu = gpu

    def _hello(self, request) -> dict:
        reply = super()._hello(request)
        if reply["ok"]:
            reply.update(name=self.name, devices=[{"name": self.gpu.name()}])
        return reply

    # -- where arrays live
    def _upload(self, host: np.ndarray) -> GPUArray:
        return self.gpu.upload(host)

    def _host(self, value):
        """A value as the NumPy backend takes it: GPU arrays downloaded (a copy)."""
        if isinstance(value, GPUArray):
            return self.gpu.download(value)
        if type(value) in (list, tuple):
            return type(value)(self._host(v) for v in value)
        return value

    def _gpu(self, value) -> GPUArray | None:
        """An array argument on the GPU (uploaded from host memory if it can live there), or
        None where it cannot."""
        if isinstance(value, GPUArray):
            return value if value.ndim <= MAXD else None
        if isinstance(value, np.ndarray) and value.ndim <= MAXD and \
                self.gpu.holds(value.dtype, max(value.size, 1)) and value.size:
            return self.gpu.upload(value)
        return None

    # -- the protocol's requests
    def _host_array(self, array):
        return self._host(array)

    def _run(self, op, request, payload) -> dict:
        info = super()._run(op, request, payload)
        if op == "from_bytes":   # float32, int32 and bool data goes to the GPU
            h = request["out"][0]
            array = self.arrays[h]
            if self.gpu.holds(array.dtype, array.size):
                self.arrays[h] = self.gpu.upload(array)
        return info

    def _compute(self, op, args, request):
        if op in IN_PLACE:
            target = args[1] if op == "binary_" else args[0]
            if isinstance(target, GPUArray):
                if not self._write_in_place(op, args, target):
                    self._in_place_through_host(op, args, target)
                return None
        elif op in VIEWS and not _gathers(op, request) and isinstance(args[0], GPUArray):
            return (self._view(op, args),)
        results = self._shader(op, args)
        if results is not None:
            return results
        return super()._compute(op, [self._host(a) for a in args], request)

    def _view(self, op, args) -> GPUArray:
        x, shadow = args[0], args[0].shadow()
        if op == "reshape":
            try:
                return view_of(x, np.reshape(shadow, args[1], copy=False))
            except ValueError:   # NumPy would copy: so do we
                if x.ndim > MAXD:    # more dimensions than a shader's metadata holds
                    return self.gpu.upload(np.reshape(self._host(x), args[1]))
                out = compute.copy(self.gpu, x)
                return view_of(out, np.reshape(out.shadow(), args[1]))
        if op == "permute":
            return view_of(x, shadow.transpose(args[1]))
        if op == "broadcast_to":
            return view_of(x, np.broadcast_to(shadow, args[1]))
        if op == "windows":
            return view_of(x, self.backend.windows(shadow, *args[1:]))
        return view_of(x, shadow[args[1]])   # getitem with integers, slices, None, ...

    # -- in-place writes
    def _write_in_place(self, op, args, target: GPUArray) -> bool:
        """The in-place primitive ``op`` written on the GPU; False where the host does it."""
        gpu = self.gpu
        if op == "binary_":
            value = self._gpu(args[2])
            if args[0] not in BINARY or target.dtype not in _FLOATS or value is None \
                    or value.dtype != target.dtype or not self._broadcasts(value, target):
                return False
            compute.write_into(gpu, target, compute.value_apart(gpu, value, target),
                               BINARY[args[0]])
            return True
        if op in ("setitem", "index_add"):
            index, value = tuple(args[1]), self._gpu(args[2])
            if value is None or value.dtype != target.dtype:
                return False
            ids = indexing.array_index(index, target.ndim)
            if ids is not None:
                return indexing.write_rows(gpu, "put" if op == "setitem" else "add", target,
                                           ids, value)
            if op == "index_add" or any(isinstance(i, (np.ndarray, GPUArray)) for i in index):
                return False
            if not any(i is Ellipsis for i in index):
                index += (Ellipsis,)       # a 0-d view, not a scalar, for integers everywhere
            view = self._view("getitem", [target, index])
            if not compute.writable(view) or not self._broadcasts(value, view):
                return False
            compute.write_into(gpu, view, compute.value_apart(gpu, value, target))
            return True
        if op in ("scatter_add", "put_along_axis"):
            x, axis, index, src = (args if op == "scatter_add" else
                                   (args[0], args[3], args[1], args[2]))
            src = self._gpu(src)
            return src is not None and indexing.write_elements(
                gpu, "add" if op == "scatter_add" else "put", x, self._host(index), src, axis)
        return False

    @staticmethod
    def _broadcasts(value: GPUArray, view: GPUArray) -> bool:
        try:
            return value.ndim <= view.ndim and \
                np.broadcast_shapes(view.shape, value.shape) == view.shape
        except ValueError:
            return False                   # the host raises NumPy's error

    def _in_place_through_host(self, op, args, target: GPUArray):
        storage = target.storage.read(self.gpu)
        host_args = [target.host_view(storage) if a is target else self._host(a) for a in args]
        getattr(self.backend, op)(*host_args)
        target.storage.write(self.gpu, storage)
        return None

    # -- the shaders
    def _shader(self, op, args) -> tuple | None:
        """The results of ``op`` computed on the GPU, or None where no shader applies."""
        gpu = self.gpu
        if op in ("full", "empty"):
            shape, dtype = args[0], args[-1].numpy
            if not gpu.holds(dtype, math.prod(shape)) or len(shape) > MAXD:
                return None
            return (compute.full(gpu, shape, args[1] if op == "full" else 0, dtype),)
        arrays = [a for a in args if isinstance(a, (GPUArray, np.ndarray))]
        if op == "concatenate":
            arrays = list(args[0])
        if not arrays or not any(isinstance(a, GPUArray) for a in arrays):
            return None      # host arrays only: computed there, uploaded when a shader reads
        if op in ("getitem", "take_along_axis"):
            x = self._gpu(args[0])
            if x is None:
                return None
            if op == "take_along_axis":
                out = indexing.take_along_axis(gpu, x, self._host(args[1]), args[2])
            else:
                ids = indexing.array_index(tuple(self._host(i) for i in args[1]), x.ndim)
                out = None if ids is None else indexing.gather_rows(gpu, x, ids)
            return None if out is None else (out,)
        operands = [self._gpu(a) for a in arrays]
        if any(a is None for a in operands):
            return None
        dtype = operands[0].dtype
        if op in ("copy", "contiguous"):
            return (compute.copy(gpu, operands[0]),)
        if op == "unary":
            expression = _UNARY[dtype].get(args[0])
            return None if expression is None else \
                (compute.elementwise(gpu, expression, operands[0], operands[0]),)
        if op == "binary":
            entry = _BINARY[dtype].get(args[0])
            if entry is None or operands[1].dtype != dtype:
                return None
            return (compute.elementwise(gpu, entry[0], *operands, entry[1]),)
        if op == "where":
            cond, a, b = operands
            if cond.dtype != _BOOL or a.dtype != b.dtype:
                return None
            return (compute.where(gpu, cond, a, b),)
        if op == "cast":
            target = args[1].numpy
            return (compute.cast(gpu, operands[0], target),) if target in WGSL else None
        if op == "concatenate":
            if any(a.dtype != dtype for a in operands) or not operands[0].ndim:
                return None
            return (compute.concatenate(gpu, operands, args[1] % operands[0].ndim),)
        if op == "pad":
            if args[2] != "constant":
                return None
            return (compute.pad_constant(gpu, operands[0], args[1], args[3]),)
        if dtype not in _FLOATS:
            return None
        if op == "reduce" and args[0] in REDUCE and operands[0].size:
            return (compute.reduce(gpu, args[0], operands[0], *args[2:]),)
        if op == "matmul" and operands[0].ndim and operands[1].ndim and \
                operands[1].dtype == dtype:
            return (compute.matmul(gpu, *operands),)
        return None

    # -- fused kernels
    def _fused(self, name, args, kwargs) -> tuple:
        arrays = [self._gpu(a) if isinstance(a, np.ndarray) else a for a in args
                  if isinstance(a, (GPUArray, np.ndarray))]
        if any(a is None or a.dtype != F32 for a in arrays) or not arrays[0].size:
            return super()._fused(name, [self._host(a) for a in args], kwargs)
        gpu = self.gpu
        x = arrays[0]
        if name == "silu":
            return (compute.elementwise(gpu, SILU, x, x),)
        if name == "swiglu":
            return (compute.elementwise(gpu, f"{SILU} * y", x, arrays[1]),)
        if name in SOFTMAXES:
            return (compute.softmax(gpu, name, x),)
        weight = None if args[1] is None else arrays[1]
        if name == "layer_norm":
            bias = None if args[2] is None else arrays[-1]
            return compute.norm(gpu, name, x, weight, bias, args[3])
        out, _, rstd = compute.norm(gpu, name, x, weight, None, args[2])
        return out, rstd


def main() -> int:
    from ...numpy_backend import ArrayBackend
    stdout = sys.stdout.buffer
    sys.stdout = sys.stderr
    try:
        gpu = GPU()
    except Exception as e:   # noqa: BLE001  (no adapter, no driver: said on stderr, exit 3)
        print(f"gradient webgpu plugin: {e}", file=sys.stderr)
        return 3
    primitives = [p for p in PRIMITIVES if p not in ("from_bytes", "to_bytes")] + [
        "getitem_arrays", "setitem_arrays"]
    plugin = WebGPUPlugin(ArrayBackend(np, "plugin:webgpu"), primitives, gpu)
    plugin.serve(sys.stdin.buffer, stdout)
    return 0
