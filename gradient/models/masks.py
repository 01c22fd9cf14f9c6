"""The attention mask of a decoder: causal, optionally with padding, a KV-cache offset and a
sliding window, as one boolean tensor that ``scaled_dot_product_attention`` takes.

Query ``i`` of a forward of ``T`` new tokens sits at position ``past + i`` (``past`` tokens
are already in the KV cache). It may attend to key position ``j`` when

* ``j <= past + i`` (causal),
* ``j > past + i - window`` (sliding window, Mistral), and
* ``attention_mask[b, j] == 1`` (key ``j`` of sequence ``b`` is not padding).

When none of that hides anything beyond plain causality, :func:`decoder_mask` returns ``None``
and the caller uses ``is_causal`` (T == S) or no mask at all (one new token sees everything);
for several new tokens after a cache it returns ``causal_lower_right(T, past + T)``, a
:class:`~gradient.ops.causal_bias.CausalBias`: no tensor, and a shape that does not change
with ``past``, so a model may replay a captured step of T tokens at every position.

Example::

    >>> mask = decoder_mask(attention_mask, T=1, past=10)     # (B, 1, 1, 11) or None
"""

from __future__ import annotations

import numpy as np

from ..dtypes import bool_
from ..ops.causal_bias import CausalBias, RowPrefixBias, causal_lower_right
from ..ops.creation import arange
from ..tensor import Tensor
from ..errors import ArgumentValueError

__all__ = ["decoder_mask"]


def decoder_mask(attention_mask: Tensor | None, T: int, past: int = 0,
                 window: int | None = None, device=None) -> Tensor | CausalBias | None:
    """A boolean ``(B or 1, 1, T, past + T)`` mask (True = may attend), or ``None`` when plain
    causal attention (``past == 0``) or no mask (``T == 1``, nothing hidden) is exact, or
    ``causal_lower_right(T, past + T)`` when causality after the cache is all there is, or a
    :class:`~gradient.ops.causal_bias.RowPrefixBias` for one new token per row whose padding
    mask is a prefix of each row (sequences at different lengths in one batch). A
    ``RowPrefixBias`` given as ``attention_mask`` (a paged KV cache's ``PagedRows``) is
    returned as it is.

    ``attention_mask`` is ``(B, past + T)`` of 1 (token) and 0 (padding), as in transformers.
    On the CPU a mask without any 0 is dropped; on an accelerator it is used as given, since
    looking for a 0 would bring a value back to the host (a synchronisation) at every forward:
    pass ``attention_mask=None`` there when nothing is padded (``generate`` does).
    """
    if isinstance(attention_mask, RowPrefixBias):      # a batch cache's own (PagedRows)
        if T != 1 or (window is not None and attention_mask.seq_len_kv > window):
            raise ArgumentValueError(
                f"a {type(attention_mask).__name__} is the mask of one new token "
                "per row, with no sliding window reached")
        return attention_mask
    S = past + T
    padded = attention_mask is not None and (attention_mask._backend.name != "cpu"
                                             or not bool((attention_mask != 0).all()))
    windowed = window is not None and S > window
    if not padded and not windowed:
        return None if past == 0 or T == 1 else causal_lower_right(T, S)
    rows = _row_prefixes(attention_mask, S) if T == 1 and not windowed else None
    if rows is not None:
        return rows
    if attention_mask is not None and tuple(attention_mask.shape[-1:]) != (S,):
        raise ArgumentValueError(
            f"attention_mask covers {attention_mask.shape[-1]} positions, but the "
            f"cache holds {past} and the input adds {T}: pass a mask over all "
            f"{S} positions (the cached ones too)")
    query_pos = arange(past, S, device=device).reshape(T, 1)
    key_pos = arange(S, device=device).reshape(1, S)
    allowed = key_pos <= query_pos
    if windowed:
        allowed = allowed & (key_pos > query_pos - window)
    allowed = allowed.reshape(1, 1, T, S)
    if padded:
        allowed = allowed & (attention_mask != 0).reshape(-1, 1, 1, S)
    return allowed.to(bool_) if allowed.dtype is not bool_ else allowed


def _row_prefixes(attention_mask: Tensor | None, S: int) -> RowPrefixBias | None:
    """A (B, S) mask on the CPU whose rows each hold 1s then 0s (a batch of sequences at
    different lengths, as a server's batch cache gives it), as a RowPrefixBias; else None."""
    if (attention_mask is None or attention_mask._backend.name != "cpu"
            or tuple(attention_mask.shape[1:]) != (S,) or attention_mask.ndim != 2):
        return None
    return RowPrefixBias.of_mask(np.asarray(attention_mask._data) != 0)
