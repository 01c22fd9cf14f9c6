"""The WebGPU plugin: float32 arrays in GPU buffers, computed by WGSL compute shaders through
``wgpu`` (Metal on macOS, Vulkan on Linux, D3D12 on Windows; here Mesa's software Vulkan).
Run it as ``python -m gradient.backends.plugin.webgpu``; gradient does that for the device
``"plugin:webgpu"`` (``"metal"`` on a Mac names the same plugin).

It is the reference plugin (:mod:`.reference`) with another place for the arrays: a float32
array lives in a GPU buffer, as a strided view (offset, shape and strides in elements) of a
storage, and the view primitives only compute new metadata. The shaders cover

* ``unary`` and ``binary`` (with broadcasting, any strides), ``copy`` and ``contiguous``;
* ``reduce`` (sum with compensated summation, max, min; any axes);
* ``matmul`` (batched, broadcast batch dimensions, a 4 x 4 block of outputs per invocation,
  float32 accumulation in the order of k);
* the fused kernels softmax, log_softmax, rms_norm and layer_norm (one invocation per row),
  SiLU and SwiGLU (section 5.1 of the protocol).

In-place writes of float32 values (``binary_`` with those ops, ``setitem`` with a basic index)
are shaders too, into the written view's storage. Everything else -- other dtypes, indexing
with arrays, sorting, the decompositions, the other in-place primitives -- runs with NumPy
inside this process, on the arrays downloaded from the GPU (an in-place write there downloads
the storage, writes and uploads it again, so every view sees it). Results computed that way
stay in host memory until a shader needs them. So the plugin offers every
primitive, and the client never has to fall back. WGSL has no float64 and no 64-bit integers,
and a storage binding holds at most 128 MiB: those arrays stay on the host too.

Example::

    $ python -c "import gradient; print(gradient.ones(3, device='plugin:webgpu') * 2)"
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np

from .arrays import shadow_of
from .reference import ReferencePlugin, _gathers
from .wire import IN_PLACE, PRIMITIVES, PROTOCOL, VIEWS, WireDType

_F32 = np.dtype(np.float32)
_MAXD = 8
_GROUP = 64            # invocations per workgroup
_MAX_GROUPS = 65535    # workgroups per grid dimension (WebGPU's limit)

# unary and binary ops the shaders compute, as WGSL expressions of x (and y)
UNARY = {
    "neg": "-x", "abs": "abs(x)", "exp": "exp(x)", "log": "log(x)", "sqrt": "sqrt(x)",
    "sin": "sin(x)", "cos": "cos(x)", "tanh": "tanh(x)", "sigmoid": "1.0 / (1.0 + exp(-x))",
    "reciprocal": "1.0 / x", "floor": "floor(x)", "ceil": "ceil(x)", "trunc": "trunc(x)",
}
BINARY = {
    "add": "x + y", "sub": "x - y", "mul": "x * y", "div": "x / y",
    # NaN propagates, as in NumPy (WGSL's max/min may drop it)
    "maximum": "select(select(max(x, y), y, y != y), x, x != x)",
    "minimum": "select(select(min(x, y), y, y != y), x, x != x)",
}
REDUCE = ("sum", "max", "min")

# every shader: one invocation per output element i (a 2-D grid of workgroups: at most 65,535
# per dimension), info[0] outputs
_MAIN = """@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = i32(gid.x + gid.y * groups.x * 64u);
    if (i >= info[0]) { return; }"""

# the offsets in two operands of element ``index`` of a shape: ``ndim`` sizes from
# info[shape_at], the operands' strides from info[a_at] and info[b_at] (C order)
_OFFSETS = """
fn offsets(index: i32, ndim: i32, shape_at: i32, a_at: i32, b_at: i32) -> vec2<i32> {
    var rest = index;
    var o = vec2<i32>(0, 0);
    for (var d: i32 = ndim - 1; d >= 0; d = d - 1) {
        let n = info[shape_at + d];
        let k = rest % n;
        rest = rest / n;
        o = o + k * vec2<i32>(info[a_at + d], info[b_at + d]);
    }
    return o;
}
"""

_ELEMENTWISE = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// info: n, ndim, shape[8], then per operand: offset, strides[8]
MAIN
    let o = vec2<i32>(info[10], info[19]) + offsets(i, info[1], 2, 11, 20);
    let x = a[o.x];
    let y = b[o.y];
    out[i] = EXPR;
}
"""

# an in-place write into a strided view of a storage: binary_ (x op= y) and setitem (x[...] =
# y), y broadcast; the value is read from another buffer (WebGPU does not bind one buffer as
# both read and read_write)
_INTO = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// info: n, ndim, shape[8], then for the written view and the value: offset, strides[8]
MAIN
    let o = vec2<i32>(info[10], info[19]) + offsets(i, info[1], 2, 11, 20);
    let x = out[o.x];
    let y = b[o.y];
    out[o.x] = EXPR;
}
"""

_REDUCE = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// info: outputs, kept ndim, kept shape[8], kept strides[8], offset,
//       reduced count, reduced ndim, reduced shape[8], reduced strides[8]
MAIN
    var rest = i;
    var base = info[18];
    for (var d: i32 = info[1] - 1; d >= 0; d = d - 1) {
        let n = info[2 + d];
        base = base + (rest % n) * info[10 + d];
        rest = rest / n;
    }
    let count = info[19];
    var acc: f32 = INIT;
    var carry: f32 = 0.0;
    for (var j: i32 = 0; j < count; j = j + 1) {
        var r = j;
        var o = base;
        for (var d: i32 = info[20] - 1; d >= 0; d = d - 1) {
            let n = info[21 + d];
            o = o + (r % n) * info[29 + d];
            r = r / n;
        }
        let v = a[o];
        STEP
    }
    out[i] = acc;
}
"""

_SUM_STEP = """let t = acc + (v - carry);   // Kahan: what the sum lost comes back next time
        carry = (t - acc) - (v - carry);
        acc = t;"""
_MAX_STEP = "if (v != v || v > acc || acc != acc) { acc = select(v, acc, acc != acc); }"
_MIN_STEP = "if (v != v || v < acc || acc != acc) { acc = select(v, acc, acc != acc); }"

# each invocation a block of 4 x 4 outputs (its row and column blocks from i, the batch from
# i / blocks): per step of k it reads four values of a and four of b for sixteen products,
# a quarter of the reads of one output per invocation, and no workgroup barriers; every sum
# over k runs in index order
_MATMUL = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// info: blocks, M, N, K, batch ndim, batch shape[8], a batch strides[8], b batch strides[8],
//       a offset, a row stride, a column stride, b offset, b row stride, b column stride
MAIN
    let m = info[1];
    let n = info[2];
    let k = info[3];
    let col_blocks = (n + 3) / 4;
    let per_batch = ((m + 3) / 4) * col_blocks;
    let batch = i / per_batch;
    let row0 = ((i % per_batch) / col_blocks) * 4;
    let col0 = (i % col_blocks) * 4;
    let o = vec2<i32>(info[29], info[32]) + offsets(batch, info[4], 5, 13, 21);
    var rows = vec4<i32>(0, 1, 2, 3) + row0;
    var cols = vec4<i32>(0, 1, 2, 3) + col0;
    let row_ok = rows < vec4<i32>(m);
    let col_ok = cols < vec4<i32>(n);
    rows = select(vec4<i32>(row0), rows, row_ok);    // past the edge: read a valid row, unused
    cols = select(vec4<i32>(col0), cols, col_ok);
    let ra = o.x + rows * info[30];
    let cb = o.y + cols * info[34];
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var q: i32 = 0; q < k; q = q + 1) {
        let qa = q * info[31];
        let vb = vec4<f32>(b[cb.x + q * info[33]], b[cb.y + q * info[33]],
                           b[cb.z + q * info[33]], b[cb.w + q * info[33]]);
        acc0 = acc0 + a[ra.x + qa] * vb;
        acc1 = acc1 + a[ra.y + qa] * vb;
        acc2 = acc2 + a[ra.z + qa] * vb;
        acc3 = acc3 + a[ra.w + qa] * vb;
    }
    let base = batch * m * n;
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r: i32 = 0; r < 4; r = r + 1) {
        if (row_ok[r]) {
            for (var c: i32 = 0; c < 4; c = c + 1) {
                if (col_ok[c]) { out[base + rows[r] * n + cols[c]] = accs[r][c]; }
            }
        }
    }
}
"""
_MATMUL_BLOCK = 4


# Fused kernels over the last dimension: one invocation per row of a contiguous x (n values
# from info[2] + row * n), sums in order. info: rows, n, x offset, weight offset (-1: none),
# bias offset (-1: none), eps (its float32 bits).
_ROW_HEAD = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
MAIN
    let n = info[1];
    let base = info[2] + i * n;
    var top = x[base];          // the row's maximum (NaN propagates)
    for (var j: i32 = 1; j < n; j = j + 1) {
        let v = x[base + j];
        top = select(select(max(top, v), v, v != v), top, top != top);
    }
"""
_SOFTMAX = _ROW_HEAD + """
    var total: f32 = 0.0;
    for (var j: i32 = 0; j < n; j = j + 1) { total = total + exp(x[base + j] - top); }
    for (var j: i32 = 0; j < n; j = j + 1) { out[i * n + j] = RESULT; }
}
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
"""
_NORM = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd_out: array<f32>;
MAIN
    let n = info[1];
    let base = info[2] + i * n;
    var mean: f32 = 0.0;
    if (CENTRED) {
        var s: f32 = 0.0;
        for (var j: i32 = 0; j < n; j = j + 1) { s = s + x[base + j]; }
        mean = s / f32(n);
    }
    var ss: f32 = 0.0;
    for (var j: i32 = 0; j < n; j = j + 1) { let d = x[base + j] - mean; ss = ss + d * d; }
    let rstd = 1.0 / sqrt(ss / f32(n) + bitcast<f32>(info[5]));
    for (var j: i32 = 0; j < n; j = j + 1) {
        var y = (x[base + j] - mean) * rstd;
        if (info[3] >= 0) { y = y * w[info[3] + j]; }
        if (info[4] >= 0) { y = y + b[info[4] + j]; }
        out[i * n + j] = y;
    }
    mean_out[i] = mean;
    rstd_out[i] = rstd;
}
"""
_SOFTMAXES = {"softmax": "exp(x[base + j] - top) / total",
              "log_softmax": "(x[base + j] - top) - log(total)"}
_SILU = "x / (1.0 + exp(-x))"

_ELEMENTWISE, _MATMUL, _INTO = (shader.replace("MAIN", _MAIN) + _OFFSETS
                                for shader in (_ELEMENTWISE, _MATMUL, _INTO))
_REDUCE, _SOFTMAX, _NORM = (shader.replace("MAIN", _MAIN) for shader in (_REDUCE, _SOFTMAX, _NORM))


class Storage:
    """A GPU buffer holding float32 elements."""

    def __init__(self, gpu, n: int, data: np.ndarray | None = None):
        import wgpu
        self.n = n
        self.buffer = gpu.device.create_buffer(
            size=max(4, 4 * n),
            usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST)
        if data is not None and n:
            gpu.device.queue.write_buffer(self.buffer, 0, np.asarray(data, _F32, order="C"))

    def read(self, gpu) -> np.ndarray:
        if not self.n:
            return np.zeros(0, _F32)
        return np.frombuffer(gpu.device.queue.read_buffer(self.buffer, 0, 4 * self.n), _F32).copy()

    def write(self, gpu, data: np.ndarray) -> None:
        if self.n:
            gpu.device.queue.write_buffer(self.buffer, 0, np.asarray(data, _F32, order="C"))


class GPUArray:
    """A float32 view of a :class:`Storage`: offset, shape and strides in elements. It answers
    what the plugin loop reads of an array (``shape``, ``dtype``, ``strides`` in bytes)."""

    dtype = _F32
    itemsize = 4

    def __init__(self, storage: Storage, offset: int, shape, strides):
        self.storage, self.offset = storage, int(offset)
        self.shape, self.elements = tuple(int(n) for n in shape), tuple(int(s) for s in strides)

    @property
    def strides(self) -> tuple:
        return tuple(4 * s for s in self.elements)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def shadow(self) -> np.ndarray:
        return shadow_of(_F32, self.shape, self.elements, self.offset)

    def host_view(self, storage: np.ndarray) -> np.ndarray:
        """This view of ``storage`` (the storage's elements, downloaded)."""
        return np.lib.stride_tricks.as_strided(storage[self.offset:] if storage.size else storage,
                                               self.shape, self.strides)


def _view_of(array: GPUArray, shadow: np.ndarray) -> GPUArray:
    """The GPU view a NumPy view operation made of ``array``'s shadow."""
    base = shadow_of(_F32, (1,), (0,), 0)
    offset = (shadow.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // 4
    return GPUArray(array.storage, offset, shadow.shape, [s // 4 for s in shadow.strides])


class GPU:
    """The adapter, the device and the compiled shaders."""

    def __init__(self):
        import wgpu
        self.wgpu = wgpu
        self.adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        if self.adapter is None:
            raise RuntimeError("no WebGPU adapter (on Linux: install a Vulkan driver, such as "
                               "Mesa's: apt-get install mesa-vulkan-drivers libvulkan1)")
        self.device = self.adapter.request_device_sync()
        self.max_binding = int(self.device.limits["max-storage-buffer-binding-size"])
        self._pipelines: dict = {}

    def name(self) -> str:
        info = self.adapter.info
        return f"{info.get('device', 'GPU')} ({info.get('backend_type', 'WebGPU')})"

    def pipeline(self, key, source: str):
        pipeline = self._pipelines.get(key)
        if pipeline is None:
            module = self.device.create_shader_module(code=source)
            pipeline = self._pipelines[key] = self.device.create_compute_pipeline(
                layout="auto", compute={"module": module, "entry_point": "main"})
        return pipeline

    def run(self, pipeline, meta: list, buffers: list, n: int) -> None:
        """Dispatch ``pipeline`` over ``n`` invocations: binding 0 the metadata, then the
        buffers in order."""
        usage = self.wgpu.BufferUsage.STORAGE | self.wgpu.BufferUsage.COPY_DST
        meta_buffer = self.device.create_buffer_with_data(
            data=np.asarray(meta, np.int32).tobytes(), usage=usage)
        entries = [{"binding": 0, "resource": {"buffer": meta_buffer, "offset": 0,
                                                "size": meta_buffer.size}}]
        for k, buffer in enumerate(buffers, 1):
            entries.append({"binding": k, "resource": {"buffer": buffer, "offset": 0,
                                                        "size": buffer.size}})
        bind_group = self.device.create_bind_group(layout=pipeline.get_bind_group_layout(0),
                                                   entries=entries)
        groups = max(1, -(-n // _GROUP))
        nx = min(groups, _MAX_GROUPS)
        encoder = self.device.create_command_encoder()
        compute = encoder.begin_compute_pass()
        compute.set_pipeline(pipeline)
        compute.set_bind_group(0, bind_group)
        compute.dispatch_workgroups(nx, -(-groups // nx), 1)
        compute.end()
        self.device.queue.submit([encoder.finish()])


def _pad(values, fill=0) -> list:
    return list(values) + [fill] * (_MAXD - len(values))


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
    def _fits(self, n: int) -> bool:
        return 0 < 4 * n <= self.gpu.max_binding and n < 2**31

    def _upload(self, host: np.ndarray) -> GPUArray:
        data = np.asarray(host, _F32, order="C")   # (ascontiguousarray makes 0-d arrays 1-d)
        return GPUArray(Storage(self.gpu, data.size, data), 0, data.shape,
                        _contiguous_strides(data.shape))

    def _host(self, value):
        """A value as the NumPy backend takes it: GPU arrays downloaded (a copy)."""
        if isinstance(value, GPUArray):
            return np.array(value.host_view(value.storage.read(self.gpu)), order="C")
        if type(value) in (list, tuple):
            return type(value)(self._host(v) for v in value)
        return value

    def _on_gpu(self, value) -> GPUArray:
        return value if isinstance(value, GPUArray) else self._upload(value)

    # -- the protocol's requests
    def _host_array(self, array):
        return self._host(array)

    def _run(self, op, request, payload) -> dict:
        info = super()._run(op, request, payload)
        if op == "from_bytes":   # float32 data goes to the GPU
            h = request["out"][0]
            array = self.arrays[h]
            if array.dtype == _F32 and self._fits(array.size):
                self.arrays[h] = self._upload(array)
        return info

    def _compute(self, op, args, request):
        gpu_args = [a for a in args if isinstance(a, GPUArray)]
        if op in IN_PLACE:
            target = args[1] if op == "binary_" else args[0]
            if isinstance(target, GPUArray):
                if not self._write_in_place(op, args, target):
                    self._in_place_through_host(op, args, target)
                return None
        elif gpu_args and op in VIEWS and not _gathers(op, request):
            return (self._view(op, args),)
        results = self._shader(op, args)
        if results is not None:
            return results
        return super()._compute(op, [self._host(a) for a in args], request)

    def _view(self, op, args) -> GPUArray:
        x, shadow = args[0], args[0].shadow()
        if op == "reshape":
            try:
                return _view_of(x, np.reshape(shadow, args[1], copy=False))
            except ValueError:   # NumPy would copy: so do we
                out = self._shader("contiguous", [x])[0]
                return _view_of(out, np.reshape(out.shadow(), args[1]))
        if op == "permute":
            return _view_of(x, shadow.transpose(args[1]))
        if op == "broadcast_to":
            return _view_of(x, np.broadcast_to(shadow, args[1]))
        if op == "windows":
            return _view_of(x, self.backend.windows(shadow, *args[1:]))
        return _view_of(x, shadow[args[1]])   # getitem with integers, slices, None, ...

    def _write_in_place(self, op, args, target: GPUArray) -> bool:
        """``binary_`` with a shader's op, or ``setitem`` with a basic index, of a float32
        value, written on the GPU; False where the host does it."""
        if op == "binary_" and args[0] in BINARY:
            view, value, expression = target, args[2], BINARY[args[0]]
        elif op == "setitem" and not any(isinstance(i, (np.ndarray, GPUArray)) for i in args[1]):
            index = tuple(args[1])
            if not any(i is Ellipsis for i in index):
                index += (Ellipsis,)       # a 0-d view, not a scalar, for integers everywhere
            view, value, expression = self._view("getitem", [target, index]), args[2], "y"
        else:
            return False
        if isinstance(value, np.ndarray) and value.dtype == _F32 and self._fits(max(value.size, 1)):
            value = self._upload(value)
        if (not isinstance(value, GPUArray) or view.ndim > _MAXD or value.ndim > view.ndim
                or any(s == 0 and n > 1 for s, n in zip(view.elements, view.shape))):
            return False
        try:
            if np.broadcast_shapes(view.shape, value.shape) != view.shape:
                return False
        except ValueError:
            return False                   # the host raises NumPy's error
        if value.storage is target.storage:   # read before any write, as NumPy does
            value = self._elementwise("x", value, value)
        if view.size:
            meta = _operands_meta(view.shape, (view, value))
            self.gpu.run(self.gpu.pipeline(("into", expression),
                                           _INTO.replace("EXPR", expression)),
                         meta, [value.storage.buffer, target.storage.buffer], view.size)
        return True

    def _in_place_through_host(self, op, args, target: GPUArray):
        storage = target.storage.read(self.gpu)
        host_args = [target.host_view(storage) if a is target else self._host(a) for a in args]
        getattr(self.backend, op)(*host_args)
        target.storage.write(self.gpu, storage)
        return None

    # -- the shaders
    def _shader(self, op, args) -> tuple | None:
        """The results of ``op`` computed on the GPU, or None where no shader applies."""
        arrays = [a for a in args if isinstance(a, (GPUArray, np.ndarray))]
        if not arrays or any(a.dtype != _F32 or a.ndim > _MAXD or not self._fits(max(a.size, 1))
                             for a in arrays):
            return None
        if op in ("copy", "contiguous"):
            return (self._elementwise("x", args[0], args[0]),)
        if op == "unary" and args[0] in UNARY:
            return (self._elementwise(UNARY[args[0]], args[1], args[1]),)
        if op == "binary" and args[0] in BINARY:
            return (self._elementwise(BINARY[args[0]], args[1], args[2]),)
        if op == "reduce" and args[0] in REDUCE and args[1].size:
            return (self._reduce(*args),)
        if op == "matmul" and args[0].ndim and args[1].ndim:
            return (self._matmul(*args),)
        return None

    # -- fused kernels
    def _fused(self, name, args, kwargs) -> tuple:
        arrays = [a for a in args if isinstance(a, (GPUArray, np.ndarray))]
        if any(a.dtype != _F32 or a.ndim > _MAXD or not self._fits(max(a.size, 1))
               for a in arrays) or not arrays[0].size:     # (kernels with results only)
            return super()._fused(name, [self._host(a) for a in args], kwargs)
        if name == "silu":
            return (self._elementwise(_SILU, args[0], args[0]),)
        if name == "swiglu":
            return (self._elementwise(f"{_SILU} * y", args[0], args[1]),)
        if name in _SOFTMAXES:
            x = self._contiguous(args[0])
            out = self._new(x.shape)
            rows = x.size // x.shape[-1]
            source = _SOFTMAX.replace("RESULT", _SOFTMAXES[name])
            self.gpu.run(self.gpu.pipeline(("row", name), source),
                         [rows, x.shape[-1], x.offset], [x.storage.buffer, out.storage.buffer],
                         rows)
            return (out,)
        return self._norm(name, *args)

    def _norm(self, name, x, weight, *rest) -> tuple:
        """rms_norm (x, weight, eps) or layer_norm (x, weight, bias, eps) over rows of x."""
        bias, eps = rest if name == "layer_norm" else (None, rest[0])
        x = self._contiguous(x)
        weight, bias = (None if p is None else self._contiguous(p) for p in (weight, bias))
        rows = x.size // x.shape[-1]
        out, mean, rstd = self._new(x.shape), self._new(x.shape[:-1]), self._new(x.shape[:-1])
        eps_bits = int(np.float32(eps).view(np.int32))
        meta = [rows, x.shape[-1], x.offset, -1 if weight is None else weight.offset,
                -1 if bias is None else bias.offset, eps_bits]
        source = _NORM.replace("CENTRED", "true" if name == "layer_norm" else "false")
        absent = x.storage.buffer       # bound where a parameter is None, never read
        buffers = [x.storage.buffer, absent if weight is None else weight.storage.buffer,
                   absent if bias is None else bias.storage.buffer, out.storage.buffer,
                   mean.storage.buffer, rstd.storage.buffer]
        self.gpu.run(self.gpu.pipeline(("norm", name), source), meta, buffers, rows)
        return (out, mean, rstd) if name == "layer_norm" else (out, rstd)

    def _contiguous(self, x) -> GPUArray:
        x = self._on_gpu(x)
        if x.elements == _contiguous_strides(x.shape):
            return x
        return self._elementwise("x", x, x)

    def _new(self, shape) -> GPUArray:
        n = math.prod(shape)
        return GPUArray(Storage(self.gpu, n), 0, shape, _contiguous_strides(shape))

    def _elementwise(self, expression: str, a, b) -> GPUArray:
        a, b = self._on_gpu(a), self._on_gpu(b)
        shape = np.broadcast_shapes(a.shape, b.shape)
        n = math.prod(shape)
        out = self._new(shape)
        if n:
            meta = _operands_meta(shape, (a, b))
            pipeline = self.gpu.pipeline(("elementwise", expression),
                                         _ELEMENTWISE.replace("EXPR", expression))
            self.gpu.run(pipeline, meta, [a.storage.buffer, b.storage.buffer, out.storage.buffer], n)
        return out

    def _reduce(self, name, x, axis, keepdims) -> GPUArray:
        x = self._on_gpu(x)
        ndim = x.ndim
        axes = set(range(ndim)) if axis is None else {
            a % ndim for a in (axis if isinstance(axis, (tuple, list)) else (axis,))}
        kept = [d for d in range(ndim) if d not in axes]
        reduced = [d for d in range(ndim) if d in axes]
        kept_shape = [x.shape[d] for d in kept]
        shape = tuple(1 if d in axes else x.shape[d] for d in range(ndim)) if keepdims else \
            tuple(kept_shape)
        n = math.prod(kept_shape)
        out = self._new(shape)
        if n:
            count = math.prod(x.shape[d] for d in reduced)
            meta = ([n, len(kept)] + _pad(kept_shape, 1) + _pad([x.elements[d] for d in kept])
                    + [x.offset, count, len(reduced)] + _pad([x.shape[d] for d in reduced], 1)
                    + _pad([x.elements[d] for d in reduced]))
            init, step = {"sum": ("0.0", _SUM_STEP), "max": ("a[base]", _MAX_STEP),
                          "min": ("a[base]", _MIN_STEP)}[name]
            source = _REDUCE.replace("INIT", init).replace("STEP", step)
            self.gpu.run(self.gpu.pipeline(("reduce", name), source), meta,
                         [x.storage.buffer, out.storage.buffer], n)
        return out

    def _matmul(self, a, b) -> GPUArray:
        a, b = self._on_gpu(a), self._on_gpu(b)
        # a 1-d operand is a row (a) or a column (b), dropped from the result again
        a_shape, a_str = ((1,) + a.shape, (0,) + a.elements) if a.ndim == 1 else (a.shape, a.elements)
        b_shape, b_str = (b.shape + (1,), b.elements + (0,)) if b.ndim == 1 else (b.shape, b.elements)
        m, k, n = a_shape[-2], a_shape[-1], b_shape[-1]
        if b_shape[-2] != k:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align")
        batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
        shape = batch + ((m,) if a.ndim > 1 else ()) + ((n,) if b.ndim > 1 else ())
        total = math.prod(batch) * m * n
        out = self._new(shape)
        if total and k:
            a_batch = _broadcast_strides(GPUArray(a.storage, 0, a_shape[:-2], a_str[:-2]), batch)
            b_batch = _broadcast_strides(GPUArray(b.storage, 0, b_shape[:-2], b_str[:-2]), batch)
            blocks = math.prod(batch) * -(-m // _MATMUL_BLOCK) * -(-n // _MATMUL_BLOCK)
            meta = ([blocks, m, n, k, len(batch)] + _pad(batch, 1) + _pad(a_batch) + _pad(b_batch)
                    + [a.offset, a_str[-2], a_str[-1], b.offset, b_str[-2], b_str[-1]])
            self.gpu.run(self.gpu.pipeline(("matmul",), _MATMUL), meta,
                         [a.storage.buffer, b.storage.buffer, out.storage.buffer], blocks)
        elif total:   # k == 0: zeros
            out.storage.write(self.gpu, np.zeros(total, _F32))
        return out


def _contiguous_strides(shape) -> tuple:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _operands_meta(shape, operands) -> list:
    """The metadata of an elementwise shader over ``shape``: the element count, the shape,
    then each operand's offset and strides broadcast to the shape."""
    meta = [math.prod(shape), len(shape)] + _pad(shape, 1)
    for x in operands:
        meta += [x.offset] + _pad(_broadcast_strides(x, shape))
    return meta


def _broadcast_strides(x: GPUArray, shape) -> list:
    lead = len(shape) - x.ndim
    return [0 if d < lead or x.shape[d - lead] == 1 else x.elements[d - lead]
            for d in range(len(shape))]


def main() -> int:
    from ..numpy_backend import ArrayBackend
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


if __name__ == "__main__":
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")   # Mesa's Vulkan loader asks for it
    sys.exit(main())
