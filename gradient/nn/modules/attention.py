"""MultiheadAttention, as ``torch.nn.MultiheadAttention`` (same parameters, masks and outputs).

The parameter layout is PyTorch's, so state dicts interchange: the query, key and value
projections are stacked in ``in_proj_weight`` (3 * embed_dim, embed_dim) and ``in_proj_bias``
(3 * embed_dim,), rows [0, E) for the query, [E, 2E) for the key, [2E, 3E) for the value, and the
output projection is the child Linear ``out_proj``. With ``kdim``/``vdim`` different from
``embed_dim`` the projections are separate: ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight``.

Masks follow PyTorch's MultiheadAttention convention, which is the opposite of
``F.scaled_dot_product_attention``'s: a True entry in a boolean ``attn_mask`` or
``key_padding_mask`` means "do not attend"; a float mask is added to the scores.
"""

from __future__ import annotations

import math

from ... import ops as _ops
from ...dtypes import bool_
from ...errors import DTypeError, ShapeError
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from .linear import NonDynamicallyQuantizableLinear

__all__ = ["MultiheadAttention"]


def _additive_mask(mask, name: str, dtype):
    """A bool mask (True = masked) as 0 / -inf in ``dtype``; a float mask is returned as it is."""
    if mask is None:
        return None
    if mask.dtype is bool_:
        return _ops.zeros(tuple(mask.shape), dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    if not mask.dtype.is_floating_point:
        raise DTypeError(f"MultiheadAttention: only bool and floating types of {name} are "
                         f"supported, got {mask.dtype}")
    return mask


class MultiheadAttention(Module):
    """Attention from ``query`` to ``key``/``value`` with ``num_heads`` heads ("Attention Is All
    You Need"): ``out_proj(concat_h softmax(q_h k_h^T / sqrt(d) + mask) v_h)``.

    Inputs are (L, N, E) (sequence first) or, with ``batch_first=True``, (N, L, E); unbatched
    (L, E) inputs work too. ``forward`` returns ``(output, weights)``: the weights are the
    attention probabilities (N, L, S), averaged over heads unless ``average_attn_weights=False``
    (then (N, num_heads, L, S)), or None when ``need_weights=False``. As in PyTorch,
    ``is_causal=True`` is only a hint that ``attn_mask`` is the causal mask: pass the mask too.

    Example::

        mha = nn.MultiheadAttention(embed_dim=16, num_heads=4, batch_first=True)
        x = gradient.randn(2, 5, 16)
        causal = gradient.ones(5, 5, dtype=gradient.bool).triu(1)   # True = masked
        out, weights = mha(x, x, x, attn_mask=causal)              # (2, 5, 16), (2, 5, 5)
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None):
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater than 0, "
                             f"got embed_dim={embed_dim} and num_heads={num_heads}")
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by "
                             f"num_heads ({num_heads})")

        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(_ops.empty((3 * embed_dim, embed_dim), **factory))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(_ops.empty((embed_dim, embed_dim), **factory))
            self.k_proj_weight = Parameter(_ops.empty((embed_dim, self.kdim), **factory))
            self.v_proj_weight = Parameter(_ops.empty((embed_dim, self.vdim), **factory))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(_ops.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **factory)
        if add_bias_kv:
            self.bias_k = Parameter(_ops.empty((1, 1, embed_dim), **factory))
            self.bias_v = Parameter(_ops.empty((1, 1, embed_dim), **factory))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # PyTorch's scheme: xavier for the input projections, zero biases; out_proj.weight keeps
        # Linear's default initialisation.
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    # ------------------------------------------------------------------ forward
    def _check_shapes(self, query, key, value, key_padding_mask, attn_mask) -> bool:
        """PyTorch's shape rules; returns whether the input is batched."""
        fn = "MultiheadAttention"
        if query.ndim not in (2, 3):
            raise ShapeError(f"{fn}: query should be unbatched 2D or batched 3D, got "
                             f"{query.ndim}D of shape {tuple(query.shape)}")
        batched = query.ndim == 3
        if key.ndim != query.ndim or value.ndim != query.ndim:
            raise ShapeError(f"{fn}: for {query.ndim}D query, key and value should be {query.ndim}D"
                             f" too, got key {tuple(key.shape)} and value {tuple(value.shape)}")
        if key_padding_mask is not None and key_padding_mask.ndim != query.ndim - 1:
            raise ShapeError(f"{fn}: for {query.ndim}D query, key_padding_mask should be "
                             f"{query.ndim - 1}D (batch, source length), got "
                             f"{tuple(key_padding_mask.shape)}")
        if attn_mask is not None:
            if attn_mask.ndim not in (2, 3):
                raise ShapeError(f"{fn}: attn_mask should be 2D (L, S) or 3D "
                                 f"(N * num_heads, L, S), got {tuple(attn_mask.shape)}")
            if not batched and attn_mask.ndim == 3 and attn_mask.shape[0] != self.num_heads:
                raise ShapeError(f"{fn}: for unbatched input a 3D attn_mask should be "
                                 f"({self.num_heads}, L, S), got {tuple(attn_mask.shape)}")
        e = query.shape[-1]
        if e != self.embed_dim:
            raise ShapeError(f"{fn}: expected query's embedding dimension (last) to be "
                             f"{self.embed_dim}, got {e} (query shape {tuple(query.shape)})")
        if key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ShapeError(f"{fn}: expected key and value with last dimensions {self.kdim} and "
                             f"{self.vdim} (kdim, vdim), got {tuple(key.shape)} and "
                             f"{tuple(value.shape)}")
        if tuple(key.shape[:-1]) != tuple(value.shape[:-1]):
            raise ShapeError(f"{fn}: key's sequence and batch dimensions {tuple(key.shape[:-1])} "
                             f"do not match value's {tuple(value.shape[:-1])}")
        return batched

    def _project(self, query, key, value):
        """q, k, v = the three input projections, each (length, N, E)."""
        e = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        if self._qkv_same_embed_dim:
            if query is key and key is value:
                # self-attention: one matmul for the three projections
                return F.linear(query, self.in_proj_weight, b).chunk(3, dim=-1)
            w = self.in_proj_weight
            wq, wk, wv = w[:e], w[e:2 * e], w[2 * e:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        """Attend from ``query`` to ``key``/``value``; returns ``(output, weights or None)``.

        ``key_padding_mask`` (N, S): True (or -inf) marks padding keys to ignore.
        ``attn_mask`` (L, S) or (N * num_heads, L, S): True (or -inf) forbids a query/key pair.
        """
        batched = self._check_shapes(query, key, value, key_padding_mask, attn_mask)
        if self.batch_first and batched:
            query, key, value = _map_aliased(lambda t: t.transpose(0, 1), query, key, value)
        if not batched:
            query, key, value = _map_aliased(lambda t: t.unsqueeze(1), query, key, value)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        L, N, E = query.shape
        H, D = self.num_heads, self.head_dim

        key_padding_mask = _additive_mask(key_padding_mask, "key_padding_mask", query.dtype)
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal=True is a hint that attn_mask is the "
                             "causal mask, so attn_mask is needed too (as in PyTorch); pass e.g. "
                             "gradient.ones(L, L, dtype=gradient.bool).triu(1)")
        if is_causal and key_padding_mask is None and not need_weights:
            attn_mask = None  # PyTorch trusts the hint and lets the attention kernel mask
        else:
            attn_mask = _additive_mask(attn_mask, "attn_mask", query.dtype)
            is_causal = False if key_padding_mask is not None else is_causal

        q, k, v = self._project(query, key, value)
        S0 = k.shape[0]
        if attn_mask is not None:
            want = (L, S0) if attn_mask.ndim == 2 else (N * H, L, S0)
            if tuple(attn_mask.shape) != want:
                raise ShapeError(f"MultiheadAttention: the shape of the {attn_mask.ndim}D "
                                 f"attn_mask is {tuple(attn_mask.shape)}, but should be {want}")
        if key_padding_mask is not None and tuple(key_padding_mask.shape) != (N, S0):
            raise ShapeError(f"MultiheadAttention: expected key_padding_mask of shape ({N}, {S0}) "
                             f"(batch, source length), got {tuple(key_padding_mask.shape)}")

        if self.bias_k is not None:
            # one learned extra key/value position, which every query may attend to
            k = _ops.cat([k, self.bias_k.expand(1, N, E)], 0)
            v = _ops.cat([v, self.bias_v.expand(1, N, E)], 0)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))

        # (len, N, E) -> (N, H, len, D): heads become a batch dimension
        q = q.reshape(L, N, H, D).permute(1, 2, 0, 3)
        k = k.reshape(k.shape[0], N, H, D).permute(1, 2, 0, 3)
        v = v.reshape(v.shape[0], N, H, D).permute(1, 2, 0, 3)
        if self.add_zero_attn:
            # an extra all-zero key/value: a query can "attend to nothing"
            zeros = _ops.zeros((N, H, 1, D), dtype=k.dtype, device=k.device)
            k = _ops.cat([k, zeros], 2)
            v = _ops.cat([v, zeros], 2)
            attn_mask = None if attn_mask is None else F.pad(attn_mask, (0, 1))
            key_padding_mask = None if key_padding_mask is None else F.pad(key_padding_mask, (0, 1))
        S = k.shape[2]

        # one additive mask broadcasting to the scores (N, H, L, S)
        mask = None
        if attn_mask is not None:
            mask = attn_mask if attn_mask.ndim == 2 else attn_mask.reshape(N, H, L, S)
        if key_padding_mask is not None:
            kpm = key_padding_mask.reshape(N, 1, 1, S)
            mask = kpm if mask is None else mask + kpm
        dropout_p = self.dropout if self.training else 0.0

        if need_weights:
            scores = (q * (1.0 / math.sqrt(D))) @ k.transpose(-2, -1)
            if mask is not None:
                scores = scores + mask
            weights = F.softmax(scores, -1)
            if dropout_p > 0.0:
                weights = F.dropout(weights, dropout_p)  # the returned weights are dropped too
            out = weights @ v
        else:
            weights = None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                                 is_causal=is_causal)

        out = out.permute(2, 0, 1, 3).reshape(L, N, E)       # (N, H, L, D) -> (L, N, E)
        out = self.out_proj(out)
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            out = out.squeeze(1)
            if weights is not None:
                weights = weights.squeeze(0)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, weights



def _map_aliased(fn, query, key, value):
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
