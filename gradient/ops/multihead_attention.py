"""Multi-head attention as a function, as ``torch.nn.functional.multi_head_attention_forward``.

``nn.MultiheadAttention`` is this function over its parameters; programs that keep the
projections in modules of their own call it directly (CLIP's attention pooling does, with
``use_separate_proj_weight=True``). Inputs are sequence first, (L, N, E), or unbatched (L, E).

Masks follow PyTorch's MultiheadAttention convention, the opposite of
``F.scaled_dot_product_attention``'s: a True entry in a boolean ``attn_mask`` or
``key_padding_mask`` means "do not attend"; a float mask is added to the scores.

Example::

    >>> import gradient.nn.functional as F
    >>> L, N, E, H = 5, 2, 16, 4
    >>> x = gradient.randn(L, N, E)
    >>> w, b = gradient.randn(3 * E, E), gradient.zeros(3 * E)
    >>> out, weights = F.multi_head_attention_forward(
    ...     x, x, x, E, H, w, b, None, None, False, 0.0,
    ...     gradient.randn(E, E), gradient.zeros(E))
    >>> out.shape, weights.shape
    (gradient.Size([5, 2, 16]), gradient.Size([2, 5, 5]))
"""

from __future__ import annotations

import math

from ..dtypes import bool_
from ..errors import ArgumentValueError, DTypeError, ShapeError
from ..tensor import Tensor
from .attention import scaled_dot_product_attention
from .conv import pad
from .creation import zeros
from .nn import dropout, linear, softmax
from .shape import cat

__all__ = ["multi_head_attention_forward"]

_FN = "multi_head_attention_forward"


def multi_head_attention_forward(
        query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
        in_proj_weight, in_proj_bias, bias_k, bias_v, add_zero_attn: bool, dropout_p: float,
        out_proj_weight: Tensor, out_proj_bias, training: bool = True, key_padding_mask=None,
        need_weights: bool = True, attn_mask=None, use_separate_proj_weight: bool = False,
        q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None,
        static_v=None, average_attn_weights: bool = True, is_causal: bool = False):
    """``out_proj(concat_h softmax(q_h k_h^T / sqrt(d) + mask) v_h)``; returns
    ``(output, weights or None)``.

    ``query`` (L, N, E), ``key``/``value`` (S, N, kdim/vdim), or all unbatched. The input
    projections are ``in_proj_weight`` (3E, E) (rows for q, then k, then v) or, with
    ``use_separate_proj_weight=True``, ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``;
    ``in_proj_bias`` (3E,). ``bias_k``/``bias_v`` (1, 1, E) append one learned key/value,
    ``add_zero_attn`` one zero key/value. ``static_k``/``static_v`` (N * num_heads, S, E / num_heads)
    replace the projected keys/values. ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or
    (N * num_heads, L, S): True (or -inf) masks. Dropout applies only when ``training``. The
    weights (N, L, S), averaged over heads unless ``average_attn_weights=False``
    (N, num_heads, L, S), are returned when ``need_weights``.
    """
    batched = _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = map_aliased(lambda t: t.unsqueeze(1), query, key, value)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    L, N, E = query.shape
    if E != embed_dim_to_check:
        raise ShapeError(f"{_FN}: expected query's embedding dimension (last) to be "
                         f"{embed_dim_to_check}, got {E} (query shape {tuple(query.shape)})")
    H = num_heads
    D = E // H
    if D * H != E:
        raise ShapeError(f"{_FN}: embed_dim {E} is not divisible by num_heads {H}")

    key_padding_mask = _additive_mask(key_padding_mask, "key_padding_mask", query.dtype)
    if is_causal and attn_mask is None:
        raise ArgumentValueError(
            f"{_FN}: is_causal=True is a hint that attn_mask is the causal mask, so "
            "attn_mask is needed too (as in PyTorch); pass e.g. "
            "gradient.ones(L, L, dtype=gradient.bool).triu(1)")
    if is_causal and key_padding_mask is None and not need_weights:
        attn_mask = None  # PyTorch trusts the hint and lets the attention kernel mask
    else:
        attn_mask = _additive_mask(attn_mask, "attn_mask", query.dtype)
        is_causal = False if key_padding_mask is not None else is_causal

    q, k, v = _project(query, key, value, E, in_proj_weight, in_proj_bias,
                       use_separate_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight)
    S0 = k.shape[0]
    if attn_mask is not None:
        want = (L, S0) if attn_mask.ndim == 2 else (N * H, L, S0)
        if tuple(attn_mask.shape) != want:
            raise ShapeError(f"{_FN}: the shape of the {attn_mask.ndim}D attn_mask is "
                             f"{tuple(attn_mask.shape)}, but should be {want}")

    if bias_k is not None and bias_v is not None:
        # one learned extra key/value position, which every query may attend to
        if static_k is not None or static_v is not None:
            raise ArgumentValueError(
                f"{_FN}: bias_k and bias_v cannot be added to static_k/static_v")
        k = cat([k, bias_k.expand(1, N, E)], 0)
        v = cat([v, bias_v.expand(1, N, E)], 0)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    elif (bias_k is None) != (bias_v is None):
        raise ArgumentValueError(f"{_FN}: bias_k and bias_v go together; got only one of them")

    # (len, N, E) -> (N, H, len, D): heads become a batch dimension
    q = q.reshape(L, N, H, D).permute(1, 2, 0, 3)
    k = _heads(k, static_k, "static_k", N, H, D)
    v = _heads(v, static_v, "static_v", N, H, D)
    if add_zero_attn:
        # an extra all-zero key/value: a query can "attend to nothing"
        zero = zeros((N, H, 1, D), dtype=k.dtype, device=k.device)
        k = cat([k, zero], 2)
        v = cat([v, zero], 2)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    S = k.shape[2]
    if key_padding_mask is not None and tuple(key_padding_mask.shape) != (N, S):
        raise ShapeError(f"{_FN}: expected key_padding_mask of shape ({N}, {S}) (batch, source "
                         f"length), got {tuple(key_padding_mask.shape)}")

    # one additive mask broadcasting to the scores (N, H, L, S)
    mask = None
    if attn_mask is not None:
        mask = attn_mask if attn_mask.ndim == 2 else attn_mask.reshape(N, H, L, S)
    if key_padding_mask is not None:
        kpm = key_padding_mask.reshape(N, 1, 1, S)
        mask = kpm if mask is None else mask + kpm
    dropout_p = dropout_p if training else 0.0

    if need_weights:
        scores = (q * (1.0 / math.sqrt(D))) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
        weights = softmax(scores, -1)
        if dropout_p > 0.0:
            weights = dropout(weights, dropout_p)  # the returned weights are dropped too
        out = weights @ v
    else:
        weights = None
        out = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                           is_causal=is_causal)

    out = out.permute(2, 0, 1, 3).reshape(L, N, E)       # (N, H, L, D) -> (L, N, E)
    out = linear(out, out_proj_weight, out_proj_bias)
    if weights is not None and average_attn_weights:
        weights = weights.mean(dim=1)
    if not batched:
        out = out.squeeze(1)
        if weights is not None:
            weights = weights.squeeze(0)
    return out, weights


def _check_shapes(query, key, value, key_padding_mask, attn_mask, num_heads) -> bool:
    """PyTorch's shape rules; returns whether the input is batched."""
    if query.ndim not in (2, 3):
        raise ShapeError(f"{_FN}: query should be unbatched 2D or batched 3D, got "
                         f"{query.ndim}D of shape {tuple(query.shape)}")
    batched = query.ndim == 3
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise ShapeError(f"{_FN}: for {query.ndim}D query, key and value should be "
                         f"{query.ndim}D too, got key {tuple(key.shape)} and value "
                         f"{tuple(value.shape)}")
    if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
        raise ShapeError(f"{_FN}: for {query.ndim}D query, key_padding_mask should be "
                         f"{query.ndim - 1}D (batch, source length), got "
                         f"{tuple(key_padding_mask.shape)}")
    if attn_mask is not None:
        if attn_mask.ndim not in (2, 3):
            raise ShapeError(f"{_FN}: attn_mask should be 2D (L, S) or 3D "
                             f"(N * num_heads, L, S), got {tuple(attn_mask.shape)}")
        if not batched and attn_mask.ndim == 3 and attn_mask.shape[0] != num_heads:
            raise ShapeError(f"{_FN}: for unbatched input a 3D attn_mask should be "
                             f"({num_heads}, L, S), got {tuple(attn_mask.shape)}")
    if tuple(key.shape[:-1]) != tuple(value.shape[:-1]):
        raise ShapeError(f"{_FN}: key's sequence and batch dimensions {tuple(key.shape[:-1])} "
                         f"do not match value's {tuple(value.shape[:-1])}")
    return batched


def _project(query, key, value, E, in_proj_weight, in_proj_bias, separate, wq, wk, wv):
    """q, k, v = the three input projections, each (length, N, E)."""
    b = in_proj_bias
    bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
    if separate:
        if wq is None or wk is None or wv is None:
            raise ArgumentValueError(f"{_FN}: use_separate_proj_weight=True needs q_proj_weight, "
                                     "k_proj_weight and v_proj_weight")
    else:
        if in_proj_weight is None:
            raise ArgumentValueError(
                f"{_FN}: in_proj_weight is None; pass it, or the three separate "
                "weights with use_separate_proj_weight=True")
        if query is key and key is value:
            # self-attention: one matmul for the three projections
            return linear(query, in_proj_weight, b).chunk(3, dim=-1)
        wq, wk, wv = in_proj_weight[:E], in_proj_weight[E:2 * E], in_proj_weight[2 * E:]
    for name, w, x in (("key", wk, key), ("value", wv, value)):
        if w.shape[-1] != x.shape[-1]:
            raise ShapeError(f"{_FN}: {name}'s last dimension is {x.shape[-1]}, but its "
                             f"projection weight {tuple(w.shape)} expects {w.shape[-1]}")
    return linear(query, wq, bq), linear(key, wk, bk), linear(value, wv, bv)


def _heads(t, static, name, N, H, D):
    """(len, N, E) -> (N, H, len, D), or ``static`` (N * H, S, D) in that layout."""
    if static is None:
        return t.reshape(t.shape[0], N, H, D).permute(1, 2, 0, 3)
    if static.ndim != 3 or static.shape[0] != N * H or static.shape[2] != D:
        raise ShapeError(f"{_FN}: expected {name} of shape ({N * H}, S, {D}) "
                         f"(batch * num_heads, source length, head_dim), got {tuple(static.shape)}")
    return static.reshape(N, H, static.shape[1], D)


def _additive_mask(mask, name: str, dtype):
    """A bool mask (True = masked) as 0 / -inf in ``dtype``; a float mask is returned as it is."""
    if mask is None:
        return None
    if mask.dtype is bool_:
        return zeros(tuple(mask.shape), dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    if not mask.dtype.is_floating_point:
        raise DTypeError(f"{_FN}: only bool and floating types of {name} are supported, got "
                         f"{mask.dtype}")
    return mask


def map_aliased(fn, query, key, value):
    """``fn`` applied to query, key and value, once per distinct tensor: self-attention inputs
    (``query is key is value``) stay one tensor, so ``_project`` can use its one-matmul path."""
    q = fn(query)
    k = q if key is query else fn(key)
    if value is key:
        v = k
    elif value is query:
        v = q
    else:
        v = fn(value)
    return q, k, v
