"""SmoothQuant (gradient.quant.smoothquant): the smoothing factors are the paper's formula,
the folds keep the float function, every block layer becomes int8 weights with per-token
int8 activations, and smoothing brings a model with outlying activation channels closer to
float than the same W8A8 without it."""

import numpy as np
import pytest

import gradient
from gradient.quant import WeightOnlyLinear, quantize_weight, smoothquant
from gradient.quant.calibration import InputStatistics
from gradient.quant.quality import evaluate
from gradient.quant.smoothquant import smoothing_factors

from .test_awq import _gpt2, _ids, _llama


def test_the_factors_are_the_papers():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 64)).astype(np.float32)
    x[:, 5] *= 60                                     # an outlying channel
    x[:, 9] = 0                                       # one never active
    weights = [rng.standard_normal((m, 64)).astype(np.float32) for m in (32, 16)]
    stats = InputStatistics(64)
    stats.add(x)
    for alpha in (0.5, 0.8):
        s = smoothing_factors(weights, stats, alpha)
        x_max = np.maximum(np.abs(x).max(0).astype(np.float64), 1e-5)
        w_max = np.abs(np.concatenate(weights)).max(0).astype(np.float64)
        np.testing.assert_allclose(s, x_max ** alpha / w_max ** (1 - alpha), rtol=1e-6)
        assert s[5] == s.max() and s[9] > 0
    with pytest.raises(ValueError, match="alpha must be in"):
        smoothing_factors(weights, stats, 1.5)


def _unsmoothed(model):
    """W8A8 without smoothing: what SmoothQuant makes of the layers, straight."""
    import copy
    q = copy.deepcopy(model)
    for name, m in list(q.named_modules()):
        if type(m) is gradient.nn.Linear and name != "lm_head":
            bias = None if m.bias is None else m.bias.detach().numpy()
            q.set_submodule(name, WeightOnlyLinear(quantize_weight(m.weight.detach().numpy(), 8),
                                                   bias, activations="int8_per_token"))
    return q


@pytest.mark.parametrize("make", [lambda: _llama(4), lambda: _llama(2), _gpt2],
                         ids=["llama", "llama-gqa", "gpt2"])
def test_smoothing_beats_plain_w8a8_and_keeps_the_function(make):
    model = make()
    held_out = np.stack(_ids(50, n=4))
    q = smoothquant(model, _ids(0), progress=False)
    layers = [m for m in q.modules() if isinstance(m, WeightOnlyLinear)]
    assert len(layers) == (2 * 7 if hasattr(q, "model") else 2 * 4)
    assert all(m.bits == 8 and m.activations == "int8_per_token" for m in layers)
    assert type(q.lm_head) is gradient.nn.Linear
    assert not any(isinstance(m, WeightOnlyLinear) for m in model.modules())    # a copy
    ours, plain = evaluate(model, q, held_out), evaluate(model, _unsmoothed(model), held_out)
    # a fold that changed the function would move the logits by their own size
    assert ours["kl_mean"] < 0.02 and ours["top1_agreement"] > 0.9, ours
    if hasattr(q, "model"):          # LLaMA: the norms' outlying channels (see _llama)
        assert ours["kl_mean"] < 0.5 * plain["kl_mean"], (ours, plain)


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(ValueError, match="alpha must be in"):
        smoothquant(_llama(4), _ids(0), alpha=-0.1)
    with pytest.raises(TypeError, match="gradient.nn.Module"):
        smoothquant(np.zeros(3), _ids(0))
