"""Where the WebGPU plugin's arrays live: the adapter and its device (:class:`GPU`), GPU
buffers of 32-bit words (:class:`Storage`) and strided views of them (:class:`GPUArray`).

These dtypes live on the GPU: float32 (WGSL ``f32``), int32 (``i32``) and bool (``u32``, 0 or
1), one 32-bit word per element, and float16 (``f16``, two bytes) where the adapter has the
``shader-f16`` feature. WGSL has no 64-bit types, so float64 and int64 arrays stay in host
memory in the plugin's process; an int64 index array goes to the GPU as int32 for the shader
that reads it (see :mod:`.indexing`).

Example::

    >>> gpu = GPU()
    >>> x = gpu.upload(np.arange(6, dtype=np.float32).reshape(2, 3))
    >>> gpu.download(x)
    array([[0., 1., 2.],
           [3., 4., 5.]], dtype=float32)
"""

from __future__ import annotations

import math

import numpy as np

from ....errors import DeviceError
from ..arrays import shadow_of

#: the dtypes that can live in GPU buffers, and their WGSL element types
WGSL = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32", np.dtype(np.bool_): "u32",
        np.dtype(np.float16): "f16"}
# how each is stored (a bool as a 32-bit word)
_STORED = {np.dtype(np.float32): np.float32, np.dtype(np.int32): np.int32,
           np.dtype(np.bool_): np.uint32, np.dtype(np.float16): np.float16}
F32, F16 = np.dtype(np.float32), np.dtype(np.float16)
MAXD = 8               # dimensions the shaders' metadata holds
GROUP = 64             # invocations per workgroup
MAX_GROUPS = 65535     # workgroups per grid dimension (WebGPU's limit)


class Storage:
    """A GPU buffer of ``n`` elements of ``dtype`` (one of :data:`WGSL`), zeros or ``data``."""

    def __init__(self, gpu, n: int, dtype, data: np.ndarray | None = None):
        import wgpu
        self.n, self.dtype = n, np.dtype(dtype)
        self.stored = np.dtype(_STORED[self.dtype])
        self.nbytes = -(-self.stored.itemsize * n // 4) * 4   # copies move whole words
        self.buffer = gpu.device.create_buffer(   # WebGPU zeroes a new buffer
            size=max(4, self.nbytes),
            usage=wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_SRC | wgpu.BufferUsage.COPY_DST)
        if data is not None:
            self.write(gpu, data)

    def read(self, gpu) -> np.ndarray:
        """The elements, downloaded: a new 1-d array of the storage's dtype."""
        if not self.n:
            return np.zeros(0, self.dtype)
        words = np.frombuffer(gpu.device.queue.read_buffer(self.buffer, 0, self.nbytes),
                              self.stored, self.n)
        return words != 0 if self.dtype == np.bool_ else words.copy()

    def write(self, gpu, data: np.ndarray) -> None:
        if self.n:
            stored = np.zeros(self.nbytes // self.stored.itemsize, self.stored)
            stored[:self.n] = np.asarray(data, self.stored).reshape(-1)
            gpu.device.queue.write_buffer(self.buffer, 0, stored)


class GPUArray:
    """A view of a :class:`Storage`: offset, shape and strides in elements. It answers what
    the plugin loop reads of an array (``shape``, ``dtype``, and ``strides`` in bytes of
    ``itemsize`` 4: a GPU element is one word, whatever its dtype)."""

    itemsize = 4

    def __init__(self, storage: Storage, offset: int, shape, strides):
        self.storage, self.offset = storage, int(offset)
        self.shape, self.elements = tuple(int(n) for n in shape), tuple(int(s) for s in strides)

    @property
    def dtype(self) -> np.dtype:
        return self.storage.dtype

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
        """A float32 shadow of the view (only its metadata means anything): NumPy's view
        operations on it give the metadata of views of this array."""
        return shadow_of(F32, self.shape, self.elements, self.offset)

    def is_contiguous(self) -> bool:
        return self.elements == contiguous_strides(self.shape)

    def host_view(self, storage: np.ndarray) -> np.ndarray:
        """This view of ``storage`` (the storage's elements, downloaded)."""
        return np.lib.stride_tricks.as_strided(
            storage[self.offset:] if storage.size else storage, self.shape,
            [e * storage.itemsize for e in self.elements])


def view_of(array: GPUArray, shadow: np.ndarray) -> GPUArray:
    """The GPU view a NumPy view operation made of ``array``'s shadow."""
    base = shadow_of(F32, (1,), (0,), 0)
    offset = (shadow.__array_interface__["data"][0] - base.__array_interface__["data"][0]) // 4
    return GPUArray(array.storage, offset, shadow.shape, [s // 4 for s in shadow.strides])


class GPU:
    """The adapter, the device and the compiled shaders."""

    def __init__(self):
        import wgpu
        self.wgpu = wgpu
        self.adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        if self.adapter is None:
            raise DeviceError("no WebGPU adapter (on Linux: install a Vulkan driver, such as "
                              "Mesa's: apt-get install mesa-vulkan-drivers libvulkan1)")
        half = "shader-f16" in self.adapter.features
        self.device = self.adapter.request_device_sync(
            required_features=["shader-f16"] if half else [])
        self.max_binding = int(self.device.limits["max-storage-buffer-binding-size"])
        self.dtypes = set(WGSL) if half else set(WGSL) - {F16}
        self._pipelines: dict = {}

    def name(self) -> str:
        info = self.adapter.info
        return f"{info.get('device', 'GPU')} ({info.get('backend_type', 'WebGPU')})"

    # -- arrays
    def holds(self, dtype, n: int) -> bool:
        """Whether an array of ``n`` elements of ``dtype`` can live on the GPU (a binding
        holds at most ``max_binding`` bytes, and shaders index with 32-bit integers)."""
        return np.dtype(dtype) in self.dtypes and 0 < 4 * n <= self.max_binding and n < 2**31

    def new(self, shape, dtype=F32) -> GPUArray:
        """A new C-contiguous array of zeros."""
        return GPUArray(Storage(self, math.prod(shape), dtype), 0, shape,
                        contiguous_strides(shape))

    def upload(self, host: np.ndarray) -> GPUArray:
        data = np.asarray(host, order="C")   # (ascontiguousarray makes 0-d arrays 1-d)
        return GPUArray(Storage(self, data.size, data.dtype, data), 0, data.shape,
                        contiguous_strides(data.shape))

    def download(self, x: GPUArray) -> np.ndarray:
        """A GPU array's values in a new C-contiguous host array."""
        return np.array(x.host_view(x.storage.read(self)), order="C")

    # -- shaders
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
        groups = max(1, -(-n // GROUP))
        nx = min(groups, MAX_GROUPS)
        encoder = self.device.create_command_encoder()
        compute = encoder.begin_compute_pass()
        compute.set_pipeline(pipeline)
        compute.set_bind_group(0, bind_group)
        compute.dispatch_workgroups(nx, -(-groups // nx), 1)
        compute.end()
        self.device.queue.submit([encoder.finish()])


def contiguous_strides(shape) -> tuple:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def pad(values, fill=0) -> list:
    """``values`` filled up to :data:`MAXD` entries (the shaders' fixed-size metadata)."""
    return list(values) + [fill] * (MAXD - len(values))


def broadcast_strides(x: GPUArray, shape) -> list:
    """``x``'s strides broadcast to ``shape`` (0 along the dimensions it repeats)."""
    lead = len(shape) - x.ndim
    return [0 if d < lead or x.shape[d - lead] == 1 else x.elements[d - lead]
            for d in range(len(shape))]


def operands_meta(shape, operands) -> list:
    """The metadata of an elementwise shader over ``shape``: the element count, the shape,
    then each operand's offset and strides broadcast to the shape."""
    meta = [math.prod(shape), len(shape)] + pad(shape, 1)
    for x in operands:
        meta += [x.offset] + pad(broadcast_strides(x, shape))
    return meta
