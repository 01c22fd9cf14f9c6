"""``gradient.amp.custom_fwd`` / ``custom_bwd`` on a custom Function, under autocast and
outside it, with and without ``cast_inputs``: the dtypes its forward sees, whether its backward
runs under autocast, and the gradients, against torch's."""

import numpy as np
import pytest
import torch

import gradient


def _square(lib, **fwd):
    """A custom Function whose forward is a product (autocast casts it) and whose backward
    notes whether autocast is on."""
    seen = {}

    class Product(lib.autograd.Function):
        @staticmethod
        @lib.amp.custom_fwd(device_type="cpu", **fwd)
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            seen["forward inputs"] = (a.dtype, b.dtype)
            return a @ b

        @staticmethod
        @lib.amp.custom_bwd(device_type="cpu")
        def backward(ctx, grad):
            a, b = ctx.saved_tensors
            seen["backward autocast"] = lib.is_autocast_enabled("cpu")
            return grad @ b.t(), a.t() @ grad

    return Product, seen


@pytest.mark.parametrize("fwd", [{}, {"cast_inputs": "float32"}], ids=["as called", "float32"])
@pytest.mark.parametrize("in_region", [True, False], ids=["autocast", "no autocast"])
def test_custom_fwd_and_bwd_as_torchs(fwd, in_region):
    a = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((4, 2)).astype(np.float32)
    results = []
    for lib in (gradient, torch):
        kwargs = {k: getattr(lib, v) for k, v in fwd.items()}
        Product, seen = _square(lib, **kwargs)
        x = lib.tensor(a, requires_grad=True)
        w = lib.tensor(b, requires_grad=True)
        with lib.autocast("cpu", dtype=lib.bfloat16, enabled=in_region):
            y = Product.apply(x.to(lib.bfloat16) if in_region else x, w)
        y.float().sum().backward()
        results.append((str(y.dtype).split(".")[1], [str(d).split(".")[1]
                        for d in seen["forward inputs"]], seen["backward autocast"],
                        x.grad.dtype == lib.float32, x.grad.float().numpy(),
                        w.grad.float().numpy()))
    ours, theirs = results
    assert ours[:4] == theirs[:4]
    np.testing.assert_allclose(ours[4], theirs[4], rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(ours[5], theirs[5], rtol=1e-2, atol=1e-2)


def test_custom_fwd_refuses_a_device_type_that_is_not_a_name():
    with pytest.raises(TypeError, match="device_type"):
        gradient.amp.custom_fwd(lambda ctx, x: x, device_type=None)


def test_cast_inputs_leaves_double_precision_alone_as_torchs():
    seen = []
    for lib in (gradient, torch):
        class Record(lib.autograd.Function):
            @staticmethod
            @lib.amp.custom_fwd(device_type="cpu", cast_inputs=lib.bfloat16)
            def forward(ctx, first, inputs):
                seen.append([str(t.dtype).split(".")[1] for t in [first, *inputs["tensors"]]])
                return first.clone()

        tensors = [lib.ones(2, dtype=dt) for dt in (lib.float32, lib.float64, lib.float16)]
        with lib.autocast("cpu", dtype=lib.bfloat16):
            Record.apply(tensors[1], {"tensors": tensors + [lib.ones(2, dtype=lib.int64)]})
    assert seen[0] == seen[1] == ["float64", "bfloat16", "float64", "bfloat16", "int64"]
