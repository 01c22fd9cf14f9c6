"""Fractional max pooling (Graham, 2014), as ``torch.nn.functional.fractional_max_pool2d``
and ``3d``: max pooling whose windows (of a fixed ``kernel_size``) start at pseudo-random
positions chosen so that an input of size ``n`` shrinks to any ``output_size`` (or
``output_ratio * n``), not only to ``n / stride``.

Each (sample, channel) plane draws one number ``u`` in [0, 1) per pooled dimension
(``_random_samples``, shape (N, C, d); drawn from gradient's generator when not given). Along a
dimension of input size ``n``, output size ``m`` and kernel ``k``, with ``alpha = (n - k) / (m -
1)`` computed in the input's dtype, window ``i < m - 1`` starts at ``int((i + u) * alpha) -
int(u * alpha)`` and the last at ``n - k``: PyTorch's sequence, so the same samples give the
same windows, values and indices. The samples' order is PyTorch's: (width, height) in 2-d,
(time, height, width) in 3-d. ``return_indices`` gives each maximum's position in its input
plane, flattened (as ``max_pool2d``'s, for ``max_unpool2d``).

Example::

    >>> y = F.fractional_max_pool2d(gradient.randn(1, 3, 10, 10), 2, output_size=(7, 7))
"""

from __future__ import annotations

import numpy as np

from ..dtypes import int64
from ..errors import ArgumentValueError, ShapeError
from ..tensor import Tensor
from .conv import _ntuple
from .creation import rand, tensor
from .reduce import max as _max
from .shape import reshape

__all__ = ["fractional_max_pool2d", "fractional_max_pool3d",
           "fractional_max_pool2d_with_indices", "fractional_max_pool3d_with_indices"]
TENSOR_METHODS = ()


def _window_starts(samples: np.ndarray, n: int, m: int, k: int, dtype) -> np.ndarray:
    """Start of each of the ``m`` windows per plane, for the planes' ``samples`` (any shape)."""
    starts = np.empty(samples.shape + (m,), np.int64)
    if m > 1:
        alpha = dtype.type(n - k) / dtype.type(m - 1)
        i = np.arange(m - 1, dtype=dtype)
        u = samples[..., None].astype(dtype)
        starts[..., :-1] = ((i + u) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)
    starts[..., -1] = n - k
    return starts


def _fractional_max_pool(d, input, kernel_size, output_size, output_ratio, return_indices,
                         _random_samples, name):
    if input.ndim not in (d + 1, d + 2):
        raise ShapeError(f"{name}: expected a {d + 1}-d (unbatched) or {d + 2}-d input, got "
                         f"shape {tuple(input.shape)}")
    batched = input.ndim == d + 2
    x = input if batched else reshape(input, (1,) + tuple(input.shape))
    n_batch, channels = x.shape[0], x.shape[1]
    sizes = tuple(x.shape[2:])
    kernel = _tuple(kernel_size, d, "kernel_size", name)
    if (output_size is None) == (output_ratio is None):
        raise ArgumentValueError(f"{name}: give exactly one of output_size and output_ratio")
    if output_size is not None:
        out = _tuple(output_size, d, "output_size", name)
    else:
        ratio = output_ratio if isinstance(output_ratio, (tuple, list)) else (output_ratio,) * d
        if len(ratio) != d or not all(0 < r < 1 for r in ratio):
            raise ArgumentValueError(f"{name}: output_ratio must be {d} numbers in (0, 1), got "
                                     f"{output_ratio!r}")
        out = tuple(int(s * r) for s, r in zip(sizes, ratio))
    for s, m, k in zip(sizes, out, kernel):
        if m + k - 1 > s:
            raise ShapeError(f"{name}: output size {m} with kernel {k} needs an input of at "
                             f"least {m + k - 1}, got {s}")
    if _random_samples is None:
        _random_samples = rand(n_batch, channels, d, dtype=input.dtype, device=input.device)
    samples = _random_samples.detach().cpu().numpy()
    if samples.shape != (n_batch, channels, d):
        raise ShapeError(f"{name}: _random_samples must have shape {(n_batch, channels, d)}, "
                         f"got {samples.shape}")
    # PyTorch's order of the samples: (w, h) in 2-d, (t, h, w) in 3-d
    order = (1, 0) if d == 2 else (0, 1, 2)
    dtype = np.dtype(input.dtype.numpy) if input.dtype.is_floating_point else np.float32
    starts = [_window_starts(samples[..., order[a]], sizes[a], out[a], kernel[a], dtype)
              for a in range(d)]                      # each (N, C, out[a])
    # every element of every window: (N, C, *out, *kernel) positions per axis
    index = [np.arange(n_batch)[(slice(None),) + (None,) * (2 * d + 1)],
             np.arange(channels)[(None, slice(None)) + (None,) * (2 * d)]]
    for a in range(d):
        at = [None] * (2 * d)
        at[a] = slice(None)
        start = starts[a][(slice(None), slice(None)) + tuple(at)]
        at = [None] * (2 * d)
        at[d + a] = slice(None)
        offset = np.arange(kernel[a])[(None, None) + tuple(at)]
        index.append(start + offset)
    index = np.broadcast_arrays(*index)
    windows = x[tuple(tensor(i, dtype=int64, device=x.device) for i in index)]
    windows = reshape(windows, (n_batch, channels) + out + (-1,))
    values, which = _max(windows, -1)
    result = values if batched else reshape(values, tuple(values.shape[1:]))
    if not return_indices:
        return result
    flat = np.zeros(index[2].shape, np.int64)
    for a in range(d):
        flat = flat * sizes[a] + index[2 + a]
    flat = flat.reshape((n_batch, channels) + out + (-1,))
    chosen = np.take_along_axis(flat, which.cpu().numpy()[..., None].astype(np.int64), -1)[..., 0]
    indices = tensor(chosen, dtype=int64, device=input.device)
    return result, indices if batched else reshape(indices, tuple(indices.shape[1:]))


def _tuple(value, d: int, what: str, name: str) -> tuple:
    """:func:`~.conv._ntuple`'s reading of a size, which must also be positive."""
    value = _ntuple(value, d, what, name)
    if min(value) < 1:
        raise ArgumentValueError(f"{name}: {what} must be positive, got {value!r}")
    return value


def fractional_max_pool2d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None):
    """Fractional max pooling of (N, C, H, W) or (C, H, W) (see the module docstring)."""
    return _fractional_max_pool(2, input, kernel_size, output_size, output_ratio,
                                return_indices, _random_samples, "fractional_max_pool2d")


def fractional_max_pool3d(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                          return_indices: bool = False, _random_samples=None):
    """Fractional max pooling of (N, C, T, H, W) or (C, T, H, W)."""
    return _fractional_max_pool(3, input, kernel_size, output_size, output_ratio,
                                return_indices, _random_samples, "fractional_max_pool3d")


def fractional_max_pool2d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = True, _random_samples=None):
    return fractional_max_pool2d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)


def fractional_max_pool3d_with_indices(input, kernel_size, output_size=None, output_ratio=None,
                                       return_indices: bool = True, _random_samples=None):
    return fractional_max_pool3d(input, kernel_size, output_size, output_ratio, True,
                                 _random_samples)
