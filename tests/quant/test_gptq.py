"""GPTQ (gradient.quant.gptq) against a float64 NumPy transcription of the published algorithm
(one column at a time, every later column updated at once: no lazy batches), the identity
Hessian's round-to-nearest, and the output error it exists to reduce; and calibration
(gradient.quant.calibration) block by block with the statistics a plain forward's hooks see."""

import numpy as np
import pytest

import gradient
from gradient.errors import ShapeError
from gradient.models import LlamaConfig, LlamaForCausalLM
from gradient.quant import WeightOnlyLinear, gptq, gptq_quantize, quantize_weight
from gradient.quant.calibration import InputStatistics, calibrate_blocks
from gradient.quant.gptq import round_to_nearest


# ----------------------------------------------------------------------------- the reference
def _reference_grid(w, bits, sym):
    """Scale (float16) and zero point of a group (rows, columns), GPTQ's quantizer rules."""
    maxq = (1 << bits) - 1
    w = w.astype(np.float32)
    low, high = np.minimum(w.min(1), 0), np.maximum(w.max(1), 0)
    if sym:
        high = np.maximum(-low, high)
        low = np.where(low < 0, -high, low)
    flat = (low == 0) & (high == 0)
    low, high = np.where(flat, -1, low), np.where(flat, 1, high)
    scale = ((high - low) / np.float32(maxq)).astype(np.float16).astype(np.float32)
    zero = np.full(len(w), (maxq + 1) // 2) if sym else np.clip(np.rint(-low * (1 / scale)), 0,
                                                                 maxq)
    return scale, zero, maxq


def reference_gptq(weight, hessian, bits, group, sym=False, act_order=False, damp=0.01,
                   static_groups=False):
    """The published algorithm in float64, written plainly: codes (out, in) and the
    dequantized weight."""
    w, h = weight.astype(np.float64).copy(), hessian.astype(np.float64).copy()
    rows, k = w.shape
    dead = np.diag(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    grids = {}
    static = act_order or static_groups
    if static:
        for g0 in range(0, k, group):
            grids[g0 // group] = _reference_grid(w[:, g0:g0 + group], bits, sym)
    if act_order:
        order = np.argsort(-np.diag(h), kind="stable")
    else:
        order = np.arange(k)
    w, h = w[:, order], h[np.ix_(order, order)]
    h += damp * np.mean(np.diag(h)) * np.eye(k)
    u = np.linalg.cholesky(np.linalg.inv(h)).T
    codes, values = np.zeros((rows, k)), np.zeros((rows, k))
    for j in range(k):
        column = order[j]
        if not static and column % group == 0:
            grids[column // group] = _reference_grid(w[:, j:j + group], bits, sym)
        scale, zero, maxq = grids[column // group]
        q = np.clip(np.rint(w[:, j].astype(np.float32) * (1 / scale)) + zero, 0, maxq)
        value = (q - zero) * scale.astype(np.float64)
        codes[:, column], values[:, column] = q, value
        error = (w[:, j] - value) / u[j, j]
        w[:, j:] -= np.outer(error, u[j, j:])
    return codes, values


def _layer(seed=0, rows=24, k=128, samples=400):
    """A weight, and inputs whose channels are correlated and of unequal size (as a model's
    are), and their Hessian."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, k)).astype(np.float32)
    mix = rng.standard_normal((k, k)) * 0.3 + np.diag(rng.uniform(0.2, 3, k))
    x = rng.standard_normal((samples, k)) @ mix
    x[:, 5] = 0                                    # a dead input: its column is zeroed
    return w, x, 2 * x.T @ x / samples


@pytest.mark.parametrize("bits,group,sym,act_order,static", [
    (4, 32, False, False, False), (4, 64, True, False, False), (3, 32, False, False, False),
    (4, 32, False, True, False), (3, 64, True, True, False), (4, 128, False, False, False),
    (3, 32, False, False, True)])
def test_gptq_is_the_published_algorithm(bits, group, sym, act_order, static):
    w, _, h = _layer()
    packed = gptq_quantize(w, h, bits=bits, group_size=group, sym=sym, act_order=act_order,
                           block_size=64, static_groups=static)
    codes, values = reference_gptq(w, h, bits, group, sym, act_order, static_groups=static)
    if static:               # the grids of the original weights: not those found on the way
        dynamic = gptq_quantize(w, h, bits=bits, group_size=group, block_size=64)
        assert not np.array_equal(dynamic.scales, packed.scales)
    # lazy batches only reorder the float64 sums of the updates: the same codes here
    np.testing.assert_array_equal(packed.codes(), codes)
    np.testing.assert_array_equal(packed.dequantize(), values)
    assert not packed.dequantize()[:, 5].any()     # the dead input's column


def test_eight_bits_symmetric_in_the_int8_layout():
    w, x, h = _layer(1)
    packed = gptq_quantize(w, h, bits=8, group_size=64, sym=True)
    assert packed.bits == 8 and packed.zeros is None and packed.qweight.dtype == np.int8
    assert np.abs(packed.codes()).max() <= 127
    w[:, 5] = 0
    rtn = quantize_weight(w, bits=8, group_size=64).dequantize()
    error = [float(np.sum(((w - q) @ x.T) ** 2)) for q in (packed.dequantize(), rtn)]
    assert error[0] < 0.7 * error[1]


def test_the_identity_hessian_rounds_to_nearest():
    """No correlation between inputs: nothing to compensate, every column rounded alone, the
    grid and codes of round-to-nearest (gradient.quant.quantize_weight)."""
    w, _, _ = _layer(2)
    packed = gptq_quantize(w, np.eye(w.shape[1]), bits=4, group_size=32)
    rtn = quantize_weight(w, bits=4, group_size=32, zero_point=True)
    np.testing.assert_array_equal(packed.qweight, rtn.qweight)
    np.testing.assert_array_equal(packed.scales, rtn.scales)
    np.testing.assert_array_equal(packed.zeros, rtn.zeros)


@pytest.mark.parametrize("bits,sym", [(3, False), (4, True), (4, False), (8, True)])
def test_round_to_nearest_is_gptq_without_compensation(bits, sym):
    w, _, _ = _layer(4)
    w[3, :32] = 0                                   # an all-zero group
    ours = round_to_nearest(w, bits=bits, group_size=32, sym=sym)
    theirs = gptq_quantize(w, np.eye(w.shape[1]), bits=bits, group_size=32, sym=sym)
    for name in ("qweight", "scales", "zeros"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="bits must be 3 or 4"):
        round_to_nearest(w, bits=8)


@pytest.mark.parametrize("act_order", [False, True])
def test_gptq_moves_the_outputs_less_than_rounding_to_nearest(act_order):
    w, x, h = _layer(3)
    rtn = quantize_weight(w, bits=4, group_size=32, zero_point=True).dequantize()
    ours = gptq_quantize(w, h, bits=4, group_size=32, act_order=act_order).dequantize()
    w[:, 5] = 0

    def error(q):
        return float(np.sum(((w - q) @ x.T) ** 2))
    assert error(ours) < 0.7 * error(rtn)


def test_a_group_too_small_for_a_float16_scale_rounds_to_zero():
    """A range under float16's smallest scale: the scale is 0, and so are the codes' zero
    point and values, as round-to-nearest has them (no division by zero)."""
    w = np.zeros((4, 32), np.float32)
    w[:, 3] = 1e-9
    with np.errstate(divide="raise", invalid="raise"):
        packed = gptq_quantize(w, np.eye(32), bits=4, group_size=32)
    rtn = quantize_weight(w, bits=4, group_size=32, zero_point=True)
    np.testing.assert_array_equal(packed.zeros, rtn.zeros)
    np.testing.assert_array_equal(packed.dequantize(), np.zeros_like(w))


def test_bad_arguments_are_refused_clearly():
    w, _, h = _layer()
    with pytest.raises(ValueError, match="bits must be 3, 4 or 8"):
        gptq_quantize(w, h, bits=2)
    with pytest.raises(ValueError, match="sym=True"):
        gptq_quantize(w, h, bits=8)
    with pytest.raises(ShapeError, match="multiple of group_size"):
        gptq_quantize(w, h, group_size=96)
    with pytest.raises(ValueError, match="multiple of 32"):
        gptq_quantize(w, h, group_size=16)
    with pytest.raises(ShapeError, match="Hessian"):
        gptq_quantize(w, h[:4, :4])


# ----------------------------------------------------------------------------- a model
def _model(seed=0):
    gradient.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)).eval()


def _ids(seed, n=6, length=24):
    return [np.random.default_rng(seed + i).integers(0, 96, length) for i in range(n)]


def test_calibration_sees_what_a_forward_shows_each_layer():
    """With nothing changed between blocks, each block's statistics are those of the inputs a
    plain forward gives its layers (the hooks of the full model as reference)."""
    model = _model()
    calib = _ids(0)
    expected = {}
    handles = []
    for name, m in model.named_modules():
        if type(m) is gradient.nn.Linear and name != "lm_head":
            expected[name] = InputStatistics(m.in_features)
            handles.append(m.register_forward_hook(
                lambda mod, args, out, s=expected[name]: s.add(args[0].numpy())))
    with gradient.no_grad():
        for ids in calib:
            model(gradient.tensor(ids[None]))
    for handle in handles:
        handle.remove()
    seen = {}
    calibrate_blocks(model, calib, lambda i, block, stats: seen.update(
        {f"model.layers.{i}.{name}": s for name, s in stats.items()}))
    assert seen.keys() == expected.keys()
    for name, stats in seen.items():
        assert stats.count == expected[name].count == 6 * 24
        np.testing.assert_allclose(stats.xtx, expected[name].xtx, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(stats.abs_max, expected[name].abs_max)


def test_a_model_quantized_by_gptq_keeps_closer_to_float_than_rounding():
    """Every linear layer of the blocks replaced, the head left float, the model given left
    as it was; on held-out text of the calibration's kind the logits move less than with the
    same grid rounded to nearest."""
    from gradient.quant.quality import evaluate
    model = _model(1)
    calib, held_out = _ids(10, n=8, length=32), np.stack(_ids(50, n=4, length=32))
    q = gptq(model, calib, bits=4, group_size=32)
    assert sum(isinstance(m, WeightOnlyLinear) for m in q.modules()) == 3 * 7
    assert type(q.lm_head) is gradient.nn.Linear
    assert not any(isinstance(m, WeightOnlyLinear) for m in model.modules())   # a copy
    rtn = gradient.quant.quantize(model, "int4", group_size=32, zero_point=True)
    ours, nearest = evaluate(model, q, held_out), evaluate(model, rtn, held_out)
    assert ours["kl_mean"] < 0.8 * nearest["kl_mean"], (ours, nearest)


def test_a_model_without_repeated_blocks_is_refused():
    with pytest.raises(ShapeError, match="repeated blocks"):
        gptq(gradient.nn.Sequential(gradient.nn.Linear(4, 4)), [np.zeros(3, np.int64)])
