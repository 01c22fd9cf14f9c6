"""nn.init against torch.nn.init: gains and fans exactly, deterministic fills exactly, random fills
by their statistics (the random streams differ: NumPy's PCG64 against torch's Mersenne twister)."""

import math

import numpy as np
import pytest
import torch

import gradient
from gradient.nn import Parameter, init

SHAPES = [(3, 5), (8, 4, 3), (6, 2, 3, 3), (4, 2, 2, 3, 1), (2, 7)]


def both(shape, dtype="float32"):
    return (gradient.zeros(*shape, dtype=getattr(gradient, dtype)),
            torch.zeros(*shape, dtype=getattr(torch, dtype)))


def values(t):
    return t.detach().float().numpy().astype(np.float64)


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(shape):
    g, t = both(shape)
    assert init._calculate_fan_in_and_fan_out(g) == torch.nn.init._calculate_fan_in_and_fan_out(t)
    for mode in ("fan_in", "fan_out", "FAN_IN"):
        assert init._calculate_correct_fan(g, mode) == torch.nn.init._calculate_correct_fan(t, mode)


def test_fan_errors_match_torch():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(gradient.zeros(3))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(gradient.zeros(3, 3), mode="fan_avg")
    with pytest.raises(ValueError):
        torch.nn.init.kaiming_uniform_(torch.zeros(3, 3), mode="fan_avg")


@pytest.mark.parametrize("args", [("linear",), ("conv2d",), ("conv_transpose3d",), ("sigmoid",), ("tanh",),
                                  ("relu",), ("leaky_relu",), ("leaky_relu", 0.2), ("leaky_relu", 3),
                                  ("selu",)])
def test_calculate_gain_matches_torch(args):
    assert init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args), rel=1e-15)


@pytest.mark.parametrize("bad", [("gelu",), ("leaky_relu", True), ("leaky_relu", "x")])
def test_calculate_gain_errors_match_torch(bad):
    with pytest.raises(ValueError):
        init.calculate_gain(*bad)
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain(*bad)


# fn name, kwargs; the fill's statistics are compared with torch's on a large tensor
RANDOM = [
    ("uniform_", dict(a=-0.3, b=0.7)),
    ("normal_", dict(mean=1.5, std=0.2)),
    ("trunc_normal_", dict(mean=0.0, std=1.0, a=-2.0, b=2.0)),
    ("trunc_normal_", dict(mean=0.1, std=0.02, a=-0.5, b=0.5)),
    ("trunc_normal_", dict(mean=0.0, std=1.0, a=-0.5, b=1.5)),   # asymmetric truncation
    ("trunc_normal_", dict(mean=0.0, std=1.0, a=2.0, b=3.0)),    # in the tail
    ("xavier_uniform_", dict(gain=2.0)),
    ("xavier_normal_", dict(gain=0.5)),
    ("kaiming_uniform_", dict(a=math.sqrt(5))),                  # nn.Linear's
    ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu")),
    ("kaiming_normal_", dict(a=0.1)),
    ("kaiming_normal_", dict(mode="fan_out", nonlinearity="tanh")),
]


@pytest.mark.parametrize("name,kwargs", RANDOM, ids=[f"{n}-{i}" for i, (n, _) in enumerate(RANDOM)])
def test_random_fill_statistics_match_torch(name, kwargs):
    gradient.manual_seed(0)
    torch.manual_seed(0)
    g, t = both((200, 50, 3))  # 30,000 values; fan_in 150, fan_out 600
    out = getattr(init, name)(g, **kwargs)
    getattr(torch.nn.init, name)(t, **kwargs)
    assert out is g
    ours, theirs = values(g), values(t)
    spread = theirs.std()
    assert abs(ours.mean() - theirs.mean()) < 0.05 * spread + 1e-12
    assert ours.std() == pytest.approx(spread, rel=0.03)
    # the same shape of distribution: quantiles agree (the tails included)
    # (0.1 std is about 3 standard errors at the 1% quantiles; a 10% error in std moves them 0.23)
    qs = [0.01, 0.1, 0.5, 0.9, 0.99]
    np.testing.assert_allclose(np.quantile(ours, qs), np.quantile(theirs, qs), atol=0.1 * spread)
    if name.endswith("uniform_"):  # the same range, ends reached
        width = theirs.max() - theirs.min()
        np.testing.assert_allclose([ours.min(), ours.max()], [theirs.min(), theirs.max()],
                                   atol=0.002 * width)
    if name == "trunc_normal_":
        assert kwargs["a"] <= ours.min() and ours.max() <= kwargs["b"]
    assert len(np.unique(ours)) > 1000


def test_uniform_bounds_and_kaiming_bound_formula():
    w = init.kaiming_uniform_(gradient.zeros(64, 32), a=math.sqrt(5))
    bound = 1 / math.sqrt(32)  # what nn.Linear's init reduces to
    v = values(w)
    assert v.min() >= -bound and v.max() < bound and v.max() > 0.95 * bound
    u = values(init.uniform_(gradient.zeros(10000), 2.0, 3.0))
    assert u.min() >= 2.0 and u.max() < 3.0


def test_trunc_normal_stays_within_bounds():
    v = values(init.trunc_normal_(gradient.zeros(20000), mean=0.0, std=0.02))
    assert np.abs(v).max() < 0.1  # bounds are absolute (+-2), far outside 0.02's spread
    v = values(init.trunc_normal_(gradient.zeros(20000), mean=0.0, std=1.0, a=-0.1, b=0.1))
    assert v.min() >= -0.1 and v.max() <= 0.1 and v.std() > 0.05


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_fills_keep_the_dtype(dtype):
    g, _ = both((40, 30), dtype)
    for fn in (init.uniform_, init.normal_, init.trunc_normal_, init.xavier_uniform_, init.orthogonal_):
        assert fn(g) is g and g.dtype is getattr(gradient, dtype)
        assert np.isfinite(values(g)).all() and values(g).std() > 0


def test_parameters_are_filled_in_place_outside_autograd():
    p = Parameter(gradient.zeros(4, 3))
    before = p._version.value
    init.xavier_normal_(p)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert p._version.value > before       # saved-tensor checks see the write
    (p * 2).sum().backward()
    assert p.grad is not None


def test_generator_and_manual_seed_make_fills_reproducible():
    gen = gradient.Generator().manual_seed(123)
    a = values(init.normal_(gradient.zeros(50), generator=gen))
    gen.manual_seed(123)
    b = values(init.normal_(gradient.zeros(50), generator=gen))
    np.testing.assert_array_equal(a, b)
    gradient.manual_seed(7)
    c = values(init.kaiming_uniform_(gradient.zeros(5, 4)))
    gradient.manual_seed(7)
    d = values(init.kaiming_uniform_(gradient.zeros(5, 4)))
    np.testing.assert_array_equal(c, d)
    e = values(init.kaiming_uniform_(gradient.zeros(5, 4)))
    assert not np.array_equal(d, e)


def test_constant_fills_match_torch():
    for fn, args in ((init.constant_, (0.25,)), (init.ones_, ()), (init.zeros_, ())):
        g, t = both((3, 4))
        g.fill_(9.0)
        t.fill_(9.0)
        fn(g, *args)
        getattr(torch.nn.init, fn.__name__)(t, *args)
        np.testing.assert_array_equal(values(g), values(t))


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (5, 2)])
def test_eye_matches_torch(shape):
    g, t = both(shape)
    g.fill_(float("inf"))
    np.testing.assert_array_equal(values(init.eye_(g)), values(torch.nn.init.eye_(t)))
    with pytest.raises(ValueError):
        init.eye_(gradient.zeros(2, 2, 2))


@pytest.mark.parametrize("shape,groups", [((4, 4, 3), 1), ((6, 3, 3, 3), 1), ((8, 2, 3, 3), 2),
                                          ((4, 6, 1, 3, 3), 1), ((4, 4, 3, 3), 4)])
def test_dirac_matches_torch(shape, groups):
    g, t = both(shape)
    np.testing.assert_array_equal(values(init.dirac_(g, groups)), values(torch.nn.init.dirac_(t, groups)))


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 2, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    g = init.orthogonal_(gradient.zeros(*shape, dtype=gradient.float64), gain=2.0)
    flat = g.numpy().reshape(shape[0], -1)
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(gram, 4.0 * np.eye(gram.shape[0]), atol=1e-10)
    with pytest.raises(ValueError):
        init.orthogonal_(gradient.zeros(3))


def test_zero_element_kaiming_warns_like_torch():
    with pytest.warns(UserWarning, match="no-op"):
        init.kaiming_uniform_(gradient.zeros(0, 3))
    with pytest.warns(UserWarning, match="no-op"):
        torch.nn.init.kaiming_uniform_(torch.zeros(0, 3))


def test_integer_tensors_are_refused():
    with pytest.raises(TypeError):
        init.normal_(gradient.zeros(3, dtype=gradient.int64))


@pytest.mark.parametrize("shape, sparsity", [((8, 5), 0.25), ((7, 3), 0.3), ((4, 4), 0.0),
                                             ((5, 2), 1.0)])
def test_sparse_zeros_as_many_per_column_as_torch(shape, sparsity):
    ours = init.sparse_(gradient.empty(*shape), sparsity, std=0.5)
    theirs = torch.nn.init.sparse_(torch.empty(*shape), sparsity, std=0.5)
    np.testing.assert_array_equal((ours.numpy() == 0).sum(axis=0),
                                  (theirs.numpy() == 0).sum(axis=0))
    kept = ours.numpy()[ours.numpy() != 0]
    assert kept.size == 0 or 0.1 < kept.std() < 1.5        # N(0, 0.5**2)
    with pytest.raises(ValueError, match="2 dimensions"):
        init.sparse_(gradient.empty(3), 0.5)


@pytest.mark.parametrize("name", ["uniform", "normal", "constant", "eye", "dirac",
                                  "xavier_uniform", "xavier_normal", "kaiming_uniform",
                                  "kaiming_normal", "orthogonal", "sparse"])
def test_older_names_without_the_underscore_warn_as_torchs(name):
    args = {"constant": (0.5,), "sparse": (0.5,)}.get(name, ())
    shape = (2, 3, 3) if name == "dirac" else (3, 3)
    with pytest.warns(FutureWarning, match=f"{name}_"):
        torch_result = getattr(torch.nn.init, name)(torch.empty(*shape), *args)
    with pytest.warns(FutureWarning, match=f"nn.init.{name}_"):
        ours = getattr(init, name)(gradient.empty(*shape), *args)
    assert tuple(ours.shape) == tuple(torch_result.shape)
    if name in ("constant", "eye", "dirac"):
        np.testing.assert_array_equal(ours.numpy(), torch_result.numpy())
