"""Recorded in-place writes into views (gradient.ops.view_write): the base moves on to a graph
of its new contents, as PyTorch's CopySlices does, so values and gradients are PyTorch's; what
cannot be followed is a clear error."""

import numpy as np
import pytest
import torch

import gradient
from gradient.autograd import gradcheck, gradgradcheck
from gradient.errors import AutogradError


def leaf(values, lib=gradient):
    return lib.tensor(np.asarray(values, np.float64), dtype=lib.float64, requires_grad=True)


WRITES = {
    "mul_ of a row": lambda y, w: y[0].mul_(w[0]),
    "add_ of a column": lambda y, w: y[:, 1].add_(w[1:3].sum() * w[1]),
    "setitem into a row": lambda y, w: y[1].__setitem__(slice(0, 2), w[:2] * 3),
    "copy_ into a strided slice": lambda y, w: y[:, ::2].copy_(w[None, :2] * 2),
    "relu_ of a transposed view": lambda y, w: y.t().relu_(),
    "clamp_ of a reshaped view": lambda y, w: y.view(-1)[2:5].clamp_(-0.5, 0.5),
    "zero_ of a select": lambda y, w: y.select(1, 0).zero_(),
    "two writes, one view each": lambda y, w: (y[0].mul_(w[0]), y[1:].add_(w[1])),
}


@pytest.mark.parametrize("name", list(WRITES))
def test_a_write_into_a_view_gives_pytorchs_values_and_gradients(name):
    def run(lib):
        a = leaf(np.arange(6.0).reshape(2, 3) - 2.5, lib)
        w = leaf([1.5, -2.0, 0.75], lib)
        y = a * 1.5                                   # a non-leaf that owns its storage
        WRITES[name](y, w)
        (y * lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=lib.float64)).sum().backward()
        return y.detach().numpy(), a.grad.numpy(), None if w.grad is None else w.grad.numpy()

    for ours, theirs in zip(run(gradient), run(torch)):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_the_written_view_and_its_base_continue_from_the_new_values():
    """The view is used after the write, and so is the base; a tensor that did not require
    grad starts to, from the value written into its view."""
    def run(lib):
        x = lib.zeros(2, 3, dtype=lib.float64)
        w = leaf([1.0, -2.0, 3.0], lib)
        row = x[1]
        row.copy_(w * w)
        out = (row * 3).sum() + (x * x).sum()
        out.backward()
        return out.detach().numpy(), w.grad.numpy(), x.requires_grad

    ours, theirs = run(gradient), run(torch)
    np.testing.assert_allclose(ours[0], theirs[0])
    np.testing.assert_allclose(ours[1], theirs[1])
    assert ours[2] is theirs[2] is True


def test_a_leaky_relu_in_place_after_a_convolution_trains_as_in_pytorch():
    """DCGAN's discriminator: a bias-free convolution's output (a view of its product) goes
    through LeakyReLU(inplace=True)."""
    def run(lib):
        lib.manual_seed(0)
        nn = lib.nn
        model = nn.Sequential(nn.Conv2d(3, 4, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
                              nn.Conv2d(4, 2, 4, 2, 1, bias=False), nn.BatchNorm2d(2),
                              nn.LeakyReLU(0.2, inplace=True)).double()
        return model

    ours, theirs = run(gradient), run(torch)
    for name, p in theirs.state_dict().items():      # the same weights in both
        ours.state_dict()[name].copy_(gradient.tensor(p.detach().numpy()))
    x = np.random.default_rng(0).standard_normal((2, 3, 16, 16))
    out_ours = ours(gradient.tensor(x))
    out_theirs = theirs(torch.tensor(x))
    out_ours.square().sum().backward()
    out_theirs.square().sum().backward()
    np.testing.assert_allclose(out_ours.detach().numpy(), out_theirs.detach().numpy(), rtol=1e-10)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_second_derivatives_through_a_write_into_a_view():
    def f(a, w):
        y = a * a
        y[1:].mul_(w[:, None] * a[:-1])
        y.t()[0].add_(w.sum())
        return y

    a = leaf(np.random.default_rng(1).standard_normal((3, 2)))
    w = leaf([0.5, -1.5])
    assert gradcheck(f, (a, w))
    assert gradgradcheck(f, (a, w))


def test_what_cannot_be_followed_is_a_clear_error():
    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(AutogradError, match="view of a leaf tensor that requires grad"):
        x[:2].mul_(2)
    y = (x * 1).expand(2, 3)
    with pytest.raises(AutogradError, match="single memory location"):
        y.mul_(2)
    z = x * 1
    first, second = z[:2], z[1:]
    first.mul_(2)                       # second was taken before: its graph is stale
    with pytest.raises(AutogradError, match="stale"):
        (second * 2).sum().backward()
    with gradient.no_grad():            # nothing recorded: plain writes
        x[:2].mul_(2)
    np.testing.assert_array_equal(x.detach().numpy(), [2.0, 4.0, 3.0])
