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


from ... import ops as _ops
from ...ops.multihead_attention import map_aliased
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from .linear import NonDynamicallyQuantizableLinear, _check_size
from ...errors import ArgumentValueError

__all__ = ["MultiheadAttention"]


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
        _check_size("MultiheadAttention", "embed_dim", embed_dim)
        _check_size("MultiheadAttention", "num_heads", num_heads)
        if embed_dim <= 0 or num_heads <= 0:
            raise ArgumentValueError(
                f"MultiheadAttention: embed_dim and num_heads must be greater than 0, "
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
            raise ArgumentValueError(
                f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by "
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
    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        """Attend from ``query`` to ``key``/``value``; returns ``(output, weights or None)``.

        ``key_padding_mask`` (N, S): True (or -inf) marks padding keys to ignore.
        ``attn_mask`` (L, S) or (N * num_heads, L, S): True (or -inf) forbids a query/key pair.
        """
        batched = query.ndim == 3
        if self.batch_first and batched:
            query, key, value = map_aliased(lambda t: t.transpose(0, 1), query, key, value)
        out, weights = F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=not self._qkv_same_embed_dim,
            q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight,
            v_proj_weight=self.v_proj_weight, average_attn_weights=average_attn_weights,
            is_causal=is_causal)
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        return out, weights
