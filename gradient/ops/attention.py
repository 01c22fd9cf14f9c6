"""Scaled dot-product attention, as ``torch.nn.functional.scaled_dot_product_attention``.

``softmax(q @ k.T * scale + mask) @ v``, written as a composition of differentiable ops so
that double backward works. Without a mask or dropout, and with one key head per query head,
a backend's fused ``attention_forward``/``attention_backward`` kernels run it as one node
(:class:`FusedAttention`); the composition stays the fallback (ARCHITECTURE.md: fused fast
paths are optional backend methods).

Semantics follow PyTorch 2.13:

* shapes ``(..., L, E)`` for the query, ``(..., S, E)`` and ``(..., S, Ev)`` for key and
  value; leading dimensions broadcast;
* ``attn_mask`` is boolean (True = may attend) or additive (the query's dtype), and
  broadcasts to ``(..., L, S)``; ``is_causal`` adds a top-left aligned lower-triangular
  mask (query i sees keys 0..i, also when L != S); giving both is an error, as documented
  by PyTorch (whose CPU kernel without autograd silently combines them instead);
* ``attn_mask`` may be a :class:`~gradient.ops.causal_bias.CausalBias`
  (``torch.nn.attention.bias``): upper left is ``is_causal``; lower right (query i of L sees
  keys 0 .. S - L + i: new tokens after cached ones) runs, in inference on the CPU, the
  decode kernel without a mask tensor, so a captured step of several tokens replays;
* a query row that may attend to no key at all (fully masked) gives zeros, and zero
  gradients, like PyTorch's ``_safe_softmax`` (not nan);
* grouped-query attention: with ``enable_gqa=True``, key/value may have fewer heads
  (dimension -3) than the query, a divisor of its head count; query head h uses key head
  ``h // (Hq // Hk)`` (PyTorch's ``repeat_interleave``). The query is reshaped into groups
  instead of copying key and value.

One extension, for a float16 KV cache (``model.new_cache(..., dtype=float16)``, llama.cpp's
default): in inference (nothing recorded), a float32 query may attend to float16 key and
value. They are widened to float32, exactly, and the attention is the float32 one; on the
CPU the decode kernels widen them as they read the cache, without a float32 copy. PyTorch
raises for mixed dtypes, so no PyTorch program meets a difference.

Example::

    >>> import gradient.nn.functional as F
    >>> q = k = v = gradient.randn(2, 4, 8, 16)          # (batch, heads, seq, head_dim)
    >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
    gradient.Size([2, 4, 8, 16])
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels
from ..autograd import autocast_state as _autocast
from ..autograd import capture_state
from ..autograd import is_grad_enabled
from ..autograd.function import ArrayFunction, check_same_device
from ..dtypes import bool_, float16, float32, float64, from_numpy_dtype, int64
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, ShapeError
from ..kernels.lowering import Derived
from ..tensor import Tensor
from .causal_bias import CausalBias, CausalVariant, PagedRows, RowPrefixBias
from .creation import arange
from .elementwise import where
from .linalg import matmul as _matmul
from .nn import _broadcasts_to, _fused_backward, _has_fused, _softmax_array, dropout, softmax
from .reduce import sum as _sum
from .shape import broadcast_shapes, expand, reshape, transpose

__all__ = ["scaled_dot_product_attention", "attention_arrays"]
TENSOR_METHODS = ()


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor,
                                 attn_mask: Tensor | None = None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """Attention ``softmax(query @ key^T * scale + mask) @ value`` (see the module docstring).

    ``scale`` defaults to ``1 / sqrt(E)``. ``dropout_p > 0`` drops attention weights with
    the default generator (seed it with ``gradient.manual_seed``); pass ``dropout_p=0`` in
    evaluation, as with PyTorch (this function does not know about ``module.training``).

    Example: ``out = F.scaled_dot_product_attention(q, k, v, is_causal=True)``
    """
    fn = "scaled_dot_product_attention"
    bias = rows = None
    if isinstance(attn_mask, PagedRows) and not is_causal:
        out = _paged_decode(query, key, value, attn_mask, dropout_p, scale)
        if out is not None:
            return out
        # no kernel took it: each row's keys and values gathered from their blocks, then the
        # attention of rows at different lengths
        key, value = (Tensor._make(capture_state.run(paged_rows_arrays, t._backend, t._data,
                                                     attn_mask, keys), False, t._backend)
                      for t, keys in ((key, True), (value, False)))
    if isinstance(attn_mask, (CausalBias, RowPrefixBias)):
        if is_causal:
            raise ArgumentValueError(f"{fn}: a {type(attn_mask).__name__} is already causal; pass "
                                     "is_causal=False")
        if isinstance(attn_mask, CausalBias):
            bias = attn_mask
        else:
            rows = attn_mask
        attn_mask = None
    # autocast: query, key, value and a float mask run in bf16/fp16 (a bool mask is not floating)
    query, key, value, attn_mask = _autocast.to_lower_precision(query, key, value, attn_mask)
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise ArgumentTypeError(f"{fn}: {name} must be a Tensor, got {type(t).__name__}")
    if min(query.ndim, key.ndim, value.ndim) < 2:
        raise ShapeError(f"{fn}: query, key and value must be at least 2-d (..., seq, dim), got "
                         f"shapes {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    half_cache = _reads_a_half_cache(query, key, value)
    if not (query.dtype is key.dtype is value.dtype) and not half_cache:
        raise DTypeError(f"{fn}: query, key and value must have the same dtype, got {query.dtype}, "
                         f"{key.dtype} and {value.dtype}")
    if not query.dtype.is_floating_point:
        raise DTypeError(f"{fn}: expected floating point query, key and value, got {query.dtype}")
    if not 0.0 <= dropout_p <= 1.0:
        raise ArgumentValueError(f"{fn}: dropout_p must be between 0 and 1, got {dropout_p}")
    L, E = query.shape[-2], query.shape[-1]
    S = key.shape[-2]
    if key.shape[-1] != E:
        raise ShapeError(f"{fn}: query and key must have the same embedding size (last "
                         f"dimension): query {tuple(query.shape)}, key {tuple(key.shape)}")
    if value.shape[-2] != S:
        raise ShapeError(f"{fn}: key and value must have the same sequence length (dimension -2): "
                         f"key {tuple(key.shape)}, value {tuple(value.shape)}")
    if is_causal and attn_mask is not None:
        raise ArgumentValueError(
            f"{fn}: pass either attn_mask or is_causal=True, not both (PyTorch raises "
            "too); fold the causal mask into attn_mask instead")
    lower_right = False
    # the flags the raw-array path gets: a lower-right bias's rows as rows after a cache even
    # when nothing is cached (L == S, what is_causal computes too, with the same kernel), so a
    # captured step of L tokens records the same call at every position of the cache
    array_flags = None
    if bias is not None:
        bias.check(L, S, fn)
        seen = bias.keys_seen_by_first_query()
        if seen <= 0:                    # the first queries see no key: the mask as it is
            attn_mask = bias._materialize(query.device)
        elif seen == 1:                  # upper left, or lower right with L == S
            is_causal = True
            if L > 1 and bias.variant is CausalVariant.LOWER_RIGHT:
                array_flags = (False, True)
        elif L > 1:                      # (one query seeing every key needs no mask)
            lower_right = True
    if rows is not None:
        rows.check(query.shape[0] if query.ndim == 4 else -1, L, S, fn)
    if attn_mask is not None and attn_mask.dtype not in (bool_, query.dtype):
        raise DTypeError(f"{fn}: attn_mask must be bool or have the query's dtype {query.dtype}, "
                         f"got {attn_mask.dtype}")

    # Grouped heads: query (..., Hk * G, L, E) is viewed as (..., Hk, G, L, E) against key
    # (..., Hk, 1, S, E), so each key head serves its G query heads without being copied.
    k_groups = v_groups = 1
    if enable_gqa:
        if min(query.ndim, key.ndim, value.ndim) < 3:
            raise ShapeError(f"{fn}: enable_gqa=True needs a head dimension (-3) in query, key and "
                             f"value, got shapes {tuple(query.shape)}, {tuple(key.shape)}, "
                             f"{tuple(value.shape)}")
        hq, hk, hv = query.shape[-3], key.shape[-3], value.shape[-3]
        if hq % hk or hq % hv:
            raise ShapeError(f"{fn}: with enable_gqa=True the number of key heads ({hk}) and value "
                             f"heads ({hv}) must divide the number of query heads ({hq})")
        k_groups, v_groups = hq // hk, hq // hv
    elif query.ndim >= 3 and key.ndim >= 3:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq != hk and 1 not in (hq, hk) and hq % hk == 0:
            raise ShapeError(f"{fn}: query has {hq} heads and key {hk} (dimension -3); pass "
                             "enable_gqa=True for grouped-query attention")
    # leading dimensions broadcast (the head dimension too, unless heads are grouped)
    lead = -3 if enable_gqa else -2
    try:
        if not query.shape[:lead] == key.shape[:lead] == value.shape[:lead]:
            broadcast_shapes(query.shape[:lead], key.shape[:lead], value.shape[:lead])
    except ShapeError:
        shapes = f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
        raise ShapeError(f"{fn}: the batch dimensions of query, key and value do not broadcast: "
                         f"{shapes}") from None

    if scale is None:
        # E = 0: PyTorch's scale is inf, harmless because the scores are empty sums (zeros)
        scale = 1.0 / math.sqrt(E) if E else math.inf
    if rows is not None:
        if (dropout_p == 0.0 and not is_grad_enabled() and k_groups == v_groups
                and key.ndim == 4):
            out = capture_state.run(ragged_attention_arrays, query._backend, query._data,
                                    key._data, value._data, rows, scale)
            if out is not None:
                return Tensor._make(out, False, query._backend)
        attn_mask = rows._materialize(query.device)   # no kernel took it: under the mask
    if (attn_mask is not None and dropout_p == 0.0 and not is_grad_enabled()
            and k_groups == v_groups):
        out = (_ragged_decode(query, key, value, attn_mask, scale) if L == 1 else
               _after_a_cache(query, key, value, attn_mask, scale))
        if out is not None:
            return out
    if attn_mask is None and dropout_p == 0.0 and S and E:
        check_same_device(fn, query, key, value)   # the paths below may skip ArrayFunction.apply
        recording = is_grad_enabled() and (query.requires_grad or key.requires_grad
                                            or value.requires_grad)
        grouped = (k_groups == v_groups > 1 and key.shape[-3] == value.shape[-3]
                   and query.shape[:-3] == key.shape[:-3] == value.shape[:-3])
        fused = ((grouped or (k_groups == v_groups == 1
                              and query.shape[:-2] == key.shape[:-2] == value.shape[:-2]))
                 and _has_fused(query, "attention_forward") and not lower_right)
        if not recording:
            out = capture_state.run(attention_arrays, query._backend, query._data, key._data,
                                    value._data, scale, k_groups, v_groups,
                                    *(array_flags or (is_causal, lower_right)))
            if out is not None:
                return Tensor._make(out, False, query._backend)
        if half_cache:   # no kernel read the float16 cache in place: widened for what follows
            key, value = key.to(query.dtype), value.to(query.dtype)
            half_cache = False
        if fused:
            if grouped:   # the kernels over (..., key heads, groups): see _grouped_views
                return _merge_heads(FusedAttention.apply(*_grouped_views(query, key, value, k_groups),
                                                         scale, is_causal))
            return FusedAttention.apply(query, key, value, scale, is_causal)
    if half_cache:
        key, value = key.to(query.dtype), value.to(query.dtype)
    if lower_right:   # no kernel took it: the composition, under the mask
        attn_mask = bias._materialize(query.device)
    q = query * scale  # scaling (..., L, E) costs less than scaling the (..., L, S) scores
    if k_groups > 1:
        scores = _merge_heads(_matmul(_split_heads(q, k_groups),
                                      transpose(_split_heads(key, 1), -1, -2)))
    else:
        scores = _matmul(q, transpose(key, -1, -2))                         # (..., L, S)

    if is_causal:
        # top-left aligned: query i may attend to keys 0..i, whatever L and S are. Key 0 is
        # always visible, so no row is fully masked, and an additive -inf mask is all it takes
        # (one pass forward, none backward).
        scores = scores + _causal_mask(L, S, scores.dtype, query.device)
        attn = softmax(scores, -1) if S else scores
    else:
        attn = _masked_softmax(scores, attn_mask, S, fn)
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p)
    if v_groups > 1:
        return _merge_heads(_matmul(_split_heads(attn, v_groups), _split_heads(value, 1)))
    return _matmul(attn, value)


class FusedAttention(ArrayFunction):
    """Attention without a mask (or with the causal one) through the backend's fused kernels.

    The forward keeps the attention probabilities, as the composition would. The backward runs
    the fused kernel when no graph is built; for second derivatives it is written with
    differentiable ops (the softmax recomputed from the saved query and key).
    """

    @staticmethod
    def forward(ctx, q, k, v, scale, causal):
        out, probs = kernels.call("attention_forward", ctx.backend, q, k, v, scale, causal)
        ctx.scale, ctx.causal, ctx.probs = scale, causal, probs
        ctx.save_for_backward(q, k, v, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, out = ctx.saved_tensors
        if not is_grad_enabled():
            grads = _fused_backward(ctx, "attention_backward", grad, q, k, v, out, ctx.probs,
                                    ctx.scale, ctx.causal)
            if grads is not None:
                return (*grads, None, None)
        scores = _matmul(q * ctx.scale, transpose(k, -1, -2))
        if ctx.causal:
            scores = scores + _causal_mask(q.shape[-2], k.shape[-2], scores.dtype, q.device)
        p = softmax(scores, -1)
        dp = _matmul(grad, transpose(v, -1, -2))
        ds = p * (dp - _sum(dp * p, -1, keepdim=True))
        return (_matmul(ds, k) * ctx.scale, _matmul(transpose(ds, -1, -2), q) * ctx.scale,
                _matmul(transpose(p, -1, -2), grad), None, None)


def _reads_a_half_cache(query: Tensor, key: Tensor, value: Tensor) -> bool:
    """A float32 query against float16 key and value (a float16 KV cache), nothing
    recorded: the one mix of dtypes attention takes (see the module's docstring)."""
    return (query.dtype is float32 and key.dtype is value.dtype is float16
            and not is_grad_enabled())


def attention_arrays(b, q, k, v, scale: float, k_groups: int = 1, v_groups: int = 1,
                     is_causal: bool = False, lower_right: bool = False):
    """Attention on raw arrays of backend ``b`` when nothing is recorded (inference), without
    mask or dropout; None when neither path below takes ``q``'s dtype.

    A one-row query (a decode step) against a cache, a causal prompt (as many query rows as
    keys) and, with ``lower_right``, L rows after S - L cached keys (row i seeing keys 0 .. S -
    L + i) run the backend's ``decode_attention`` kernel when it has one for the dtype: on
    the CPU, the same arithmetic for each query row in both, so a prompt run whole gives the
    logits of its tokens decoded one at a time (see :mod:`gradient.backends.cpu_attention`).
    Otherwise a many-row query returns None (the caller's fused kernel or composition runs it)
    and, for float32/float64, a one-row query runs the composition of
    :func:`scaled_dot_product_attention` on the raw arrays: the same backend primitives in the
    same order, so the result is bit for bit the composition's; what is saved is the Tensor
    and Function machinery of a dozen ops, which dominates one decode step's attention (a 1-row
    query against a few hundred keys). A captured decode step replays this call.
    """
    L, S = q.shape[-2], k.shape[-2]
    if (_over_a_cache(L, S, is_causal, lower_right) and q.ndim == 4 and k.ndim == 4
            and k_groups == v_groups):
        out = kernels.call("decode_attention", b, q, k, v, scale)   # reads the cache in place
        if out is not None:
            return out
    dtype = from_numpy_dtype(q.dtype)
    if L > 1 or dtype not in (float32, float64):
        return None
    q = b.binary("mul", q, b.full((), scale, dtype))
    kt = b.permute(k, tuple(range(k.ndim - 2)) + (k.ndim - 1, k.ndim - 2))
    scores = _grouped_matmul(b, q, kt, k_groups)
    if is_causal:
        rows = b.reshape(b.arange(0, L, 1, int64), (L, 1))
        hidden = b.binary("lt", rows, b.reshape(b.arange(0, S, 1, int64), (1, S)))
        mask = b.where(hidden, b.full((), float("-inf"), dtype), b.full((), 0.0, dtype))
        scores = b.binary("add", scores, mask)
    attn = _softmax_array(b, scores, scores.ndim - 1)  # what Softmax.forward computes
    return _grouped_matmul(b, attn, v, v_groups)


def ragged_attention_arrays(b, q, k, v, rows: RowPrefixBias, scale: float):
    """A decode step of sequences at different lengths on raw arrays (row b seeing its first
    ``rows.lengths[b]`` keys): the backend's ``ragged_decode_attention``, or None. A captured
    batched step replays this call with each step's :class:`RowPrefixBias`."""
    return kernels.call("ragged_decode_attention", b, q, k, v, rows.lengths, scale)


def paged_attention_arrays(b, q, k, v, rows: PagedRows, scale: float):
    """A decode step of sequences whose keys and values lie in blocks of the pools ``k`` and
    ``v`` (see :class:`PagedRows`), on raw arrays: the backend's ``paged_decode_attention``,
    or None. A captured batched step replays this call with each step's rows."""
    return kernels.call("paged_decode_attention", b, q, k, v, rows.tables, rows.lengths,
                        rows.block_size, scale)


def _step_tables(rows: PagedRows):
    return rows.tables


def _step_lengths(rows: PagedRows):
    return rows.lengths


def _lower_paged_attention(b, q, k, v, rows: PagedRows, scale: float):
    """For a captured batch step compiled into a loop: the ``paged_decode_attention`` kernel's
    compiled form, reading each replay's tables and lengths from that step's rows."""
    return kernels.lower("paged_decode_attention", b, q, k, v,
                         Derived(rows, _step_tables, "tables"),
                         Derived(rows, _step_lengths, "lengths"), rows.block_size, scale)


paged_attention_arrays.lower = _lower_paged_attention


def paged_rows_arrays(b, pool, rows: PagedRows, keys: bool = False):
    """The first ``rows.seq_len_kv`` positions of each row, gathered from its blocks of
    ``pool``, values (n_blocks, heads, block_size, dim) or, with ``keys``, keys
    (n_blocks, heads, dim, block_size: each block's transposed, as a paged cache keeps
    them): ``(rows, heads, seq_len_kv, dim)``."""
    n_blocks = -(-rows.seq_len_kv // rows.block_size)
    blocks = b.getitem(pool, (b.from_numpy(rows.tables[:, :n_blocks]),))   # (B, n, H, ., .)
    B, _, H = blocks.shape[:3]
    # (B, H, n, block_size, dim)
    in_order = b.contiguous(b.permute(blocks, (0, 2, 1, 4, 3) if keys else (0, 2, 1, 3, 4)))
    bs, D = in_order.shape[3:]
    return b.getitem(b.reshape(in_order, (B, H, n_blocks * bs, D)),
                     (slice(None), slice(None), slice(0, rows.seq_len_kv)))


def _paged_decode(query: Tensor, key: Tensor, value: Tensor, rows: PagedRows,
                  dropout_p: float, scale: float | None) -> Tensor | None:
    """:func:`paged_attention_arrays` where it applies (inference, one query per row, pools
    of four dimensions): the attention output, else None."""
    if (dropout_p or is_grad_enabled() or query.ndim != 4 or key.ndim != 4 or value.ndim != 4
            or query.shape[2] != 1):
        return None
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1]) if query.shape[-1] else math.inf
    b = query._backend
    out = capture_state.run(paged_attention_arrays, b, query._data, key._data, value._data,
                            rows, scale)
    return None if out is None else Tensor._make(out, False, b)


def _host_mask(query: Tensor, key: Tensor, attn_mask: Tensor, rows: int):
    """The boolean mask as a NumPy array ``(B or 1, L, S)`` where the decode kernels below may
    take it (4-d query and key on the CPU, a bool mask on the same backend, of shape (B, 1, L,
    S), or (1, 1, L, S) when ``rows`` is 1); None otherwise."""
    b = query._backend
    L, S = query.shape[-2], key.shape[-2]
    if (query.ndim != 4 or key.ndim != 4 or attn_mask.dtype is not bool_ or b.name != "cpu"
            or attn_mask._backend is not b or attn_mask.ndim != 4
            or tuple(attn_mask.shape[1:]) != (1, L, S)
            or attn_mask.shape[0] not in {query.shape[0], rows}):
        return None
    return np.asarray(attn_mask._data).reshape(attn_mask.shape[0], L, S)


def _ragged_decode(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor,
                   scale: float) -> Tensor | None:
    """A decode step of sequences of different lengths in one batch (a server's continuous
    batching): one query row per head, and a boolean mask ``(B, 1, 1, S)`` that lets row ``b``
    see the first ``S_b`` keys. The backend's ``ragged_decode_attention`` runs each row on its
    own first ``S_b`` keys, read in place: the arithmetic of that sequence decoded alone,
    without the (B, H, 1, S) scores of the composition. None where that does not apply
    (another mask, another device, no kernel)."""
    mask = _host_mask(query, key, attn_mask, query.shape[0])
    rows = None if mask is None else RowPrefixBias.of_mask(mask.reshape(query.shape[0], -1))
    if rows is None:
        return None                       # not a prefix per row (or a row that sees nothing)
    b = query._backend
    out = ragged_attention_arrays(b, query._data, key._data, value._data, rows, scale)
    return None if out is None else Tensor._make(out, False, b)


def _after_a_cache(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor,
                   scale: float) -> Tensor | None:
    """L > 1 new tokens after S - L cached ones, under the mask a decoder makes for them (row
    i sees keys 0 .. S - L + i): speculative decoding's check of drafted tokens, or a prompt
    prefilled in pieces. The backend's ``decode_attention`` computes each row as the decode
    step of that position would (see :func:`attention_arrays`), so the drafts' logits are the
    ones single steps would give, and greedy speculation keeps greedy's tokens. None where
    that does not apply."""
    L, S = query.shape[-2], key.shape[-2]
    mask = _host_mask(query, key, attn_mask, 1) if 1 < L < S else None
    if mask is None:
        return None
    if not (mask == (np.arange(S)[None, :] <= (S - L + np.arange(L))[:, None])).all():
        return None
    b = query._backend
    out = kernels.call("decode_attention", b, query._data, key._data, value._data, scale)
    return None if out is None else Tensor._make(out, False, b)


def _over_a_cache(L: int, S: int, is_causal: bool, lower_right: bool = False) -> bool:
    """Whether attention of L query rows against S keys is what ``decode_attention`` computes
    (each row i seeing keys up to S - L + i): one row without a mask, a causal square, or
    ``lower_right``'s rows."""
    return ((L == 1 and (S == 1 or not is_causal)) or (is_causal and L == S)
            or (lower_right and L <= S))


def _specialize_attention(b, q, k, v, scale, k_groups=1, v_groups=1, is_causal=False,
                          lower_right=False):
    """For a captured decode step: the ``decode_attention`` kernel prepared for one query
    row per head against a cache of this layout (the path :func:`attention_arrays` takes)."""
    if not (q.shape[-2] == 1 and not is_causal and q.ndim == 4 and k.ndim == 4
            and k_groups == v_groups):
        return None
    return kernels.specialization(
        "decode_attention", b, (b, q, k, v, scale, k_groups, v_groups, is_causal),
        lambda b, q, k, v, scale, *_: (q, k, v, scale), attention_arrays)


def _lower_attention(b, q, k, v, scale, k_groups=1, v_groups=1, is_causal=False,
                     lower_right=False):
    """For a captured step compiled into a loop: the ``decode_attention`` kernel's compiled
    form, for the calls that take that kernel (queries in any layout): a decode step's one
    row, or ``lower_right``'s rows after a cache (a speculative check)."""
    if not ((q.shape[-2] == 1 or lower_right) and not is_causal and q.ndim == 4
            and k.ndim == 4 and k_groups == v_groups):
        return None
    return kernels.lower("decode_attention", b, q, k, v, scale)


attention_arrays.specialize = _specialize_attention
attention_arrays.lower = _lower_attention


def _grouped_matmul(b, a, c, groups: int):
    """``a @ c`` where ``c`` has ``groups`` times fewer heads (dimension -3) than ``a``."""
    if groups == 1:
        return b.matmul(a, c)
    a_shape, c_shape = tuple(a.shape), tuple(c.shape)
    a5 = b.reshape(a, a_shape[:-3] + (a_shape[-3] // groups, groups) + a_shape[-2:])
    c5 = b.reshape(c, c_shape[:-3] + (c_shape[-3], 1) + c_shape[-2:])
    out = b.matmul(a5, c5)
    return b.reshape(out, a_shape[:-3] + (a_shape[-3],) + tuple(out.shape[-2:]))


def _masked_softmax(scores: Tensor, attn_mask, S: int, fn: str) -> Tensor:
    """Softmax of the scores under an optional boolean or additive mask; a row that may attend
    to no key gives zeros, like PyTorch's ``_safe_softmax``."""
    if attn_mask is None:
        # nothing is masked, so no row can be fully masked: a plain softmax (the decode step
        # of a KV-cache loop lands here every token)
        return softmax(scores, -1) if S else scores
    allowed = None
    if attn_mask is not None:
        # the mask may not enlarge the output (PyTorch refuses that too)
        if not _broadcasts_to(attn_mask.shape, scores.shape):
            raise ShapeError(f"{fn}: attn_mask of shape {tuple(attn_mask.shape)} does not "
                             f"broadcast to the attention scores' shape {tuple(scores.shape)} "
                             "(..., L, S)")
        if attn_mask.dtype is bool_:
            allowed = attn_mask
        else:
            scores = scores + attn_mask
    if allowed is not None:
        scores = where(allowed, scores, float("-inf"))

    # A row with every score -inf has no key to attend to: PyTorch gives it zeros (its
    # _safe_softmax). Softmax runs on a zeroed copy of such rows, so no nan appears in the
    # forward or the backward, and the result is zeroed there.
    if S == 0:
        attn = scores  # no keys at all: (..., L, 0) @ (..., 0, Ev) gives zeros, as in PyTorch
    else:
        dead = _sum(scores == float("-inf"), -1, keepdim=True) == S
        attn = where(dead, 0.0, softmax(where(dead, 0.0, scores), -1))
    return attn


def _causal_mask(L: int, S: int, dtype, device) -> Tensor:
    """(L, S) additive mask: 0 where query i may see key j (j <= i), -inf elsewhere."""
    rows = reshape(arange(L, device=device), (L, 1))
    hidden = rows < reshape(arange(S, device=device), (1, S))
    return where(hidden, float("-inf"), 0.0).to(dtype)


def _split_heads(t: Tensor, groups: int) -> Tensor:
    """(..., H * groups, N, D) viewed as (..., H, groups, N, D).

    With ``groups=1`` (key and value) this inserts the singleton group dimension that
    broadcasts against the query's groups.
    """
    shape = tuple(t.shape)
    return reshape(t, shape[:-3] + (shape[-3] // groups, groups) + shape[-2:])


def _grouped_views(query: Tensor, key: Tensor, value: Tensor, groups: int):
    """Grouped heads as the fused kernels take them, with equal leading dimensions: the query
    (..., Hk * groups, L, E) viewed as (..., Hk, groups, L, E), key and value (..., Hk, S, E)
    expanded to (..., Hk, groups, S, E), a view that repeats nothing in memory (the expansion's
    backward sums each group's key and value gradients)."""
    def spread(t):
        return expand(_split_heads(t, 1), tuple(t.shape[:-3]) + (t.shape[-3], groups)
                      + tuple(t.shape[-2:]))
    return _split_heads(query, groups), spread(key), spread(value)


def _merge_heads(t: Tensor) -> Tensor:
    """Inverse of :func:`_split_heads`: (..., H, groups, N, D) back to (..., H * groups, N, D)."""
    shape = tuple(t.shape)
    return reshape(t, shape[:-4] + (shape[-4] * shape[-3],) + shape[-2:])
