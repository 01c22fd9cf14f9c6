"""nn.utils.fusion: a batch norm in evaluation mode folded into the convolution or linear layer
before it gives that pair's outputs, and torch's fused weights on the same modules."""

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as nn
from gradient.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval


def _same_state(ours, theirs, rng):
    """Copy torch's parameters into ours and give both batch norms the same statistics."""
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    ours.load_state_dict({k: gradient.tensor(v) for k, v in state.items()})


@pytest.mark.parametrize("case", ["conv2d", "conv1d_nobias", "convT2d", "linear"])
def test_fused_layer_gives_the_pair_and_torchs_weights(case):
    rng = np.random.default_rng(0)
    build = {
        "conv2d": lambda lib: (lib.nn.Conv2d(3, 4, 3, dtype=lib.float64),
                               lib.nn.BatchNorm2d(4, dtype=lib.float64), (2, 3, 6, 6), False),
        "conv1d_nobias": lambda lib: (lib.nn.Conv1d(3, 5, 2, bias=False, dtype=lib.float64),
                                      lib.nn.BatchNorm1d(5, dtype=lib.float64), (2, 3, 7),
                                      False),
        "convT2d": lambda lib: (lib.nn.ConvTranspose2d(3, 4, 2, dtype=lib.float64),
                                lib.nn.BatchNorm2d(4, dtype=lib.float64), (2, 3, 4, 4), True),
        "linear": lambda lib: (lib.nn.Linear(6, 4, dtype=lib.float64),
                               lib.nn.BatchNorm1d(4, dtype=lib.float64), (5, 6), None),
    }[case]
    g_layer, g_bn, shape, transpose = build(gradient)
    t_layer, t_bn, _, _ = build(torch)
    for ours, theirs in ((g_layer, t_layer), (g_bn, t_bn)):
        _same_state(ours, theirs, rng)
    with torch.no_grad():
        t_bn.running_var.copy_(torch.tensor(rng.uniform(0.5, 2.0, t_bn.num_features)))
        t_bn.running_mean.copy_(torch.tensor(rng.standard_normal(t_bn.num_features)))
    g_bn.load_state_dict({k: gradient.tensor(v.numpy()) for k, v in t_bn.state_dict().items()})
    for m in (g_layer, g_bn, t_layer, t_bn):
        m.eval()
    if transpose is None:
        ours = fuse_linear_bn_eval(g_layer, g_bn)
        theirs = torch.nn.utils.fusion.fuse_linear_bn_eval(t_layer, t_bn)
    else:
        ours = fuse_conv_bn_eval(g_layer, g_bn, transpose)
        theirs = torch.nn.utils.fusion.fuse_conv_bn_eval(t_layer, t_bn, transpose)
    assert type(ours.weight) is nn.Parameter and ours.weight.requires_grad
    np.testing.assert_allclose(ours.weight.detach().numpy(), theirs.weight.detach().numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(ours.bias.detach().numpy(), theirs.bias.detach().numpy(),
                               rtol=1e-12, atol=1e-14)
    x = gradient.tensor(rng.standard_normal(shape))
    np.testing.assert_allclose(ours(x).detach().numpy(), g_bn(g_layer(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    assert g_layer.weight is not ours.weight          # the original layer is left as it was


def test_training_mode_is_refused():
    conv, bn = nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2)
    with pytest.raises(RuntimeError, match="eval"):
        nn.utils.fuse_conv_bn_eval(conv, bn)
    with pytest.raises(ValueError, match="features"):
        nn.utils.fusion.fuse_linear_bn_eval(nn.Linear(3, 4).eval(), nn.BatchNorm1d(5).eval())
