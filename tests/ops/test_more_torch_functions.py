"""More torch.* functions and Tensor methods for ported scripts, against torch 2.13: unravel_index,
vander, cumulative_trapezoid, rsub, bit shifts (functions, methods, operators, in-place), range,
top-level in-place aliases, split_with_sizes/unsafe_*, positive, typename, is_storage,
can_cast; addmm_/addmv_/baddbmm_, new_empty_strided, pin/share no-ops, the random fills
log_normal_/cauchy_/geometric_, apply_, resize_/resize_as_."""

import math
import warnings

import numpy as np
import pytest
import torch

import gradient
from gradient.autograd import gradcheck, gradgradcheck


def _same(ours, theirs, tol=1e-12):
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=tol, atol=tol)


# ---------------------------------------------------------------------- unravel_index
@pytest.mark.parametrize("indices,shape", [
    ([5, -1, 7, 0], (2, 4)), ([[1, 2], [23, -24]], (2, 3, 4)), (3, (2, 2)), ([4], 5),
    ([0, 5], (1, 6, 1)), ([], (3, 3)),
])
def test_unravel_index(indices, shape):
    ours = gradient.unravel_index(gradient.tensor(indices, dtype=gradient.int64), shape)
    theirs = torch.unravel_index(torch.tensor(indices, dtype=torch.int64), shape)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        _same(a, b)


def test_unravel_index_out_of_range_wraps_as_torch():
    indices, shape = [8, -9, 100, -100], (2, 4)        # torch does not refuse these
    for a, b in zip(gradient.unravel_index(gradient.tensor(indices), shape),
                    torch.unravel_index(torch.tensor(indices), shape)):
        _same(a, b)
    with pytest.raises(TypeError):
        gradient.unravel_index(gradient.tensor([1.0]), shape)
    with pytest.raises(TypeError):
        torch.unravel_index(torch.tensor([1.0]), shape)


# ---------------------------------------------------------------------- vander
@pytest.mark.parametrize("values,dtype", [([1.5, -2.0, 0.0, 3.0], "float64"),
                                          ([1, 2, 3], "int64"), ([1, 2, 3], "int32"),
                                          ([True, False], "bool"), ([0.5, 2.0], "float32")])
@pytest.mark.parametrize("N", [None, 0, 1, 3, 5])
@pytest.mark.parametrize("increasing", [False, True])
def test_vander(values, dtype, N, increasing):
    ours = gradient.vander(gradient.tensor(values, dtype=getattr(gradient, dtype)), N=N,
                           increasing=increasing)
    theirs = torch.vander(torch.tensor(values, dtype=getattr(torch, dtype)), N=N,
                          increasing=increasing)
    _same(ours, theirs, 1e-6)


def test_vander_gradients():
    x = np.array([0.5, 0.0, -1.5])
    up = np.random.default_rng(0).standard_normal((3, 4))
    gx = gradient.tensor(x, requires_grad=True)
    gradient.vander(gx, N=4).backward(gradient.tensor(up))
    # (torch's vander backward fails on its own in-place write, so the reference is analytic:
    # column j holds x ** (3 - j))
    expected = sum(up[:, j] * (3 - j) * x ** max(2 - j, 0) for j in range(3))
    np.testing.assert_allclose(gx.grad.numpy(), expected, rtol=1e-12)
    assert gradcheck(lambda t: gradient.vander(t, N=4, increasing=True), (gx,))
    assert gradgradcheck(lambda t: gradient.vander(t, N=3), (gx,))
    with pytest.raises(ValueError):
        gradient.vander(gradient.zeros(2, 2))


# ---------------------------------------------------------------------- cumulative_trapezoid
@pytest.mark.parametrize("kind", ["plain", "dx", "x1d", "xfull", "dim0", "empty", "single"])
def test_cumulative_trapezoid(kind):
    rng = np.random.default_rng(1)
    y = rng.standard_normal((3, 5))
    kw, xs = {}, None
    if kind == "dx":
        kw = dict(dx=0.25)
    elif kind == "x1d":
        xs = np.sort(rng.standard_normal(5))
    elif kind == "xfull":
        xs = np.sort(rng.standard_normal((3, 5)), axis=1)
    elif kind == "dim0":
        kw = dict(dim=0)
    elif kind == "empty":
        y = y[:, :0]
    elif kind == "single":
        y = y[:, :1]
    gy = gradient.tensor(y, requires_grad=True)
    ty = torch.tensor(y, requires_grad=True)
    args_g = (gy,) if xs is None else (gy, gradient.tensor(xs))
    args_t = (ty,) if xs is None else (ty, torch.tensor(xs))
    ours, theirs = gradient.cumulative_trapezoid(*args_g, **kw), torch.cumulative_trapezoid(*args_t, **kw)
    _same(ours, theirs)
    if ours.numel():
        up = rng.standard_normal(tuple(ours.shape))
        ours.backward(gradient.tensor(up))
        theirs.backward(torch.tensor(up))
        np.testing.assert_allclose(gy.grad.numpy(), ty.grad.numpy(), rtol=1e-12, atol=1e-12)
        assert gradcheck(lambda t: gradient.cumulative_trapezoid(t, *args_g[1:], **kw), (gy,))


# ---------------------------------------------------------------------- rsub, positive
@pytest.mark.parametrize("a,b,kw", [([1, 2], 5, {}), ([1.0, 2.0], 5.0, dict(alpha=2)),
                                    ([1, 2], 1.5, {}), ([1.0, 2.0], [[3.0], [4.0]], {})])
def test_rsub(a, b, kw):
    wrap = lambda m, v: m.tensor(v) if isinstance(v, list) else v  # noqa: E731
    _same(gradient.rsub(gradient.tensor(a), wrap(gradient, b), **kw),
          torch.rsub(torch.tensor(a), wrap(torch, b), **kw))


def test_rsub_gradient():
    x = gradient.tensor([1.0, 2.0], requires_grad=True)
    gradient.rsub(x, 3.0, alpha=2).sum().backward()
    assert x.grad.tolist() == [-2.0, -2.0]


def test_positive():
    x = gradient.tensor([1.0, -2.0])
    assert gradient.positive(x) is x and x.positive() is x
    with pytest.raises(RuntimeError):
        torch.positive(torch.tensor([True]))
    with pytest.raises(RuntimeError):
        gradient.positive(gradient.tensor([True]))


# ---------------------------------------------------------------------- bit shifts
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64"])
def test_bit_shifts_match_torch(dtype):
    xs = [5, 255, 128, 0, 1, 77] if dtype == "uint8" else [5, -5, 1, -1, 127, -128, 0, 99]
    shifts = [0, 1, 3, 7, 8, 9, 15, 16, 31, 32, 63, 64, 70, -1, -9]
    x = np.array([[v] * len(shifts) for v in xs])
    s = np.array([shifts] * len(xs))
    gx, tx = gradient.tensor(x, dtype=getattr(gradient, dtype)), torch.tensor(x, dtype=getattr(torch, dtype))
    gs, ts = gradient.tensor(s, dtype=gradient.int64), torch.tensor(s, dtype=torch.int64)
    _same(gradient.bitwise_left_shift(gx, gs), torch.bitwise_left_shift(tx, ts))
    _same(gradient.bitwise_right_shift(gx, gs), torch.bitwise_right_shift(tx, ts))
    _same(gx << 3, tx << 3)
    _same(gx >> 2, tx >> 2)
    _same(gx.bitwise_left_shift(1), tx.bitwise_left_shift(1))
    _same(gx.bitwise_right_shift(1), tx.bitwise_right_shift(1))


def test_bit_shift_forms():
    _same(3 << gradient.tensor([1, 2]), 3 << torch.tensor([1, 2]))
    _same(64 >> gradient.tensor([1, 2]), 64 >> torch.tensor([1, 2]))
    _same(gradient.bitwise_left_shift(3, gradient.tensor([1, 2])),
          torch.bitwise_left_shift(3, torch.tensor([1, 2])))
    _same(gradient.tensor([True, False]) << 1, torch.tensor([True, False]) << 1)
    _same(gradient.tensor([1, 2], dtype=gradient.int32) << gradient.tensor([1]),
          torch.tensor([1, 2], dtype=torch.int32) << torch.tensor([1]))
    g, t = gradient.tensor([1, -8], dtype=gradient.int16), torch.tensor([1, -8], dtype=torch.int16)
    g <<= 2
    t <<= 2
    _same(g, t)
    g >>= 1
    t >>= 1
    _same(g, t)
    ret = g.bitwise_left_shift_(gradient.tensor([1, 1], dtype=gradient.int16))
    t.bitwise_left_shift_(torch.tensor([1, 1], dtype=torch.int16))
    assert ret is g
    _same(g, t)
    g.bitwise_right_shift_(1)
    t.bitwise_right_shift_(1)
    _same(g, t)
    with pytest.raises(TypeError):
        gradient.tensor([1.0]) << 1


# ---------------------------------------------------------------------- range
@pytest.mark.parametrize("args,kw", [((1, 4), {}), ((0, 1, 0.3), {}), ((4, 1, -1), {}),
                                     ((0, 0), {}), ((1, 4), dict(dtype="int64")), ((-2, 2, 1.5), {}),
                                     ((0.5, 2.5, 0.5), dict(dtype="float64"))])
def test_range(args, kw):
    kw_g = {k: getattr(gradient, v) for k, v in kw.items()}
    kw_t = {k: getattr(torch, v) for k, v in kw.items()}
    with pytest.warns(UserWarning, match="torch.range is deprecated"):
        ours = gradient.range(*args, **kw_g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.range(*args, **kw_t)
    _same(ours, theirs, 1e-6)


def test_range_errors():
    with pytest.warns(UserWarning), pytest.raises(ValueError):
        gradient.range(4, 1)
    with warnings.catch_warnings(), pytest.raises(RuntimeError):
        warnings.simplefilter("ignore")
        torch.range(4, 1)


# ---------------------------------------------------------------------- top-level in-place forms
INPLACE = [("clamp_", (-0.5, 0.5)), ("clip_", (None, 0.2)), ("acosh_", ()), ("arccosh_", ()),
           ("asinh_", ()), ("arcsinh_", ()), ("atanh_", ()), ("arctanh_", ()), ("cosh_", ()),
           ("sinh_", ()), ("erfc_", ()), ("i0_", ()), ("logit_", ()), ("sinc_", ()),
           ("xlogy_", (2.0,)), ("deg2rad_", ()), ("rad2deg_", ())]


@pytest.mark.parametrize("name,args", INPLACE, ids=[n for n, _ in INPLACE])
def test_top_level_inplace(name, args):
    values = [0.3, 0.7, 0.55] if name in ("atanh_", "arctanh_", "logit_") else [1.3, 2.7, 1.55]
    g, t = gradient.tensor(values, dtype=gradient.float64), torch.tensor(values, dtype=torch.float64)
    assert getattr(gradient, name)(g, *args) is g
    getattr(torch, name)(t, *args)
    _same(g, t)


def test_top_level_addmv_detach_and_resize_as():
    rng = np.random.default_rng(0)
    v, m, x = rng.standard_normal(3), rng.standard_normal((3, 4)), rng.standard_normal(4)
    g, t = gradient.tensor(v), torch.tensor(v)
    gradient.addmv_(g, gradient.tensor(m), gradient.tensor(x), beta=0.5, alpha=2)
    torch.addmv_(t, torch.tensor(m), torch.tensor(x), beta=0.5, alpha=2)
    _same(g, t)
    y = gradient.ones(2, requires_grad=True) * 2
    assert gradient.detach_(y) is y and not y.requires_grad and y.grad_fn is None
    g = gradient.zeros(2, 2)
    assert gradient.resize_as_(g, gradient.zeros(3)).shape == (3,)


# ---------------------------------------------------------------------- split_with_sizes, unsafe_*
def test_split_forms():
    x = np.arange(24.0).reshape(4, 6)
    g, t = gradient.tensor(x), torch.tensor(x)
    for ours, theirs in [
        (gradient.split_with_sizes(g, [1, 2, 3], dim=1), torch.split_with_sizes(t, [1, 2, 3], dim=1)),
        (g.split_with_sizes((3, 1)), t.split_with_sizes((3, 1))),
        (gradient.unsafe_split(g, 4, 1), torch.unsafe_split(t, 4, 1)),
        (g.unsafe_split(3), t.unsafe_split(3)),
        (gradient.unsafe_chunk(g, 3, 1), torch.unsafe_chunk(t, 3, 1)),
        (g.unsafe_chunk(3), t.unsafe_chunk(3)),
    ]:
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _same(a, b)
    with pytest.raises(TypeError):
        torch.split_with_sizes(t, 1)
    with pytest.raises(TypeError):
        gradient.split_with_sizes(g, 1)
    with pytest.raises(RuntimeError):
        gradient.split_with_sizes(g, [1, 1])
    w = gradient.tensor(x, requires_grad=True)
    sum(p.sum() * (i + 1) for i, p in enumerate(w.split_with_sizes([1, 3]))).backward()
    assert w.grad[0].tolist() == [1.0] * 6 and w.grad[1:].sum().item() == 2.0 * 18


# ---------------------------------------------------------------------- typename, is_storage, can_cast
def test_typename_and_is_storage():
    import gradient.nn as gnn
    assert gradient.typename(gnn.Linear) == "gradient.nn.modules.linear.Linear"
    assert torch.typename(torch.nn.Linear) == "torch.nn.modules.linear.Linear"
    assert gradient.typename(gnn.Linear(1, 1)) == "gradient.nn.modules.linear.Linear"
    for obj in (3, "s", len, [1], None):
        assert gradient.typename(obj) == torch.typename(obj)
    x = gradient.zeros(2)
    assert gradient.typename(x) == x.type()
    assert gradient.is_storage(x) is False and gradient.is_storage(3) is False


DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
          "float64"]


def test_can_cast_matches_torch():
    for a in DTYPES:
        for b in DTYPES:
            assert gradient.can_cast(getattr(gradient, a), getattr(gradient, b)) == \
                torch.can_cast(getattr(torch, a), getattr(torch, b)), (a, b)


# ---------------------------------------------------------------------- addmm_, addmv_, baddbmm_
def test_inplace_matrix_products():
    rng = np.random.default_rng(3)
    cases = [("addmm_", (3, 4), [(3, 2), (2, 4)]), ("addmv_", (3,), [(3, 5), (5,)]),
             ("baddbmm_", (2, 3, 4), [(2, 3, 5), (2, 5, 4)])]
    for name, shape, shapes in cases:
        base = rng.standard_normal(shape)
        ops = [rng.standard_normal(s) for s in shapes]
        g, t = gradient.tensor(base), torch.tensor(base)
        assert getattr(g, name)(*map(gradient.tensor, ops), beta=0.5, alpha=-2) is g
        getattr(t, name)(*map(torch.tensor, ops), beta=0.5, alpha=-2)
        _same(g, t)
        # recorded through autograd on a non-leaf
        w = gradient.tensor(base, requires_grad=True)
        tw = torch.tensor(base, requires_grad=True)
        gops = [gradient.tensor(o, requires_grad=True) for o in ops]
        tops = [torch.tensor(o, requires_grad=True) for o in ops]
        getattr(w * 1, name)(*gops).sum().backward()
        getattr(tw * 1, name)(*tops).sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy())
        for a, b in zip(gops, tops):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy())
        with pytest.raises(RuntimeError):
            getattr(gradient.tensor(base, requires_grad=True), name)(*map(gradient.tensor, ops))


# ---------------------------------------------------------------------- memory methods
def test_new_empty_strided_and_memory_methods():
    x = gradient.zeros(2, dtype=gradient.float64)
    y = x.new_empty_strided((2, 3), (3, 1))
    t = torch.zeros(2, dtype=torch.float64).new_empty_strided((2, 3), (3, 1))
    assert tuple(y.shape) == tuple(t.shape) and y.dtype is gradient.float64
    assert x.new_empty_strided((2,), (1,), dtype=gradient.int32).dtype is gradient.int32
    with pytest.raises(RuntimeError):
        x.new_empty_strided((2, 3), (1,))
    assert x.pin_memory() is x and x.is_pinned() is False
    assert x.share_memory_() is x and x.is_shared() is True     # (tests/multiprocessing)


@pytest.mark.parametrize("old,new", [((6,), (2, 2)), ((2, 3), (6,)), ((2, 2), (3, 3)),
                                     ((3,), (0,)), ((0,), (2,)), ((2, 3), (2, 3))])
def test_resize_(old, new):
    x = np.arange(float(np.prod(old))).reshape(old)
    g, t = gradient.tensor(x), torch.tensor(x)
    assert g.resize_(*new) is g
    t.resize_(*new)
    assert tuple(g.shape) == tuple(t.shape)
    kept = min(int(np.prod(old)), int(np.prod(new)))   # grown elements are uninitialised in torch
    np.testing.assert_array_equal(g.numpy().reshape(-1)[:kept], t.numpy().reshape(-1)[:kept])
    g2, t2 = gradient.tensor(x), torch.tensor(x)
    g2.resize_as_(gradient.zeros(new))
    t2.resize_as_(torch.zeros(new))
    assert tuple(g2.shape) == tuple(t2.shape)
    g.resize_((1,) + tuple(new))
    assert tuple(g.shape) == (1,) + tuple(new)


def test_resize_refuses_requires_grad():
    with pytest.raises(RuntimeError):
        torch.ones(3, requires_grad=True).resize_(2)
    with pytest.raises(RuntimeError):
        gradient.ones(3, requires_grad=True).resize_(2)
    with pytest.raises(ValueError):
        gradient.ones(3).resize_(-1)


def test_apply_():
    g, t = gradient.tensor([1, 2, 3]), torch.tensor([1, 2, 3])
    assert g.apply_(lambda v: v * v + 1) is g
    t.apply_(lambda v: v * v + 1)
    _same(g, t)
    f = gradient.tensor([[0.5, 1.5]])
    f.apply_(math.floor)
    assert f.tolist() == [[0.0, 1.0]] and f.dtype is gradient.float32
    with pytest.raises(RuntimeError):
        gradient.ones(2, requires_grad=True).apply_(abs)


def test_map_():
    for lib in (gradient, torch):
        x = lib.tensor([[1.0, 5.0], [3.0, 2.0]])
        assert x.map_(lib.tensor([2.0, 4.0]), max) is x          # the other broadcasts
        assert x.tolist() == [[2.0, 5.0], [3.0, 4.0]]
        i = lib.tensor([1, 2])
        i.map_(lib.tensor([10, 20]), lambda a, b: a * b + 1)
        assert i.tolist() == [11, 41] and i.dtype is lib.int64
    with pytest.raises(RuntimeError):
        gradient.ones(2, requires_grad=True).map_(gradient.ones(2), max)


# ---------------------------------------------------------------------- random fills
N = 200_000


def _draws(name, *args, dtype=gradient.float64, seed=0, **kw):
    gradient.manual_seed(seed)
    x = gradient.empty(N, dtype=dtype)
    assert getattr(x, name)(*args, **kw) is x
    return x.numpy().astype(np.float64)


def test_log_normal_distribution_and_seeding():
    d = _draws("log_normal_", 0.5, 0.25)
    logs = np.log(d)
    assert abs(logs.mean() - 0.5) < 0.005 and abs(logs.std() - 0.25) < 0.005
    # defaults mean=1, std=2 as torch
    logs = np.log(_draws("log_normal_"))
    assert abs(logs.mean() - 1.0) < 0.03 and abs(logs.std() - 2.0) < 0.03
    np.testing.assert_array_equal(_draws("log_normal_", seed=7), _draws("log_normal_", seed=7))
    assert not np.array_equal(_draws("log_normal_", seed=7), _draws("log_normal_", seed=8))
    gen = gradient.Generator().manual_seed(3)
    a = gradient.empty(5).log_normal_(generator=gen)
    b = gradient.empty(5).log_normal_(generator=gradient.Generator().manual_seed(3))
    assert a.tolist() == b.tolist() and a.dtype is gradient.float32
    with pytest.raises(ValueError):
        gradient.empty(3).log_normal_(std=0)
    with pytest.raises(TypeError):
        gradient.empty(3, dtype=gradient.int64).log_normal_()


def test_cauchy_distribution_and_seeding():
    d = _draws("cauchy_", 2.0, 0.5)
    q1, med, q3 = np.quantile(d, [0.25, 0.5, 0.75])
    assert abs(med - 2.0) < 0.01 and abs((q3 - q1) / 2 - 0.5) < 0.01   # quartiles at median +- sigma
    np.testing.assert_array_equal(_draws("cauchy_", seed=1), _draws("cauchy_", seed=1))
    with pytest.raises(ValueError):
        gradient.empty(3).cauchy_(sigma=0)


@pytest.mark.parametrize("dtype", [gradient.float64, gradient.int64, gradient.int32])
def test_geometric_distribution_and_seeding(dtype):
    p = 0.3
    d = _draws("geometric_", p, dtype=dtype)
    assert d.min() >= 1 and np.all(d == np.round(d))
    assert abs(d.mean() - 1 / p) < 0.03 and abs(d.var() - (1 - p) / p ** 2) < 0.15
    assert abs(np.mean(d == 1) - p) < 0.005 and abs(np.mean(d == 2) - (1 - p) * p) < 0.005
    np.testing.assert_array_equal(_draws("geometric_", p, seed=2), _draws("geometric_", p, seed=2))
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError):
            gradient.empty(3).geometric_(bad)
        with pytest.raises(RuntimeError):
            torch.empty(3).geometric_(bad)


def test_random_fills_follow_inplace_rules():
    for name, args in [("log_normal_", ()), ("cauchy_", ()), ("geometric_", (0.5,)),
                       ("exponential_", ())]:
        with pytest.raises(RuntimeError):
            getattr(gradient.ones(2, requires_grad=True), name)(*args)
        x = gradient.ones(3)
        v = x._version.value
        getattr(x, name)(*args)
        assert x._version.value == v + 1


def test_poisson_draws_have_the_rate_as_mean_and_variance():
    rates = gradient.tensor([0.5, 3.0, 20.0], dtype=gradient.float64)
    gradient.manual_seed(3)
    draws = gradient.poisson(rates.expand(100_000, 3)).numpy()
    n = draws.shape[0]
    assert np.all(np.abs(draws.mean(0) - rates.numpy()) < 5 * np.sqrt(rates.numpy() / n))
    np.testing.assert_allclose(draws.var(0), rates.numpy(), rtol=0.05)
    assert (draws == np.round(draws)).all()
    gradient.manual_seed(3)
    again = gradient.poisson(rates.expand(100_000, 3)).numpy()
    np.testing.assert_array_equal(draws, again)
    with pytest.raises(ValueError, match="nonnegative"):
        gradient.poisson(gradient.tensor([-1.0]))


def test_narrow_copy_is_narrow_of_its_own():
    x = gradient.arange(12.0).reshape(3, 4).requires_grad_()
    t = torch.arange(12.0).reshape(3, 4).requires_grad_()
    got, want = x.narrow_copy(1, 1, 2), t.narrow_copy(1, 1, 2)
    np.testing.assert_array_equal(got.detach().numpy(), want.detach().numpy())
    assert got._base is None                      # not a view of x
    got.sum().backward()
    want.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


def test_interop_threads_and_flush_denormal_answer_as_torch_can():
    before = gradient.get_num_interop_threads()
    gradient.set_num_interop_threads(3)
    assert gradient.get_num_interop_threads() == 3
    gradient.set_num_interop_threads(before)
    with pytest.raises(ValueError, match="positive"):
        gradient.set_num_interop_threads(0)
    assert gradient.set_flush_denormal(True) is False     # not changed: said so


def test_nonzero_static_pads_or_cuts_as_torch():
    for values, size, fill in (([0, 3, 5], 3, -1), ([[1, 0], [1, 1]], 2, 9), ([0, 0], 2, 7),
                               ([1, 2, 3], 0, -1)):
        ours = gradient.nonzero_static(gradient.tensor(values), size=size, fill_value=fill)
        theirs = torch.nonzero_static(torch.tensor(values), size=size, fill_value=fill)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    with pytest.raises(ValueError, match="size"):
        gradient.nonzero_static(gradient.tensor([1]), size=-1)


def test_backward_into_named_inputs_only_as_torch():
    results = []
    for lib in (gradient, torch):
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, 4.0], requires_grad=True)
        h = a * b
        if lib is torch:
            h.retain_grad()
        (h * h).sum().backward(inputs=[a, h])
        (a * b).sum().backward(inputs=a)
        results.append((a.grad.numpy(), b.grad, h.grad.numpy()))
    (ga, gb, gh), (ta, tb, th) = results
    np.testing.assert_array_equal(ga, ta)
    np.testing.assert_array_equal(gh, th)
    assert gb is None and tb is None


def test_module_to_empty_keeps_shapes_and_parameters():
    layer = gradient.nn.Linear(3, 4)
    weight = layer.weight
    layer.to_empty(device="cpu")
    assert layer.weight is weight and tuple(weight.shape) == (4, 3)
    assert weight.requires_grad and weight.dtype is gradient.float32


@pytest.mark.parametrize("kwargs", [
    {}, {"spacing": 0.5}, {"spacing": [0.5, 2.0]}, {"dim": 1, "edge_order": 2},
    {"spacing": "coords"}, {"spacing": "coords", "edge_order": 2},
    {"spacing": "coords1", "dim": -1, "edge_order": 2}])
def test_gradient_matches_torch(kwargs):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 6))
    coords = (np.cumsum(rng.uniform(0.5, 2, 5)), np.cumsum(rng.uniform(0.5, 2, 6)))
    results = []
    for lib in (gradient, torch):
        kw = dict(kwargs)
        if kw.get("spacing") == "coords":
            kw["spacing"] = tuple(lib.tensor(c) for c in coords)
        elif kw.get("spacing") == "coords1":
            kw["spacing"] = (lib.tensor(coords[1]),)
        x = lib.tensor(a, requires_grad=True)
        out = lib.gradient(x, **kw)
        sum(o.sum() * (i + 1) for i, o in enumerate(out)).backward()
        results.append(([o.detach().numpy() for o in out], x.grad.numpy()))
    (ours, our_grad), (theirs, their_grad) = results
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o, t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(our_grad, their_grad, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="samples"):
        gradient.gradient(gradient.ones(2), edge_order=2)


def test_functional_bilinear_linearize_and_top_level_vmap():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 5))
    w, bias = rng.standard_normal((6, 4, 5)), rng.standard_normal(6)
    ours = gradient.nn.functional.bilinear(*(gradient.tensor(v) for v in (a, b, w, bias)))
    theirs = torch.nn.functional.bilinear(*(torch.tensor(v) for v in (a, b, w, bias)))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    x, t = np.array([0.5, 1.0]), np.array([1.0, 2.0])
    _, ours_fn = gradient.func.linearize(lambda v: v.sin() * v, gradient.tensor(x))
    _, theirs_fn = torch.func.linearize(lambda v: v.sin() * v, torch.tensor(x))
    np.testing.assert_allclose(ours_fn(gradient.tensor(t)).numpy(),
                               theirs_fn(torch.tensor(t)).numpy(), rtol=1e-12)
    assert gradient.vmap is gradient.func.vmap
