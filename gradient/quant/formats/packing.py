"""Integer codes packed into int32 words, as the quantized checkpoint formats store them.

GPTQ, AWQ and compressed-tensors all put ``32 / bits`` codes in each little-endian int32 word,
code ``i`` of a word in bits ``bits * i`` up; they differ in which axis of the weight the words
run along and, for AWQ, in the order of the codes within a word. These two functions are the
whole of that arithmetic; the formats say which axis and which order.

Example::

    >>> words = pack_words(codes, bits=4, axis=0)          # (k, n) codes -> (k / 8, n) int32
    >>> np.array_equal(unpack_words(words, 4, axis=0), codes)
    True
"""

from __future__ import annotations

import numpy as np

from ...errors import ShapeError

__all__ = ["pack_words", "unpack_words"]


def _per_word(bits: int) -> int:
    if bits not in (2, 4, 8):
        raise ValueError(f"packed checkpoints: {bits}-bit codes do not fill int32 words evenly "
                         f"(2, 4 or 8 bits are read)")
    return 32 // bits


def pack_words(codes, bits: int, axis: int, order=None) -> np.ndarray:
    """Codes (integers 0 .. 2^bits - 1, 2-d) packed ``32 / bits`` to an int32 word along
    ``axis``; ``order[i]``: which of a word's codes goes in position ``i`` (default: code ``i``).
    """
    per = _per_word(bits)
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[axis] % per:
        raise ShapeError(f"pack_words: expected 2-d codes whose axis {axis} is a multiple of "
                         f"{per}, got shape {codes.shape}")
    c = np.moveaxis(codes.astype(np.uint32), axis, -1)
    c = c.reshape(c.shape[0], -1, per)
    if order is not None:
        c = c[..., list(order)]
    words = np.zeros(c.shape[:2], np.uint32)
    for i in range(per):
        words |= c[..., i] << np.uint32(bits * i)
    return np.ascontiguousarray(np.moveaxis(words.view(np.int32), -1, axis))


def unpack_words(words, bits: int, axis: int, order=None) -> np.ndarray:
    """The inverse of :func:`pack_words`: uint8 codes, ``32 / bits`` times as many along
    ``axis``."""
    per = _per_word(bits)
    w = np.asarray(words)
    if w.ndim != 2 or w.dtype.itemsize != 4:
        raise ShapeError(f"unpack_words: expected 2-d int32 words, got {w.dtype} {w.shape}")
    w = np.moveaxis(w.view(np.uint32), axis, -1)
    shifts = (np.arange(per, dtype=np.uint32) * np.uint32(bits))
    c = ((w[..., None] >> shifts) & np.uint32((1 << bits) - 1)).astype(np.uint8)
    if order is not None:
        c = c[..., np.argsort(order)]
    c = c.reshape(c.shape[0], -1)
    return np.ascontiguousarray(np.moveaxis(c, -1, axis))
