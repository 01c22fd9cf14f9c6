"""AWQ (gradient.quant.awq): the scale search against a float64 NumPy transcription of the
published search (the layers' outputs on explicit inputs), the folds leaving the float
model's function as it was (LLaMA's norms and linears, GPT-2's LayerNorms with their bias,
grouped-query attention without the v -> o fold), and the output error it exists to reduce."""

import numpy as np
import pytest

import gradient
from gradient.errors import ShapeError
from gradient.models import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
from gradient.quant import WeightOnlyLinear, awq, quantize
from gradient.quant.awq import awq_clip, awq_scales
from gradient.quant.calibration import InputStatistics
from gradient.quant.quality import evaluate

from .test_gptq import _reference_grid


def reference_rounded(w, bits, group):
    """Round to nearest on GPTQ's grid, group by group, as float64 values."""
    out = np.empty(w.shape)
    for g0 in range(0, w.shape[1], group):
        scale, zero, maxq = _reference_grid(w[:, g0:g0 + group], bits, False)
        q = np.clip(np.rint(w[:, g0:g0 + group].astype(np.float32) * (1 / scale)[:, None])
                    + zero[:, None], 0, maxq)
        out[:, g0:g0 + group] = (q - zero[:, None]) * scale[:, None].astype(np.float64)
    return out


def reference_search(weights, x, bits, group, duo, n_grid=20):
    """The reference's search of the scales (llm-awq's auto_scale.search_module_scale, with
    AutoAWQ's duo scaling) written plainly: for each ratio the scales normalised, the weights
    scaled, rounded and scaled back, and the mean squared error of the layers' (concatenated)
    outputs."""
    x = x.astype(np.float64)
    x_mean = np.abs(x).mean(axis=0)
    w = np.abs(np.concatenate(weights).astype(np.float64)).reshape(-1, group)
    w_mean = (w / (w.max(axis=1, keepdims=True) + 1e-6)).reshape(
        -1, x.shape[1]).mean(axis=0)
    reference = np.concatenate([x @ w.T.astype(np.float64) for w in weights], axis=1)
    best = (np.inf, None, None)
    for step in range(n_grid):
        ratio = step / n_grid
        s = x_mean ** ratio / (w_mean ** (1 - ratio) + 1e-4) if duo else x_mean ** ratio
        s = np.clip(s, 1e-4, None)
        s = (s / np.sqrt(s.max() * s.min())).astype(np.float32)
        out = np.concatenate([x @ (reference_rounded(w * s, bits, group) / s).T
                              for w in weights], axis=1)
        error = np.mean((out - reference) ** 2)
        if error < best[0]:
            best = (error, s, ratio)
    return best[1], best[2]


def salient_inputs(seed, samples=512, k=128):
    """Inputs with a few channels far larger than the rest, as a language model's are."""
    rng = np.random.default_rng(seed)
    size = rng.uniform(0.3, 1.5, k)
    size[rng.choice(k, 4, replace=False)] = 25.0
    return (rng.standard_normal((samples, k)) * size).astype(np.float32)


def reference_clip(w, x, bits, group, n_grid=20, max_shrink=0.5):
    """The reference's clipping search (llm-awq's auto_clip_layer) written plainly: per row
    and group, the shrunk largest magnitude whose clipped, rounded weights give the group's
    partial outputs on the inputs the least mean squared error."""
    x = x.astype(np.float64)
    rows, k = w.shape
    best = np.zeros((rows, k // group), np.float32)
    for r in range(rows):
        for g in range(k // group):
            cols = slice(g * group, (g + 1) * group)
            wg = w[r:r + 1, cols]
            exact = x[:, cols] @ wg[0].astype(np.float64)
            largest, errors = np.abs(wg).max(), []
            for step in range(int(max_shrink * n_grid)):
                limit = np.float32(largest * np.float32(1 - step / n_grid))
                rounded = reference_rounded(np.clip(wg, -limit, limit), bits, group)
                errors.append((np.mean((x[:, cols] @ rounded[0] - exact) ** 2), limit))
            best[r, g] = min(errors, key=lambda e: e[0])[1]
    return best


@pytest.mark.parametrize("bits,group,duo", [(4, 32, True), (3, 64, True), (4, 128, False),
                                            (4, 32, False)])
def test_the_scales_are_the_published_search(bits, group, duo):
    rng = np.random.default_rng(bits + group)
    x = salient_inputs(group)
    weights = [rng.standard_normal((m, 128)).astype(np.float32) for m in (48, 16)]
    stats = InputStatistics(128)
    stats.add(x[:200])
    stats.add(x[200:])                              # two calls: the sums in float64
    ours, ratio, losses = awq_scales(weights, stats, bits, group, duo_scaling=duo)
    theirs, their_ratio = reference_search(weights, x, bits, group, duo)
    assert ratio == their_ratio and 0 < ratio
    np.testing.assert_array_equal(ours, theirs)
    assert len(losses) == 20 and min(losses) < 0.8 * losses[0]    # ratio 0 = plain rounding


@pytest.mark.parametrize("bits,group", [(4, 32), (3, 64)])
def test_the_clipping_is_the_published_search(bits, group):
    rng = np.random.default_rng(bits)
    x = salient_inputs(bits, samples=300)
    w = rng.standard_normal((12, 128)).astype(np.float32)
    w[:, 7] *= 6                                    # outlying weights: worth clipping
    ours = awq_clip(w, x.T.astype(np.float64) @ x / len(x), bits, group)
    theirs = reference_clip(w, x, bits, group)
    np.testing.assert_array_equal(ours, theirs)
    largest = np.abs(w.reshape(12, -1, group)).max(-1)
    assert (ours < largest).any() and (ours >= 0.5 * largest).all()


def _llama(kv_heads, seed=0):
    gradient.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=kv_heads, max_position_embeddings=64))
    with gradient.no_grad():                    # salient channels, as trained models have
        for layer in model.model.layers:
            for norm in (layer.input_layernorm, layer.post_attention_layernorm):
                w = np.ones(64, np.float32)
                w[[3, 17, 40]] = 20.0
                norm.weight.copy_(gradient.from_numpy(w))
    return model.eval()


def _gpt2(seed=0):
    gradient.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=96, n_embd=64, n_layer=2, n_head=4,
                                       n_positions=64))
    rng = np.random.default_rng(seed)
    with gradient.no_grad():                    # LayerNorms with a bias to scale too
        for block in model.transformer.h:
            for norm in (block.ln_1, block.ln_2):
                norm.bias.copy_(gradient.from_numpy(rng.normal(0, 0.5, 64).astype(np.float32)))
    return model.eval()


def _ids(seed, n=8, length=32):
    return [np.random.default_rng(seed + i).integers(0, 96, length) for i in range(n)]


@pytest.mark.parametrize("make", [lambda: _llama(4), lambda: _llama(2), _gpt2],
                         ids=["llama", "llama-gqa", "gpt2"])
def test_the_folds_keep_the_float_function(make):
    """At 8 bits the rounding is small (a few percent of the logits here, where the norms
    make large activations): the scaled model is the float model, so any fold that changed
    the function (a norm's bias left unscaled, v -> o under GQA) would show, as an error of
    the size of the logits themselves."""
    model = make()
    held_out = np.stack(_ids(50, n=2))
    q = awq(model, _ids(0), bits=8, group_size=32, sym=True, progress=False)
    assert type(q.lm_head) is gradient.nn.Linear
    assert not any(isinstance(m, WeightOnlyLinear) for m in model.modules())      # a copy
    with gradient.no_grad():
        ref = model(gradient.tensor(held_out)).logits.numpy()
        ours = q(gradient.tensor(held_out)).logits.numpy()
        nearest = quantize(model, "int8", group_size=32)(gradient.tensor(held_out)).logits.numpy()
    error, nearest_error = np.abs(ours - ref).max(), np.abs(nearest - ref).max()
    assert error < 0.05 * np.abs(ref).max() and error < 1.2 * nearest_error
    # the norms the scales folded into changed (for LLaMA and GPT-2 alike)
    first = (q.model.layers[0].input_layernorm if hasattr(q, "model")
             else q.transformer.h[0].ln_1)
    original = (model.model.layers[0].input_layernorm if hasattr(model, "model")
                else model.transformer.h[0].ln_1)
    assert not np.array_equal(first.weight.detach().numpy(), original.weight.detach().numpy())


def test_awq_moves_the_outputs_less_than_rounding_to_nearest():
    model = _llama(4, seed=1)
    held_out = np.stack(_ids(50, n=4))
    q = awq(model, _ids(10), bits=4, group_size=32, progress=False)
    assert sum(isinstance(m, WeightOnlyLinear) for m in q.modules()) == 2 * 7
    rtn = quantize(model, "int4", group_size=32, zero_point=True)
    ours, nearest = evaluate(model, q, held_out), evaluate(model, rtn, held_out)
    assert ours["kl_mean"] < 0.8 * nearest["kl_mean"], (ours, nearest)


def test_bad_arguments_are_refused_clearly():
    model = _llama(4)
    with pytest.raises(ValueError, match="bits must be 3 or 4"):
        awq(model, _ids(0), bits=5)
    with pytest.raises(ShapeError, match="not a multiple of group_size=48"):
        awq(model, _ids(0), group_size=48, progress=False)
    with pytest.raises(TypeError, match="gradient.nn.Module"):
        awq(np.zeros(3), _ids(0))
