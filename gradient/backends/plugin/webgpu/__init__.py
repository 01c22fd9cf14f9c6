"""The WebGPU plugin: arrays in GPU buffers, computed by WGSL compute shaders through ``wgpu``
(Metal on macOS, Vulkan on Linux, D3D12 on Windows; here Mesa's software Vulkan). Run it as
``python -m gradient.backends.plugin.webgpu``; gradient does that for the device
``"plugin:webgpu"`` (``"metal"`` on a Mac names the same plugin).

It is the reference plugin (:mod:`..reference`) with another place for the arrays: a float32,
int32 or bool array (and float16 where the adapter has ``shader-f16``: stored as f16, computed
in f32 and rounded, as NumPy does) lives in a GPU buffer, as a strided view (offset, shape and
strides in elements) of a storage (:mod:`.memory`), and the view primitives only compute new
metadata.
The shaders (:mod:`.shaders`, dispatched by :mod:`.compute` and :mod:`.indexing`) cover

* ``unary`` and ``binary`` (with broadcasting, any strides; comparisons and logical ops make
  bools), ``where``, ``cast`` between the three dtypes, ``full``, ``copy`` and ``contiguous``,
  ``concatenate`` and constant ``pad``;
* ``reduce`` (sum with compensated summation, max, min; any axes);
* ``matmul`` of float32 or float16 (batched, broadcast batch dimensions, a 4 x 4 block of
  outputs per invocation, float32 accumulation in the order of k);
* gathers with an integer array (``x[ids]`` of rows, ``take_along_axis``) and writes with one
  (``index_add`` and ``setitem`` of rows, ``scatter_add``, ``put_along_axis``): the plugin
  reads the index on the host and plans the writes so that repeats add up in NumPy's order;
* in-place ``binary_`` and ``setitem`` with a basic index, into the written view's storage;
* the fused kernels softmax, log_softmax, rms_norm and layer_norm (one invocation per row),
  SiLU and SwiGLU (section 5.1 of the protocol).

Everything else -- float64, int64 and the other dtypes, sorting, the decompositions, indexing
with masks -- runs with NumPy inside this process on the arrays downloaded from the GPU (an
in-place write there downloads the storage, writes and uploads it again, so every view sees
it), and results computed that way stay in host memory until a shader needs them. So the
plugin offers every primitive, and the client never has to fall back. A storage binding holds
at most 128 MiB on most adapters: larger arrays stay on the host too.

Example::

    $ python -c "import gradient; print(gradient.ones(3, device='plugin:webgpu') * 2)"
"""

from .memory import GPU
from .plugin import WebGPUPlugin, main
from .shaders import BINARY, UNARY

__all__ = ["GPU", "WebGPUPlugin", "main", "BINARY", "UNARY"]
