"""The torch.* functions added for ported scripts (order statistics, matrix helpers, number
helpers, windows, scatter-style writes, strided tensors, conversions, top-level functional
aliases, global switches): values, dtypes, shapes, named-tuple fields, gradients and errors
against torch 2.13."""

import numpy as np
import pytest
import torch

import gradient


# ---------------------------------------------------------------------- helpers
def _pair(a, requires_grad=False):
    a = np.asarray(a)
    g = gradient.tensor(a)
    t = torch.tensor(a)
    if requires_grad:
        g.requires_grad_(True)
        t.requires_grad_(True)
    return g, t


def _same(g, t, atol=1e-6, rtol=1e-5):
    if isinstance(t, tuple):
        assert isinstance(g, tuple) and len(g) == len(t)
        if hasattr(t, "_fields"):   # torch.return_types: the same field names
            assert tuple(g._fields) == tuple(n for n in t._fields if not n.startswith("_")) or \
                all(hasattr(g, n) for n in t._fields)
        for a, b in zip(g, t):
            _same(a, b, atol, rtol)
        return
    if isinstance(t, torch.Tensor):
        assert isinstance(g, gradient.Tensor), type(g)
        assert tuple(g.shape) == tuple(t.shape), (g.shape, t.shape)
        assert str(g.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (g.dtype, t.dtype)
        np.testing.assert_allclose(g.detach().numpy().astype(np.float64),
                                   t.detach().numpy().astype(np.float64), atol=atol, rtol=rtol,
                                   equal_nan=True)
    else:
        assert g == t


def check(fn, *arrays, grad=(), atol=1e-6, rtol=1e-5, seed=0):
    """fn(lib, *tensors) in both libraries: outputs equal; for the positions in ``grad``, the
    gradients of a random weighted sum of the floating outputs equal too."""
    gs, ts = zip(*[_pair(a, i in grad) for i, a in enumerate(arrays)]) if arrays else ((), ())
    out_g, out_t = fn(gradient, *gs), fn(torch, *ts)
    _same(out_g, out_t, atol, rtol)
    if grad:
        outs_g = out_g if isinstance(out_g, tuple) else (out_g,)
        outs_t = out_t if isinstance(out_t, tuple) else (out_t,)
        rng = np.random.default_rng(seed)
        lg, lt = 0, 0
        for og, ot in zip(outs_g, outs_t):
            if ot.dtype.is_floating_point and ot.requires_grad:
                w = rng.standard_normal(tuple(ot.shape))
                lg = lg + (og * gradient.tensor(w)).sum()
                lt = lt + (ot * torch.tensor(w)).sum()
        lg.backward()
        lt.backward()
        for i in grad:
            _same(gs[i].grad, ts[i].grad, atol, rtol)
    return out_g, out_t


R = np.random.default_rng(0)


def rnd(*shape):
    return R.uniform(-2, 2, size=shape)


def distinct(*shape):
    n = int(np.prod(shape))
    return (R.permutation(n) * 0.37 - n * 0.18).reshape(shape)


# ---------------------------------------------------------------------- 1. order statistics
@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin(name):
    x = np.array([[1.0, 3.0, 3.0, 2.0, 5.0], [4.0, 1.0, 1.0, 0.0, 2.0]])
    for dim in (0, 1, -1):
        check(lambda m, t: getattr(m, name)(t, dim), x, grad=(0,))
    check(lambda m, t: getattr(t, name)(0), np.array([1, 3, 3, 2]))          # ints, ties
    check(lambda m, t: getattr(m, name)(t, 0), np.array([1.0, np.nan, 0.0, np.nan, 3.0]))
    check(lambda m, t: getattr(m, name)(t, 0), np.array(2.5))                  # 0-d
    check(lambda m, t: getattr(m, name)(t, 1), np.zeros((2, 0)))               # empty
    out = getattr(gradient, name)(gradient.tensor([1.0, 2.0]), 0)
    assert out.values is out[0] and out.indices is out[1]


def test_logcumsumexp():
    check(lambda m, t: m.logcumsumexp(t, 1), rnd(3, 6), grad=(0,))
    check(lambda m, t: t.logcumsumexp(0), np.array([-1000.0, 0.0, 1000.0, 1000.0]))
    check(lambda m, t: m.logcumsumexp(t, 0), np.array(1.5), grad=(0,))


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile(interpolation):
    x = distinct(4, 5)
    kw = {"interpolation": interpolation}
    check(lambda m, t: m.quantile(t, 0.3, **kw), x, grad=(0,))
    check(lambda m, t: m.quantile(t, 0.5, dim=1, keepdim=True, **kw), x, grad=(0,))
    check(lambda m, t, q: t.quantile(q, dim=0, **kw), x, np.array([0.0, 0.25, 0.5, 1.0]), grad=(0,))
    check(lambda m, t, q: m.quantile(t, q, keepdim=True, **kw), x, np.array([0.1, 0.9]))
    xn = x.copy()
    xn[1, 2] = np.nan
    xn[3, :] = np.nan
    check(lambda m, t: m.quantile(t, 0.4, dim=1, **kw), xn)
    check(lambda m, t: m.nanquantile(t, 0.4, dim=1, **kw), xn)
    check(lambda m, t, q: m.nanquantile(t, q, **kw), xn, np.array([0.2, 0.7]))


def test_quantile_errors():
    for bad in (lambda m: m.quantile(m.tensor([1, 2]), 0.5),
                lambda m: m.quantile(m.tensor([1.0, 2.0]), 1.5),
                lambda m: m.quantile(m.tensor([1.0]), 0.5, interpolation="foo"),
                lambda m: m.quantile(m.tensor([1.0, 2.0]), m.tensor([0.5], dtype=m.float64)),
                lambda m: m.quantile(m.tensor([]), 0.5)):
        with pytest.raises(RuntimeError):
            bad(torch)
        with pytest.raises((RuntimeError, ValueError)):
            bad(gradient)


def test_nanmedian():
    x = distinct(3, 5)
    x[0, 1] = x[2, 3] = x[2, 0] = np.nan
    check(lambda m, t: m.nanmedian(t, 1), x, grad=(0,))
    check(lambda m, t: t.nanmedian(dim=0, keepdim=True), x, grad=(0,))
    check(lambda m, t: m.nanmedian(t), x, grad=(0,))
    check(lambda m, t: m.nanmedian(t), np.array([1.0, 2.0, 2.0, np.nan]), grad=(0,))  # ties split
    check(lambda m, t: m.nanmedian(t), np.array([np.nan, np.nan]))


def test_mode_and_msort():
    x = np.array([[2, 1, 2, 1, 3, 1, 2], [5, 5, 4, 4, 3, 3, 3]])
    check(lambda m, t: m.mode(t), x)
    check(lambda m, t: t.mode(0, keepdim=True), x)
    xf = np.array([[2.0, 1.0, 2.0, 0.5], [0.1, 0.3, 0.2, 0.3]])
    check(lambda m, t: m.mode(t, 1), xf, grad=(0,))
    check(lambda m, t: m.mode(t), np.array(3.0))
    check(lambda m, t: m.msort(t), distinct(4, 3), grad=(0,))


def test_histc_histogram():
    x = R.normal(size=200).astype(np.float32)
    check(lambda m, t: m.histc(t, bins=10), x)
    check(lambda m, t: m.histc(t, bins=7, min=-1, max=1), x)
    check(lambda m, t: t.histc(5), np.array([1.0, 1.0], dtype=np.float32))
    check(lambda m, t: m.histc(t, 4, 0, 3), np.array([0.0, 1.0, 2.0, 3.0, 3.5, -1.0]))
    check(lambda m, t: m.histogram(t, 6), x.astype(np.float64))
    check(lambda m, t: m.histogram(t, 5, range=(-1.0, 1.0), density=True), x)
    check(lambda m, t, w: m.histogram(t, 4, weight=w), x, R.uniform(size=200).astype(np.float32))
    check(lambda m, t, e: m.histogram(t, e), x, np.array([-2.0, -0.5, 0.0, 3.0], dtype=np.float32))
    check(lambda m, t: m.histogram(t, 2), np.array([1.0, 1.0], dtype=np.float32))
    h = gradient.histogram(gradient.tensor([1.0, 2.0]), 2)
    assert h.hist is h[0] and h.bin_edges is h[1]


def test_histogramdd():
    pts = R.normal(size=(300, 3)).astype(np.float32)
    check(lambda m, t: m.histogramdd(t, bins=4), pts)
    check(lambda m, t: m.histogramdd(t, bins=[2, 3, 5], range=[-1.0, 1.0, 0.0, 2.0, -3.0, 3.0]),
          pts)
    check(lambda m, t, w: m.histogramdd(t, bins=[3, 2, 2], weight=w, density=True),
          pts.astype(np.float64), R.uniform(size=300))
    check(lambda m, t, a, b: m.histogramdd(t[..., :2], bins=[a, b]), pts,
          np.array([-2.0, -0.5, 0.0, 3.0], dtype=np.float32), np.array([-1.0, 1.0], dtype=np.float32))
    check(lambda m, t: m.histogramdd(t, bins=2), R.uniform(size=(2, 5, 2)))    # batched points
    # the last edge belongs in the last bin; points outside every range are left out
    check(lambda m, t: m.histogramdd(t, bins=2, range=[0.0, 2.0, 0.0, 2.0]),
          np.array([[2.0, 2.0], [0.0, 0.0], [2.5, 1.0], [1.0, 1.0]]))
    h = gradient.histogramdd(gradient.ones(3, 1), 2)
    assert h.hist is h[0] and len(h.bin_edges) == 1
    with pytest.raises(ValueError, match="expected 2 sequences"):
        gradient.histogramdd(gradient.rand(4, 2), bins=[2, 2, 2])
    with pytest.raises(ValueError, match="range"):
        gradient.histogramdd(gradient.rand(4, 2), bins=2, range=[0.0, 1.0])
    with pytest.raises(TypeError):
        gradient.histogramdd(gradient.ones(4, 2, dtype=gradient.int64))


@pytest.mark.parametrize("weights", ["none", "f", "a", "fa"])
def test_cov_corrcoef(weights):
    x = rnd(3, 6)
    f = np.array([1, 2, 1, 3, 1, 1])
    a = R.uniform(0.5, 2, size=6)
    def cov(m, t, fw, aw):
        return m.cov(t, correction=1, fweights=fw if "f" in weights else None,
                     aweights=aw if "a" in weights else None)
    check(cov, x, f, a, grad=(0,))
    check(lambda m, t, fw, aw: m.cov(t, correction=0, fweights=fw if "f" in weights else None,
                                     aweights=aw if "a" in weights else None), x, f, a, grad=(0,))
    check(lambda m, t: m.corrcoef(t), x, grad=(0,))
    check(lambda m, t: t.cov(), rnd(5), grad=(0,))
    check(lambda m, t: m.corrcoef(t), rnd(1, 5))
    check(lambda m, t: m.cov(t), np.array([[1, 2, 4], [3, 1, 0]]))


# ---------------------------------------------------------------------- 2. matrix helpers
def test_matrix_builders():
    check(lambda m, t: m.diagflat(t), rnd(2, 2), grad=(0,))
    check(lambda m, t: t.diagflat(-1), rnd(3), grad=(0,))
    check(lambda m, a, b, c: m.block_diag(a, b, c), rnd(2, 3), rnd(2), np.array(4.0), grad=(0, 1, 2))
    check(lambda m, a, b: m.block_diag(a, b), np.array([[1, 2]]), np.array([[1.5]]))
    check(lambda m, t: m.combinations(t), rnd(4), grad=(0,))
    check(lambda m, t: m.combinations(t, r=3, with_replacement=True), rnd(3), grad=(0,))
    check(lambda m, t: m.combinations(t, r=3), np.array([1, 2]))
    check(lambda m, t: m.combinations(t, r=0), np.array([1.0, 2.0]))
    for k in (-1, 0, 1, 2, 3, 5):
        check(lambda m, t: m.rot90(t, k, [1, 2]), rnd(2, 3, 4), grad=(0,))
    with pytest.raises(ValueError):
        gradient.rot90(gradient.ones(2, 2), 1, [0, 0])


def test_products_and_norms():
    check(lambda m, t: m.renorm(t, 2, 0, 1.0), rnd(4, 3) * 2, grad=(0,))
    check(lambda m, t: t.renorm(1, 1, 2.5), rnd(2, 3, 4), grad=(0,))
    check(lambda m, i, a, b: m.addr(i, a, b, beta=0.5, alpha=2), rnd(3, 4), rnd(3), rnd(4),
          grad=(0, 1, 2))
    check(lambda m, i, a, b: m.addr(i, a, b), rnd(4), rnd(3), rnd(4), grad=(0, 1, 2))  # broadcast
    check(lambda m, i, a, b: i.addr(a, b), np.ones((2, 2), dtype=np.int64), np.array([1, 2]),
          np.array([3, 4]))
    check(lambda m, i, a, b: m.addbmm(i, a, b, beta=2, alpha=0.5), rnd(3, 5), rnd(4, 3, 2),
          rnd(4, 2, 5), grad=(0, 1, 2))
    check(lambda m, a, b: m.inner(a, b), rnd(2, 3, 4), rnd(5, 4), grad=(0, 1))
    check(lambda m, a, b: m.inner(a, b), rnd(3), np.array(2.0), grad=(0, 1))
    for p in (2, 1, 3.5, float("inf")):
        check(lambda m, a, b: m.dist(a, b, p), rnd(3, 4), rnd(4), grad=(0, 1))
    check(lambda m, a, b, c: m.chain_matmul(a, b, c), rnd(2, 3), rnd(3, 5), rnd(5, 2),
          grad=(0, 1, 2), atol=1e-5)


# ---------------------------------------------------------------------- 3. number helpers
def test_gcd_lcm():
    a = np.array([12, -18, 0, 0, 7, 2**40])
    b = np.array([8, 12, 5, 0, -21, 2**35 * 3])
    check(lambda m, x, y: m.gcd(x, y), a, b)
    check(lambda m, x, y: x.lcm(y), a[:5], b[:5])
    check(lambda m, x, y: m.gcd(x, y), np.array([[4], [6]], dtype=np.int32), np.array([6, 9, 10],
                                                                                      dtype=np.int32))
    with pytest.raises(RuntimeError):
        gradient.gcd(gradient.tensor([1.0]), gradient.tensor([2.0]))
    x = gradient.tensor([4, 6])
    assert x.gcd_(gradient.tensor([6, 4])) is x and x.tolist() == [2, 2]


def test_ldexp_frexp_nextafter():
    check(lambda m, x, e: m.ldexp(x, e), rnd(3, 4), np.array([1, 2, 3, 0]), grad=(0,))
    # (torch's backward computes 2**other in integers, so a negative exponent gets gradient 0
    # there; gradient's is 2**other. Forward only for those.)
    check(lambda m, x, e: m.ldexp(x, e), rnd(3, 4), np.array([1, -2, 3, -30]))
    check(lambda m, x, e: x.ldexp(e), np.array([1, 2]), np.array([3, 4]))
    vals = np.array([8.0, 0.75, -3.5, 0.0, np.inf, -np.inf, np.nan, 1e-40, 3.4e38, 1.0, 0.5],
                    dtype=np.float32)
    check(lambda m, x: m.frexp(x), vals)
    check(lambda m, x: x.frexp(), np.array([1e300, 1e-310, -7.0, 2.0**-1074]))
    x = np.array([1.0, 1.0, 0.0, 0.0, -1.0, 2.0, 2.0, np.inf, 3.4028235e38, 1e-45, np.nan, 5.0],
                 dtype=np.float32)
    y = np.array([2.0, 0.0, 1.0, -1.0, -2.0, 0.0, 2.0, 0.0, np.inf, 0.0, 1.0, 5.0], dtype=np.float32)
    check(lambda m, a, b: m.nextafter(a, b), x, y, atol=0, rtol=0)
    check(lambda m, a, b: a.nextafter(b), x.astype(np.float64), y.astype(np.float64), atol=0, rtol=0)


def test_predicates():
    x = np.array([1.0, np.inf, -np.inf, np.nan])
    check(lambda m, t: m.isposinf(t), x)
    check(lambda m, t: m.isneginf(t), x)
    check(lambda m, t: m.isreal(t), x)
    check(lambda m, t: t.isposinf(), np.array([1, 2]))
    for v in ([0.5], [0.0], 3, [[False]]):
        assert gradient.is_nonzero(gradient.tensor(v)) == torch.is_nonzero(torch.tensor(v))
    for v in ([], [1, 2]):
        with pytest.raises(RuntimeError):
            gradient.is_nonzero(gradient.tensor(v))
    assert gradient.is_same_size(gradient.ones(2, 3), gradient.zeros(2, 3))
    assert not gradient.ones(2, 3).is_same_size(gradient.zeros(3, 2))
    for dt in ("float32", "int8", "uint8", "bool", "int64", "bfloat16"):
        assert gradient.ones(1, dtype=getattr(gradient, dt)).is_signed() == \
            torch.ones(1, dtype=getattr(torch, dt)).is_signed()


# ---------------------------------------------------------------------- 4. windows
@pytest.mark.parametrize("name", ["hann_window", "hamming_window", "blackman_window",
                                  "bartlett_window", "kaiser_window"])
def test_windows(name):
    for n in (0, 1, 2, 7, 16):
        for periodic in (True, False):
            check(lambda m: getattr(m, name)(n, periodic), atol=1e-6)
            check(lambda m: getattr(m, name)(n, periodic=periodic, dtype=m.float64), atol=1e-12)
    check(lambda m: m.hamming_window(9, True, 0.6, 0.3))
    check(lambda m: m.kaiser_window(9, False, beta=4.0))
    w = gradient.hann_window(4, requires_grad=True)
    assert w.requires_grad and w.is_leaf
    with pytest.raises(RuntimeError):
        getattr(gradient, name)(4, dtype=gradient.int64)


# ---------------------------------------------------------------------- 5. scatter-style
def test_select_slice_diagonal_scatter():
    check(lambda m, x, s: m.select_scatter(x, s, 1, -1), rnd(2, 3, 4), rnd(2, 4), grad=(0, 1))
    check(lambda m, x, s: x.slice_scatter(s, 1, 0, 3, 2), rnd(2, 4), rnd(2, 2), grad=(0, 1))
    check(lambda m, x, s: m.slice_scatter(x, s, start=1), rnd(4, 2), rnd(3, 2), grad=(0, 1))
    for offset, d1, d2, n in ((0, 0, 1, 3), (1, 0, 1, 3), (-2, 1, 2, 2), (1, 2, 0, 3)):
        x = rnd(3, 4, 5)
        shape = tuple(torch.diagonal(torch.tensor(x), offset, d1, d2).shape)
        check(lambda m, a, s: m.diagonal_scatter(a, s, offset, d1, d2), x, rnd(*shape), grad=(0, 1))
    with pytest.raises(RuntimeError):
        gradient.select_scatter(gradient.zeros(2, 3), gradient.zeros(2), 0, 0)
    check(lambda m, x, s: m.select_scatter(x, s, 0, 1), np.zeros((2, 2), dtype=np.int64),
          np.array([1, 2]))


@pytest.mark.parametrize("reduce", ["prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_index_reduce(reduce, include_self):
    x, src = distinct(4, 3), distinct(5, 3) + 0.05
    idx = np.array([0, 2, 0, 3, 2])
    kw = dict(include_self=include_self)
    check(lambda m, a, i, s: m.index_reduce(a, 0, i, s, reduce, **kw), x, idx, src, grad=(0, 2))
    check(lambda m, a, i, s: a.index_reduce(1, i, s, reduce, **kw), distinct(3, 4),
          np.array([1, 1, 0]), distinct(3, 3), grad=(0, 2))
    g = gradient.tensor(x)
    assert g.index_reduce_(0, gradient.tensor(idx), gradient.tensor(src), reduce, **kw) is g
    t = torch.tensor(x).index_reduce_(0, torch.tensor(idx), torch.tensor(src), reduce, **kw)
    _same(g, t)


# ---------------------------------------------------------------------- 6. creation and misc
def test_as_strided():
    x = rnd(3, 4)
    check(lambda m, t: m.as_strided(t, (2, 2), (1, 2)), x, grad=(0,))
    check(lambda m, t: t.as_strided((4, 3), (1, 1), 2), x, grad=(0,))     # overlapping
    check(lambda m, t: m.as_strided(t, (3,), (0,)), x, grad=(0,))          # zero stride
    with pytest.raises(RuntimeError):
        gradient.as_strided(gradient.ones(4), (3,), (2,))


def test_empty_strided_and_conversions():
    for size, stride in (((2, 3), (3, 1)), ((2, 3), (1, 2)), ((2, 3, 4, 5), (60, 1, 15, 3))):
        g, t = gradient.empty_strided(size, stride), torch.empty_strided(size, stride)
        assert tuple(g.shape) == tuple(t.shape) and g.stride() == t.stride()
    a = np.arange(4.0)
    g = gradient.asarray(a)
    a[0] = 9
    assert g[0].item() == 9 and g.dtype == gradient.float64     # shared memory
    assert gradient.asarray(a, copy=True).data_ptr() != g.data_ptr()
    check(lambda m: m.asarray([1, 2], dtype=m.float64))
    check(lambda m: m.asarray([[1.5, 2]]))
    x = gradient.ones(3)
    assert gradient.asarray(x) is x
    buf = bytearray(np.arange(6, dtype=np.int32).tobytes())
    check(lambda m: m.frombuffer(buf, dtype=m.int32))
    check(lambda m: m.frombuffer(buf, dtype=m.int16, count=3, offset=4))
    with pytest.raises(ValueError):
        gradient.frombuffer(buf, dtype=gradient.int64, count=4)
    check(lambda m: m.scalar_tensor(3))
    check(lambda m: m.scalar_tensor(2.5, dtype=m.float64))


def test_printoptions():
    x = gradient.tensor([1.123456, 2.5])
    try:
        gradient.set_printoptions(precision=2)
        assert repr(x) == "tensor([1.12, 2.50])"
        gradient.set_printoptions(sci_mode=True)
        assert "e+00" in repr(x)
        gradient.set_printoptions(threshold=5, edgeitems=2)
        torch.set_printoptions(threshold=5, edgeitems=2)
        assert repr(gradient.arange(10)) == "tensor([0, 1,  ..., 8, 9])"
        assert repr(torch.arange(10)) == repr(gradient.arange(10))
        gradient.set_printoptions(profile="full")
        assert "..." not in repr(gradient.arange(2000))
        gradient.set_printoptions(linewidth=30)
        assert max(len(s) for s in repr(gradient.arange(20)).splitlines()) <= 30
    finally:
        gradient.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")
    assert repr(x) == "tensor([1.1235, 2.5000])"
    assert repr(gradient.arange(2000)) == repr(torch.arange(2000))


def test_global_switches():
    assert gradient.get_default_device() == gradient.device("cpu")
    gradient.set_default_device("cpu")
    assert gradient.zeros(2).device.type == "cpu"
    gradient.set_default_device(None)
    # a device as a context manager: the default for its block, nested blocks restored
    with gradient.device("plugin:reference") as dev:
        assert dev == gradient.device("plugin:reference")
        assert gradient.zeros(2).device == dev and gradient.nn.Linear(2, 2).weight.device == dev
        with gradient.device("cpu"):
            assert gradient.ones(1).device.type == "cpu"
        assert gradient.get_default_device() == dev
    assert gradient.zeros(2).device.type == "cpu" and gradient.get_default_device().type == "cpu"
    assert not gradient.are_deterministic_algorithms_enabled()
    gradient.use_deterministic_algorithms(True, warn_only=True)
    try:
        assert gradient.are_deterministic_algorithms_enabled()
        assert gradient.is_deterministic_algorithms_warn_only_enabled()
    finally:
        gradient.use_deterministic_algorithms(False)
    assert not gradient.are_deterministic_algorithms_enabled()
    assert not gradient.is_autocast_enabled() and not gradient.is_autocast_enabled("cpu")
    with gradient.autocast("cpu"):
        assert gradient.is_autocast_enabled("cpu")
        assert gradient.get_autocast_dtype("cpu") == gradient.bfloat16
    assert gradient.get_autocast_dtype("cuda") == gradient.float16
    assert gradient.is_inference(gradient.ones(1)) is False


# ---------------------------------------------------------------------- 7. functional aliases
def test_functional_aliases():
    x, w, b = rnd(2, 3, 8), rnd(4, 3, 3), rnd(4)
    check(lambda m, x, w, b: m.conv1d(x, w, b, 1, 1), x, w, b, grad=(0, 1, 2), atol=1e-5)
    check(lambda m, x, w: m.conv2d(x, w, None, 1, 0), rnd(1, 2, 5, 5), rnd(3, 2, 2, 2), grad=(0, 1),
          atol=1e-5)
    check(lambda m, x, w: m.conv_transpose1d(x, w, stride=2), rnd(1, 2, 4), rnd(2, 3, 3),
          grad=(0, 1), atol=1e-5)
    check(lambda m, x: m.max_pool1d(x, 2), distinct(1, 2, 6), grad=(0,))
    check(lambda m, x: m.max_pool2d(x, 2, [], 0, 1, True), distinct(1, 1, 5, 5), grad=(0,))
    check(lambda m, x: m.max_pool1d_with_indices(x, 3, 2), distinct(1, 2, 7), grad=(0,))
    check(lambda m, x: m.avg_pool1d(x, 2), rnd(1, 2, 6), grad=(0,))
    check(lambda m, x: m.adaptive_avg_pool1d(x, 3), rnd(1, 2, 7), grad=(0,))
    check(lambda m, x: m.adaptive_max_pool1d(x, 3), distinct(1, 2, 7), grad=(0,))
    rm, rv = np.zeros(3), np.ones(3)
    check(lambda m, x, w, b, rm, rv: m.batch_norm(x, w, b, rm, rv, False, 0.1, 1e-5, False),
          rnd(4, 3, 2), rnd(3), rnd(3), rm, rv, grad=(0, 1, 2), atol=1e-5)
    check(lambda m, x, w, b: m.instance_norm(x, w, b, None, None, True, 0.1, 1e-5, False),
          rnd(2, 3, 5), rnd(3), rnd(3), grad=(0, 1, 2), atol=1e-5)
    check(lambda m, w, i: m.embedding(w, i, 1), rnd(4, 3), np.array([[0, 1], [3, 1]]), grad=(0,))
    check(lambda m, a, b, w, bias: m.bilinear(a, b, w, bias), rnd(2, 3), rnd(2, 4), rnd(5, 3, 4),
          rnd(5), grad=(0, 1, 2, 3), atol=1e-5)
    t = R.uniform(size=(3, 4))
    for red in (0, 1, 2):
        check(lambda m, x, y: m.binary_cross_entropy_with_logits(x, y, None, None, red), rnd(3, 4),
              t, grad=(0,))
        check(lambda m, x, y: m.kl_div(x, y, red), rnd(3, 4), t, grad=(0, 1))
        check(lambda m, x, y: m.hinge_embedding_loss(x, y, 1.0, red), rnd(6),
              np.array([1.0, -1, 1, -1, 1, 1]), grad=(0,))
        check(lambda m, a, b, y: m.margin_ranking_loss(a, b, y, 0.1, red), rnd(5), rnd(5),
              np.array([1.0, -1, 1, -1, 1]), grad=(0, 1))
        check(lambda m, a, b, y: m.cosine_embedding_loss(a, b, y, 0.1, red), rnd(3, 4), rnd(3, 4),
              np.array([1.0, -1, 1]), grad=(0, 1))
        check(lambda m, a, p, n: m.triplet_margin_loss(a, p, n, 1.0, 2, 1e-6, False, red),
              rnd(3, 4), rnd(3, 4), rnd(3, 4), grad=(0, 1, 2), atol=1e-5)
        check(lambda m, x, y: m.poisson_nll_loss(x, y, True, False, 1e-8, red), rnd(5),
              R.uniform(0, 3, size=5), grad=(0,))
    check(lambda m, x: m.constant_pad_nd(x, (1, 2), 0.5), rnd(2, 3), grad=(0,))
    check(lambda m, x: m.channel_shuffle(x, 2), rnd(1, 4, 3))
    check(lambda m, x: m.selu_(x * 1), rnd(5), grad=(0,))
    check(lambda m, x: m.celu_(x * 1, 0.5), rnd(5), grad=(0,))
