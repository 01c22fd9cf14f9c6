"""gradient: a deep-learning framework written from scratch in Python.

A PyTorch-like :class:`Tensor` with reverse-mode autograd over a backend abstraction.

Example::

    import gradient
    x = gradient.randn(4, 3, requires_grad=True)
    loss = (x @ x.T).relu().mean()
    loss.backward()
    print(x.grad.shape)
"""

import math as _math

from . import threads  # noqa: F401  (first: the thread pools' waits, read when NumPy loads)
from . import dtypes
from .autograd import (enable_grad, inference_mode, is_anomaly_check_nan_enabled,
                       is_anomaly_enabled, is_grad_enabled, is_inference_mode_enabled, no_grad,
                       set_grad_enabled)
from .device import device
from .dtypes import (DType, bfloat16, bool_, finfo, float16, float32, float64, get_default_dtype,
                     iinfo, int8, int16, int32, int64, promote_types, result_type,
                     set_default_dtype, uint8)
from .errors import (AutogradError, DeviceError, DTypeError, FileFormatError, GradientError,
                     PluginError, ShapeError)
from .tensor import Size, Tensor
from .tensor_types import *  # noqa: F401,F403  (FloatTensor, LongTensor ...: PyTorch's legacy types)
from .ops import *  # noqa: F401,F403
from .ops.creation import Generator, default_generator  # noqa: F401
from . import amp, autograd, cuda, io, linalg, nn, ops, optim, testing, utils  # noqa: F401
from . import special  # noqa: F401  (torch.special)
from . import random  # noqa: F401  (torch.random: the generator's functions, fork_rng)
from . import quasirandom  # noqa: F401  (torch.quasirandom: SobolEngine)
from . import sparse  # noqa: F401,E402  (torch.sparse: sparse COO tensors' functions)
from .sparse import mm as spmm  # noqa: F401,E402  (torch.spmm)
from .func import vmap  # noqa: F401,E402  (torch.vmap)
from .utils.dlpack import from_dlpack  # noqa: F401,E402  (torch.from_dlpack)
from . import plugins  # noqa: F401,E402  (gradient.plugins.list())
from . import accelerator, jit, onnx  # noqa: F401,E402  (torch.accelerator, torch.jit, torch.onnx)
from .layouts import (channels_last, channels_last_3d, contiguous_format,  # noqa: F401
                      layout, memory_format, preserve_format, sparse_coo, sparse_csr, strided)
from .io import load, save  # noqa: F401
from .amp import autocast  # noqa: F401  (gradient.autocast, like torch.autocast)
from .threads import (get_num_interop_threads, get_num_threads,  # noqa: F401
                      set_num_interop_threads, set_num_threads)
# torch.conv2d, torch.batch_norm, torch.kl_div ... with PyTorch's top-level signatures
from .ops.torch_functional import *  # noqa: F401,F403,E402
from .settings import *  # noqa: F401,F403,E402  (default device, determinism)
from .amp import get_autocast_dtype  # noqa: F401,E402
from .amp.autocast_mode import (autocast_decrement_nesting,  # noqa: F401,E402  (torch's names)
                                autocast_increment_nesting, clear_autocast_cache,
                                get_autocast_cpu_dtype, get_autocast_gpu_dtype,
                                is_autocast_cache_enabled, is_autocast_cpu_enabled,
                                set_autocast_cache_enabled, set_autocast_cpu_dtype,
                                set_autocast_cpu_enabled, set_autocast_dtype, set_autocast_enabled,
                                set_autocast_gpu_dtype)
from .autograd.anomaly_mode import set_detect_anomaly as set_anomaly_enabled  # noqa: F401,E402
from .control_flow import cond, while_loop  # noqa: F401,E402  (torch.cond, torch.while_loop)
from .printing import get_printoptions, printoptions, set_printoptions  # noqa: F401,E402
from .backends.cuda import get_float32_matmul_precision, set_float32_matmul_precision  # noqa: F401

from . import serialization  # noqa: F401,E402  (torch.serialization)
from . import compiler, cpu  # noqa: F401,E402  (torch.compiler, torch.cpu)
from .compiler import compile  # noqa: F401,E402  (torch.compile: the model back, eager)
from .device import device as _device_type  # noqa: E402
from .errors import ArgumentTypeError as _ArgumentTypeError  # noqa: E402

bool = bool_  # noqa: A001  (gradient.bool, like torch.bool)
half, float, double = float16, float32, float64  # noqa: A001
short, int, long = int16, int32, int64  # noqa: A001

is_tensor = lambda obj: isinstance(obj, Tensor)  # noqa: E731

# torch.pi, torch.inf ...: Python numbers, as torch's are (math's), and numpy's newaxis
pi, e, inf, nan, newaxis = _math.pi, _math.e, _math.inf, _math.nan, None


def is_autocast_enabled(device_type=None):
    """``torch.is_autocast_enabled``: whether autocast is on in this thread for ``device_type``,
    "cuda" when not given, as in PyTorch (``gradient.amp.is_autocast_enabled()`` asks about any
    device type). ``with gradient.autocast("cpu"): gradient.is_autocast_enabled("cpu")`` is True."""
    return amp.is_autocast_enabled("cuda" if device_type is None else device_type)


def get_device_module(device=None):
    """``torch.get_device_module``: the module of a device type (:mod:`gradient.cpu`,
    :mod:`gradient.cuda`) for device-agnostic code; None gives the current accelerator's (CUDA
    where there is a GPU), else the CPU's. ``gradient.get_device_module("cuda").synchronize()``."""
    if device is None:
        kind = "cuda" if cuda.is_available() else "cpu"
    elif isinstance(device, (str, _device_type)):
        kind = _device_type(device).type            # "cuda:1" -> "cuda"; a bad name: its error
    else:
        raise _ArgumentTypeError(f"get_device_module: expected a device, its name or None, got "
                                 f"{type(device).__name__}")
    if kind not in ("cpu", "cuda"):
        raise DeviceError(f"get_device_module: device {device!r} has no module in gradient; "
                          f"the device modules are gradient.cpu and gradient.cuda")
    return cpu if kind == "cpu" else cuda


from .version import __version__
from .ops.argument_errors import guard_namespace  # noqa: E402
guard_namespace(globals(), __name__)   # a non-Tensor input: PyTorch's TypeError, naming it
del guard_namespace

# The layers above nn (models, tokenizers, generation, the hub) load on first use, so that
# `import gradient` stays quick for code that only needs tensors: `gradient.hub.load("gpt2")`.
_LAZY_SUBMODULES = ("models", "generation", "tokenizers", "hub", "quant", "distributions", "func",
                    "ao", "quantization", "types")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    if name == "qint8":             # torch.qint8: quantize_dynamic's dtype
        from .quant.dynamic import qint8
        return qint8
    raise AttributeError(f"module 'gradient' has no attribute {name!r}")
