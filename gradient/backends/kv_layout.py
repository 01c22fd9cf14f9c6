"""Where a KV cache's keys live: the layout the decode-attention kernels read in place.

A :class:`~gradient.generation.KVCache` keeps each layer's keys (and values) in one C-contiguous
buffer ``(batch, heads, max_len, head_dim)`` and hands attention the view ``buffer[:, :, :length]``.
A kernel that reads the cache in place takes the whole buffer back as one array (its row pitch,
``max_len``, comes from the view's strides) and reads only the first ``length`` positions.

Example::

    >>> buffer = np.zeros((1, 4, 32, 8), np.float32)
    >>> cache_buffer(buffer[:, :, :5], np.lib.stride_tricks.as_strided).shape
    (1, 4, 32, 8)
"""

from __future__ import annotations


def cache_buffer(a, as_strided):
    """The whole C-contiguous (batch, heads, max_len, dim) buffer whose first ``length``
    positions the 4-d array ``a`` (batch, heads, length, dim) is, made with the array library's
    ``as_strided`` (NumPy's or CuPy's); None for another layout."""
    if a.ndim != 4:
        return None
    batch, heads, length, dim = a.shape
    item = a.dtype.itemsize
    if a.strides[3] != item or a.strides[2] != dim * item or a.strides[1] % (dim * item):
        return None
    max_len = a.strides[1] // (dim * item)
    if max_len < length or (batch > 1 and a.strides[0] != heads * max_len * dim * item):
        return None
    return as_strided(a, (batch, heads, max_len, dim),
                      (heads * max_len * dim * item, max_len * dim * item, dim * item, item))
