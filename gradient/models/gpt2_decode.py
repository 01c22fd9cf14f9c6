"""GPT-2's forward over new tokens on the CPU in float32, for decode and prefill: per layer,
four BLAS products and the small work between them in a few compiled calls.

A decode step of GPT-2 small reads its 500 MB of weights once, in 49 matrix-vector products,
and memory bandwidth sets their time. Between the products lies each layer's small work: two
LayerNorms, four bias additions, the new key and value written into the cache, attention over
the cache, GELU and two residual additions. Run as single ops on raw arrays
(:func:`gradient.models.gpt2._decode_on_arrays`) that is two dozen calls per layer, each with
its checks, views and fresh arrays: about 3 of the 17 ms of a token. Here each layer makes five
calls besides its four products, with the additions folded into the kernels next to them:

* the product's bias, the split into heads and the cache write in one pass
  (:func:`~gradient.backends.cpu_attention.decode_split_heads`), then attention over the cache;
* the residual addition, its product's bias and the next LayerNorm in one call
  (:func:`~gradient.backends.cpu_kernels.residual_layer_norm`), after both projections back to
  the hidden width (the last one with the final norm ``ln_f``);
* ``c_fc``'s bias and GELU in one call (:func:`~gradient.backends.cpu_kernels.bias_gelu_`).

A prompt into an empty cache (prefill) takes the same step over all its tokens, with the
module graph's causal attention (:func:`~gradient.backends.cpu_attention.attention_forward`) in
place of the one-token kernels. Its products are matrix products; what the step saves is the
Tensor and Module machinery and the separate passes over the activations that the fused calls
above replace: about 5% of a 128-token prefill of GPT-2 small.

Nothing goes through Tensor or Module, and the weights' arrays are gathered once. What remains
of the small work (about 2 ms of a GPT-2 small token on 2 cores) is mostly attention: it reads
the whole KV cache of the layer from memory on one thread. Every value is rounded as the module
graph rounds it (the same kernels, the same sums in the same order), so the logits are bit for
bit the modules' (tested).

Example::

    >>> model = GPT2LMHeadModel.from_pretrained("path/to/gpt2").eval()
    >>> model.generate(prompt_ids, max_new_tokens=32)   # prompt and new tokens through DecodeStep
"""

from __future__ import annotations

import numpy as np

from .. import kernels, nn
from ..backends import cpu_backend

__all__ = ["DecodeStep"]


class DecodeStep:
    """The compiled step (decode or prefill) over the blocks of one :class:`GPT2Model`, built by
    :meth:`build` from its decode plan (:meth:`GPT2Model._decode_plan`) and kept while no module
    changes (:func:`~gradient.nn.module.structure_version`): the weights' arrays are gathered
    once, not looked up through two hundred module attributes per token."""

    def __init__(self, layers, final_norm, approximate):
        self._layers = layers            # per block: ln_1, ln_2, heads, head_dim, scale, linears
        self._final_norm = final_norm    # ln_f's (weight, bias, eps)
        self._approximate = approximate  # the GELU's form

    @classmethod
    def build(cls, layers, ln_f, gelu_forms) -> "DecodeStep | None":
        """A step for the blocks of ``layers`` and the final norm ``ln_f``, or None unless:
        the weights and biases are float32 arrays of the CPU backend with its compiled kernels,
        every Linear has a bias, every LayerNorm a weight and a bias over the last dimension,
        and every block's activation is one GELU of ``gelu_forms`` (its form, "tanh" or "none",
        by activation function): GPT-2's own."""
        forms = {gelu_forms.get(act) for *_, act, _ in layers}
        if len(forms) != 1 or None in forms or not _affine(ln_f):
            return None
        built = []
        for ln_1, c_attn, attn, attn_proj, ln_2, c_fc, _, mlp_proj in layers:
            linears = [(m.weight, m.bias) for m in (c_attn, attn_proj, c_fc, mlp_proj)
                       if type(m) is nn.Linear and m.bias is not None]
            if len(linears) < 4 or not (_affine(ln_1) and _affine(ln_2)):
                return None
            if any(t._backend is not cpu_backend or t._data.dtype != np.float32
                   for pair in linears for t in pair):
                return None
            # the products' right-hand sides, W.T: views of the (out, in) weights
            linears = [(w._data.T, b._data) for w, b in linears]
            built.append((_norm(ln_1), _norm(ln_2), attn.n_head, attn.head_dim,
                          np.float32(attn.scale), linears))
        if kernels.lookup("layer_norm", "cpu") is None:    # no numba: the kernels are absent
            return None
        return cls(built, _norm(ln_f), forms.pop())

    def __call__(self, x, cache):
        """``ln_f`` of the blocks' output, a NumPy array (B, T, n_embd), from the embeddings
        ``x`` (B, T, n_embd), a float32 Tensor on the CPU, writing their keys and values into
        ``cache`` (a :class:`~gradient.generation.KVCache`) from ``cache.length`` on. ``x`` is
        one new token per sequence (decode), or a prompt of several into an empty cache
        (prefill, causal attention); None (nothing written) for other input, or for a cache whose
        layers are not one CPU float32 buffer (:meth:`KVCache.stacked`)."""
        from ..backends import cpu_kernels
        stacked = cache.stacked()
        if stacked is None or x._backend is not cpu_backend or x._data.dtype != np.float32:
            return None
        B, T, C = x.shape
        pos = cache.length
        if pos + T > cache.max_length or (T > 1 and pos):
            return None    # the module path raises the cache's error, or masks the new chunk
        keys, values = stacked
        h = x._data.reshape(B * T, C).copy()   # the residual stream, updated in place
        normed = cpu_kernels.layer_norm(h, *self._layers[0][0])[0]   # (B * T, C), rewritten below
        o = np.empty((B * T, C), np.float32)
        attend = self._decode_attention if T == 1 else self._prompt_attention
        for layer, (_, ln_2, heads, head_dim, scale, linears) in enumerate(self._layers):
            (w_qkv, b_qkv), (w_proj, b_proj), (w_fc, b_fc), (w_out, b_out) = linears
            y = attend(np.matmul(normed, w_qkv), b_qkv, pos, keys[layer], values[layer],
                       heads, head_dim, scale)                # (B * T, C): heads side by side
            np.matmul(y, w_proj, out=o)
            cpu_kernels.residual_layer_norm(h, o, b_proj, *ln_2, normed)
            inner = np.matmul(normed, w_fc)
            cpu_kernels.bias_gelu_(inner, b_fc, self._approximate)
            np.matmul(inner, w_out, out=o)
            following = self._layers[layer + 1][0] if layer + 1 < len(self._layers) \
                else self._final_norm
            cpu_kernels.residual_layer_norm(h, o, b_out, *following, normed)
        for buffer in (*cache.keys, *cache.values):
            buffer._version.bump("KVCache.update")
        kernels.record("gpt2_decode_step", "numba")
        return normed.reshape(B, T, C)

    @staticmethod
    def _decode_attention(qkv, bias, pos, keys, values, heads, head_dim, scale):
        """One new token per sequence: its projection ``qkv`` (B, 3C) before the bias, split
        into heads and written into the layer's cache at ``pos`` in one pass, then attention
        over the cache; (B, C)."""
        from ..backends import cpu_attention
        B = qkv.shape[0]
        q = np.empty((B, heads, 1, head_dim), np.float32)
        cpu_attention.decode_split_heads(qkv, bias, pos, q, keys, values)
        y = np.empty((B, heads, 1, head_dim), np.float32)
        cpu_attention.decode_cached(q, keys, values, pos + 1, scale, y)
        return y.reshape(B, heads * head_dim)

    @staticmethod
    def _prompt_attention(qkv, bias, pos, keys, values, heads, head_dim, scale):
        """A prompt of T tokens into an empty cache: the bias added to the projection ``qkv``
        (B * T, 3C) as Linear adds it, the keys and values written into the layer's cache, and
        causal attention, the module graph's calls on the same views; (B * T, C)."""
        from ..backends import cpu_attention, cpu_kernels
        B, T = keys.shape[0], qkv.shape[0] // keys.shape[0]
        cpu_kernels.add_to_rows(qkv, bias)
        q, k, v = qkv.reshape(B, T, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
        keys[:, :, pos:pos + T] = k
        values[:, :, pos:pos + T] = v
        y, _ = cpu_attention.attention_forward(q, keys[:, :, :pos + T], values[:, :, :pos + T],
                                               scale, True)
        # attention_forward lays its output out heads inside tokens: this merge copies nothing
        return y.transpose(0, 2, 1, 3).reshape(B * T, heads * head_dim)


def _affine(norm) -> bool:
    """A float32 LayerNorm of the CPU over the last dimension, with a weight and a bias."""
    return (norm.weight is not None and norm.bias is not None and len(norm.normalized_shape) == 1
            and all(p._backend is cpu_backend and p._data.dtype == np.float32
                    for p in (norm.weight, norm.bias)))


def _norm(norm) -> tuple:
    """A LayerNorm's (weight, bias, eps), as the kernels take them."""
    return norm.weight._data, norm.bias._data, norm.eps
