"""Causal masks as objects, as ``torch.nn.attention.bias``: :func:`causal_upper_left` and
:func:`causal_lower_right` give a :class:`CausalBias` that ``scaled_dot_product_attention``
takes as its ``attn_mask`` without a mask tensor being made.

Upper left is ``is_causal=True``'s alignment: query i sees keys 0 .. i. Lower right aligns
the last query with the last key: query i of L sees keys 0 .. S - L + i, which is what L new
tokens after S - L cached ones see (a prompt prefilled in pieces, drafted tokens checked by
speculative decoding). Known to be causal, that attention runs the decode kernels on the CPU,
and since the object's shape is not a tensor's, a captured decode step of several tokens can
be replayed at every position.

:class:`RowPrefixBias` is gradient's own: one new token per sequence of a batch whose
sequences sit at different lengths (a server's continuous batching), row b seeing its first
``lengths[b]`` keys. It runs the ragged decode kernel, and its lengths are data, not a shape:
a captured batched step replays with each step's lengths. :class:`PagedRows` is the same for
a paged KV cache: the rows' keys and values lie in blocks of a pool, listed by block tables.

Example::

    >>> from gradient.nn.attention.bias import causal_lower_right
    >>> F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(L, S))
"""

from __future__ import annotations

import enum

import numpy as np

from ..errors import ArgumentTypeError, ArgumentValueError, ShapeError

__all__ = ["CausalVariant", "CausalBias", "causal_upper_left", "causal_lower_right",
           "RowPrefixBias", "PagedRows"]


class CausalVariant(enum.IntEnum):
    """Where the causal triangle is anchored (``torch.nn.attention.bias.CausalVariant``)."""
    UPPER_LEFT = 1
    LOWER_RIGHT = 2


class CausalBias:
    """A causal mask of ``seq_len_q`` queries against ``seq_len_kv`` keys, aligned as
    ``variant`` says (see the module docstring)."""

    def __init__(self, variant: CausalVariant, seq_len_q: int, seq_len_kv: int):
        if not isinstance(variant, CausalVariant):
            raise ArgumentTypeError(
                f"CausalBias: variant must be a CausalVariant, got {variant!r}")
        self.variant, self.seq_len_q, self.seq_len_kv = variant, int(seq_len_q), int(seq_len_kv)

    @property
    def shape(self) -> tuple:
        return (self.seq_len_q, self.seq_len_kv)

    def check(self, L: int, S: int, fn: str) -> None:
        if (L, S) != self.shape:
            raise ShapeError(f"{fn}: the CausalBias is for {self.seq_len_q} queries and "
                             f"{self.seq_len_kv} keys, got {L} and {S}")

    def keys_seen_by_first_query(self) -> int:
        """How many keys query 0 sees: 1 (upper left), S - L + 1 (lower right)."""
        if self.variant is CausalVariant.UPPER_LEFT:
            return 1
        return self.seq_len_kv - self.seq_len_q + 1

    def _materialize(self, device=None):
        """The mask as a boolean ``(L, S)`` tensor (True = may attend)."""
        from .creation import arange
        L, S = self.shape
        rows = arange(L, device=device).reshape(L, 1) + (self.keys_seen_by_first_query() - 1)
        return arange(S, device=device).reshape(1, S) <= rows

    def __repr__(self) -> str:
        return (f"CausalBias(variant={self.variant.name}, seq_len_q={self.seq_len_q}, "
                f"seq_len_kv={self.seq_len_kv})")


def causal_upper_left(*size) -> CausalBias:
    """Query i sees keys 0 .. i (``is_causal=True``'s mask). ``size``: (L, S)."""
    return CausalBias(CausalVariant.UPPER_LEFT, *_size(size))


def causal_lower_right(*size) -> CausalBias:
    """Query i of L sees keys 0 .. S - L + i: L new tokens after S - L cached. ``size``:
    (L, S)."""
    return CausalBias(CausalVariant.LOWER_RIGHT, *_size(size))


def _size(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    if len(size) != 2:
        raise ArgumentValueError(f"a causal bias takes two sizes (queries, keys), got {size!r}")
    return size


class RowPrefixBias:
    """One query row per sequence, row b seeing keys ``0 .. lengths[b] - 1`` of the ``S``
    positions (``lengths``: int64, each in 1 .. S): what a batch of sequences at different
    lengths sees at a decode step. Made by :func:`~gradient.models.masks.decoder_mask` from a
    padding mask of that shape."""

    def __init__(self, lengths, seq_len_kv: int):
        self.lengths = np.ascontiguousarray(lengths, np.int64)
        self.seq_len_kv = int(seq_len_kv)

    @classmethod
    def of_mask(cls, held: np.ndarray) -> "RowPrefixBias | None":
        """The bias of a boolean ``(B, S)`` array whose rows each hold Trues then Falses, every
        row at least one True; None for any other mask."""
        S = held.shape[1]
        lengths = held.sum(axis=1)
        if not lengths.all() or not (held == (np.arange(S)[None, :] < lengths[:, None])).all():
            return None
        return cls(lengths, S)

    def check(self, B: int, L: int, S: int, fn: str) -> None:
        if L != 1 or S != self.seq_len_kv or B != len(self.lengths):
            raise ShapeError(f"{fn}: the RowPrefixBias is for one query in each of "
                             f"{len(self.lengths)} rows against {self.seq_len_kv} keys, got "
                             f"{B} rows of {L} queries against {S} keys")

    def _materialize(self, device=None):
        """The mask as a boolean ``(B, 1, 1, S)`` tensor (True = may attend)."""
        from .creation import tensor
        allowed = np.arange(self.seq_len_kv)[None, :] < self.lengths[:, None]
        return tensor(allowed.reshape(len(self.lengths), 1, 1, self.seq_len_kv), device=device)

    def __repr__(self) -> str:
        return f"RowPrefixBias(lengths={self.lengths.tolist()}, seq_len_kv={self.seq_len_kv})"


class PagedRows(RowPrefixBias):
    """A :class:`RowPrefixBias` whose rows' keys and values lie in blocks of ``block_size``
    positions of a pool (a paged KV cache, :class:`~gradient.generation.PagedKVCache`): row
    b's position j is in block ``tables[b, j // block_size]``, at ``j % block_size``.
    ``scaled_dot_product_attention`` given it as ``attn_mask`` takes the pools as its key and
    value: values ``(n_blocks, heads, block_size, head_dim)``, keys ``(n_blocks, heads,
    head_dim, block_size)`` (each block's keys transposed); a model's forward passes it
    through as the attention mask of a one-token step."""

    def __init__(self, lengths, tables, block_size: int):
        lengths = np.ascontiguousarray(lengths, np.int64)
        super().__init__(lengths, int(lengths.max()) if lengths.size else 0)
        self.tables = np.ascontiguousarray(tables, np.int64)
        self.block_size = int(block_size)

    def __repr__(self) -> str:
        blocks = [t[:-(-n // self.block_size)].tolist() for t, n in zip(self.tables, self.lengths)]
        return (f"PagedRows(lengths={self.lengths.tolist()}, block_size={self.block_size}, "
                f"blocks={blocks})")
