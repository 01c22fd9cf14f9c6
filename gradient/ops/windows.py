"""Window functions for signal processing: hann, hamming, blackman, bartlett, kaiser.

Each gives ``window_length`` samples. ``periodic=True`` (PyTorch's default) returns the first
``window_length`` samples of the symmetric window one longer, the form spectral analysis
(``stft``) wants; ``periodic=False`` returns the symmetric window itself.

Example::

    >>> gradient.hann_window(4)                   # tensor([0.0000, 0.5000, 1.0000, 0.5000])
    >>> gradient.hann_window(4, periodic=False)   # tensor([0.0000, 0.7500, 0.7500, 0.0000])
"""

from __future__ import annotations

import math as _math

from ..dtypes import as_dtype, get_default_dtype
from ..errors import ArgumentValueError, DTypeError
from ..tensor import Tensor
from .creation import arange, ones
from .elementwise import abs as _abs, cos, sqrt
from .special import i0

__all__ = ["hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"]
TENSOR_METHODS = ()


def _window(name: str, window_length: int, periodic: bool, dtype, device, requires_grad, shape):
    """``shape(n, N)`` at the sample positions n = 0..N-1 of the symmetric window of N points."""
    if window_length < 0:
        raise ArgumentValueError(f"{name} requires non-negative window_length, got window_length="
                                 f"{window_length}")
    dtype = as_dtype(dtype) if dtype is not None else get_default_dtype()
    if not dtype.is_floating_point:
        raise DTypeError(f"{name} expects floating point dtypes, got: {dtype}")
    if window_length <= 1:
        return ones(window_length, dtype=dtype, device=device, requires_grad=requires_grad)
    length = window_length + 1 if periodic else window_length
    n = arange(window_length, dtype=dtype, device=device)
    out = shape(n, length)
    return out.detach().requires_grad_(requires_grad)


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54,
                   beta: float = 0.46, *, dtype=None, layout=None, device=None,
                   requires_grad: bool = False) -> Tensor:
    """``alpha - beta * cos(2 pi n / (N - 1))``: ``gradient.hamming_window(8)``."""
    return _window("hamming_window", window_length, periodic, dtype, device, requires_grad,
                   lambda n, N: alpha - beta * cos(n * (2 * _math.pi / (N - 1))))


def hann_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None,
                device=None, requires_grad: bool = False) -> Tensor:
    """``0.5 - 0.5 * cos(2 pi n / (N - 1))`` (a Hamming window with alpha = beta = 0.5):
    ``gradient.hann_window(8)``."""
    return _window("hann_window", window_length, periodic, dtype, device, requires_grad,
                   lambda n, N: 0.5 - 0.5 * cos(n * (2 * _math.pi / (N - 1))))


def blackman_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None,
                    device=None, requires_grad: bool = False) -> Tensor:
    """``0.42 - 0.5 cos(2 pi n / (N - 1)) + 0.08 cos(4 pi n / (N - 1))``:
    ``gradient.blackman_window(8)``."""
    return _window("blackman_window", window_length, periodic, dtype, device, requires_grad,
                   lambda n, N: 0.42 - 0.5 * cos(n * (2 * _math.pi / (N - 1)))
                   + 0.08 * cos(n * (4 * _math.pi / (N - 1))))


def bartlett_window(window_length: int, periodic: bool = True, *, dtype=None, layout=None,
                    device=None, requires_grad: bool = False) -> Tensor:
    """The triangle ``1 - |2n / (N - 1) - 1|``: ``gradient.bartlett_window(8)``."""
    return _window("bartlett_window", window_length, periodic, dtype, device, requires_grad,
                   lambda n, N: 1 - _abs(n * (2 / (N - 1)) - 1))


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *, dtype=None,
                  layout=None, device=None, requires_grad: bool = False) -> Tensor:
    """``I0(beta * sqrt(1 - ((n - c) / c)**2)) / I0(beta)`` with c = (N - 1) / 2 and I0 the
    modified Bessel function of order 0: ``gradient.kaiser_window(8, beta=6.0)``."""
    def shape(n, N):
        c = (N - 1) / 2
        r = (n - c) / c
        return i0(beta * sqrt((1 - r * r).clamp(min=0))) / float(i0(n.new_tensor(beta)))
    return _window("kaiser_window", window_length, periodic, dtype, device, requires_grad, shape)
