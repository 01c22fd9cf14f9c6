"""Integer codes packed into int32 words, as the quantized checkpoint formats store them.

GPTQ, AWQ and compressed-tensors all write the codes along one axis of the weight as a
little-endian bit stream: code ``i`` in bits ``bits * i`` up, counting across the words, so a
code of 3 bits may straddle two words (32 codes fill exactly ``bits`` words). For 2, 4 and 8
bits that is ``32 / bits`` codes to a word, none straddling. They differ in which axis the
words run along and, for AWQ, in the order of the codes within a word; compressed-tensors
before its dense packing put ``32 // bits`` codes in each word and left the top bits empty
(``dense=False``: ten 3-bit codes a word). These two functions are the whole of that
arithmetic; the formats say which axis and which order.

Example::

    >>> words = pack_words(codes, bits=3, axis=0)         # (64, n) codes -> (6, n) int32
    >>> np.array_equal(unpack_words(words, 3, axis=0), codes)
    True
"""

from __future__ import annotations

import numpy as np

from ...errors import ArgumentValueError, ShapeError

__all__ = ["pack_words", "unpack_words", "packed_length"]


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 8:
        raise ArgumentValueError(f"packed checkpoints: codes of 1 to 8 bits are read, got {bits}")


def _straddles(bits: int, dense: bool) -> bool:
    """Whether codes cross word boundaries: dense packing of a width that does not divide 32."""
    return dense and 32 % bits != 0


def packed_length(count: int, bits: int, dense: bool = True) -> int:
    """How many words hold ``count`` codes of ``bits`` bits (the last one padded with zeros)."""
    _check_bits(bits)
    if _straddles(bits, dense):
        return -(-count * bits // 32)
    return -(-count // (32 // bits))


def pack_words(codes, bits: int, axis: int, order=None, dense: bool = True) -> np.ndarray:
    """Codes (integers 0 .. 2^bits - 1, 2-d) packed into int32 words along ``axis``, the last
    word filled up with zero codes; ``order[i]``: which of a word's codes goes in position
    ``i`` (default: code ``i``; only for widths that divide 32); ``dense=False``: ``32 // bits``
    codes to a word, the top bits empty.
    """
    _check_bits(bits)
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ShapeError(f"pack_words: expected 2-d codes, got shape {codes.shape}")
    c = np.moveaxis(codes, axis, -1)
    rows, count = c.shape
    if _straddles(bits, dense):
        if order is not None:
            raise ArgumentValueError(
                f"pack_words: {bits}-bit codes straddle words; they have no order "
                f"within a word")
        words = _pack_stream(c, bits)
    else:
        per = 32 // bits
        c = _pad(c.astype(np.uint32), per)
        c = c.reshape(rows, c.shape[1] // per, per)
        if order is not None:
            c = c[..., list(order)]
        words = np.zeros(c.shape[:2], np.uint32)
        for i in range(per):
            words |= c[..., i] << np.uint32(bits * i)
    words = words[:, :packed_length(count, bits, dense)]
    return np.ascontiguousarray(np.moveaxis(words.view(np.int32), -1, axis))


def unpack_words(words, bits: int, axis: int, order=None, dense: bool = True,
                 count: int | None = None) -> np.ndarray:
    """The inverse of :func:`pack_words`: uint8 codes along ``axis``, ``count`` of them
    (default: as many as the words hold whole)."""
    _check_bits(bits)
    w = np.asarray(words)
    if w.ndim != 2 or w.dtype.kind not in "iu" or w.dtype.itemsize != 4:
        raise ShapeError(f"unpack_words: expected 2-d int32 words, got {w.dtype} {w.shape}")
    w = np.moveaxis(w.view(np.uint32), axis, -1)
    length = w.shape[-1]
    if _straddles(bits, dense):
        if order is not None:
            raise ArgumentValueError(
                f"unpack_words: {bits}-bit codes straddle words; they have no "
                f"order within a word")
        c = _unpack_stream(w, bits)
        whole = length * 32 // bits
    else:
        per = 32 // bits
        shifts = np.arange(per, dtype=np.uint32) * np.uint32(bits)
        c = ((w[..., None] >> shifts) & np.uint32((1 << bits) - 1)).astype(np.uint8)
        if order is not None:
            c = c[..., np.argsort(order)]
        c = c.reshape(c.shape[0], length * per)
        whole = length * per
    count = whole if count is None else int(count)
    if not 0 <= count <= whole or packed_length(count, bits, dense) != length:
        raise ShapeError(f"unpack_words: {length} words of {bits}-bit codes do not hold "
                         f"{count} codes")
    return np.ascontiguousarray(np.moveaxis(c[:, :count], -1, axis))


def _pad(c: np.ndarray, multiple: int) -> np.ndarray:
    extra = -c.shape[-1] % multiple
    return np.pad(c, ((0, 0), (0, extra))) if extra else c


def _pack_stream(c: np.ndarray, bits: int) -> np.ndarray:
    """(rows, count) codes as the dense bit stream: each 32 codes in ``bits`` words."""
    c = _pad(c.astype(np.uint64), 32)
    c = c.reshape(c.shape[0], c.shape[1] // 32, 32)
    words = np.zeros(c.shape[:2] + (bits,), np.uint64)
    for i in range(32):
        word, shift = divmod(bits * i, 32)
        words[..., word] |= c[..., i] << np.uint64(shift)
        if shift + bits > 32:                  # the high bits go to the next word's bottom
            words[..., word + 1] |= c[..., i] >> np.uint64(32 - shift)
    words &= np.uint64(0xFFFFFFFF)
    return words.astype(np.uint32).reshape(c.shape[0], c.shape[1] * bits)


def _unpack_stream(w: np.ndarray, bits: int) -> np.ndarray:
    """(rows, words) of the dense bit stream as (rows, 32 * words / bits) uint8 codes."""
    w = _pad(w, bits).astype(np.uint64)
    w = w.reshape(w.shape[0], w.shape[1] // bits, bits)
    codes = np.empty(w.shape[:2] + (32,), np.uint8)
    mask = np.uint64((1 << bits) - 1)
    for i in range(32):
        word, shift = divmod(bits * i, 32)
        code = w[..., word] >> np.uint64(shift)
        if shift + bits > 32:
            code |= w[..., word + 1] << np.uint64(32 - shift)
        codes[..., i] = code & mask
    return codes.reshape(w.shape[0], w.shape[1] * 32)
