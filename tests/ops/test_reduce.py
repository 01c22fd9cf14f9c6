"""Edge semantics of the reductions, checked against PyTorch: ties, zeros in prod, huge and
infinite logsumexp inputs, result dtypes, errors. The smooth cases are in table_reduce.py."""

import math

import numpy as np
import pytest

import gradient
from gradient.errors import DTypeError

torch = pytest.importorskip("torch")

INF = float("inf")
NAN = float("nan")


def _pair(values, dtype="float32", requires_grad=True):
    """The same data as a gradient tensor and a torch tensor."""
    data = np.asarray(values, dtype=dtype)
    return (gradient.tensor(data, requires_grad=requires_grad),
            torch.tensor(data, requires_grad=requires_grad))


def _grads(fn, values, dtype="float32", weights=None):
    """d(sum(fn(x) * weights))/dx in gradient and torch."""
    out = []
    for x in _pair(values, dtype):
        y = fn(x)
        w = np.ones(tuple(y.shape), dtype=dtype) if weights is None else np.asarray(weights, dtype)
        lib_w = gradient.tensor(w) if isinstance(x, gradient.Tensor) else torch.tensor(w)
        (y * lib_w).sum().backward()
        out.append(np.asarray(x.grad.numpy() if x.grad is not None else None))
    return out


def _hvp(fn, values, v, dtype="float64"):
    """The second derivative of sum(fn(x)) along v (a Hessian-vector product), in both libraries."""
    out = []
    for x in _pair(values, dtype):
        lib = gradient if isinstance(x, gradient.Tensor) else torch
        (g,) = lib.autograd.grad(fn(x).sum(), x, create_graph=True)
        (h,) = lib.autograd.grad((g * lib.tensor(np.asarray(v, dtype))).sum(), x)
        out.append(h.detach().numpy())
    return out


def _close(ours, theirs, **kw):
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), equal_nan=True,
                               **({"rtol": 1e-5, "atol": 1e-6} | kw))


# ---------------------------------------------------------------------- ties
TIES = [[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [[5.0, 1.0], [5.0, 5.0]]]


@pytest.mark.parametrize("values", TIES)
@pytest.mark.parametrize("name", ["max", "min", "amax", "amin", "median"])
def test_reduce_all_splits_gradient_among_ties_like_torch(name, values):
    ours, theirs = _grads(lambda x: getattr(x, name)(), values)
    _close(ours, theirs)
    assert ours.sum() == pytest.approx(1.0)  # the whole gradient, shared


@pytest.mark.parametrize("name", ["amax", "amin"])
def test_amax_with_dim_splits_ties_per_slice(name):
    values = [[1.0, 4.0, 4.0], [7.0, 7.0, 7.0], [0.0, -1.0, 0.0]]
    for dim in (0, 1, (0, 1)):
        ours, theirs = _grads(lambda x: getattr(x, name)(dim=dim), values)
        _close(ours, theirs)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_with_dim_on_ties_returns_first_index_and_sends_grad_there(name):
    values = [[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, -1.0, 5.0, 5.0]]
    x, t = _pair(values, requires_grad=False)
    ours, theirs = getattr(x, name)(dim=1), getattr(t, name)(dim=1)
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    g_ours, g_theirs = _grads(lambda x: getattr(x, name)(dim=1).values, values)
    _close(g_ours, g_theirs)
    assert (g_ours != 0).sum() == 3  # one element per row


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_on_ties_returns_first_index_like_torch(name):
    values = [[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [0.0, -1.0, 0.0, -1.0]]
    x, t = _pair(values, requires_grad=False)
    for kwargs in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"keepdim": True}):
        ours, theirs = getattr(x, name)(**kwargs), getattr(t, name)(**kwargs)
        assert ours.dtype is gradient.int64
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=str(kwargs))


def test_argmax_of_bool_raises_like_torch():
    with pytest.raises(RuntimeError, match="bool"):
        torch.tensor([True, False]).argmax()
    with pytest.raises(DTypeError, match="bool"):
        gradient.tensor([True, False]).argmax()
    with pytest.raises(DTypeError, match="bool"):
        gradient.tensor([True, False]).argmin(dim=0)


def test_max_min_propagate_nan_like_torch():
    values = [[1.0, NAN, 3.0], [4.0, 5.0, 6.0]]
    x, t = _pair(values, requires_grad=False)
    for name in ("max", "min", "amax", "amin", "median"):
        _close(getattr(x, name)().numpy(), getattr(t, name)().numpy())
    for name in ("max", "min", "median"):
        ours, theirs = getattr(x, name)(dim=1), getattr(t, name)(dim=1)
        _close(ours.values.numpy(), theirs.values.numpy())
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    _close(x.amax(dim=1).numpy(), t.amax(dim=1).numpy())
    np.testing.assert_array_equal(x.argmax(dim=1).numpy(), t.argmax(dim=1).numpy())


# ---------------------------------------------------------------------- max/min results
def test_max_with_dim_is_a_named_tuple_of_values_and_indices():
    x = gradient.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], requires_grad=True)
    result = x.max(dim=1)
    values, indices = result
    assert isinstance(result, tuple) and len(result) == 2
    assert values is result.values and indices is result.indices and result[0] is values
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0]
    assert indices.dtype is gradient.int64 and not indices.requires_grad
    assert values.requires_grad
    keep = gradient.min(x, 0, True)
    assert keep.values.shape == (1, 3) and keep.indices.tolist() == [[0, 1, 0]]


def test_max_of_0d_tensor_with_dim_like_torch():
    x = gradient.tensor(3.0)
    values, indices = x.max(0)
    assert values.shape == () and values.item() == 3.0 and indices.item() == 0
    assert x.argmax(0).item() == 0 and x.argmax().shape == ()


def test_max_with_tensor_argument_is_maximum():
    a, ta = _pair([1.0, 5.0, -2.0], requires_grad=False)
    b, tb = _pair([3.0, 2.0, -7.0], requires_grad=False)
    np.testing.assert_array_equal(gradient.max(a, b).numpy(), torch.max(ta, tb).numpy())
    np.testing.assert_array_equal(a.min(b).numpy(), ta.min(tb).numpy())


def test_median_is_the_lower_median_like_torch():
    x, t = _pair([[4.0, 1.0, 3.0, 2.0], [0.5, 9.0, -1.0, 8.0]], requires_grad=False)
    assert x.median().item() == t.median().item()
    ours, theirs = x.median(dim=1), t.median(dim=1)
    _close(ours.values.numpy(), theirs.values.numpy())
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())


# ---------------------------------------------------------------------- prod with zeros
PROD_ZEROS = [
    ([2.0, 0.0, 3.0, 4.0], {}),                               # one zero
    ([2.0, 0.0, 3.0, 0.0], {}),                               # two zeros
    ([0.0, 0.0, 0.0], {}),                                    # all zeros
    ([[1.0, 0.0, 3.0], [0.0, 0.0, 2.0], [4.0, 5.0, 6.0]], {"dim": 1}),
    ([[1.0, 0.0, 3.0], [0.0, 0.0, 2.0], [4.0, 5.0, 0.0]], {"dim": 0, "keepdim": True}),
]


@pytest.mark.parametrize("values,kwargs", PROD_ZEROS)
def test_prod_gradient_with_zeros_matches_torch(values, kwargs):
    x, t = _pair(values, requires_grad=False)
    _close(x.prod(**kwargs).numpy(), t.prod(**kwargs).numpy())
    rng = np.random.default_rng(0)
    shape = tuple(t.prod(**kwargs).shape)
    ours, theirs = _grads(lambda x: x.prod(**kwargs), values, weights=rng.standard_normal(shape))
    _close(ours, theirs)


@pytest.mark.parametrize("values,kwargs", PROD_ZEROS)
def test_prod_second_derivative_with_zeros_matches_torch(values, kwargs):
    v = np.random.default_rng(1).standard_normal(np.shape(values))
    ours, theirs = _hvp(lambda x: x.prod(**kwargs), values, v)
    _close(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("values", [[2.0, 0.0, 3.0, 4.0, 0.5], [0.0, 2.0, 0.0, 3.0, 1.5]])
def test_cumprod_gradients_with_zeros_match_torch(values):
    w = np.random.default_rng(2).standard_normal(len(values))
    ours, theirs = _grads(lambda x: x.cumprod(0), values, dtype="float64", weights=w)
    _close(ours, theirs)
    ours, theirs = _hvp(lambda x: x.cumprod(0) * gradient_or_torch_const(x, w), values,
                        np.ones(len(values)))
    _close(ours, theirs, rtol=1e-10, atol=1e-12)


def gradient_or_torch_const(x, w):
    return gradient.tensor(w) if isinstance(x, gradient.Tensor) else torch.tensor(w)


# ---------------------------------------------------------------------- logsumexp
@pytest.mark.parametrize("values", [
    [1e4, 1e4, 1e4 - 1.0],
    [-1e4, -1e4 + 2.0, -1e4],
    [[1e4, -1e4], [-1e4, 1e4]],
    [[88.0, 89.0, 90.0], [-200.0, -150.0, -100.0]],
])
def test_logsumexp_is_stable_for_huge_inputs(values):
    x, t = _pair(values, requires_grad=False)
    ours = x.logsumexp(dim=-1)
    assert np.isfinite(ours.numpy()).all()
    _close(ours.numpy(), torch.logsumexp(t, dim=-1).numpy(), rtol=1e-6)
    g_ours, g_theirs = _grads(lambda x: x.logsumexp(-1), values)
    _close(g_ours, g_theirs)
    assert np.isfinite(g_ours).all()


@pytest.mark.filterwarnings("ignore:invalid value")  # -inf - -inf in the backward of a -inf row
def test_logsumexp_of_infinite_rows_like_torch():
    values = [[-INF, -INF, -INF], [-INF, 0.0, 1.0], [INF, 0.0, 1.0], [INF, INF, -INF]]
    x, t = _pair(values, requires_grad=False)
    _close(x.logsumexp(dim=1).numpy(), t.logsumexp(dim=1).numpy())
    assert x.logsumexp(dim=1).tolist()[:3] == [-INF, pytest.approx(1.3132617), INF]
    # the gradient of a row of -inf is nan in both libraries; a single -inf gets 0
    ours, theirs = _grads(lambda x: x.logsumexp(1), values[:2])
    _close(ours, theirs)
    assert ours[1, 0] == 0.0


def test_logsumexp_of_integers_is_float():
    x = gradient.tensor([1, 2, 3])
    assert x.logsumexp(0).dtype is gradient.float32
    assert x.logsumexp(0).item() == pytest.approx(torch.tensor([1, 2, 3]).logsumexp(0).item())


# ---------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool"])
def test_sum_and_prod_of_integers_give_int64(dtype):
    data = np.array([[1, 0, 1], [1, 1, 1]]).astype(dtype)
    x, t = gradient.tensor(data), torch.tensor(data)
    for name in ("sum", "prod"):
        ours, theirs = getattr(x, name)(), getattr(t, name)()
        assert ours.dtype is gradient.int64 and theirs.dtype == torch.int64
        assert ours.item() == theirs.item()
    assert x.cumsum(1).dtype is gradient.int64 and x.cumprod(0).dtype is gradient.int64
    assert x.sum(dim=0, dtype=gradient.float64).dtype is gradient.float64
    assert x.count_nonzero().dtype is gradient.int64 and x.count_nonzero().item() == 5


def test_sum_of_low_precision_accumulates_in_float32():
    data = np.full(4096, 0.1)
    for g_dtype, t_dtype in ((gradient.float16, torch.float16), (gradient.bfloat16, torch.bfloat16)):
        ours = gradient.tensor(data, dtype=g_dtype).sum()
        theirs = torch.tensor(data, dtype=t_dtype).sum()
        assert ours.dtype is g_dtype
        assert ours.float().item() == pytest.approx(theirs.float().item(), rel=1e-2)
        assert ours.float().item() == pytest.approx(409.6, rel=1e-2)  # not stuck at 256 or so


@pytest.mark.parametrize("name", ["mean", "var", "std", "norm", "nanmean"])
def test_float_only_reductions_reject_integers_like_torch(name):
    x = gradient.tensor([1, 2, 3])
    with pytest.raises(TypeError, match="floating"):
        getattr(gradient, name)(x)
    with pytest.raises(RuntimeError):
        getattr(torch, name)(torch.tensor([1, 2, 3]))
    with pytest.raises(DTypeError):
        getattr(x, name)()
    assert gradient.mean(x, dtype=gradient.float32).item() == 2.0


def test_all_and_any_give_bool_like_torch():
    for data in ([[1.0, 0.0], [2.0, 3.0]], [[True, False], [True, True]], [[3, 0], [1, 2]]):
        x, t = gradient.tensor(data), torch.tensor(data)
        for name in ("all", "any"):
            for kwargs in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}):
                ours, theirs = getattr(x, name)(**kwargs), getattr(t, name)(**kwargs)
                assert ours.dtype is gradient.bool_
                np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    u = gradient.tensor(np.array([1, 2], dtype=np.uint8))
    assert u.all().dtype is gradient.uint8 and u.all().item() == 1


def test_integer_and_index_results_have_no_grad():
    x = gradient.tensor([[1.0, 5.0], [3.0, 2.0]], requires_grad=True)
    for out in (x.argmax(), x.argmin(dim=1), x.max(dim=0).indices, x.all(), x.any(dim=0),
                x.count_nonzero(), (x > 2).sum()):
        assert not out.requires_grad and out.grad_fn is None


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("call", [
    lambda x: x.sum(dim=2), lambda x: x.mean(dim=-3), lambda x: x.prod(dim=5),
    lambda x: x.max(dim=2), lambda x: x.amax(dim=(0, 2)), lambda x: x.argmax(dim=-3),
    lambda x: x.var(dim=2), lambda x: x.logsumexp(dim=3), lambda x: x.cumsum(dim=2),
    lambda x: x.norm(dim=2), lambda x: x.median(dim=2), lambda x: x.all(dim=2),
])
def test_out_of_range_dim_raises_index_error(call):
    x = gradient.ones(2, 3)
    with pytest.raises(IndexError, match="out of range"):
        call(x)


def test_repeated_dim_raises():
    with pytest.raises(ValueError, match="more than once"):
        gradient.ones(2, 3).sum(dim=(1, -1))


@pytest.mark.parametrize("call", [
    lambda x: x.max(), lambda x: x.min(dim=0), lambda x: x.amax(dim=0), lambda x: x.argmax(),
    lambda x: x.argmin(dim=0), lambda x: x.median(dim=0),
])
def test_reductions_without_identity_reject_empty_dims(call):
    with pytest.raises(IndexError, match="non-zero size|empty"):
        call(gradient.ones(0, 3))


@pytest.mark.filterwarnings("ignore:.*degrees of freedom")  # torch's var of nothing
def test_reductions_of_empty_tensors_like_torch():
    x, t = gradient.ones(0, 3), torch.ones(0, 3)
    for name in ("sum", "prod", "mean", "logsumexp", "norm", "var", "std", "all", "any",
                 "count_nonzero"):
        _close(getattr(x, name)(dim=0).numpy(), getattr(t, name)(dim=0).numpy())
    _close(x.amax(dim=1).numpy(), t.amax(dim=1).numpy())
    assert math.isnan(gradient.ones(0).median().item())


# ---------------------------------------------------------------------- var and std
def test_std_of_a_single_element_is_nan_like_torch():
    with pytest.warns(UserWarning):
        expected = torch.tensor([5.0]).std()
    assert math.isnan(expected.item())
    assert math.isnan(gradient.tensor([5.0]).std().item())
    assert math.isnan(gradient.tensor(5.0).var().item())
    assert gradient.tensor([5.0]).std(correction=0).item() == 0.0
    assert gradient.tensor([1.0, 2.0]).var(correction=3).item() == INF


def test_std_gradient_at_zero_variance_is_zero_like_torch():
    values = [[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]]
    ours, theirs = _grads(lambda x: x.std(dim=1), values)
    _close(ours, theirs)
    assert (ours[0] == 0).all()


def test_var_legacy_unbiased_arguments_like_torch():
    x, t = _pair([[1.0, 2.0, 4.0], [0.0, 3.0, 3.0]], requires_grad=False)
    _close(x.var(True).numpy(), t.var(True).numpy())
    _close(x.var(False).numpy(), t.var(False).numpy())
    _close(x.var(1, False, True).numpy(), t.var(1, False, True).numpy())
    _close(x.std(1, unbiased=False).numpy(), t.std(1, unbiased=False).numpy())
    _close(x.std(0, correction=0, keepdim=True).numpy(), t.std(0, correction=0, keepdim=True).numpy())
    for ours, theirs in zip(gradient.std_mean(x, 1, correction=0), torch.std_mean(t, 1, correction=0)):
        _close(ours.numpy(), theirs.numpy())


# ---------------------------------------------------------------------- norm
@pytest.mark.parametrize("p", [2, "fro", 1, 3, 1.5, 0.5, INF, -INF, 0])
def test_norm_gradient_at_zero_is_zero_like_torch(p):
    values = [[0.0, 0.0, 0.0], [0.0, 3.0, -4.0]]
    x, t = _pair(values, requires_grad=False)
    _close(x.norm(p=p, dim=1).numpy(), t.norm(p=p, dim=1).numpy())
    ours, theirs = _grads(lambda x: x.norm(p=p, dim=1), values)
    if p == 0:  # no gradient in either library: both leave it None
        assert ours.item() is None and theirs.item() is None
        return
    _close(ours, theirs)
    assert (ours[0] == 0).all()


def test_norm_rejects_matrix_norms():
    with pytest.raises(ValueError, match="nuc"):
        gradient.ones(2, 2).norm(p="nuc")


# ---------------------------------------------------------------------- scans
def test_cumsum_backward_and_dtype_like_torch():
    values = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    w = np.arange(6.0).reshape(2, 3)
    for dim in (0, 1, -1):
        ours, theirs = _grads(lambda x: x.cumsum(dim), values, weights=w)
        _close(ours, theirs)
    x = gradient.tensor(values)
    assert x.cumsum(1, dtype=gradient.float64).dtype is gradient.float64
    assert gradient.tensor([True, True, False]).cumsum(0).tolist() == [1, 2, 2]


def test_dtype_arguments_convert_first_like_torch():
    x, t = gradient.tensor([1, 2, 3]), torch.tensor([1, 2, 3])
    for name in ("sum", "prod", "nansum"):
        ours = getattr(x, name)(dtype=gradient.float64)
        theirs = getattr(t, name)(dtype=torch.float64)
        assert ours.dtype is gradient.float64 and ours.item() == theirs.item()
    ours = x.cumprod(0, dtype=gradient.float32)
    assert ours.dtype is gradient.float32 and ours.tolist() == [1.0, 2.0, 6.0]
    f = gradient.tensor([3.0, 4.0])
    assert f.norm(dtype=gradient.float64).dtype is gradient.float64
    assert gradient.nanmean(x, dtype=gradient.float32).item() == 2.0


def test_var_mean_legacy_bool_and_conflicting_arguments():
    x, t = _pair([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], requires_grad=False)
    for ours, theirs in zip(gradient.var_mean(x, True), torch.var_mean(t, True)):
        _close(ours.numpy(), theirs.numpy())
    for ours, theirs in zip(gradient.std_mean(x, False), torch.std_mean(t, False)):
        _close(ours.numpy(), theirs.numpy())
    with pytest.raises(TypeError, match="not both"):
        x.var(unbiased=True, correction=1)


def test_sum_to_size_like_torch():
    x, t = _pair(np.arange(6.0).reshape(2, 3), requires_grad=False)
    _close(x.sum_to_size(1, 3).numpy(), t.sum_to_size(1, 3).numpy())
    _close(x.sum_to_size((2, 1)).numpy(), t.sum_to_size((2, 1)).numpy())
    assert x.sum_to_size(2, 3) is x
    _close(x.sum_to_size(3).numpy(), t.sum_to_size(3).numpy())
    with pytest.raises(ValueError, match="broadcast"):
        x.sum_to_size(4)
    with pytest.raises(ValueError, match="fewer dimensions"):
        x.sum_to_size(1, 2, 3)


# ---------------------------------------------------------------------- review fixes
def test_integer_dtype_arguments_give_that_dtype_like_torch():
    x, t = gradient.tensor([100, 100, 100]), torch.tensor([100, 100, 100])
    calls = [lambda lib, x: x.sum(dtype=lib.int8), lambda lib, x: x.sum(0, dtype=lib.int16),
             lambda lib, x: x.prod(dtype=lib.int32), lambda lib, x: x.nansum(dtype=lib.int8),
             lambda lib, x: x.cumsum(0, dtype=lib.int8), lambda lib, x: x.cumprod(0, dtype=lib.int16),
             lambda lib, x: x.float().sum(dtype=lib.int32)]
    for call in calls:
        ours, theirs = call(gradient, x), call(torch, t)
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
        assert ours.tolist() == theirs.tolist()


@pytest.mark.parametrize("call", [
    lambda x: x.sum(dim=1.5), lambda x: x.mean(dim=(0, 1.0)), lambda x: x.amax(dim=0.5),
    lambda x: x.argmax(dim=1.0), lambda x: x.max(dim=1.0), lambda x: x.cumsum(0.5),
    lambda x: x.argmax(dim=(0,)), lambda x: x.aminmax(dim=0.5),
])
def test_non_integer_dims_are_refused(call):
    # int(1.5) would silently reduce dimension 1
    with pytest.raises(TypeError, match="dim must be an int"):
        call(gradient.ones(2, 3))


_SQUARES_OVERFLOW = [200.0, -200.0] * 4  # the sum of squares overflows float16, the variance does not


@pytest.mark.parametrize("call, values", [
    (lambda x: x.mean(), [[60000.0, 60000.0], [60000.0, 60000.0]]),
    (lambda x: x.var(), _SQUARES_OVERFLOW),
    (lambda x: x.std(dim=0), [[300.0, 1.0], [-300.0, 2.0]]),
    (lambda x: x.norm(), [300.0, 400.0]),
    (lambda x: x.norm(p=3, dim=-1), [[30.0, 40.0], [1.0, 2.0]]),
    (lambda x: (gradient if isinstance(x, gradient.Tensor) else torch).var_mean(x)[0], _SQUARES_OVERFLOW),
    (lambda x: (gradient if isinstance(x, gradient.Tensor) else torch).std_mean(x)[0], _SQUARES_OVERFLOW),
])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_reductions_compute_in_float32_like_torch(call, values, dtype):
    ours = call(gradient.tensor(values, dtype=getattr(gradient, dtype), requires_grad=True))
    theirs = call(torch.tensor(values, dtype=getattr(torch, dtype), requires_grad=True))
    assert ours.dtype.name == dtype
    assert np.isfinite(theirs.float().detach().numpy()).all()
    np.testing.assert_allclose(ours.float().detach().numpy(), theirs.float().detach().numpy(), rtol=1e-2)


def test_half_precision_norm_gradient_like_torch():
    values = [300.0, 400.0]
    x, t = gradient.tensor(values, dtype=gradient.float16, requires_grad=True), \
        torch.tensor(values, dtype=torch.float16, requires_grad=True)
    x.norm().backward()
    t.norm().backward()
    assert x.grad.dtype is gradient.float16
    assert x.grad.float().tolist() == t.grad.float().tolist()


def test_zero_norm_leaves_the_gradient_none_like_torch():
    x, t = _pair([1.0, 0.0, 2.0])
    x.norm(p=0).backward()
    t.norm(p=0).backward()
    assert x.grad is None and t.grad is None


# ---------------------------------------------------------------------- diff
@pytest.mark.parametrize("call,error,match", [
    (lambda: gradient.tensor(1.0).diff(), gradient.ShapeError, "at least one dimension"),
    (lambda: gradient.zeros(3).diff(n=-1), ValueError, "must be non-negative"),
    (lambda: gradient.zeros(2, 3).diff(prepend=gradient.zeros(3, 1)), gradient.ShapeError,
     r"prepend of shape \(3, 1\) must match .* \(2, 3\) in every dimension but 1"),
    (lambda: gradient.zeros(2, 3).diff(append=gradient.zeros(3)), gradient.ShapeError, "append"),
    (lambda: gradient.zeros(3).diff(append=[1.0]), TypeError, "append to be a tensor"),
])
def test_diff_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_diff_inverts_cumsum_and_promotes_like_torch():
    x = gradient.tensor([[1.0, 4.0, 9.0], [2.0, 3.0, 5.0]])
    np.testing.assert_allclose(x.cumsum(1).diff(dim=1).numpy(), x[:, 1:].numpy())
    ours = gradient.tensor([1, 2, 4]).diff(prepend=gradient.tensor([0.5]))
    theirs = torch.tensor([1, 2, 4]).diff(prepend=torch.tensor([0.5]))
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())
