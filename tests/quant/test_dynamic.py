"""quantize_dynamic (gradient.quant.dynamic) as PyTorch's: the layers it selects, the dtypes,
the copy by default, the paths ported scripts import it from, and outputs within the same
quantization noise as PyTorch's own dynamically quantized model on the same weights."""

import numpy as np
import pytest

import gradient
import gradient.nn as nn
from gradient.quant import QuantizedLinear, WeightOnlyLinear, qint8, quantize_dynamic


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 96), nn.ReLU(), nn.Linear(96, 64))
        self.head = nn.Linear(64, 10)
        self.small = nn.Linear(10, 3)         # in_features not a multiple of 32

    def forward(self, x):
        return self.small(self.head(self.body(x)))


def _net():
    gradient.manual_seed(0)
    return Net().eval()


def test_every_linear_by_default_int8_weights_and_activations():
    model = _net()
    q = quantize_dynamic(model, {nn.Linear}, dtype=gradient.qint8)
    assert gradient.qint8 is qint8 and repr(qint8) == "gradient.qint8"
    layers = [q.body[0], q.body[2], q.head]
    assert all(isinstance(m, QuantizedLinear) and m.qtype.name == "Q8_0"
               and m.activations == "int8" for m in layers)
    assert isinstance(q.small, WeightOnlyLinear) and q.small.bits == 8
    assert all(type(m) is nn.Linear for m in (model.body[0], model.head, model.small))  # a copy
    x = gradient.randn(5, 64)
    with gradient.no_grad():
        ours, ref = q(x).numpy(), model(x).numpy()
    assert 0 < np.abs(ours - ref).max() < 0.02 * np.abs(ref).max()


def test_names_and_qconfigs_select_layers_and_dtypes():
    from gradient.ao.quantization import (default_dynamic_qconfig, float16_dynamic_qconfig,
                                          quantize_dynamic as from_ao)
    from gradient.quantization import quantize_dynamic as from_old_path
    assert from_ao is from_old_path is quantize_dynamic
    q = from_ao(_net(), {"body": default_dynamic_qconfig, "head": float16_dynamic_qconfig})
    assert isinstance(q.body[0], QuantizedLinear) and q.body[0].qtype.name == "Q8_0"
    assert q.head.qtype.name == "F16" and type(q.small) is nn.Linear
    inplace = _net()
    assert quantize_dynamic(inplace, {nn.Linear}, dtype=gradient.float16, inplace=True) is inplace
    assert isinstance(inplace.head, QuantizedLinear) and inplace.head.qtype.name == "F16"


def test_what_it_cannot_do_is_said():
    with pytest.warns(UserWarning, match="LSTM layers stay in float"):
        q = quantize_dynamic(_net(), {nn.Linear, nn.LSTM})
    assert isinstance(q.head, QuantizedLinear)
    with pytest.raises(ValueError, match="qint8 or gradient.float16"):
        quantize_dynamic(_net(), dtype=gradient.int8)
    with pytest.raises(TypeError, match="mapping="):
        quantize_dynamic(_net(), mapping={})
    with pytest.raises(TypeError, match="module types or layer names"):
        quantize_dynamic(_net(), {3})


def test_outputs_within_pytorchs_own_quantization_noise():
    torch = pytest.importorskip("torch")
    model = _net()
    theirs = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.ReLU(),
                                 torch.nn.Linear(96, 64), torch.nn.Linear(64, 10))
    ours_layers = [model.body[0], model.body[2], model.head]
    with torch.no_grad():
        for t, g in zip([theirs[0], theirs[2], theirs[3]], ours_layers):
            t.weight.copy_(torch.from_numpy(g.weight.detach().numpy()))
            t.bias.copy_(torch.from_numpy(g.bias.detach().numpy()))
    x = np.random.default_rng(1).standard_normal((16, 64)).astype(np.float32)
    with torch.no_grad():
        exact = theirs(torch.from_numpy(x)).numpy()
        peer = torch.ao.quantization.quantize_dynamic(theirs, {torch.nn.Linear},
                                                      dtype=torch.qint8)(torch.from_numpy(x))
    q = quantize_dynamic(model, {nn.Linear})
    with gradient.no_grad():
        ours = q.head(q.body(gradient.tensor(x))).numpy()
        np.testing.assert_allclose(model.head(model.body(gradient.tensor(x))).numpy(), exact,
                                   rtol=1e-5, atol=1e-5)
    ours_error = np.abs(ours - exact).max()
    peer_error = np.abs(peer.numpy() - exact).max()
    assert ours_error < 2 * peer_error, (ours_error, peer_error)
