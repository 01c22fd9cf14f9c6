"""Weight initialisation, as in ``torch.nn.init``: fill a tensor in place with random or fixed values.

Every function writes into its argument (outside autograd, like PyTorch's ``no_grad`` versions),
returns it, and draws from gradient's default generator unless given ``generator=``.

Example::

    >>> w = nn.Parameter(gradient.empty(256, 128))
    >>> nn.init.kaiming_uniform_(w, a=math.sqrt(5))       # what nn.Linear does
    >>> nn.init.trunc_normal_(w, std=0.02)                 # GPT-style

The random numbers come from NumPy's PCG64 (see :func:`gradient.manual_seed`), so a seed gives
the same weights in gradient every run, but not the same weights as PyTorch; the distributions
(bounds, means, standard deviations, fan computations) are PyTorch's.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import warnings

import numpy as np

from ..backends.host_memory import untouched_zeros
from ..dtypes import float64
from ..tensor import Tensor
from ..errors import ArgumentTypeError, ArgumentValueError

__all__ = ["skip_init", "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
           "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_", "orthogonal_", "sparse_"]


# ---------------------------------------------------------------------- skipping initialisation
_skip = threading.local()


@contextlib.contextmanager
def skip_init():
    """Make every init function in this module a no-op inside the block.

    For modules whose weights are about to be overwritten, as when loading a checkpoint: building
    a 124M-parameter model draws ~124M random numbers otherwise. The parameters keep whatever
    ``empty`` gave them until they are loaded (``transformers`` does the same while loading).

    Example::

        >>> with nn.init.skip_init():
        ...     model = GPT2LMHeadModel(config)       # uninitialised
        >>> model.load_state_dict(weights)
    """
    previous = getattr(_skip, "active", False)
    _skip.active = True
    try:
        with untouched_zeros():  # the placeholders cost no memory until written
            yield
    finally:
        _skip.active = previous


def _skippable(init_fn):
    @functools.wraps(init_fn)
    def wrapper(tensor, *args, **kwargs):
        if getattr(_skip, "active", False):
            return tensor
        return init_fn(tensor, *args, **kwargs)
    return wrapper


# ---------------------------------------------------------------------- writing into a tensor
def _generator(generator):
    if generator is None:
        from ..ops.creation import default_generator
        return default_generator._state
    return generator._state


def _store(tensor: Tensor, array) -> Tensor:
    """Write a backend array (any float dtype, same shape) into ``tensor``'s storage.

    Direct storage writes, not ``copy_``: they work on parameters that require grad (PyTorch's
    init functions run under ``no_grad`` for the same reason) and never mix in the old values.
    """
    b = tensor._backend
    b.setitem(tensor._data, Ellipsis, b.cast(array, tensor.dtype))
    tensor._version.bump("init")
    return tensor


def _store_numpy(tensor: Tensor, array: np.ndarray) -> Tensor:
    return _store(tensor, tensor._backend.from_numpy(np.ascontiguousarray(array)))


def _check_float(name: str, tensor: Tensor) -> None:
    if not isinstance(tensor, Tensor):
        raise ArgumentTypeError(f"{name}: expected a gradient.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise ArgumentTypeError(
            f"{name}: expected a floating-point tensor, got dtype {tensor.dtype}")


# ---------------------------------------------------------------------- gains and fans
def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (scales the std of xavier/kaiming init).

    ================= ====================================================
    nonlinearity      gain
    ================= ====================================================
    linear, conv*d,   1
    sigmoid
    tanh              5/3
    relu              sqrt(2)
    leaky_relu        sqrt(2 / (1 + negative_slope**2)), slope default 0.01
    selu              3/4
    ================= ====================================================

    >>> nn.init.calculate_gain("leaky_relu", 0.2)   # 1.3867...
    """
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            negative_slope = param
        else:
            raise ArgumentValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    known = linear_fns + ["sigmoid", "tanh", "relu", "leaky_relu", "selu"]
    raise ArgumentValueError(f"Unsupported nonlinearity {nonlinearity}; expected one of {known}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight laid out as PyTorch's: ``(out, in, *kernel)``.

    Layers' ``reset_parameters`` use this private name, as in PyTorch.
    """
    if tensor.dim() < 2:
        raise ArgumentValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 "
            f"dimensions (got shape {tuple(tensor.shape)})")
    receptive_field = 1
    for s in tensor.shape[2:]:
        receptive_field *= s
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


calculate_fan_in_and_fan_out = _calculate_fan_in_and_fan_out


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ArgumentValueError(
            f"Mode {mode} not supported, please use one of ['fan_in', 'fan_out']")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


# ---------------------------------------------------------------------- basic distributions
@_skippable
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with values drawn uniformly from [a, b).

    >>> nn.init.uniform_(gradient.empty(3, 5), -0.1, 0.1)
    """
    _check_float("uniform_", tensor)
    be = tensor._backend
    return _store(tensor, be.uniform(_generator(generator), tuple(tensor.shape), float(a), float(b),
                                     tensor.dtype))


@_skippable
def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with values drawn from N(mean, std**2).

    >>> nn.init.normal_(gradient.empty(3, 5), std=0.02)
    """
    _check_float("normal_", tensor)
    be = tensor._backend
    return _store(tensor, be.normal(_generator(generator), tuple(tensor.shape), float(mean),
                                    float(std), tensor.dtype))


@_skippable
def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                  b: float = 2.0, generator=None) -> Tensor:
    """Fill with values from N(mean, std**2) truncated to [a, b] (absolute bounds, not in stds).

    Uses PyTorch's method: uniform values between the bounds' CDFs mapped through the inverse
    normal CDF, then clamped.

    >>> nn.init.trunc_normal_(gradient.empty(3, 5), std=0.02)
    """
    _check_float("trunc_normal_", tensor)
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. The distribution "
                      "of values may be incorrect.", stacklevel=2)

    def norm_cdf(x):
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    lo, hi = norm_cdf((a - mean) / std), norm_cdf((b - mean) / std)
    be = tensor._backend
    u = be.to_numpy(be.uniform(_generator(generator), tuple(tensor.shape), 2 * lo - 1, 2 * hi - 1,
                               float64))
    from scipy.special import erfinv  # (NumPy has no erfinv; imported here to keep imports light)
    values = np.clip(erfinv(u) * (std * math.sqrt(2.0)) + mean, a, b)
    return _store_numpy(tensor, values)


@_skippable
def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    be = tensor._backend
    be.setitem(tensor._data, Ellipsis, val._data if isinstance(val, Tensor) else val)
    tensor._version.bump("init")
    return tensor


@_skippable
def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones."""
    return constant_(tensor, 1)


@_skippable
def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros."""
    return constant_(tensor, 0)


@_skippable
def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-d tensor with the identity matrix (ones on the diagonal, zeros elsewhere)."""
    if tensor.ndimension() != 2:
        raise ArgumentValueError(
            f"Only tensors with 2 dimensions are supported (got shape {tuple(tensor.shape)})")
    return _store_numpy(tensor, np.eye(*tensor.shape))


@_skippable
def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3-, 4- or 5-d conv weight with the Dirac delta: the convolution is the identity
    (on the first ``min(out, in)`` channels of each of ``groups`` groups)."""
    dims = tensor.ndimension()
    if dims not in (3, 4, 5):
        raise ArgumentValueError(
            f"Only tensors with 3, 4, or 5 dimensions are supported (got {dims})")
    sizes = tuple(tensor.shape)
    if sizes[0] % groups != 0:
        raise ArgumentValueError(f"dim 0 ({sizes[0]}) must be divisible by groups ({groups})")
    out_per_group = sizes[0] // groups
    out = np.zeros(sizes)
    centre = tuple(s // 2 for s in sizes[2:])
    for g in range(groups):
        for d in range(min(out_per_group, sizes[1])):
            out[(g * out_per_group + d, d) + centre] = 1
    return _store_numpy(tensor, out)


# ---------------------------------------------------------------------- scaled by fan
@_skippable
def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot uniform: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    return uniform_(tensor, -a, a, generator)


@_skippable
def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot normal: N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


@_skippable
def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """He uniform: U(-bound, bound) with ``bound = gain * sqrt(3 / fan)``.

    ``a`` is the negative slope of the leaky ReLU that follows (``nn.Linear`` and ``nn.Conv*d``
    use ``a=math.sqrt(5)``); ``mode`` picks ``fan_in`` (preserves forward variance) or
    ``fan_out`` (backward).
    """
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


@_skippable
def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None) -> Tensor:
    """He normal: N(0, std**2) with ``std = gain / sqrt(fan)``."""
    if 0 in tuple(tensor.shape):
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


@_skippable
def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix: rows (or columns) orthonormal, times ``gain``.

    Dimensions after the first are flattened, as in PyTorch. The QR of a Gaussian matrix is
    computed in float64 with NumPy.
    """
    if tensor.ndimension() < 2:
        raise ArgumentValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    be = tensor._backend
    flat = be.to_numpy(be.normal(_generator(generator), (rows, cols), 0.0, 1.0, float64))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))  # make the decomposition unique (and the result uniform)
    if rows < cols:
        q = q.T
    return _store_numpy(tensor, (q * gain).reshape(tuple(tensor.shape)))


@_skippable
def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator=None) -> Tensor:
    """Fill a 2-D tensor as a sparse matrix (Martens, 2010), as ``torch.nn.init.sparse_``: in
    each column, ``ceil(sparsity * rows)`` entries chosen at random are zero, the others drawn
    from N(0, std**2).

    >>> nn.init.sparse_(gradient.empty(8, 4), sparsity=0.25)    # two zeros in each column
    """
    _check_float("sparse_", tensor)
    if tensor.ndimension() != 2:
        raise ArgumentValueError("Only tensors with 2 dimensions are supported")
    if not 0.0 <= sparsity <= 1.0:
        raise ArgumentValueError(f"sparse_: sparsity must be in [0, 1], got {sparsity}")
    rows, cols = tensor.shape
    be = tensor._backend
    values = be.to_numpy(be.normal(_generator(generator), (rows, cols), 0.0, float(std), float64))
    order = be.to_numpy(be.uniform(_generator(generator), (rows, cols), 0.0, 1.0, float64))
    zeros = np.argsort(order, axis=0, kind="stable")[:math.ceil(sparsity * rows)]
    np.put_along_axis(values, zeros, 0.0, axis=0)
    return _store_numpy(tensor, values)


def _deprecated_alias(init_fn):
    """The name without the underscore that older PyTorch had (``nn.init.xavier_uniform``):
    the same function, with PyTorch's FutureWarning."""
    old = init_fn.__name__.rstrip("_")

    @functools.wraps(init_fn)
    def alias(*args, **kwargs):
        warnings.warn(f"nn.init.{old} is deprecated, as in PyTorch: use nn.init.{old}_",
                      FutureWarning, stacklevel=2)
        return init_fn(*args, **kwargs)
    alias.__name__ = alias.__qualname__ = old
    return alias


uniform = _deprecated_alias(uniform_)
normal = _deprecated_alias(normal_)
constant = _deprecated_alias(constant_)
eye = _deprecated_alias(eye_)
dirac = _deprecated_alias(dirac_)
xavier_uniform = _deprecated_alias(xavier_uniform_)
xavier_normal = _deprecated_alias(xavier_normal_)
kaiming_uniform = _deprecated_alias(kaiming_uniform_)
kaiming_normal = _deprecated_alias(kaiming_normal_)
orthogonal = _deprecated_alias(orthogonal_)
sparse = _deprecated_alias(sparse_)
