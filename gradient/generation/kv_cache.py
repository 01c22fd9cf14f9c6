"""A key/value cache for autoregressive decoding, preallocated once per generation.

A transformer decoding token by token recomputes nothing for earlier positions if it keeps their
keys and values. Growing the cache with a concatenation per token would copy the whole cache
every step (quadratic in the output length); instead every layer gets one buffer of
``max_length`` positions up front, new keys and values are written into the next free slots,
and attention reads a view of the filled part.

Layout: per layer, keys and values of shape ``(batch, n_kv_heads, max_length, head_dim)``. With
grouped-query attention the cache holds only the key/value heads; the attention op groups the
query heads against them without repeating K/V in memory.

Protocol (what a model's forward does with it)::

    k_all, v_all = cache.update(layer_index, k, v)   # k, v: (batch, n_kv_heads, T, head_dim)
    ...                                               # every layer, at the same offset
    cache.advance(T)                                  # once per forward, after the last layer

Example::

    >>> cache = KVCache(n_layers=12, batch_size=1, n_kv_heads=12, head_dim=64, max_length=256)
    >>> logits = model(prompt_ids, cache=cache).logits        # prefill: fills positions 0..T-1
    >>> logits = model(next_id, cache=cache).logits           # decode: one more position
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..autograd import capture_state
from ..dtypes import bfloat16, float16, float32
from ..errors import ArgumentValueError, ShapeError
from ..ops.creation import from_numpy, zeros
from ..tensor import Tensor

__all__ = ["KVCache"]


class KVCache:
    """Keys and values of every layer, in buffers allocated once for ``max_length`` positions.

    ``length`` is the number of positions stored so far (the offset of the next token).
    """

    def __init__(self, n_layers: int, batch_size: int, n_kv_heads: int, head_dim: int,
                 max_length: int, dtype=float32, device=None):
        shape = (batch_size, n_kv_heads, max_length, head_dim)
        self._stacked = None
        if dtype in (float32, float16, bfloat16) and (device is None or device == "cpu"):
            # every layer in one buffer (layer l a view of it), so that a compiled decode step
            # (gradient.capture.compiled) reaches all layers through one array
            self._stacked = (np.zeros((n_layers,) + shape, dtype.numpy),
                             np.zeros((n_layers,) + shape, dtype.numpy))
            self.keys = [from_numpy(a) for a in self._stacked[0]]
            self.values = [from_numpy(a) for a in self._stacked[1]]
        else:
            self.keys = [zeros(*shape, dtype=dtype, device=device) for _ in range(n_layers)]
            self.values = [zeros(*shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.max_length = max_length
        self.length = 0

    @property
    def n_layers(self) -> int:
        return len(self.keys)

    @property
    def batch_size(self) -> int:
        return self.keys[0].shape[0] if self.keys else 0

    def update(self, layer: int, key, value):
        """Write ``key``/``value`` (batch, n_kv_heads, T, head_dim) at positions ``length ..
        length+T-1`` of ``layer`` and return views of positions ``0 .. length+T-1``.

        The cache is inference state: the write is not recorded by autograd. A captured step
        (:mod:`gradient.capture`) replays the write at its own position.
        """
        if capture_state.current.recorder is not None:
            k, v = capture_state.run(KVCache.update_arrays, self, layer, key._data, value._data)
            return Tensor._make(k, False, key._backend), Tensor._make(v, False, value._backend)
        end = self._write(layer, key._data, value._data)
        return self.keys[layer].narrow(2, 0, end), self.values[layer].narrow(2, 0, end)

    def update_arrays(self, layer: int, key, value):
        """:meth:`update` on raw backend arrays, for decode paths that run on them: returns raw
        views ``(keys, values)`` of positions ``0 .. length+T-1``."""
        end = self._write(layer, key, value)
        index = (slice(None), slice(None), slice(0, end))
        k_buf, v_buf = self.keys[layer], self.values[layer]
        return k_buf._backend.getitem(k_buf._data, index), v_buf._backend.getitem(v_buf._data, index)

    def _write(self, layer: int, key, value) -> int:
        """Store the raw arrays ``key``/``value`` at the next positions of ``layer``; returns
        the end of the filled part."""
        start, end = self.length, self.length + key.shape[-2]
        if end > self.max_length:
            raise ShapeError(f"KVCache: {end} positions do not fit in a cache of max_length "
                             f"{self.max_length}; create the cache with a larger max_length "
                             "(prompt length + max_new_tokens)")
        k_buf, v_buf = self.keys[layer], self.values[layer]
        if tuple(key.shape[:2]) != tuple(k_buf.shape[:2]) or key.shape[-1] != k_buf.shape[-1]:
            raise ShapeError(f"KVCache: layer {layer} holds (batch, kv_heads, ., head_dim) = "
                             f"{tuple(k_buf.shape)}, got keys of shape {tuple(key.shape)}")
        # A direct storage write (what ``k_buf[:, :, start:end] = key`` does under no_grad,
        # without its indexing machinery: this runs twice per layer per decoded token).
        index = (slice(None), slice(None), slice(start, end))
        for buf, new in ((k_buf, key), (v_buf, value)):
            buf._backend.setitem(buf._data, index, new)
            buf._version.bump("KVCache.update")
        return end

    def stacked(self):
        """``(keys, values)``: NumPy arrays (layers, batch, n_kv_heads, max_length, head_dim)
        holding every layer (``cache.keys[l]`` is a view of ``keys[l]``), for float32, float16
        and bfloat16 caches on the CPU; None otherwise. Writers through them call :meth:`advance`
        as models do."""
        return self._stacked

    def advance(self, n: int) -> None:
        """Mark ``n`` more positions as filled (the model calls this once per forward)."""
        self.length += n

    def crop(self, length: int) -> None:
        """Forget every position from ``length`` on (for instance rejected draft tokens)."""
        if not 0 <= length <= self.length:
            raise ArgumentValueError(f"KVCache.crop: length must be between 0 and {self.length}, "
                                     f"got {length}")
        self.length = length

    def __repr__(self) -> str:
        shape = tuple(self.keys[0].shape) if self.keys else ()
        return (f"KVCache(n_layers={self.n_layers}, shape per layer={shape}, "
                f"length={self.length})")


# the compiled form of the write in a captured step compiled into a loop
# (gradient.kernels.lowering): the cache's buffers and length are read before each step
KVCache.update_arrays.lower = lambda cache, layer, key, value: kernels.lower(
    "kv_write", cache.keys[layer]._backend, cache, layer, key, value)
