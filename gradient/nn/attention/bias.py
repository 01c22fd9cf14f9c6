"""``torch.nn.attention.bias``: causal masks as objects that
``F.scaled_dot_product_attention`` takes as ``attn_mask`` (see
:mod:`gradient.ops.causal_bias`).

Example::

    >>> from gradient.nn.attention.bias import causal_lower_right
    >>> out = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(3, 10))
"""

from ...ops.causal_bias import CausalBias, CausalVariant, causal_lower_right, causal_upper_left

__all__ = ["CausalBias", "CausalVariant", "causal_lower_right", "causal_upper_left"]
