"""Weight-only int8/int4 quantization: the format (packing, scales, zero points), the kernels
against dequantize-then-matmul, the layer, model quantization (copies, skips, GGML targets),
the Q4_K writer against llama.cpp's, and the errors."""

import copy
import ctypes
import importlib.util
import os
import warnings

import numpy as np
import pytest

import gradient
import gradient.quant as Q
from gradient import nn
from gradient.errors import ShapeError
from gradient.models.gpt2 import GPT2Config, GPT2LMHeadModel
from gradient.models.llama import LlamaConfig, LlamaForCausalLM
from gradient.nn.modules.linear import NonDynamicallyQuantizableLinear
from gradient.quant import linear as ql
from gradient.quant import matmul as qm
from gradient.quant.ggml import GGMLType, UnsupportedQuantTypeError
from gradient.quant.linear import QuantizedLinear
from gradient.quant.weight_only import (PackedWeight, WeightOnlyLinear, pack_int4, quantize_model,
                                        quantize_q4_k, quantize_weight, unpack_int4,
                                        weight_only_matmul)

from ..models.decode_step_checks import decode_logits, steps_by_kind
from .gguf_fixtures import gguf

# (bits, group_size, zero_point): int8 per channel and in groups, int4 both ways
FORMATS = [(8, None, False), (8, 64, False), (4, 32, False), (4, 32, True), (4, 64, False),
           (4, 128, True), (4, 256, False)]
FMT_IDS = [f"int{b}-g{g or 'row'}{'-zp' if z else ''}" for b, g, z in FORMATS]


def random_weight(m, k, seed=0):
    w = np.random.default_rng(seed).standard_normal((m, k)).astype(np.float32)
    w[0, :64] = 0.0                      # all-zero groups: scale 0
    w[1, :64] = 0.5                      # constant groups
    w[2, 5] = 40.0                       # an outlier setting its group's scale
    w[3] = np.abs(w[3])                  # a row without negative weights
    return w


def close(a, b, rtol=1e-5):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    err = np.max(np.abs(a - b)) if a.size else 0.0
    assert err <= rtol * max(1.0, np.max(np.abs(b)) if b.size else 0.0), err


# ----------------------------------------------------------------------------- the format
def test_pack_int4_layout_and_round_trip():
    codes = np.random.default_rng(0).integers(0, 16, (5, 96), dtype=np.uint8)
    packed = pack_int4(codes)
    assert packed.shape == (5, 48) and packed.dtype == np.uint8
    # byte j of each 32-value block: code j in the low nibble, code j + 16 in the high one
    for b in range(3):
        for j in range(16):
            assert (packed[:, 16 * b + j] == codes[:, 32 * b + j] |
                    (codes[:, 32 * b + 16 + j] << 4)).all()
    np.testing.assert_array_equal(unpack_int4(packed), codes)
    with pytest.raises(ShapeError, match="multiple of 32"):
        pack_int4(codes[:, :40])
    with pytest.raises(ValueError, match="0..15"):
        pack_int4(codes.astype(np.int16) + 1)


@pytest.mark.parametrize("bits,group,zp", FORMATS, ids=FMT_IDS)
def test_quantize_weight_rules(bits, group, zp):
    w = random_weight(8, 256)
    p = quantize_weight(w, bits, group, zp)
    g = group or 256
    assert p.in_features == 256 and p.out_features == 8 and p.group_size == g
    assert p.scales.dtype == np.float16 and p.scales.shape == (8, 256 // g)
    assert p.qweight.shape == ((8, 256) if bits == 8 else (8, 128))
    assert (p.zeros is not None) == zp and not p.qweight.flags.writeable
    q = p.codes()
    s = p.scales.astype(np.float32)
    sg = np.repeat(np.abs(s), g, axis=1)                     # each weight's step
    err = np.abs(p.dequantize() - w)
    if bits == 8:
        assert q.min() >= -127 and q.max() <= 127
        # max|w| / 127 per group, rounded to float16: the largest weight lands on +-127
        np.testing.assert_array_equal(
            s, (np.abs(w.reshape(8, -1, g)).max(-1) / np.float32(127)).astype(np.float16))
        assert (err <= 0.5 * sg * (1 + 2e-3) + 1e-7).all()
    elif zp:
        assert q.min() >= 0 and q.max() <= 15 and p.zeros.max() <= 15
        assert (err <= 0.52 * sg + 1e-7).all()               # +2%: the scale's float16 rounding
        # zero stays exact: an all-zero group decodes to zeros, and so does its neighbour's 0
        assert (p.dequantize()[0, :64] == 0).all()
    else:
        assert q.min() >= 0 and q.max() <= 15                # stored offset by 8
        # the largest magnitude of each group lands exactly on -8
        gw = w.reshape(8, -1, g)
        big = np.take_along_axis(gw, np.abs(gw).argmax(-1)[..., None], -1)[..., 0]
        np.testing.assert_array_equal(s, (big / np.float32(-8)).astype(np.float16))
        assert (err <= 1.0 * sg * (1 + 2e-3) + 1e-7).all()   # the +8 side clips to 7
        assert (err <= 0.5 * sg * (1 + 2e-3) + 1e-7).mean() > 0.9
    assert (p.dequantize()[0, :64] == 0).all()
    if g <= 64:                                              # a constant group stays constant
        assert np.isclose(p.dequantize()[1, :64], 0.5, rtol=2e-3).all()
    assert p.nbytes == p.qweight.nbytes + p.scales.nbytes + (p.zeros.nbytes if zp else 0)


def test_quantization_error_shrinks_with_the_group():
    w = np.random.default_rng(1).standard_normal((64, 512)).astype(np.float32)
    mse = {k: float(((quantize_weight(w, *k).dequantize() - w) ** 2).mean()) for k in
           [(8, None, False), (4, 32, False), (4, 128, False), (4, 32, True), (4, 128, True)]}
    assert mse[(8, None, False)] < mse[(4, 32, False)] / 50
    assert mse[(4, 32, False)] < mse[(4, 128, False)]
    assert mse[(4, 32, True)] < mse[(4, 128, True)]
    assert mse[(4, 32, True)] < mse[(4, 32, False)]          # a zero point adds a level


# ----------------------------------------------------------------------------- the kernels
@pytest.mark.parametrize("n", [1, 3, 5, 8, 9, 40])
@pytest.mark.parametrize("bits,group,zp", FORMATS, ids=FMT_IDS)
def test_kernel_matches_dequantize_then_matmul(bits, group, zp, n):
    rng = np.random.default_rng(n)
    m, k = 72, 256                                           # 72: a tile of 16 rows + a rest
    p = quantize_weight(random_weight(m, k), bits, group, zp)
    w = p.dequantize().astype(np.float64)
    x = rng.standard_normal((n, k)).astype(np.float32)
    close(weight_only_matmul(x, p), x @ w.T)                 # n = 1, row buffer (n <= 8) or tiles
    close(weight_only_matmul(x[0], p), x[0] @ w.T)           # 1-d input
    y = weight_only_matmul(x.reshape(1, n, k), p)            # leading dims kept
    assert y.shape == (1, n, m)


@pytest.mark.parametrize("n", [1, 40])
@pytest.mark.parametrize("k", [100, 36])
def test_int8_rows_not_in_blocks_of_32(k, n):
    # per-channel int8 over in_features that 32 does not divide: the codes' own kernels
    rng = np.random.default_rng(n)
    p = quantize_weight(random_weight(40, k), 8)
    layer = WeightOnlyLinear(p)
    assert layer.packed is p and layer.packed_weight() is p
    w = p.dequantize().astype(np.float64)
    x = rng.standard_normal((n, k)).astype(np.float32)
    close(weight_only_matmul(x, p), x @ w.T)
    np.testing.assert_array_equal(layer.dequantize().numpy(), p.dequantize())
    with gradient.no_grad():
        close(layer(gradient.tensor(x)).numpy(), x @ w.T)
    xt = gradient.tensor(x, requires_grad=True)
    layer(xt).sum().backward()
    close(xt.grad.numpy(), np.ones((n, 40)) @ w)


@pytest.mark.parametrize("n", [1, 2, 20])
@pytest.mark.parametrize("bits,group,zp,k", [(8, None, False, 100), (4, 64, True, 128)],
                         ids=["int8-odd-rows", "int4"])
def test_parallel_kernels(monkeypatch, bits, group, zp, k, n):
    # every matrix runs multi-threaded: the prange drivers give the serial results, bit for bit
    from gradient.quant import weight_only
    p = quantize_weight(random_weight(40, k), bits, group, zp)
    x = np.random.default_rng(0).standard_normal((n, k)).astype(np.float32)
    monkeypatch.setattr(qm, "PARALLEL_MIN_WEIGHTS", 1 << 40)
    monkeypatch.setattr(weight_only, "PARALLEL_MIN_CODES", 1 << 40)
    serial = weight_only_matmul(x, p)
    monkeypatch.setattr(qm, "PARALLEL_MIN_WEIGHTS", 0)
    monkeypatch.setattr(weight_only, "PARALLEL_MIN_CODES", 0)
    np.testing.assert_array_equal(weight_only_matmul(x, p), serial)
    close(serial, x @ p.dequantize().astype(np.float64).T)
    layer = WeightOnlyLinear(p)
    np.testing.assert_array_equal(layer.dequantize().numpy(), p.dequantize())


def test_empty_and_degenerate_shapes():
    p = quantize_weight(np.zeros((4, 64), np.float32), 4, 32, True)
    assert (weight_only_matmul(np.ones((3, 64), np.float32), p) == 0).all()
    assert weight_only_matmul(np.ones((0, 64), np.float32), p).shape == (0, 4)
    with pytest.raises(ShapeError, match=r"x of shape \(2, 32\) does not match"):
        weight_only_matmul(np.ones((2, 32), np.float32), p)


# ----------------------------------------------------------------------------- the layer
def test_layer_forward_backward_and_state():
    gradient.manual_seed(0)
    linear = nn.Linear(128, 24)
    layer = WeightOnlyLinear.from_linear(linear, bits=4, group_size=64, zero_point=True)
    w = layer.dequantize().numpy().astype(np.float64)
    np.testing.assert_array_equal(layer.dequantize().numpy(), layer.packed_weight().dequantize())
    rng = np.random.default_rng(0)
    x = gradient.tensor(rng.standard_normal((2, 3, 128)).astype(np.float32), requires_grad=True)
    y = layer(x)
    b = linear.bias.detach().numpy()
    close(y.detach().numpy(), x.detach().numpy() @ w.T + b)
    u = rng.standard_normal((2, 3, 24)).astype(np.float32)
    (y * gradient.from_numpy(u)).sum().backward()
    close(x.grad.numpy(), u @ w)                             # d/dx = u @ W, through the codes
    close(layer.bias.grad.numpy(), u.sum((0, 1)))
    # double backward: grad_x = g @ W is itself a product by the codes
    g = gradient.tensor(u, requires_grad=True)
    (gx,) = gradient.autograd.grad(layer(x), x, grad_outputs=g, create_graph=True)
    v = rng.standard_normal((2, 3, 128)).astype(np.float32)
    (gx * gradient.from_numpy(v)).sum().backward()
    close(g.grad.numpy(), v @ w.T)                           # d/dg (g @ W . v) = v @ W.T
    assert [name for name, _ in layer.named_parameters()] == ["bias"]
    assert list(layer.state_dict()) == ["bias"]
    with gradient.no_grad():
        assert layer(x.detach().to(gradient.bfloat16)).dtype is gradient.bfloat16
    # held repacked: 24 rows padded to 32 (two groups of 16), 4 blocks of 32 values a row, each
    # 16 bytes of codes, a float16 scale and a zero point
    assert layer.nbytes == 32 * 4 * (16 + 2 + 1)
    assert repr(layer) == ("WeightOnlyLinear(in_features=128, out_features=24, bits=4, "
                           "group_size=64, zero_point=True, bias=True, 2.4 KiB)")
    with pytest.raises(ShapeError, match=r"has 64 features, expected 128"):
        layer(gradient.randn(2, 64))
    with pytest.raises(TypeError, match="PackedWeight"):
        WeightOnlyLinear(np.zeros((2, 2)))


@pytest.mark.parametrize("bits,group,zp", [FORMATS[i] for i in (0, 1, 2, 3, 5)],
                         ids=[FMT_IDS[i] for i in (0, 1, 2, 3, 5)])
def test_layer_holds_only_the_repacked_weight(bits, group, zp):
    # the layer keeps the interleaved kernels' form alone, and gives the PackedWeight back
    p = quantize_weight(random_weight(72, 256), bits, group, zp)
    layer = WeightOnlyLinear(p)
    assert isinstance(layer.packed, Q.InterleavedWeight)
    back = layer.packed_weight()
    for name in ("qweight", "scales", "zeros"):
        a, b = getattr(back, name), getattr(p, name)
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
    assert (back.bits, back.group_size, back.in_features) == (bits, p.group_size, 256)
    # (72 rows padded to 80) x 8 blocks: 16 bytes of codes (32 for int8) + scale (+ zero point)
    per_block = (16 if bits == 4 else 32) + 2 + (1 if zp else 0)
    assert layer.nbytes == 80 * 8 * per_block
    np.testing.assert_array_equal(layer.dequantize().numpy(), p.dequantize())
    # int8 activations (as llama.cpp), and the exact layer for the gradient's own gradient
    x = np.random.default_rng(2).standard_normal((3, 256)).astype(np.float32)
    fast = WeightOnlyLinear(p, activations="int8")
    with gradient.no_grad():
        exact, approx = layer(gradient.tensor(x)).numpy(), fast(gradient.tensor(x)).numpy()
    close(exact, x @ p.dequantize().astype(np.float64).T)
    assert 0 < np.abs(approx - exact).max() < 0.03 * np.abs(exact).max()
    assert fast.exact().activations == "float32" and fast.exact().packed is fast.packed
    assert fast.activations == "int8" and layer.exact() is layer
    with pytest.raises(ValueError, match="activations must be one of"):
        WeightOnlyLinear(p, activations="int4")


# ----------------------------------------------------------------------------- models
def tiny_llama(seed=0):
    gradient.manual_seed(seed)
    config = LlamaConfig(vocab_size=96, hidden_size=256, intermediate_size=512,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         attention_bias=True)
    return LlamaForCausalLM(config).eval()


def tiny_gpt2(seed=0):
    gradient.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=96, n_positions=32, n_embd=64, n_layer=2,
                                      n_head=4)).eval()


def dequantized_copy(model, quantized):
    """The float model with each quantized layer's weight replaced by its dequantized weight."""
    ref = copy.deepcopy(model)
    for name, module in quantized.named_modules():
        if isinstance(module, (WeightOnlyLinear, QuantizedLinear)):
            linear = ref.get_submodule(name)
            linear.weight = nn.Parameter(module.dequantize())
    return ref


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@pytest.mark.parametrize("scheme,options", [("int8", {}), ("int4", {"group_size": 64}),
                                            ("int4", {"zero_point": True}), ("Q8_0", {}),
                                            ("Q4_K", {})])
def test_quantize_model_copy(scheme, options):
    model = tiny_llama()
    before = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # Q4_K fits every layer here
        q = Q.quantize(model, scheme, **options)
    assert q is not model
    kind = QuantizedLinear if scheme.startswith("Q") else WeightOnlyLinear
    layers = {name: type(m) for name, m in q.named_modules()
              if isinstance(m, (nn.Linear, kind))}
    assert layers.pop("lm_head") is nn.Linear            # skipped by default
    assert len(layers) == 14 and set(layers.values()) == {kind}
    # the float model is untouched, and the copy shares nothing with it
    assert all(type(m) is not kind for m in model.modules())
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value.detach().numpy(), before[name])
    assert q.model.embed_tokens.weight is not model.model.embed_tokens.weight
    assert not np.shares_memory(q.model.embed_tokens.weight.detach().numpy(),
                                model.model.embed_tokens.weight.detach().numpy())
    if kind is WeightOnlyLinear:
        layer = q.model.layers[1].mlp.down_proj
        assert layer.bits == (8 if scheme == "int8" else 4)
        # down_proj: 512 inputs; int8 is per channel (one group per row) by default
        assert layer.group_size == options.get("group_size", 512 if scheme == "int8" else 32)
    else:
        assert q.model.layers[0].self_attn.q_proj.qtype == GGMLType[scheme]
    # the quantized model computes with exactly the dequantized weights (GGML layers: with
    # float32 activations; their default int8 activations lose ~1% of each product)
    ids = gradient.tensor(np.random.default_rng(0).integers(0, 96, (2, 12)))
    exact = q
    if kind is QuantizedLinear:
        exact = copy.deepcopy(q)
        for name, module in list(exact.named_modules()):
            if isinstance(module, QuantizedLinear):
                exact.set_submodule(name, module.exact())
    with gradient.no_grad():
        reference = dequantized_copy(model, q)(ids).logits.numpy()
        close(exact(ids).logits.numpy(), reference, 1e-4)
        close(q(ids).logits.numpy(), reference, 0.05)
    out = q.generate(ids[:1, :4], max_new_tokens=6, eos_token_id=[])
    assert tuple(out.shape) == (1, 10)
    assert out.tolist() == q.generate(ids[:1, :4], max_new_tokens=6, eos_token_id=[]).tolist()


@pytest.mark.separate   # heavy: CI runs it in its own pass (-m separate)
@pytest.mark.parametrize("scheme", ["int8", "int4", "Q8_0"])
@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_quantized_models_replay_their_decode_steps(scheme, family):
    """The quantized layers keep the mode of the layers they replace, and a quantized model's
    decode steps are captured and replayed as a float model's are, with the same bits. (A batch
    of 2: LLaMA's one-sequence GGUF decoder does not apply.)"""
    from collections import Counter
    model = tiny_llama() if family == "llama" else tiny_gpt2()
    q = Q.quantize(model, scheme)
    assert not any(m.training for m in q.modules())
    ids = np.random.default_rng(1).integers(0, 96, (2, 10))
    counts = Counter()
    fused = decode_logits(q, ids, prompt=5, counts=counts)
    assert steps_by_kind(counts) == {"capture": 2, "replay": 3, "module graph": 0}
    np.testing.assert_array_equal(fused, decode_logits(q, ids, prompt=5, fused=False))
    assert all(m.training for m in Q.quantize(model.train(), scheme).modules())


def test_quantize_inplace_skip_and_head():
    model = tiny_gpt2()
    q = Q.quantize(model, "int8")                         # a copy keeps GPT-2's tied head
    assert q.lm_head.weight is q.transformer.wte.weight
    assert q.lm_head.weight is not model.lm_head.weight
    shared_head = model.lm_head
    out = quantize_model(model, "int4", inplace=True,
                         skip=("lm_head", "mlp.c_proj", "*.attn.c_attn"))
    assert out is model and model.lm_head is shared_head
    for block in model.transformer.h:
        assert type(block.mlp.c_proj) is nn.Linear and type(block.attn.c_attn) is nn.Linear
        assert type(block.mlp.c_fc) is WeightOnlyLinear
        assert type(block.attn.c_proj) is WeightOnlyLinear
    ids = gradient.tensor([[1, 2, 3, 4]])
    assert model.generate(ids, max_new_tokens=4, eos_token_id=[]).shape == (1, 8)
    # skip=() quantizes the head too (LLaMA sizes its cache from the embedding)
    llama = quantize_model(tiny_llama(), "int8", skip=())
    assert type(llama.lm_head) is WeightOnlyLinear
    assert llama.generate(ids, max_new_tokens=3, eos_token_id=[]).shape == (1, 7)
    # a bare Linear is itself replaced
    single = nn.Linear(64, 8)
    assert type(Q.quantize(single, "int4")) is WeightOnlyLinear and type(single) is nn.Linear
    # only exact nn.Linear: MultiheadAttention's out_proj (read directly) stays float
    mha = nn.MultiheadAttention(64, 4)
    quantize_model(mha, "int8", inplace=True)
    assert type(mha.out_proj) is NonDynamicallyQuantizableLinear


def test_ggml_targets_are_the_block_writers():
    gradient.manual_seed(0)
    seq = nn.Sequential(nn.Linear(256, 32), nn.ReLU(), nn.Linear(32, 8))
    with pytest.warns(UserWarning, match=r"1 layer\(s\).*Q5_0 instead of Q4_K.*\b2\b"):
        q = Q.quantize(seq, "Q4_K")
    assert q[0].qtype == GGMLType.Q4_K and q[2].qtype == GGMLType.Q5_0   # 32 % 256 != 0
    np.testing.assert_array_equal(q[0].qweight, quantize_q4_k(seq[0].weight.detach().numpy()))
    q = Q.quantize(seq, "q4_0")
    np.testing.assert_array_equal(
        q[0].qweight, ql.quantize(seq[0].weight.detach().numpy(), "Q4_0"))
    np.testing.assert_array_equal(q[0].bias.detach().numpy(), seq[0].bias.detach().numpy())


def test_quantize_dispatches_on_its_first_argument():
    w = random_weight(4, 256)
    for qtype in ("Q8_0", "Q4_1", GGMLType.Q5_0):
        np.testing.assert_array_equal(Q.quantize(w, qtype), ql.quantize(w, qtype))
    np.testing.assert_array_equal(Q.quantize(gradient.from_numpy(w), "Q4_0"),
                                  ql.quantize(w, "Q4_0"))
    np.testing.assert_array_equal(Q.quantize(w, "Q4_K"), quantize_q4_k(w))
    with pytest.raises(TypeError, match="group_size apply to models"):
        Q.quantize(w, "Q4_0", group_size=32)


def test_errors():
    model = tiny_gpt2()                                   # n_embd 64
    with pytest.raises(ShapeError, match=r"layer 'transformer.h.0.attn.c_attn' \(192x64\).*"
                                         r"in_features=64 is not a multiple of group_size=128.*"
                                         r"e.g. 32, 64"):
        Q.quantize(model, "int4", group_size=128)
    with pytest.raises(ValueError, match="multiple of 32"):
        quantize_weight(np.ones((2, 96), np.float32), bits=4, group_size=48)
    with pytest.raises(ShapeError, match="in_features=96 is not a multiple of group_size=64"):
        quantize_weight(np.ones((2, 96), np.float32), bits=8, group_size=64)
    with pytest.raises(ValueError, match="int8 is symmetric"):
        Q.quantize(model, "int8", zero_point=True)
    with pytest.raises(UnsupportedQuantTypeError, match="unknown scheme 'int3'"):
        Q.quantize(model, "int3")
    with pytest.raises(ValueError, match="fixed block layout"):
        Q.quantize(model, "Q4_0", group_size=32)
    with pytest.raises(ValueError, match="inf or NaN"):
        quantize_weight(np.full((2, 32), np.inf, np.float32), bits=4)
    with pytest.raises(ShapeError, match="not a multiple of 256"):
        quantize_q4_k(np.ones((2, 96), np.float32))
    with pytest.raises(TypeError, match="PackedWeight"):
        WeightOnlyLinear("codes")
    assert isinstance(quantize_weight(np.ones((1, 32), np.float32), 4), PackedWeight)


# ----------------------------------------------------------------------------- Q4_K
def q4_k_weights():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((12, 512)).astype(np.float32)
    w[0, :256] = 0.0                                        # an all-zero super-block
    w[1, :32] = 0.5                                         # a constant sub-block
    w[2, 5] = 40.0                                          # an outlier
    w[3] = np.abs(w[3])                                     # no negative values: min 0
    w[4] *= 1e-4
    w[5] = rng.standard_t(3, 512)                           # heavy tails
    w[6] = -np.abs(w[6]) * 100
    return w


def test_q4_k_round_trip():
    w = q4_k_weights()
    blocks = quantize_q4_k(w)
    assert blocks.shape == (12, 2 * 144) and blocks.dtype == np.uint8
    back = gguf.quants.dequantize(blocks, gguf.GGMLQuantizationType.Q4_K).reshape(w.shape)
    np.testing.assert_array_equal(back[0, :256], 0)
    rel = np.sqrt(((back - w) ** 2).mean(1)) / np.maximum(np.sqrt((w ** 2).mean(1)), 1e-30)
    assert (rel < 0.12).all(), rel
    # its scale search beats Q4_0's single absmax scale on Gaussian weights
    g = np.random.default_rng(0).standard_normal((32, 512)).astype(np.float32)
    q4k = gguf.quants.dequantize(quantize_q4_k(g), gguf.GGMLQuantizationType.Q4_K)
    q40 = gguf.quants.dequantize(Q.quantize(g, "Q4_0"), gguf.GGMLQuantizationType.Q4_0)
    assert ((q4k.reshape(g.shape) - g) ** 2).mean() < 0.8 * ((q40.reshape(g.shape) - g) ** 2).mean()


def _llama_cpp_q4_k():
    """llama.cpp's quantize_row_q4_K_ref, from the library llama-cpp-python (a fixture tool, see
    tests/fixtures/llama_cpp) ships; found without importing the package (whose import leaks a
    file handle)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llama-cpp-python (a fixture tool) is not installed")
    lib_dir = os.path.join(list(spec.submodule_search_locations)[0], "lib")
    try:
        lib = ctypes.CDLL(os.path.join(lib_dir, "libggml-base.so"))
        fn = lib.quantize_row_q4_K_ref
    except (OSError, AttributeError) as e:
        pytest.skip(f"llama.cpp's quantize_row_q4_K_ref not found in {lib_dir}: {e}")
    fn.argtypes, fn.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64], None

    def quantize(w):
        w = np.ascontiguousarray(w, dtype=np.float32)
        out = np.zeros(w.size // 256 * 144, np.uint8)
        fn(w.ctypes.data, out.ctypes.data, w.size)
        return out.reshape(w.shape[0], -1)
    return quantize


def test_q4_k_is_bit_exact_with_llama_cpp():
    reference = _llama_cpp_q4_k()
    w = q4_k_weights()
    np.testing.assert_array_equal(quantize_q4_k(w), reference(w))
    g = np.random.default_rng(7).standard_normal((64, 1024)).astype(np.float32) * 0.02
    np.testing.assert_array_equal(quantize_q4_k(g), reference(g))
