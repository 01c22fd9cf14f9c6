"""One decoding step of a quantized LLaMA-family model in one compiled call.

Decoding a token through the module graph runs some thirty Tensor operations per layer, each a
few microseconds of Python (checks, dispatch, wrapping): for SmolLM2-135M (30 layers, rows 576
wide) that overhead was twice the time of the arithmetic itself, whose int8 kernels take about
6 ms per token. llama.cpp runs the same step as a compiled graph. This module does the same for
the common case -- a batch of one sequence, one new token, weights kept in GGML types by the
GGUF loader: :class:`FusedDecoder` runs every layer's RMSNorm, q/k/v projections (int8
activations), rotary embedding, KV-cache write, grouped-query attention over the cache, output
projection, SwiGLU MLP and residuals in one numba function, calling the kernels of
:mod:`gradient.quant.interleaved` for the products.

It computes what the modules compute, with the same kernels for the products and RMSNorm;
only the order of a few float32 sums in attention differs, so the logits agree to ~1e-5 and greedy
tokens match (tested against the module path). :meth:`LlamaForCausalLM.forward` uses it by
itself when it applies (see :meth:`FusedDecoder.build` for the conditions), unless
``model.fused_decode = False``.

To run in one function, the weights of each projection are stacked over the layers (one
(layers, groups, blocks, ., 32) array per projection; the layers' own
:class:`~gradient.quant.InterleavedWeight` become views of it, so nothing is held twice), so
are the norms' weights and the q/k/v biases (the parameters become views: changes made in
place reach the kernel), and the KV cache keeps all layers in one buffer
(:meth:`KVCache.stacked`).

Example::

    >>> model, tok = gradient.hub.load("SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> model.generate([tok.encode("Hi")], max_new_tokens=32)     # decodes through FusedDecoder
"""

from __future__ import annotations

import numba
import numpy as np

from .. import kernels
from ..backends.cpu_compile import compile_kernel
from ..backends.cpu_kernels import _rms_norm_fwd
from ..backends.cpu_reduce import LANES, lane_sum
from ..backends.host_memory import pages_of_their_own, release_freed_memory
from ..nn.module import ModuleWatch
from ..quant.interleaved import InterleavedWeight, _int8_byte, _int8_nibble, _quantize_rows
from ..quant.linear import QuantizedLinear

__all__ = ["FusedDecoder"]

_PROJECTIONS = (("self_attn", "q_proj"), ("self_attn", "k_proj"), ("self_attn", "v_proj"),
                ("self_attn", "o_proj"), ("mlp", "gate_proj"), ("mlp", "up_proj"),
                ("mlp", "down_proj"))


class _Stacked:
    """One projection of every layer: the repacked weights stacked over the layers. Each
    layer's :class:`QuantizedLinear` is pointed at its slice as soon as it is copied, so its
    own arrays are freed layer by layer (memory holds the model plus one layer's weight)."""

    def __init__(self, modules: list[QuantizedLinear]):
        first = modules[0].packed
        self.nibble = first.kind == "nibble"
        self.offset = first.offset
        self.has_min = first.minimum.size > 0
        self.out_features = first.out_features
        n = len(modules)
        # outside the heap, as the layers' own arrays (see host_memory.pages_of_their_own)
        self.codes = pages_of_their_own((n,) + first.codes.shape, first.codes.dtype)
        self.scale = pages_of_their_own((n,) + first.scale.shape, first.scale.dtype)
        self.minimum = pages_of_their_own((n,) + first.minimum.shape, first.minimum.dtype)
        for i, m in enumerate(modules):
            w = m.packed
            self.codes[i], self.scale[i], self.minimum[i] = w.codes, w.scale, w.minimum
            m.packed = InterleavedWeight(w.qtype, w.out_features, w.in_features, w.kind,
                                         w.block, w.offset, self.codes[i], self.scale[i],
                                         self.minimum[i])

    def args(self):
        return (self.codes, self.scale, self.minimum, self.has_min, self.offset, self.nibble)


class FusedDecoder:
    """The decode step of one :class:`~gradient.models.LlamaForCausalLM` (see the module
    docstring); build it with :meth:`build`, which says None when the model does not qualify."""

    def __init__(self, config, layers, stacked, biases, norms, windows, shared):
        self._layers = layers          # [(QuantizedLinear, its packed), ...]: checked per step
        self._shared = shared          # [(module, name, parameter, view of a stack), ...]: too
        self._watch = None             # of the modules when valid() last walked them
        self._windows = windows
        self._norms = norms
        # the kernel's arguments that do not change from token to token, gathered once
        self._weights = tuple(a for s in stacked for a in s.args()) + tuple(biases)
        self.n_heads, self.n_kv_heads, self.head_dim = (config.num_attention_heads,
                                                         config.num_key_value_heads,
                                                         config.head_dim)
        self.intermediate_size = stacked[4].out_features
        self.eps = float(config.rms_norm_eps)   # as the module graph's RMSNorm takes it

    @classmethod
    def build(cls, model) -> "FusedDecoder | None":
        """A decoder for ``model``, or None unless: the decoder stack and its layers are the
        plain modules of :mod:`gradient.models.llama` (:func:`_runs_as_built`: no hooks, no
        subclass or replaced forward, evaluation mode); every layer's seven projections are
        :class:`QuantizedLinear` layers with int8 activations over repacked weights of 32-value
        blocks, of one GGML type per projection across the layers; only q/k/v have biases; no
        per-head q/k norm (Qwen3); a SiLU MLP; float32 norm weights and biases."""
        c = model.config
        inner = model.model
        if c.hidden_act not in ("silu", "swish") or not _runs_as_built(model):
            return None
        per_kind = [[] for _ in _PROJECTIONS]
        for layer in inner.layers:
            if layer.self_attn.q_norm is not None:
                return None
            for kind, (block, name) in enumerate(_PROJECTIONS):
                m = getattr(getattr(layer, block), name)
                # (a plain QuantizedLinear already: see _runs_as_built)
                if not (m.activations == "int8" and m.packed is not None and m.packed.block == 32):
                    return None
                if m.bias is not None and kind > 2:
                    return None
                per_kind[kind].append(m)
        for mods in per_kind:
            if len({m.qtype for m in mods}) != 1:
                return None
        norms = [norm for layer in inner.layers
                 for norm in (layer.input_layernorm, layer.post_attention_layernorm)]
        norm_weights = [n.weight.detach().numpy() for n in norms]
        if any(w.dtype != np.float32 for w in norm_weights) or any(
                m.bias is not None and m.bias.detach().numpy().dtype != np.float32
                for mods in per_kind[:3] for m in mods):
            return None
        for mods in per_kind:                 # same shapes across the layers, too
            if len({(m.packed.codes.shape, m.packed.minimum.shape) for m in mods}) != 1:
                return None
        stacked = []                 # the layers now read views of it
        for mods in per_kind:
            stacked.append(_Stacked(mods))
            release_freed_memory()   # the layers' own arrays, freed: not kept for reuse
        # The norms' weights and the q/k/v biases are stacked too, and the parameters made
        # views of the stacks: a change made to them in place reaches the kernel.
        shared = []
        norm_stack = np.stack(norm_weights)
        for n, row in zip(norms, norm_stack):
            shared.append(_share(n, "weight", row))
        biases = []
        for kind in range(3):
            mods = per_kind[kind]
            b = np.zeros((len(mods), mods[0].out_features), np.float32)
            for i, m in enumerate(mods):
                if m.bias is not None:
                    b[i] = m.bias.detach().numpy()
                    shared.append(_share(m, "bias", b[i]))
            biases.append(b)
        layers = [(m, m.packed) for mods in zip(*per_kind) for m in mods]
        # per layer: how many positions back it sees (0: all; Mistral's sliding window)
        windows = np.array([inner.window if sliding else 0 for sliding in inner.sliding],
                           dtype=np.int64)
        return cls(c, layers, stacked, biases, norm_stack.reshape(len(inner.layers), 2, -1),
                   windows, shared)

    def valid(self, model) -> bool:
        """Whether ``model`` holds the layers this decoder was built over (a copy of the model
        does not: its layers are other objects), still as built (:func:`_runs_as_built`: a
        forward hook registered since then must run), whose norms' weights and biases are still
        the parameters made views of the stacks (a replaced storage is a change too). Runs every
        step; the walk over the layers only when some module changed since the last walk found
        them (a :class:`~gradient.nn.module.ModuleWatch`): right after a step has streamed the
        weights through the caches, the walk's 210 cold modules cost about 0.4 ms of a 8 ms
        token."""
        for module, name, param, view in self._shared:
            if module._parameters.get(name) is not param or param._data is not view:
                return False
        if self._watch is not None and not self._watch.changed:
            return True
        watch = ModuleWatch(model.modules())   # begun first: a change during the walk is seen
        if not _runs_as_built(model):
            return False
        i = 0
        for layer in model.model.layers:
            blocks = layer._modules
            for block, name in _PROJECTIONS:
                m, packed = self._layers[i]
                if blocks[block]._modules[name] is not m or m.packed is not packed or \
                        m.activations != "int8":
                    return False
                i += 1
        self._watch = watch
        return True

    def step(self, x: np.ndarray, position: int, cos: np.ndarray, sin: np.ndarray,
             keys: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Run every layer on the hidden state ``x`` (hidden,) of the token at ``position``,
        writing its keys/values at ``position`` of ``keys``/``values`` (layers, kv_heads,
        max_length, head_dim); returns the last layer's output (before the final norm)."""
        x = np.array(x, dtype=np.float32)
        _decode_layers(x, self._norms, self.eps, *self._weights, cos, sin, keys, values,
                       position, self.n_heads, self.n_kv_heads, self.head_dim,
                       self.intermediate_size, self._windows, 2 * numba.get_num_threads())
        kernels.record("llama_decode_step", "numba")
        return x


def _runs_as_built(model) -> bool:
    """The modules the fused step stands in for are the plain classes of
    :mod:`gradient.models.llama` (:func:`plain`): exactly those
    classes, in evaluation mode, with no forward hooks and no ``forward`` set on an instance. The
    step replaces their calls, so a hook there would not run and a subclass's forward would be
    ignored; the module graph runs instead. (The embedding and the final norm are still called
    as modules around the step.)"""
    from .llama import LlamaAttention, LlamaDecoderLayer, LlamaMLP, LlamaModel, LlamaRMSNorm
    if not plain(model.model, LlamaModel):
        return False
    for layer in model.model.layers:
        parts = layer._modules
        if not (plain(layer, LlamaDecoderLayer) and plain(parts["self_attn"], LlamaAttention)
                and plain(parts["mlp"], LlamaMLP)
                and plain(parts["input_layernorm"], LlamaRMSNorm)
                and plain(parts["post_attention_layernorm"], LlamaRMSNorm)):
            return False
        blocks = {"self_attn": parts["self_attn"]._modules, "mlp": parts["mlp"]._modules}
        if not all(plain(blocks[block][name], QuantizedLinear) for block, name in _PROJECTIONS):
            return False
    return True


def plain(module, cls) -> bool:
    """``module`` is exactly ``cls``, in evaluation mode, without forward hooks and without a
    ``forward`` of its own (set on the instance): running its class's arithmetic here does what
    calling it would."""
    return type(module) is cls and not module.training and not (
        module._forward_hooks or module._forward_pre_hooks) and "forward" not in module.__dict__


def _share(module, name: str, view: np.ndarray) -> tuple:
    """Make ``module``'s parameter ``name`` hold ``view`` (its values, in a stacked array)."""
    param = module._parameters[name]
    param._data = view
    return module, name, param, view


# ----------------------------------------------------------------------------- the kernel
@compile_kernel
def _activation_buffers(n):
    """xq, scale, sum32, sum16, qsum for one row of n values (see quantize_activations)."""
    return (np.empty((1, n), np.int8), np.empty((1, n // 32), np.float32),
            np.empty((1, n // 32), np.float32), np.empty((1, n // 16), np.float32),
            np.empty((1, n // 32), np.int32))


@compile_kernel
def _groups(codes, scale, minimum, has_min, offset, nibble, layer, y, xq, xd, xs, xs16, xsum,
            lo, hi):
    """Columns of groups lo..hi of y (1, out) = int8 x @ W[layer].T."""
    if lo >= hi:
        return
    if nibble:
        _int8_nibble(codes[layer], scale[layer], minimum[layer], has_min, offset, xq, xd, xs,
                     xsum, y, 0, lo, hi, 16)
    else:
        _int8_byte(codes[layer], scale[layer], minimum[layer], has_min, xq, xd, xs, xs16, y, 0,
                   lo, hi, 32)


@compile_kernel(inline=True)
def _project(n_chunks, layer, xq, xd, xs, xs16, xsum,
             ac, as_, am, a_min, a_off, a_nib, ay,
             bc, bs, bm, b_min, b_off, b_nib, by,
             cc, cs, cm, c_min, c_off, c_nib, cy):
    """Up to three products of the same int8 activations (q, k, v; gate, up; one alone: pass
    the same projection with ``b``/``c`` having no groups) in one parallel loop over their
    groups of rows, in ``n_chunks`` chunks. Inlined into the caller, whose own parallel loop
    this becomes: numba's cache mishandles a cached function that *calls* a parallel one (a
    second specialization loaded from the cache crashed)."""
    na, nb, nc = ac.shape[1], bc.shape[1], cc.shape[1]
    total = na + nb + nc
    step = (total + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        g0, g1 = c * step, min(total, (c + 1) * step)
        _groups(ac, as_, am, a_min, a_off, a_nib, layer, ay, xq, xd, xs, xs16, xsum,
                max(g0, 0), min(g1, na))
        _groups(bc, bs, bm, b_min, b_off, b_nib, layer, by, xq, xd, xs, xs16, xsum,
                max(g0, na) - na, min(g1, na + nb) - na)
        _groups(cc, cs, cm, c_min, c_off, c_nib, layer, cy, xq, xd, xs, xs16, xsum,
                max(g0, na + nb) - na - nb, min(g1, total) - na - nb)


@compile_kernel
def _rotate(v, cos, sin, out):
    """out = v * cos + roll(v, half) * sin, per head of length cos.size (HF's layout; the sign
    of the first half is in ``sin``)."""
    d = cos.size
    half = d // 2
    for h in range(v.size // d):
        for i in range(d):
            out[h * d + i] = v[h * d + i] * cos[i] + v[h * d + (i + half) % d] * sin[i]


@compile_kernel
def _attend(q, keys, values, start, length, n_heads, n_kv, d, out, scores):
    """Softmax attention of each query head over positions ``start .. length - 1`` of its K/V
    head. Serial: for one token the heads are too small to split (measured: a parallel loop
    over SmolLM2's 9 heads took 3 times as long), and float32 throughout (expf, not exp).
    The scores are one BLAS matrix-vector product per head (``np.dot``); the weighted sum
    reads each cached value row once for all the query heads of its group (measured: 20-30%
    faster than a pass per query head)."""
    group = n_heads // n_kv
    scale = np.float32(1.0) / np.sqrt(np.float32(d))
    acc = np.empty(LANES, np.float32)
    for h in range(n_heads):
        g = h // group
        row = scores[h, start:length]
        row[:] = np.dot(keys[g, start:length], q[h * d:(h + 1) * d])
        m = np.float32(-np.inf)
        for t in range(length - start):
            row[t] *= scale
            m = max(m, row[t])
        for t in range(length - start):
            row[t] = np.exp(row[t] - m)
        inv = np.float32(1.0) / lane_sum(row, acc)
        for t in range(length - start):
            row[t] *= inv
    for i in range(n_heads * d):
        out[i] = 0.0
    for g in range(n_kv):
        for t in range(start, length):
            for hh in range(group):   # (a loop over range(g * group, ...) ran 2x slower)
                h = g * group + hh
                p = scores[h, t]
                for i in range(d):
                    out[h * d + i] += p * values[g, t, i]


@compile_kernel(parallel=True)
def _decode_layers(x, norms, eps,
                   qc, qs, qm, q_min, q_off, q_nib,
                   kc, ks, km, k_min, k_off, k_nib,
                   vc, vs, vm, v_min, v_off, v_nib,
                   oc, os_, om, o_min, o_off, o_nib,
                   gc, gs, gm, g_min, g_off, g_nib,
                   uc, us, um, u_min, u_off, u_nib,
                   dc, ds, dm, d_min, d_off, d_nib,
                   q_bias, k_bias, v_bias, cos, sin, keys, values, pos, n_heads, n_kv, d, inter,
                   windows, n_chunks):
    hidden = x.size
    L = norms.shape[0]
    h = np.empty((1, hidden), np.float32)
    # int8 activations of each width: the hidden state, the attention output, the MLP's inner
    hq, hd, hs, hs16, hsum = _activation_buffers(hidden)
    oq, od, os32, os16_, osum = _activation_buffers(n_heads * d)
    dq, dd, ds32, ds16, dsum = _activation_buffers(inter)
    q = np.empty((1, n_heads * d), np.float32)
    k = np.empty((1, n_kv * d), np.float32)
    v = np.empty((1, n_kv * d), np.float32)
    qr = np.empty(n_heads * d, np.float32)
    att = np.empty((1, n_heads * d), np.float32)
    o = np.empty((1, hidden), np.float32)
    g = np.empty((1, inter), np.float32)
    u = np.empty((1, inter), np.float32)
    scores = np.empty((n_heads, pos + 1), np.float32)
    rstd = np.empty(1, np.float32)
    for layer in range(L):
        # attention block
        _rms_norm_fwd(x.reshape((1, hidden)), norms[layer, 0], eps, h, rstd)
        _quantize_rows(h, hq, hd, hs, hs16, hsum)
        _project(n_chunks, layer, hq, hd, hs, hs16, hsum,
                 qc, qs, qm, q_min, q_off, q_nib, q,
                 kc, ks, km, k_min, k_off, k_nib, k,
                 vc, vs, vm, v_min, v_off, v_nib, v)
        for i in range(n_heads * d):
            q[0, i] += q_bias[layer, i]
        for i in range(n_kv * d):
            k[0, i] += k_bias[layer, i]
            v[0, i] += v_bias[layer, i]
        _rotate(q[0], cos, sin, qr)
        kr = keys[layer]
        vr = values[layer]
        for hh in range(n_kv):
            for i in range(d):
                j = hh * d + (i + d // 2) % d
                kr[hh, pos, i] = k[0, hh * d + i] * cos[i] + k[0, j] * sin[i]
                vr[hh, pos, i] = v[0, hh * d + i]
        start = max(0, pos + 1 - windows[layer]) if windows[layer] > 0 else 0
        _attend(qr, kr, vr, start, pos + 1, n_heads, n_kv, d, att[0], scores)
        _quantize_rows(att, oq, od, os32, os16_, osum)
        _project(n_chunks, layer, oq, od, os32, os16_, osum,
                 oc, os_, om, o_min, o_off, o_nib, o,
                 oc[:, :0], os_[:, :0], om[:, :0], o_min, o_off, o_nib, o,
                 oc[:, :0], os_[:, :0], om[:, :0], o_min, o_off, o_nib, o)
        for i in range(hidden):
            x[i] += o[0, i]
        # MLP block
        _rms_norm_fwd(x.reshape((1, hidden)), norms[layer, 1], eps, h, rstd)
        _quantize_rows(h, hq, hd, hs, hs16, hsum)
        _project(n_chunks, layer, hq, hd, hs, hs16, hsum,
                 gc, gs, gm, g_min, g_off, g_nib, g,
                 uc, us, um, u_min, u_off, u_nib, u,
                 uc[:, :0], us[:, :0], um[:, :0], u_min, u_off, u_nib, u)
        for i in range(inter):
            a = g[0, i]
            g[0, i] = a / (np.float32(1.0) + np.exp(-a)) * u[0, i]
        _quantize_rows(g, dq, dd, ds32, ds16, dsum)
        _project(n_chunks, layer, dq, dd, ds32, ds16, dsum,
                 dc, ds, dm, d_min, d_off, d_nib, o,
                 dc[:, :0], ds[:, :0], dm[:, :0], d_min, d_off, d_nib, o,
                 dc[:, :0], ds[:, :0], dm[:, :0], d_min, d_off, d_nib, o)
        for i in range(hidden):
            x[i] += o[0, i]
