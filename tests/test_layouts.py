"""Memory formats (gradient.layouts): channels_last and channels_last_3d give PyTorch's strides
through to(), contiguous(), clone(), the *_like creators and Module.to, is_contiguous says
what PyTorch says, and a model run in channels_last computes what it computes row-major."""

import numpy as np
import pytest
import torch

import gradient
from gradient.errors import ShapeError


def both(fn):
    return fn(gradient), fn(torch)


@pytest.mark.parametrize("shape, fmt", [((2, 3, 4, 5), "channels_last"),
                                        ((2, 1, 4, 5), "channels_last"),
                                        ((2, 3, 1, 1), "channels_last"),
                                        ((2, 3, 2, 4, 5), "channels_last_3d")])
def test_strides_and_flags_are_pytorchs(shape, fmt):
    def run(lib):
        x = lib.arange(float(np.prod(shape))).reshape(shape)
        y = x.to(memory_format=getattr(lib, fmt))
        z = x.contiguous(memory_format=getattr(lib, fmt))
        c = y.clone()                                   # preserve_format
        back = y.contiguous()
        like = lib.zeros_like(y)
        return (y.stride(), z.stride(), c.stride(), back.stride(), like.stride(),
                y.is_contiguous(), y.is_contiguous(memory_format=getattr(lib, fmt)),
                x.is_contiguous(memory_format=getattr(lib, fmt)), y.numpy().tolist())

    ours, theirs = both(run)
    assert ours == theirs


def test_errors_and_names():
    with pytest.raises(ShapeError, match="rank 4"):
        gradient.ones(2, 3, 4).to(memory_format=gradient.channels_last)
    with pytest.raises(ShapeError, match="rank 5"):
        gradient.ones(2, 3, 4, 5).contiguous(memory_format=gradient.channels_last_3d)
    assert repr(gradient.channels_last) == "gradient.channels_last"
    assert isinstance(gradient.preserve_format, gradient.memory_format)


def test_a_model_in_channels_last_computes_what_it_computes_row_major():
    """The convolution stack of a classifier, its weights and inputs relaid, forward and
    backward; and PyTorch's the same way."""
    def run(lib, layout):
        lib.manual_seed(0)
        nn = lib.nn
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Conv2d(8, 4, 3), nn.Flatten(), nn.Linear(16, 5))
        return model.double()

    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8))
    weights = {k: v.detach().numpy() for k, v in run(torch, None).state_dict().items()}
    results = {}
    for lib in (gradient, torch):
        for layout in (None, lib.channels_last):
            model = run(lib, layout)
            model.load_state_dict({k: lib.tensor(v) for k, v in weights.items()})
            inputs = lib.tensor(x)
            if layout is not None:
                model = model.to(memory_format=layout)
                inputs = inputs.to(memory_format=layout)
                assert model[0].weight.is_contiguous(memory_format=layout)
                assert model[6].weight.is_contiguous()     # a 2-d weight is left as it is
            out = model(inputs)
            out.square().sum().backward()
            results[lib.__name__, layout is not None] = (
                out.detach().numpy(), model[0].weight.grad.numpy(), model[4].weight.grad.numpy())
    for key in results:
        for got, expected in zip(results[key], results["torch", False]):
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=str(key))


def test_to_keeps_the_graph():
    x = gradient.randn(2, 3, 4, 4, dtype=gradient.float64, requires_grad=True)
    y = x.to(memory_format=gradient.channels_last)
    (y * gradient.arange(96.0, dtype=gradient.float64).reshape(2, 3, 4, 4)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.arange(96.0).reshape(2, 3, 4, 4))
