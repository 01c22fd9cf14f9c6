"""gradient.nn layers against torch.nn: one table of layer cases drives the checks.

Each case builds the layer with the *same* code for both frameworks (``make(nn)`` is called with
``gradient.nn`` and with ``torch.nn``), which checks the constructor signatures and defaults too.
Torch's state dict is loaded into ours, the same float64 inputs go through both, and outputs,
input gradients and parameter gradients must agree. The same table checks parameter/buffer names
and shapes and the reprs. Containers, BatchNorm, attention, losses and convolutions have their
own files (test_containers.py, test_batchnorm_layers.py, test_attention_layer.py,
test_loss_layers.py, test_conv_layers.py); they import the helpers below.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------------- helpers (shared)
def to_torch(x):
    """A gradient tensor (or array) as a torch tensor with the same values and dtype."""
    return torch.from_numpy(np.array(x.detach().numpy() if isinstance(x, gradient.Tensor) else x))


def to_gradient(x):
    """A torch tensor (or array) as a gradient tensor with the same values and dtype."""
    arr = x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return gradient.tensor(arr.copy())


def load_from_torch(ours, theirs) -> None:
    """Copy torch's state dict into our layer (key by key, as numpy arrays, strict)."""
    ours.load_state_dict({k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()})


def names_and_shapes(module, kind: str):
    items = getattr(module, kind)()
    return [(name, tuple(t.shape)) for name, t in items]


def assert_close(ours, theirs, atol=1e-10, rtol=1e-7, what=""):
    a = ours.detach().numpy() if isinstance(ours, gradient.Tensor) else np.asarray(ours)
    b = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != torch's {b.shape}"
    np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, err_msg=what)


def run_both(ours, theirs, inputs, atol=1e-10, rtol=1e-7, forward=None):
    """Forward and backward through both layers on the same inputs; compare everything.

    ``inputs``: numpy arrays (float ones get requires_grad). ``forward(layer, *inputs)`` calls
    the layer (default: ``layer(*inputs)``); it returns a tensor or a tuple whose first element
    is differentiated. Returns the two outputs.
    """
    forward = forward or (lambda layer, *xs: layer(*xs))
    ours_in = [gradient.tensor(x, requires_grad=x.dtype.kind == "f") for x in inputs]
    theirs_in = [torch.tensor(x, requires_grad=x.dtype.kind == "f") for x in inputs]
    out_o, out_t = forward(ours, *ours_in), forward(theirs, *theirs_in)
    first_o = out_o[0] if isinstance(out_o, tuple) else out_o
    first_t = out_t[0] if isinstance(out_t, tuple) else out_t
    assert_close(first_o, first_t, atol, rtol, "output")
    if not first_t.requires_grad:
        return out_o, out_t
    upstream = RNG.standard_normal(tuple(first_t.shape))
    (first_o * gradient.tensor(upstream, dtype=first_o.dtype)).sum().backward()
    (first_t * torch.tensor(upstream, dtype=first_t.dtype)).sum().backward()
    for i, (xo, xt) in enumerate(zip(ours_in, theirs_in)):
        if xt.requires_grad:
            assert xo.grad is not None, f"no gradient for input {i}"
            assert_close(xo.grad, xt.grad, atol, rtol, f"grad of input {i}")
    grads_t = {n: p.grad for n, p in theirs.named_parameters()}
    for name, p in ours.named_parameters():
        if grads_t[name] is None:
            assert p.grad is None or not np.any(p.grad.detach().numpy()), name
        else:
            assert p.grad is not None, f"no gradient for parameter {name}"
            assert_close(p.grad, grads_t[name], atol, rtol, f"grad of {name}")
    return out_o, out_t


def randn(*shape):
    return RNG.standard_normal(shape)


def ids(high, *shape):
    return RNG.integers(0, high, shape).astype(np.int64)


# ---------------------------------------------------------------------- the table
# (id, make(nn) -> layer, inputs). make is called with gradient.nn and with torch.nn.
CASES = [
    ("Identity", lambda nn: nn.Identity(3, unused=True), [randn(2, 3)]),
    ("Linear", lambda nn: nn.Linear(5, 3), [randn(4, 5)]),
    ("Linear-3d-nobias", lambda nn: nn.Linear(5, 3, bias=False), [randn(2, 3, 5)]),
    ("Linear-1d", lambda nn: nn.Linear(5, 2), [randn(5)]),
    ("Bilinear", lambda nn: nn.Bilinear(4, 3, 2), [randn(5, 4), randn(5, 3)]),
    ("Bilinear-3d-nobias", lambda nn: nn.Bilinear(2, 3, 4, bias=False), [randn(2, 3, 2), randn(2, 3, 3)]),
    ("Embedding", lambda nn: nn.Embedding(10, 4), [ids(10, 3, 5)]),
    ("Embedding-padding", lambda nn: nn.Embedding(10, 4, padding_idx=2),
     [np.array([[2, 1, 2], [3, 2, 9]])]),
    ("Embedding-negative-padding", lambda nn: nn.Embedding(10, 4, padding_idx=-1),
     [np.array([9, 1, 9, 0])]),
    ("Embedding-scale-grad", lambda nn: nn.Embedding(6, 3, scale_grad_by_freq=True),
     [np.array([[1, 1, 4], [1, 5, 4]])]),
    ("LayerNorm", lambda nn: nn.LayerNorm(6), [randn(3, 6)]),
    ("LayerNorm-2d-noaffine", lambda nn: nn.LayerNorm((3, 6), elementwise_affine=False),
     [randn(2, 3, 6)]),
    ("LayerNorm-nobias", lambda nn: nn.LayerNorm([6], eps=1e-3, bias=False), [randn(2, 4, 6)]),
    ("RMSNorm", lambda nn: nn.RMSNorm(6), [randn(3, 6)]),
    ("RMSNorm-eps", lambda nn: nn.RMSNorm([2, 6], eps=1e-6), [randn(3, 2, 6)]),
    ("RMSNorm-noaffine", lambda nn: nn.RMSNorm(6, elementwise_affine=False), [randn(4, 6)]),
    ("GroupNorm", lambda nn: nn.GroupNorm(2, 4), [randn(3, 4, 5)]),
    ("GroupNorm-4d-noaffine", lambda nn: nn.GroupNorm(3, 6, eps=1e-3, affine=False),
     [randn(2, 6, 3, 2)]),
    ("GroupNorm-nobias", lambda nn: nn.GroupNorm(2, 4, bias=False), [randn(3, 4, 2)]),
    ("MaxPool1d", lambda nn: nn.MaxPool1d(3, stride=2, padding=1), [randn(2, 3, 9)]),
    ("MaxPool2d", lambda nn: nn.MaxPool2d(2), [randn(2, 3, 6, 6)]),
    ("MaxPool2d-ceil", lambda nn: nn.MaxPool2d(3, stride=2, padding=1, dilation=1, ceil_mode=True),
     [randn(1, 2, 8, 7)]),
    ("AvgPool1d", lambda nn: nn.AvgPool1d(3, stride=2, padding=1), [randn(2, 3, 9)]),
    ("AvgPool2d", lambda nn: nn.AvgPool2d(2), [randn(2, 3, 6, 6)]),
    ("AvgPool2d-nopad-count", lambda nn: nn.AvgPool2d(3, stride=2, padding=1,
                                                      count_include_pad=False), [randn(1, 2, 7, 8)]),
    ("AvgPool2d-divisor", lambda nn: nn.AvgPool2d((2, 3), divisor_override=2), [randn(1, 2, 6, 6)]),
    ("AdaptiveAvgPool1d", lambda nn: nn.AdaptiveAvgPool1d(4), [randn(2, 3, 10)]),
    ("AdaptiveAvgPool2d", lambda nn: nn.AdaptiveAvgPool2d((2, 3)), [randn(2, 3, 7, 8)]),
    ("AdaptiveAvgPool2d-global", lambda nn: nn.AdaptiveAvgPool2d(1), [randn(2, 3, 5, 5)]),
    ("AdaptiveAvgPool2d-none", lambda nn: nn.AdaptiveAvgPool2d((None, 2)), [randn(1, 2, 5, 6)]),
    ("AdaptiveMaxPool1d", lambda nn: nn.AdaptiveMaxPool1d(3), [randn(2, 3, 10)]),
    ("AdaptiveMaxPool2d", lambda nn: nn.AdaptiveMaxPool2d((3, 2)), [randn(2, 3, 7, 5)]),
    ("Flatten", lambda nn: nn.Flatten(), [randn(2, 3, 4, 5)]),
    ("Flatten-range", lambda nn: nn.Flatten(0, 1), [randn(2, 3, 4)]),
    ("Unflatten", lambda nn: nn.Unflatten(1, (2, 3)), [randn(4, 6, 2)]),
    ("Unflatten-list", lambda nn: nn.Unflatten(-1, [2, -1]), [randn(4, 6)]),
    ("Dropout-p0", lambda nn: nn.Dropout(0.0), [randn(3, 4)]),
    ("ReLU", lambda nn: nn.ReLU(), [randn(3, 4)]),
    ("ReLU6", lambda nn: nn.ReLU6(), [randn(3, 4) * 5]),
    ("LeakyReLU", lambda nn: nn.LeakyReLU(), [randn(3, 4)]),
    ("LeakyReLU-slope", lambda nn: nn.LeakyReLU(0.2), [randn(3, 4)]),
    ("PReLU", lambda nn: nn.PReLU(), [randn(3, 4)]),
    ("PReLU-channels", lambda nn: nn.PReLU(4, init=0.1), [randn(2, 4, 3)]),
    ("ELU", lambda nn: nn.ELU(alpha=0.5), [randn(3, 4)]),
    ("CELU", lambda nn: nn.CELU(alpha=2.0), [randn(3, 4)]),
    ("SELU", lambda nn: nn.SELU(), [randn(3, 4)]),
    ("GELU", lambda nn: nn.GELU(), [randn(3, 4)]),
    ("GELU-tanh", lambda nn: nn.GELU(approximate="tanh"), [randn(3, 4)]),
    ("SiLU", lambda nn: nn.SiLU(), [randn(3, 4)]),
    ("Mish", lambda nn: nn.Mish(), [randn(3, 4)]),
    ("Hardtanh", lambda nn: nn.Hardtanh(-0.5, 0.7), [randn(3, 4)]),
    ("Hardsigmoid", lambda nn: nn.Hardsigmoid(), [randn(3, 4) * 4]),
    ("Hardswish", lambda nn: nn.Hardswish(), [randn(3, 4) * 4]),
    ("Sigmoid", lambda nn: nn.Sigmoid(), [randn(3, 4)]),
    ("Tanh", lambda nn: nn.Tanh(), [randn(3, 4)]),
    ("LogSigmoid", lambda nn: nn.LogSigmoid(), [randn(3, 4)]),
    ("Softplus", lambda nn: nn.Softplus(beta=2.0, threshold=5.0), [randn(3, 4) * 4]),
    ("Softsign", lambda nn: nn.Softsign(), [randn(3, 4)]),
    ("Tanhshrink", lambda nn: nn.Tanhshrink(), [randn(3, 4)]),
    ("Hardshrink", lambda nn: nn.Hardshrink(0.3), [randn(3, 4)]),
    ("Softshrink", lambda nn: nn.Softshrink(0.3), [randn(3, 4)]),
    ("Threshold", lambda nn: nn.Threshold(0.1, 20.0), [randn(3, 4)]),
    ("GLU", lambda nn: nn.GLU(), [randn(3, 4)]),
    ("GLU-dim0", lambda nn: nn.GLU(dim=0), [randn(4, 3)]),
    ("Softmax", lambda nn: nn.Softmax(dim=1), [randn(3, 4, 2)]),
    ("Softmax-last", lambda nn: nn.Softmax(dim=-1), [randn(3, 4)]),
    ("LogSoftmax", lambda nn: nn.LogSoftmax(dim=-1), [randn(3, 4)]),
    ("LogSoftmax-dim0", lambda nn: nn.LogSoftmax(0), [randn(3, 4)]),
    ("Softmin", lambda nn: nn.Softmin(dim=1), [randn(3, 4)]),
]

CASE_IDS = [c[0] for c in CASES]


def build(make):
    """The torch layer and ours, float64, with torch's parameter values copied into ours."""
    theirs = make(torch.nn).double()
    ours = make(gnn).double()
    load_from_torch(ours, theirs)
    return ours, theirs


@pytest.mark.parametrize("name,make,inputs", CASES, ids=CASE_IDS)
def test_forward_backward_match_torch(name, make, inputs):
    ours, theirs = build(make)
    run_both(ours, theirs, inputs)


@pytest.mark.parametrize("name,make,inputs", CASES, ids=CASE_IDS)
def test_parameters_buffers_and_repr_match_torch(name, make, inputs):
    ours, theirs = make(gnn), make(torch.nn)
    assert names_and_shapes(ours, "named_parameters") == names_and_shapes(theirs, "named_parameters")
    assert names_and_shapes(ours, "named_buffers") == names_and_shapes(theirs, "named_buffers")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    for p in ours.parameters():
        assert isinstance(p, gnn.Parameter) and p.requires_grad and p.dtype is gradient.float32


def test_factory_kwargs_dtype():
    for layer in (gnn.Linear(3, 2, dtype=gradient.float64), gnn.Bilinear(2, 2, 1, dtype=gradient.float64),
                  gnn.Embedding(4, 2, dtype=gradient.float64), gnn.LayerNorm(3, dtype=gradient.float64),
                  gnn.RMSNorm(3, dtype=gradient.float64), gnn.GroupNorm(1, 2, dtype=gradient.float64),
                  gnn.PReLU(dtype=gradient.float64)):
        assert [p.dtype for p in layer.parameters()] == [gradient.float64] * len(list(layer.parameters()))


def test_unbatched_and_float32_linear():
    theirs = torch.nn.Linear(7, 3)
    ours = gnn.Linear(7, 3)
    load_from_torch(ours, theirs)
    x = randn(7).astype(np.float32)
    out = ours(gradient.tensor(x))
    assert out.dtype is gradient.float32
    assert_close(out, theirs(torch.tensor(x)), atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------- default initialisation
def _stats(t):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else t.detach().numpy()
    return float(np.abs(a).max()), float(a.std()), float(a.mean())


@pytest.mark.parametrize("make,bound_of", [
    (lambda nn: nn.Linear(400, 300), lambda: 1 / math.sqrt(400)),
    (lambda nn: nn.Conv2d(16, 32, 3), lambda: 1 / math.sqrt(16 * 9)),
    (lambda nn: nn.Conv1d(32, 64, 5, groups=4), lambda: 1 / math.sqrt(8 * 5)),
    (lambda nn: nn.ConvTranspose2d(32, 24, 3, groups=2), lambda: 1 / math.sqrt(12 * 9)),
    (lambda nn: nn.Bilinear(50, 20, 30), lambda: 1 / math.sqrt(50)),
], ids=["Linear", "Conv2d", "Conv1d-groups", "ConvTranspose2d", "Bilinear"])
def test_default_init_is_uniform_with_torchs_bound(make, bound_of):
    bound = bound_of()
    torch.manual_seed(0)
    gradient.manual_seed(0)
    # the statistics hold for torch's layer (so they are the right ones to check) and for ours
    for layer in (make(torch.nn), make(gnn)):
        n = layer.weight.numel()
        w_max, w_std, w_mean = _stats(layer.weight)
        # U(-b, b): max close to b, std b/sqrt(3), mean 0; tolerances are 5 standard errors
        assert (1 - 10 / n) * bound < w_max <= bound
        assert abs(w_std - bound / math.sqrt(3)) < 5 * 0.26 * bound / math.sqrt(n)
        assert abs(w_mean) < 5 * 0.58 * bound / math.sqrt(n)
        b_max, _, _ = _stats(layer.bias)
        assert 0 < b_max <= bound


def test_default_init_of_other_layers():
    gradient.manual_seed(0)
    emb = gnn.Embedding(1000, 50, padding_idx=3)
    _, std, mean = _stats(emb.weight)
    assert abs(std - 1) < 0.02 and abs(mean) < 0.02          # N(0, 1), as torch
    assert not np.any(emb.weight.detach().numpy()[3]) and np.all(emb.weight.detach().numpy()[4] != 0)
    for layer in (gnn.LayerNorm(5), gnn.GroupNorm(1, 5), gnn.BatchNorm1d(5)):
        assert np.all(layer.weight.detach().numpy() == 1) and np.all(layer.bias.detach().numpy() == 0)
    assert np.all(gnn.RMSNorm(5).weight.detach().numpy() == 1)
    assert np.all(gnn.PReLU(3).weight.detach().numpy() == np.float32(0.25))


def test_init_is_reproducible_with_manual_seed():
    gradient.manual_seed(123)
    a = gnn.Linear(8, 4)
    gradient.manual_seed(123)
    b = gnn.Linear(8, 4)
    np.testing.assert_array_equal(a.weight.detach().numpy(), b.weight.detach().numpy())
    np.testing.assert_array_equal(a.bias.detach().numpy(), b.bias.detach().numpy())
    before = a.weight.detach().numpy().copy()
    a.reset_parameters()
    assert not np.array_equal(before, a.weight.detach().numpy())


# ---------------------------------------------------------------------- Embedding specifics
def test_embedding_padding_row_gets_no_gradient():
    emb = gnn.Embedding(5, 3, padding_idx=0)
    emb(gradient.tensor([[0, 1, 0, 4]])).sum().backward()
    g = emb.weight.grad.detach().numpy()
    assert not np.any(g[0]) and np.all(g[1] == 1) and np.all(g[4] == 1) and not np.any(g[2])


def test_embedding_from_pretrained():
    w = RNG.standard_normal((5, 3)).astype(np.float32)
    emb = gnn.Embedding.from_pretrained(gradient.tensor(w), padding_idx=1)
    t = torch.nn.Embedding.from_pretrained(torch.tensor(w), padding_idx=1)
    assert emb.weight.requires_grad is t.weight.requires_grad is False
    assert emb.padding_idx == t.padding_idx == 1
    np.testing.assert_array_equal(emb.weight.detach().numpy(), w)          # padding row kept as given
    assert_close(emb(gradient.tensor([1, 4])), t(torch.tensor([1, 4])))
    trainable = gnn.Embedding.from_pretrained(gradient.tensor(w), freeze=False)
    assert trainable.weight.requires_grad
    assert repr(emb) == repr(t)
    with pytest.raises(ValueError, match="2-d"):
        gnn.Embedding.from_pretrained(gradient.tensor(w[0]))


def test_embedding_max_norm_renormalises_like_torch():
    theirs = torch.nn.Embedding(6, 4, max_norm=1.0).double()
    ours = gnn.Embedding(6, 4, max_norm=1.0).double()
    load_from_torch(ours, theirs)
    x = np.array([[0, 2, 2], [5, 1, 0]])
    run_both(ours, theirs, [x])
    assert_close(ours.weight, theirs.weight)   # the looked-up rows were renormalised in place


def test_embedding_bad_arguments():
    with pytest.raises(ValueError, match="padding_idx"):
        gnn.Embedding(4, 2, padding_idx=4)
    with pytest.raises(TypeError, match="num_embeddings"):
        gnn.Embedding(4.5, 2)


# ---------------------------------------------------------------------- Dropout
def test_dropout_train_and_eval():
    gradient.manual_seed(0)
    drop = gnn.Dropout(0.3)
    x = gradient.ones(200, 100)
    y = drop(x).detach().numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)     # survivors scaled by 1/(1-p)
    drop.eval()
    np.testing.assert_array_equal(drop(x).detach().numpy(), x.detach().numpy())
    assert gnn.Dropout(1.0)(x).detach().numpy().max() == 0
    with pytest.raises(ValueError, match="between 0 and 1"):
        gnn.Dropout(1.5)
    assert repr(gnn.Dropout(0.2, inplace=True)) == repr(torch.nn.Dropout(0.2, inplace=True))


def test_dropout2d_zeroes_whole_channels():
    gradient.manual_seed(1)
    y = gnn.Dropout2d(0.5)(gradient.ones(4, 8, 3, 3)).detach().numpy()
    per_channel = y.reshape(4, 8, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))
    assert 0 < (per_channel == 0).all(-1).mean() < 1


# ---------------------------------------------------------------------- activation details
def test_softmax_without_dim_warns_and_uses_torchs_legacy_dim():
    for shape in [(4,), (2, 3), (2, 3, 4), (2, 3, 4, 5)]:
        x = randn(*shape)
        with pytest.warns(UserWarning, match="Implicit dimension"):
            ours = gnn.Softmax()(gradient.tensor(x))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = torch.nn.Softmax()(torch.tensor(x))
        assert_close(ours, theirs)
        # the functions too (the last dimension before, whatever the input's dimensions)
        for name in ("softmax", "log_softmax", "softmin"):
            with pytest.warns(UserWarning, match=f"Implicit dimension choice for {name}"):
                ours = getattr(gradient.nn.functional, name)(gradient.tensor(x))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = getattr(torch.nn.functional, name)(torch.tensor(x))
            assert_close(ours, theirs)


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_layers_of_zero_width_give_empty_outputs_and_gradients_as_torchs():
    # (a Linear of no output features raised NumPy's "cannot reshape array of size 0")
    for make, shape in (((lambda m: m.nn.Linear(3, 0)), (2, 3)), ((lambda m: m.nn.Linear(3, 0)),
                        (0, 3)), ((lambda m: m.nn.Linear(0, 4)), (2, 0)),
                        ((lambda m: m.nn.GRUCell(3, 0)), (2, 3)),
                        ((lambda m: m.nn.LSTMCell(3, 0)), (2, 3))):
        results = []
        for m in (torch, gradient):
            m.manual_seed(0)
            layer = make(m)
            x = m.ones(*shape, requires_grad=True)
            y = layer(x)
            y = y[0] if isinstance(y, tuple) else y
            (y.sum() + x.sum()).backward()
            results.append((tuple(y.shape), tuple(x.grad.shape), x.grad.sum().item(),
                            [tuple(p.grad.shape) for p in layer.parameters() if p.grad is not None]))
        assert results[0] == results[1]


def test_inplace_activation_writes_into_input():
    x = gradient.tensor([-1.0, 2.0])
    out = gnn.ReLU(inplace=True)(x)
    np.testing.assert_array_equal(x.detach().numpy(), [0.0, 2.0])
    assert out is x or np.array_equal(out.detach().numpy(), x.detach().numpy())
    assert repr(gnn.ReLU(inplace=True)) == repr(torch.nn.ReLU(inplace=True))
    assert repr(gnn.LeakyReLU(0.1, True)) == repr(torch.nn.LeakyReLU(0.1, True))


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        gnn.GELU("fast")


def test_bilinear_and_groupnorm_bad_arguments():
    with pytest.raises(ValueError, match="leading dimensions"):
        gnn.Bilinear(2, 3, 4)(gradient.randn(5, 2), gradient.randn(4, 3))
    with pytest.raises(ValueError, match="divisible"):
        gnn.GroupNorm(3, 4)
    with pytest.raises(TypeError, match="in_features"):
        gnn.Linear(2.0, 3)


def test_layers_in_a_training_loop_track_torch():
    """A small MLP trained with plain SGD for a few steps gives torch's losses."""
    def make(nn):
        return nn.Sequential(nn.Linear(6, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 3))

    theirs, ours = make(torch.nn).double(), make(gnn).double()
    load_from_torch(ours, theirs)
    x, y = randn(32, 6), ids(3, 32)
    for _ in range(5):
        lo = gnn.CrossEntropyLoss()(ours(gradient.tensor(x)), gradient.tensor(y))
        lt = torch.nn.CrossEntropyLoss()(theirs(torch.tensor(x)), torch.tensor(y))
        assert abs(lo.item() - lt.item()) < 1e-10
        for m in (ours, theirs):
            m.zero_grad()
        lo.backward()
        lt.backward()
        with torch.no_grad():
            for p in theirs.parameters():
                p -= 0.5 * p.grad
        with gradient.no_grad():
            for p in ours.parameters():
                p -= 0.5 * p.grad


def test_exported_names_are_torchs_and_do_not_shadow_packages():
    exported = gnn.modules.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        assert getattr(gnn, name) is getattr(gnn.modules, name)
        assert hasattr(torch.nn, name), f"{name} is not a torch.nn name"
    # the layer files' helpers (modules/utils.py) must not replace gradient.nn.utils
    assert gnn.utils.__name__ == "gradient.nn.utils"
    assert gnn.functional.__name__ == "gradient.nn.functional"
