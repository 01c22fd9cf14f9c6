"""Representative calls of every family of gradient's compiled (numba) kernels, run as a script.

``python -m tests.backends.compiled_cache_probe [FAMILY ...]`` runs each call below (or those
named) on fixed inputs and prints
one JSON object: the SHA-256 of each call's outputs, and for every numba function defined in
gradient, the signatures it was compiled for and numba's counts of cache hits and misses.
``test_compiled_cache.py`` runs it in a child process with an empty ``NUMBA_CACHE_DIR`` (every
kernel compiled now), then in a second child with that cache (every kernel loaded from disk),
and requires the same bits from both. The first run also reads the LLVM IR of the float32
kernels it compiled for arithmetic in double (``float32_arithmetic``). A kernel that none of
these calls reaches is reported, so a new kernel needs a call here before the test passes.

The thresholds that choose between the serial and the parallel drivers are lowered so that
small inputs take both.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
import re
import sys

import numpy as np


def _digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if not isinstance(a, np.ndarray):     # a kernel that declined its input: a probe bug
            raise TypeError(f"expected an array from every call, got {type(a).__name__}")
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _rng(seed=0):
    return np.random.default_rng(seed)


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ----------------------------------------------------------------------------- backends
def cpu_kernels():
    import ml_dtypes

    from gradient.backends import cpu_kernels as k
    rng = _rng(1)
    x, g = _f32(rng, 6, 40), _f32(rng, 6, 40)
    w, b = _f32(rng, 40), _f32(rng, 40)
    out = []
    for form in ("tanh", "none"):
        out += [k.gelu(x, form), k.gelu_backward(g, x, form)]
    out += [k.silu(x), k.silu_backward(g, x)]
    y, mean, rstd = k.layer_norm(x, w, b, 1e-5)
    out += [y, mean, rstd, *k.layer_norm_backward(g, x, mean, rstd, w)]
    y64 = k.layer_norm(x.astype(np.float64), None, None, 1e-5)
    out += list(y64)
    y, rstd = k.rms_norm(x, w, 1e-6)
    out += [y, rstd, *k.rms_norm_backward(g, x, rstd, w)]
    for half in (ml_dtypes.bfloat16, np.float16):          # 16-bit floats, as their bits
        y, rstd = k.rms_norm((x * 3).astype(half), w.astype(half), 1e-6)
        out += [y.view(np.uint16), rstd]
    target = rng.integers(0, 40, 6)
    target[2] = -100
    loss, lse = k.cross_entropy(x, target, -100)
    out += [loss, lse, k.cross_entropy_backward(x, target, lse, np.full(6, 0.25, np.float32))]
    p, m, v = _f32(rng, 50), np.zeros(50, np.float32), np.zeros(50, np.float32)
    for _ in range(3):
        k.adam_step(p, g.reshape(-1)[:50].copy(), m, v, None, lr=1e-2, beta1=0.9,
                    beta2=0.999, eps=1e-8, weight_decay=0.01, decoupled_weight_decay=True,
                    maximize=False, step=1)
    out += [p, m, v]
    b = np.empty_like(p)
    for first in (True, False):
        k.sgd_step(p, g.reshape(-1)[:50].copy(), b, lr=1e-2, momentum=0.9, dampening=0.1,
                   weight_decay=0.01, nesterov=False, maximize=False, first=first)
    big = _f32(rng, 1 << 16)                          # on threads, in chunks
    k.sgd_step(big, big[::-1].copy(), None, lr=0.5, momentum=0, dampening=0, weight_decay=0,
               nesterov=False, maximize=True, first=False)
    out += [p, b, big]
    v, a = np.zeros_like(p), np.zeros_like(p)
    for _ in range(2):
        k.rmsprop_step(p, g.reshape(-1)[:50].copy(), v, a, b, lr=1e-2, alpha=0.9, eps=1e-8,
                       weight_decay=0.1, momentum=0.5, maximize=False)
        k.adagrad_step(p, g.reshape(-1)[50:100].copy(), m, lr=1e-2, weight_decay=0.0,
                       eps=1e-10, maximize=True)
    out += [p, v, a, b, m]
    for step in (1, 2):
        k.adamax_step(p, g.reshape(-1)[100:150].copy(), v, a, lr=1e-2, beta1=0.9, beta2=0.99,
                      eps=1e-8, weight_decay=0.1, maximize=False, step=step)
    out += [p, v, a]
    up = _f32(rng, 6, 40)
    out += [k.swiglu(x * 4, up), *k.swiglu_backward(g, x * 4, up)]
    heads = _f32(rng, 2, 5, 3, 8).transpose(0, 2, 1, 3)     # a head split's strided view
    cos, sin = _f32(rng, 5, 8), _f32(rng, 5, 8)
    out += [k.rotary_embedding(heads, cos, sin, backward) for backward in (False, True)]
    out.append(k.rotary_embedding(heads, cos[None, None], sin[None, None], False))
    rows = np.zeros((8, 40), np.float32)
    k.index_add_rows(rows, np.array([1, 3, 1, 7, 0, 3]), x)
    # (b is the momentum buffer by now: a bias of the rows' width)
    assert k.add_to_rows(rows, _f32(rng, 40))
    out.append(k.round_to_bfloat16(_f32(rng, 70, 67) * 1e3).view(np.int16))
    from gradient.backends.cpu_fma import fma, lerp   # one rounding: add with alpha, addcmul
    for dtype in (np.float32, np.float64, ml_dtypes.bfloat16, np.float16):
        out.append(fma(np.asarray(0.3, dtype), x.astype(dtype), up.astype(dtype), dtype)
                   .view(np.uint8))
        for weight in (0.3, 0.7):
            out.append(lerp(x.astype(dtype), up.astype(dtype), weight, dtype).view(np.uint8))
    return out + [rows]


def cpu_attention():
    from gradient.backends import cpu_attention as a
    rng = _rng(2)
    q, k, v = _f32(rng, 2, 3, 7, 16), _f32(rng, 2, 3, 9, 16), _f32(rng, 2, 3, 9, 16)
    out = []
    for causal in (False, True):
        o, probs = a.attention_forward(q, k, v, 0.25, causal)
        grad = _f32(rng, *o.shape)
        out += [o, probs, *a.attention_backward(grad, q, k, v, o, probs, 0.25, causal)]
    keys, values = np.zeros((2, 2, 12, 16), np.float32), np.zeros((2, 2, 12, 16), np.float32)
    for pos in range(5):
        qh = _f32(rng, 2, 4, 1, 16)                       # grouped heads, one row
        keys[:, :, pos], values[:, :, pos] = _f32(rng, 2, 2, 16), _f32(rng, 2, 2, 16)
        out += [qh, a.decode_attention(qh, keys[:, :, :pos + 1], values[:, :, :pos + 1], 0.25)]
    prompt = _f32(rng, 1, 6, 40, 16), _f32(rng, 1, 2, 40, 16), _f32(rng, 1, 2, 40, 16)
    o = a.attend(*prompt, 0.25, 2)                        # a causal prompt, on two threads
    qh = _f32(rng, 2, 4, 1, 16)                           # a batch of rows at their own lengths
    ragged = a.ragged_attend(qh, keys[:, :, :5], values[:, :, :5], np.array([3, 5]), 0.25, 2)
    step = a.attend(prompt[0][:, :, -1:].copy(), *prompt[1:], 0.25, 2)   # a decode step, 2 threads
    half = a.attend(prompt[0][:, :, -1:].copy(), *(x.astype(np.float16) for x in prompt[1:]),
                    0.25, 2)                                # the same against a float16 cache
    # a paged cache's pools: keys (each block's transposed), values
    pool = _f32(rng, 5, 2, 16, 64), _f32(rng, 5, 2, 64, 16)
    tables, lengths = np.array([[3, 1], [0, 4]]), np.array([70, 9])
    paged = [a.paged_attend(qh, pool[0], pool[1], tables, lengths, 64, 0.25, n)
             for n in (1, 2)]                               # rows through their blocks
    # the same inside a compiled batch step, after its write of each row's new position,
    # into float32 pools and float16 ones (as their bits)
    from gradient.backends.cpu_lowered import paged_kv_write
    new_k, new_v = _f32(rng, 2, 2, 1, 16), _f32(rng, 2, 2, 1, 16)
    for dtype in (np.float32, np.uint16):
        pools = np.zeros((2, 5, 2, 16, 64), dtype), np.zeros((2, 5, 2, 64, 16), dtype)
        k_pool, v_pool = paged_kv_write(pools[0], pools[1], tables, lengths - 1, np.int64(64),
                                        1, new_k, new_v)
        paged += [k_pool, v_pool] + [
            a.paged_decode_attention_compiled(qh, k_pool, v_pool, tables, lengths,
                                              np.int64(64), np.float32(0.25), n)
            for n in (1, 2)]
    # a speculative check's rows after a cache, inside a compiled step (float16 as its bits)
    checks = [a.rows_attention_compiled(prompt[0][:, :, -3:].copy(), *(x.view(np.uint16) for x
                                        in (x.astype(np.float16) for x in prompt[1:])),
                                        np.float32(0.25), n) for n in (1, 2)]
    return out + [keys, values, *prompt, o, qh, ragged, step, half, *paged, *checks]


def cpu_low_precision():
    import ml_dtypes

    from gradient.backends.cpu_half import as_bits
    from gradient.backends.cpu_low_precision import low_precision_linear
    from gradient.backends.cpu_lowered import cast
    rng = _rng(3)
    out = []
    for dtype in (ml_dtypes.bfloat16, np.float16):
        w = _f32(rng, 48, 40).astype(dtype)
        for rows in (1, 5):
            x = _f32(rng, rows, 40)
            out += [low_precision_linear(x, w), low_precision_linear(x, w.T.copy().T),
                    low_precision_linear(x.astype(dtype), w).view(np.uint16)]   # rounded
        wide = cast(as_bits(w), np.empty(0, np.float32))     # a compiled step's casts
        out += [wide, cast(wide * 3, np.empty(0, as_bits(w).dtype)).view(np.uint16)]
    return out


def cpu_float_rows():
    import ml_dtypes

    from gradient.backends import cpu_float_rows as f
    rng = _rng(4)
    out = []
    for dtype in (np.float32, ml_dtypes.bfloat16, np.float16):
        # rows past whole tiles, a ragged tail, enough float32 values not to be left to BLAS
        w = _f32(rng, 1031, 67).astype(dtype)
        for rows in (1, 2, 3, 7):       # tiles of 4 rows of x, 2 and 1
            out.append(f.float_rows_product(_f32(rng, rows, 67), w))
        # a prompt's: register-blocked, in blocks of 1 (four steps of k a pass), 2, 2, 3 and
        # 4 x 16 rows of x (16 and 17 rows: float32 only, 16-bit weights from 25)
        for rows in (16, 17, 30, 40, 64):
            out.append(f.float_rows_product(_f32(rng, rows, 67), w))
        x = _f32(rng, 2, 1, 67)
        out.append(f.float_rows_compiled(x, (2, 67), (2, 1, 1031), f.weight_bits(w), 2,
                                         f._NO_BIAS, False))
        if dtype is ml_dtypes.bfloat16:    # float32 rows rounded to bfloat16 (llama.cpp's)
            out.append(f.bfloat16_rows_product(_f32(rng, 7, 67), w))
            out.append(f.bfloat16_rows_compiled(x, (2, 67), (2, 1, 1031), f.weight_bits(w), 2))
    from gradient.backends import cpu_tiles
    if cpu_tiles.available():      # a prompt's rows on the matrix tiles: bfloat16, float32
        w = _f32(rng, 70, 64).astype(ml_dtypes.bfloat16)
        out.append(f.float_rows_product(_f32(rng, 17, 64).astype(ml_dtypes.bfloat16), w))
        out.append(f.float_rows_product(_f32(rng, 33, 64), w))
    w, bias = _f32(rng, 37, 45), _f32(rng, 37)
    out.append(f.float_rows_compiled(_f32(rng, 3, 45), (3, 45), (3, 37), w, 2, bias, True))
    # more rows than the decoding product takes: the GEMM's compiled form
    from gradient.backends.cpu_lowered import linear
    x = _f32(rng, 2, 9, 45)
    out.append(linear(x, w, bias, True, 18, (2, 9, 37)))
    return out


# ----------------------------------------------------------------------------- quant
_QTYPES = ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K",
           "F16", "BF16", "F32")


def _blocks(rng, qtype, rows=64, cols=256):
    """A (rows, cols) weight as the bytes of GGML type ``qtype``: quantized by gradient where
    it writes the type, else random bytes below 0x3C (every float16 among them finite)."""
    import ml_dtypes

    from gradient.quant import ggml, weight_only
    w = _f32(rng, rows, cols)
    if qtype in weight_only.GGML_SCHEMES:
        return weight_only.quantize_blocks(w, qtype)
    if qtype in ("F32", "F16", "BF16"):
        dtype = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16}[qtype]
        return w.astype(dtype).view(np.uint8)
    row_bytes = ggml.tensor_nbytes(ggml.GGMLType[qtype], cols)
    return rng.integers(0, 0x3C, (rows, row_bytes), dtype=np.uint8)


def _serial_then_parallel():
    """Loop twice: with quant's products on one thread, then on numba's threads."""
    from gradient.quant import matmul, weight_only
    for threshold in (1 << 40, 0):
        matmul.PARALLEL_MIN_WEIGHTS = weight_only.PARALLEL_MIN_CODES = threshold
        yield


def ggml_dequantize():
    from gradient.quant import ggml
    rng = _rng(4)
    out = []
    for serial in (True, False):
        ggml.PARALLEL_MIN_VALUES = 1 << 30 if serial else 0
        for name in _QTYPES:
            qtype = ggml.GGMLType[name]
            out.append(ggml.dequantize(_blocks(rng, name), qtype, (64, 256)))
    return out


def quant_matmul():
    from gradient.quant import matmul
    from gradient.quant.ggml import GGMLType
    rng = _rng(5)
    out = []
    for _ in _serial_then_parallel():
        for name in _QTYPES:
            blocks, qtype = _blocks(rng, name), GGMLType[name]
            for rows in (1, 3, 20):      # the row kernels, and dequantized tiles into BLAS
                out.append(matmul.quantized_matmul(_f32(rng, rows, 256), blocks, qtype, 64, 256))
            out.append(matmul.quantized_matmul_t(_f32(rng, 2, 64), blocks, qtype, 64, 256))
            out.append(matmul.dequantize_rows(blocks, qtype, 64, 256, 8, 40))
    return out


def quant_interleaved():
    from gradient.quant import interleaved
    from gradient.quant.ggml import GGMLType
    rng = _rng(6)
    out = []
    for _ in _serial_then_parallel():
        for name in ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
                     "Q6_K"):
            w = interleaved.InterleavedWeight.from_blocks(_blocks(rng, name), GGMLType[name],
                                                          64, 256)
            # per-token int8 activations (SmoothQuant's W8A8) for the int8 weights only
            for activations in ("int8", "float32") + (
                    ("int8_per_token",) if name == "Q8_0" else ()):
                for rows in (1, 3):
                    out.append(interleaved.interleaved_matmul(_f32(rng, rows, 256), w,
                                                              activations))
            if name in ("Q4_1", "Q8_0"):   # a first run's float32 product (row by row)
                compiled_already = interleaved.compiled_already
                interleaved.compiled_already = lambda kernel, args: False
                try:
                    out.append(interleaved.interleaved_matmul(_f32(rng, 3, 256), w, "float32"))
                finally:
                    interleaved.compiled_already = compiled_already
            if name == "Q8_0":        # and its compiled form, as a captured step calls it
                lowered = interleaved.lowered_product(_f32(rng, 3, 256), (3, 256), w,
                                                      "int8_per_token", (3, 64))
                out.append(lowered.fn(*lowered.args))
            out += [interleaved.interleaved_matmul(_f32(rng, 20, 256), w),
                    interleaved.interleaved_matmul_t(_f32(rng, 2, 64), w),
                    w.dequantize(), w.rows(np.array([0, 33, 63, 5]))]
        by_kind = [interleaved.InterleavedWeight.from_blocks(_blocks(rng, n), GGMLType[n], 64,
                                                              256) for n in ("Q4_1", "Q6_K")]
        for rows in (1, 3):      # several products of the same rows (q, k, v) in one call
            x = _f32(rng, rows, 256)
            out += list(interleaved.int8_products(x, by_kind))
            out += list(interleaved.int8_products(x, by_kind + by_kind[:1]))
    out += list(interleaved.quantize_activations(_f32(rng, 3, 256) * 3))
    return out


def quant_weight_only():
    from gradient.quant import weight_only
    rng = _rng(7)
    w = _f32(rng, 64, 256)
    out = [weight_only.quantize_q4_k(w)]
    for _ in _serial_then_parallel():
        for bits, group, zero in ((8, None, False), (4, 32, True), (4, 64, False)):
            p = weight_only.quantize_weight(w, bits=bits, group_size=group, zero_point=zero)
            for rows in (1, 3, 20):
                out.append(weight_only.weight_only_matmul(_f32(rng, rows, 256), p))
            out.append(p.dequantize())
        # int8 rows not in 32-value blocks: the codes' own kernels, and their dequantizing
        layer = weight_only.WeightOnlyLinear(weight_only.quantize_weight(w[:, :100], bits=8))
        for rows in (1, 3, 20):
            out.append(layer._product(_f32(rng, rows, 100)))
        out.append(layer.dequantize().numpy())
    return out


# ----------------------------------------------------------------------------- models
def _greedy(model, prompt, steps):
    import gradient
    out, ids = [], list(prompt)
    with gradient.no_grad():
        cache = model.new_cache(1, len(prompt) + steps)
        logits = model(gradient.tensor([ids]), cache=cache).logits
        for _ in range(steps):
            last = logits.numpy()[0, -1]
            out.append(last)
            ids.append(int(last.argmax()))
            logits = model(gradient.tensor([ids[-1:]]), cache=cache).logits
    return out


def gpt2_decode():
    import gradient
    from gradient.models import GPT2Config, GPT2LMHeadModel
    gradient.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=200, n_positions=64, n_embd=64, n_layer=2,
                                       n_head=4)).eval()
    with gradient.no_grad():
        for p in model.parameters():     # biases and norms away from their 0 and 1
            p.add_(gradient.randn(*p.shape) * 0.05)
    return _greedy(model, [3, 14, 15, 92, 65], 6)


def llama_decode():
    """The decode step compiled into one loop over the layers (gradient.capture.compiled),
    with q/k/v biases and both kinds of interleaved codes."""
    import gradient
    from gradient.models import LlamaConfig, LlamaForCausalLM
    from gradient.quant import QuantizedLinear
    qtypes = ("Q4_1", "Q8_0")       # nibble codes with a minimum, byte codes without
    gradient.manual_seed(1)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=200, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=64,
        model_type="qwen2"))
    for layer in model.model.layers:
        for i, (block, name) in enumerate(
                [(layer.self_attn, n) for n in ("q_proj", "k_proj", "v_proj", "o_proj")]
                + [(layer.mlp, n) for n in ("gate_proj", "up_proj", "down_proj")]):
            linear = getattr(block, name)
            if linear.bias is not None:
                with gradient.no_grad():
                    linear.bias.copy_(gradient.randn(*linear.bias.shape) * 0.1)
            setattr(block, name, QuantizedLinear.from_linear(linear, qtypes[i % len(qtypes)],
                                                             activations="int8"))
    return _greedy(model.eval(), [5, 17, 42, 8, 99, 3], 6)


def llama_float_decode():
    """The compiled decode step of a float32 model with a user's LoRA adapter on q_proj (float
    products, a scaled sum) and of one whose quantized layers take float32 activations, with
    a float16 KV cache."""
    import gradient
    from gradient.models import LlamaConfig, LlamaForCausalLM
    from gradient.quant import QuantizedLinear

    class LoRA(gradient.nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base, self.a, self.b = base, gradient.nn.Linear(64, 4, bias=False), \
                gradient.nn.Linear(4, 64, bias=False)

        def forward(self, x):
            return self.base(x) + self.b(self.a(x)) * 0.5
    out = []
    for quantized in (False, True):
        gradient.manual_seed(2)
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=200, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            max_position_embeddings=64))
        for layer in model.model.layers:
            if quantized:
                layer.mlp.up_proj = QuantizedLinear.from_linear(layer.mlp.up_proj, "Q8_0",
                                                                activations="float32")
                model.kv_cache_dtype = gradient.float16         # and a float16 KV cache
            else:
                layer.self_attn.q_proj = LoRA(layer.self_attn.q_proj)
        out += _greedy(model.eval(), [5, 17, 42], 6)
    return out


def llama_half_decode():
    """The compiled decode steps of a bfloat16 and a float16 model (their values as their bits
    in the loop: norms, sums and products rounded, attention and SwiGLU widened)."""
    import gradient
    from gradient.models import LlamaConfig, LlamaForCausalLM
    out = []
    for dtype in (gradient.bfloat16, gradient.float16):
        gradient.manual_seed(3)
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=200, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            max_position_embeddings=64, model_type="qwen3")).to(dtype)
        out += [a.astype("float32") for a in _greedy(model.eval(), [5, 17, 42], 6)]
    return out


CALLS = {f.__name__: f for f in (cpu_kernels, cpu_attention, cpu_low_precision, cpu_float_rows,
                                 ggml_dequantize,
                                 quant_matmul, quant_interleaved, quant_weight_only, gpt2_decode,
                                 llama_decode, llama_float_decode, llama_half_decode)}


# ----------------------------------------------------------------------------- the report
def compiled_functions() -> dict:
    """Every numba dispatcher defined in a module of gradient, by ``module.name``."""
    import numba.core.registry

    import gradient
    found = {}
    for info in pkgutil.walk_packages(gradient.__path__, "gradient."):
        if ".cuda" in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (isinstance(value, numba.core.registry.CPUDispatcher)
                    and value.py_func.__module__ == module.__name__):
                found[f"{module.__name__}.{name}"] = value
    return found


def policy(dispatcher) -> dict:
    """What the compile policy asks of a dispatcher: cached, inlined, fastmath flags."""
    return {"cached": type(dispatcher._cache).__name__ != "NullCache",
            "inline": dispatcher.targetoptions.get("inline", "never") == "always",
            "fastmath": bool(dispatcher.targetoptions.get("fastmath"))}


#: The kernel modules whose float32 kernels must compute in float32 (a Python literal in a
#: kernel's arithmetic makes numba promote float32 to float64: see gradient.backends.cpu_compile)
FLOAT32_MODULES = tuple(f"gradient.backends.{m}" for m in
                        ("cpu_kernels", "cpu_attention", "cpu_low_precision", "cpu_float_rows"))
# (a float16 cache's values widen with fpext half to float: not a promotion)
_DOUBLE = re.compile(r"fpext [^\n]* to double|= f(?:add|sub|mul|div) [^\n]*double")


def float32_arithmetic(dispatcher) -> dict:
    """Of a kernel of FLOAT32_MODULES compiled in this process (code loaded from numba's cache
    cannot be inspected): how many float32 signatures its LLVM IR was read for, and whether one
    computes in double. Signatures with a float64 argument are left out (kernels accumulating
    in double on purpose take one: the norms' eps), and so are the thread splits (parallel):
    no arithmetic of their own."""
    checked, in_double = 0, False
    if (dispatcher.py_func.__module__ in FLOAT32_MODULES and not dispatcher.stats.cache_hits
            and not dispatcher.targetoptions.get("parallel")):
        for sig in dispatcher.signatures:
            if "float32" in str(sig) and "float64" not in str(sig):
                checked += 1
                in_double |= bool(_DOUBLE.search(dispatcher.inspect_llvm(sig)))
    return {"float32_checked": checked, "in_double": in_double}


def main() -> None:
    chosen = sys.argv[1:] or list(CALLS)      # the families to run (all by default)
    digests = {name: _digest(CALLS[name]()) for name in chosen}
    functions = {}
    unavailable = set()
    from gradient.backends import cpu_tiles
    if not cpu_tiles.available():           # kernels of instructions this CPU lacks
        unavailable.add(cpu_tiles.__name__)
    for name, dispatcher in compiled_functions().items():
        stats = dispatcher.stats
        functions[name] = {
            "signatures": len(dispatcher.signatures),
            **policy(dispatcher),
            "unavailable": dispatcher.py_func.__module__ in unavailable,
            "hits": sum(stats.cache_hits.values()),
            "misses": sum(stats.cache_misses.values()),
            **float32_arithmetic(dispatcher),
        }
    json.dump({"digests": digests, "functions": functions}, sys.stdout)


if __name__ == "__main__":
    main()
