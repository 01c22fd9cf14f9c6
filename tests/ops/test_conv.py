"""Edge semantics of convolution, pooling, padding and unfold/fold that the op table can't express:
errors, ties, indices, unbatched inputs, 'same' padding with even kernels, adjointness."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradient
import gradient.nn.functional as F
from gradient.errors import DTypeError, ShapeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _pair(a, requires_grad=False, dtype=np.float32):
    a = np.asarray(a, dtype=dtype)
    return (gradient.tensor(a, requires_grad=requires_grad),
            torch.tensor(a, requires_grad=requires_grad))


def _close(ours, theirs, atol=1e-5, rtol=1e-4):
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=atol, rtol=rtol)


def _randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------- errors
def test_conv_errors_are_clear():
    x = gradient.zeros(1, 3, 5, 5)
    with pytest.raises(ShapeError, match=r"expects 2 input channels, but the input .* has 3"):
        F.conv2d(x, gradient.zeros(4, 2, 3, 3))
    with pytest.raises(ShapeError, match=r"expects 6 input channels"):
        F.conv2d(x, gradient.zeros(4, 3, 3, 3), groups=2)
    with pytest.raises(ShapeError, match=r"out_channels \(3.*divisible by groups \(2\)"):
        F.conv2d(gradient.zeros(1, 4, 5, 5), gradient.zeros(3, 2, 3, 3), groups=2)
    with pytest.raises(ShapeError, match=r"kernel .* larger than the padded input"):
        F.conv2d(gradient.zeros(1, 3, 2, 2), gradient.zeros(4, 3, 3, 3))
    with pytest.raises(ShapeError, match=r"kernel .* larger than the padded input"):
        F.conv1d(gradient.zeros(1, 1, 4), gradient.zeros(1, 1, 3), dilation=2)
    with pytest.raises(ShapeError, match=r"expected a 3-D \(unbatched\) or 4-D \(batched\) input, got a "
                                         r"2-D input"):
        F.conv2d(gradient.zeros(5, 5), gradient.zeros(4, 3, 3, 3))
    with pytest.raises(ShapeError, match=r"expected a 4-D weight"):
        F.conv2d(x, gradient.zeros(4, 3, 3))
    with pytest.raises(ShapeError, match=r"bias must have shape \(4,\)"):
        F.conv2d(x, gradient.zeros(4, 3, 3, 3), gradient.zeros(3))
    with pytest.raises(DTypeError, match=r"same dtype"):
        F.conv2d(x, gradient.zeros(4, 3, 3, 3, dtype=gradient.float64))
    with pytest.raises(ValueError, match=r"'same' is not supported for strided"):
        F.conv2d(x, gradient.zeros(4, 3, 3, 3), padding="same", stride=2)
    with pytest.raises(ValueError, match=r"padding must be .* 'valid' or 'same'"):
        F.conv2d(x, gradient.zeros(4, 3, 3, 3), padding="full")
    with pytest.raises(ValueError, match=r"stride must be positive"):
        F.conv2d(x, gradient.zeros(4, 3, 3, 3), stride=0)
    with pytest.raises(ShapeError, match=r"stride must be an int or a tuple of 2 ints"):
        F.conv2d(x, gradient.zeros(4, 3, 3, 3), stride=(1, 2, 3))


def test_conv_transpose_errors():
    x = gradient.zeros(1, 4, 3, 3)
    with pytest.raises(ShapeError, match=r"expects 2 input channels, but the input .* has 4"):
        F.conv_transpose2d(x, gradient.zeros(2, 3, 3, 3))
    with pytest.raises(ValueError, match=r"output_padding .* smaller than either stride"):
        F.conv_transpose2d(x, gradient.zeros(4, 3, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ShapeError, match=r"divisible by groups"):
        F.conv_transpose2d(x, gradient.zeros(4, 3, 3, 3), groups=3)


def test_pad_errors():
    x = gradient.zeros(1, 2, 3)
    with pytest.raises(ShapeError, match=r"padding length must be even"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ShapeError, match=r"pad 4 dimensions, but the input has only 3"):
        F.pad(x, (1,) * 8)
    with pytest.raises(ShapeError, match=r"reflect padding \(3, 0\) must be smaller than the size 3"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ShapeError, match=r"circular padding \(4, 0\) must be at most the size 3"):
        F.pad(x, (4, 0), mode="circular")
    with pytest.raises(ShapeError, match=r"pads 1, 2 or 3 trailing dimensions"):
        F.pad(gradient.zeros(3), (1, 1), mode="replicate")
    with pytest.raises(ShapeError, match=r"negative size"):
        F.pad(x, (-2, -2))
    with pytest.raises(ValueError, match=r"mode must be one of"):
        F.pad(x, (1, 1), mode="symmetric")


def test_pool_and_fold_errors():
    x = gradient.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"at most half the kernel size"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(ShapeError, match=r"too small"):
        F.max_pool2d(x, 5)
    with pytest.raises(ShapeError, match=r"expected a 3-D \(unbatched\) or 4-D"):
        F.avg_pool2d(gradient.zeros(4, 4), 2)
    with pytest.raises(DTypeError, match=r"floating-point"):
        F.avg_pool2d(gradient.zeros(1, 4, 4, dtype=gradient.int64), 2)
    with pytest.raises(ShapeError, match=r"gives 3 x 3 = 9 blocks, but the input has 8"):
        F.fold(gradient.zeros(1, 4, 8), (4, 4), 2)
    with pytest.raises(ShapeError, match=r"divisible by the product of kernel_size"):
        F.fold(gradient.zeros(1, 5, 9), (4, 4), 2)
    with pytest.raises(ShapeError, match=r"larger than the padded input"):
        F.unfold(gradient.zeros(1, 1, 2, 2), 3)


# ---------------------------------------------------------------------- max pool: ties, indices, NaN
def test_max_pool_ties_pick_the_first_like_torch():
    # plateaus of equal values: indices and the gradient go to the first maximum of each window
    a = np.array([[[[1, 1, 2, 2, 0], [1, 1, 2, 2, 0], [3, 0, 3, 3, 3], [0, 3, 3, 1, 3], [5, 5, 5, 5, 5]]]])
    for kwargs in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 1, "padding": 1},
                   {"kernel_size": 2, "stride": 2, "ceil_mode": True}, {"kernel_size": 2, "dilation": 2}):
        g, t = _pair(a, requires_grad=True)
        (og, ig), (ot, it) = F.max_pool2d(g, return_indices=True, **kwargs), \
            TF.max_pool2d(t, return_indices=True, **kwargs)
        _close(og, ot)
        np.testing.assert_array_equal(ig.numpy(), it.numpy())
        assert ig.dtype is gradient.int64
        og.sum().backward()
        ot.sum().backward()
        _close(g.grad, t.grad)


def test_adaptive_max_pool_ties_and_indices_like_torch():
    a = np.array([[[[1, 1, 2, 2, 0, 4, 4], [1, 1, 2, 2, 0, 4, 4], [3, 0, 3, 3, 3, 4, 4],
                    [0, 3, 3, 1, 3, 0, 0], [5, 5, 5, 5, 5, 5, 5]]]])
    for size in ((3, 4), (2, 2), (5, 7), (4, 9)):
        g, t = _pair(a, requires_grad=True)
        (og, ig), (ot, it) = F.adaptive_max_pool2d(g, size, True), TF.adaptive_max_pool2d(t, size, True)
        _close(og, ot)
        np.testing.assert_array_equal(ig.numpy(), it.numpy())
        og.sum().backward()
        ot.sum().backward()
        _close(g.grad, t.grad)


def test_max_pool_propagates_nan_like_torch():
    a = np.arange(16.0).reshape(1, 1, 4, 4)
    a[0, 0, 1, 0] = np.nan
    g, t = _pair(a)
    (og, ig), (ot, it) = F.max_pool2d(g, 2, return_indices=True), TF.max_pool2d(t, 2, return_indices=True)
    np.testing.assert_array_equal(og.numpy(), ot.numpy())  # NaN in the same place
    np.testing.assert_array_equal(ig.numpy(), it.numpy())


def test_max_pool_return_indices_vs_torch_random():
    rng = np.random.default_rng(3)
    a = _randn(rng, 2, 3, 9, 8)
    for kwargs in ({"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
                   {"kernel_size": (2, 3), "stride": (3, 1), "dilation": (2, 1), "padding": (1, 1)}):
        g, t = _pair(a)
        (og, ig), (ot, it) = F.max_pool2d(g, return_indices=True, **kwargs), \
            TF.max_pool2d(t, return_indices=True, **kwargs)
        _close(og, ot)
        np.testing.assert_array_equal(ig.numpy(), it.numpy())
    g, t = _pair(a[0, :, 0])
    (og, ig), (ot, it) = F.max_pool1d(g, 3, 2, 1, return_indices=True), \
        TF.max_pool1d(t, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(ig.numpy(), it.numpy())


# ---------------------------------------------------------------------- unbatched and 'same'
@pytest.mark.parametrize("fn,args,kwargs", [
    ("conv1d", [(2, 7), (3, 2, 3)], {"padding": 1}),
    ("conv2d", [(2, 5, 6), (3, 2, 3, 3)], {"stride": 2}),
    ("conv_transpose2d", [(2, 4, 3), (2, 3, 3, 3)], {"stride": 2, "output_padding": 1}),
    ("max_pool2d", [(2, 5, 6)], {"kernel_size": 2, "ceil_mode": True}),
    ("avg_pool2d", [(2, 5, 6)], {"kernel_size": 3, "padding": 1, "count_include_pad": False}),
    ("adaptive_avg_pool2d", [(2, 5, 6)], {"output_size": (2, 4)}),
    ("adaptive_max_pool2d", [(2, 5, 6)], {"output_size": (2, 4)}),
    ("unfold", [(2, 5, 6)], {"kernel_size": 2}),
])
def test_unbatched_inputs_match_torch(fn, args, kwargs):
    rng = np.random.default_rng(1)
    pairs = [_pair(_randn(rng, *s), requires_grad=True) for s in args]
    ours = getattr(F, fn)(*[p[0] for p in pairs], **kwargs)
    theirs = getattr(TF, fn)(*[p[1] for p in pairs], **kwargs)
    assert tuple(ours.shape) == tuple(theirs.shape)
    _close(ours, theirs)
    w = _randn(rng, *theirs.shape)
    (ours * gradient.tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    for g, t in pairs:
        _close(g.grad, t.grad)


@pytest.mark.parametrize("kernel,dilation", [((2, 4), 1), ((4, 3), 1), ((2, 2), 3), ((1, 6), (1, 2))])
def test_same_padding_with_even_kernels_matches_torch(kernel, dilation):
    rng = np.random.default_rng(2)
    x, w = _pair(_randn(rng, 2, 3, 7, 8), True), _pair(_randn(rng, 4, 3, *kernel), True)
    with warnings.catch_warnings():  # torch warns that even kernels need a padded copy
        warnings.simplefilter("ignore")
        theirs = TF.conv2d(x[1], w[1], padding="same", dilation=dilation)
    ours = F.conv2d(x[0], w[0], padding="same", dilation=dilation)
    assert tuple(ours.shape) == tuple(theirs.shape) == (2, 4, 7, 8)
    _close(ours, theirs)
    ours.sum().backward()
    theirs.sum().backward()
    _close(x[0].grad, x[1].grad)
    _close(w[0].grad, w[1].grad, atol=1e-4)
    # and in 1-D
    d1 = dilation if isinstance(dilation, int) else dilation[1]
    ours = F.conv1d(x[0][:, :, 0], w[0][:, :, 0], padding="same", dilation=d1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = TF.conv1d(x[1][:, :, 0], w[1][:, :, 0], padding="same", dilation=d1)
    _close(ours, theirs)


# ---------------------------------------------------------------------- structure and sizes
def test_conv_at_a_realistic_size_matches_torch():
    rng = np.random.default_rng(4)
    x, w, b = _pair(_randn(rng, 8, 16, 32, 32), True), _pair(_randn(rng, 16, 16, 3, 3), True), \
        _pair(_randn(rng, 16), True)
    ours, theirs = F.conv2d(x[0], w[0], b[0], padding=1), TF.conv2d(x[1], w[1], b[1], padding=1)
    _close(ours, theirs, atol=1e-4)
    (ours * ours).sum().backward()
    (theirs * theirs).sum().backward()
    for g, t in (x, w, b):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-3, atol=1e-2)


def test_fold_is_the_adjoint_of_unfold():
    rng = np.random.default_rng(5)
    kw = {"kernel_size": (2, 3), "dilation": (1, 2), "padding": 1, "stride": (2, 1)}
    x = gradient.tensor(rng.standard_normal((2, 3, 6, 7)))
    cols = F.unfold(x, **kw)
    y = gradient.tensor(rng.standard_normal(tuple(cols.shape)))
    lhs = (cols * y).sum().item()
    rhs = (x * F.fold(y, (6, 7), **kw)).sum().item()
    assert abs(lhs - rhs) < 1e-9 * max(1.0, abs(lhs))


def test_conv_transpose_is_the_input_gradient_of_conv():
    rng = np.random.default_rng(6)
    x = gradient.tensor(rng.standard_normal((2, 4, 7, 8)), requires_grad=True)
    w = gradient.tensor(rng.standard_normal((6, 2, 3, 2)))
    kw = {"stride": (2, 3), "padding": (1, 0), "dilation": (1, 2), "groups": 2}
    y = F.conv2d(x, w, **kw)
    g = gradient.tensor(rng.standard_normal(tuple(y.shape)))
    (gx,) = gradient.autograd.grad(y, x, g)
    # output_padding recovers the rows/columns the strided conv skipped
    back = F.conv_transpose2d(g, w, output_padding=(0, 2), **kw)
    assert tuple(back.shape) == tuple(x.shape)
    np.testing.assert_allclose(back.numpy(), gx.numpy(), atol=1e-12)


def test_double_backward_matches_torch():
    rng = np.random.default_rng(7)
    x, w = _pair(_randn(rng, 1, 2, 5, 5).astype(np.float64), True, np.float64), \
        _pair(_randn(rng, 3, 2, 3, 3).astype(np.float64), True, np.float64)
    results = []
    for lib, F_, (xx, ww) in ((gradient, F, (x[0], w[0])), (torch, TF, (x[1], w[1]))):
        y = F_.max_pool2d(F_.conv2d(xx, ww, padding=1, stride=1), 2, ceil_mode=True)
        y = F_.avg_pool2d(F_.pad(y * y, (1, 0, 0, 1), mode="reflect"), 2, stride=1)
        gx, gw = lib.autograd.grad(y.sum(), (xx, ww), create_graph=True)
        hx, hw = lib.autograd.grad((gx * gx).sum() + (gw * gw).sum(), (xx, ww))
        results.append((gx, gw, hx, hw))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-9, atol=1e-9)


def test_outputs_are_fresh_tensors():
    x = gradient.arange(16.0).reshape(1, 1, 4, 4)
    for out in (F.unfold(x, 2), F.conv2d(x, gradient.ones(1, 1, 2, 2)), F.max_pool2d(x, 2),
                F.avg_pool2d(x, 2)):
        out[...] = -1.0  # writable, and does not write through to the input
    np.testing.assert_array_equal(x.numpy(), np.arange(16.0).reshape(1, 1, 4, 4))


@pytest.mark.parametrize("call", [
    lambda F_, x: F_.unfold(x, 1),                       # a 1x1 im2col is a reshape of the input
    lambda F_, x: F_.pad(x, (0, 0)),                     # nothing to pad
    lambda F_, x: F_.pad(x, (0, -1, -1, 0)),             # only crops
    lambda F_, x: F_.pad(x, (0, 0, 0, 0), mode="reflect"),
    lambda F_, x: F_.pad(x, (0, 0, 0, 0), mode="circular"),
])
def test_outputs_that_could_be_views_are_fresh_tensors_like_torch(call):
    # PyTorch's pad and unfold always return new storage; a view here would make an in-place
    # write to the output change the input (or fail, the window view being read-only)
    for lib, F_ in ((gradient, F), (torch, TF)):
        x = lib.arange(16.0).reshape(1, 1, 4, 4)
        call(F_, x)[...] = -1.0
        np.testing.assert_array_equal(x.numpy(), np.arange(16.0).reshape(1, 1, 4, 4))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64])
def test_max_pool_pads_integers_with_the_dtype_minimum_like_torch(dtype):
    # the padding must never win the max: for uint8 that is 0, not -128 (which wraps to 128)
    a = (np.arange(2 * 5 * 5) % 7 + 1).reshape(1, 2, 5, 5).astype(dtype)
    g, t = gradient.tensor(a), torch.tensor(a)
    (og, ig), (ot, it) = F.max_pool2d(g, 3, stride=2, padding=1, return_indices=True), \
        TF.max_pool2d(t, 3, stride=2, padding=1, return_indices=True)
    assert og.dtype.name == str(ot.dtype).removeprefix("torch.")
    np.testing.assert_array_equal(og.numpy(), ot.numpy())
    np.testing.assert_array_equal(ig.numpy(), it.numpy())


def test_non_integer_arguments_are_type_errors():
    x = gradient.zeros(1, 2, 4, 4)
    with pytest.raises(TypeError, match=r"pad: pad must be a sequence of ints, got \(1\.5, 1\)"):
        F.pad(x, (1.5, 1))
    with pytest.raises(TypeError):
        TF.pad(torch.zeros(1, 2, 4, 4), (1.5, 1))
    with pytest.raises(TypeError, match=r"conv2d: expected a Tensor bias \(or None\), got list"):
        F.conv2d(x, gradient.zeros(3, 2, 3, 3), [0.0, 0.0, 0.0])


def test_float64_in_float64_out_and_no_grad_for_indices():
    x = gradient.randn(1, 2, 4, 4, dtype=gradient.float64, requires_grad=True)
    assert F.conv2d(x, gradient.randn(3, 2, 3, 3, dtype=gradient.float64)).dtype is gradient.float64
    out, idx = F.max_pool2d(x, 2, return_indices=True)
    assert out.dtype is gradient.float64 and out.requires_grad
    assert idx.dtype is gradient.int64 and not idx.requires_grad
    assert F.adaptive_avg_pool2d(x, 3).dtype is gradient.float64


def test_modifying_the_input_in_place_after_conv_is_caught():
    # a 1x1 convolution's im2col is a view of the input, saved uncopied by the matmul
    w = gradient.randn(2, 3, 1, 1, requires_grad=True)
    x = gradient.randn(1, 3, 4, 4, requires_grad=True) * 1.0
    y = F.conv2d(x, w)
    x.add_(1.0)
    with pytest.raises(gradient.AutogradError, match="modified by an in-place operation"):
        y.sum().backward()
