"""add and sub with alpha, addcmul, addcdiv and lerp give PyTorch's bits: its CPU kernels
compute them with one fused multiply-add (gradient.backends.cpu_fma), in float32 for the
16-bit floats, and so do these."""

from __future__ import annotations

import numpy as np
import pytest

import gradient

from ..backends.kernel_spy import without_kernels

torch = pytest.importorskip("torch")

# a multiple of PyTorch's vector width and below its parallel grain: its 16-bit loops compute
# the elements past the last whole vector in 16-bit arithmetic of their own (two roundings)
N = 4096
DTYPES = ["float32", "float64", "bfloat16", "float16"]
CASES = {
    "add alpha": lambda m, x, y, z, w: m.add(x, y, alpha=3.0),
    "add alpha 1/3": lambda m, x, y, z, w: m.add(x, y, alpha=1 / 3),
    "sub alpha": lambda m, x, y, z, w: m.sub(x, y, alpha=0.1),
    "add_ alpha": lambda m, x, y, z, w: x.clone().add_(y, alpha=-2.5),
    "addcmul": lambda m, x, y, z, w: m.addcmul(x, y, z, value=0.37),
    "addcmul value 1": lambda m, x, y, z, w: m.addcmul(x, y, z),
    "addcmul_": lambda m, x, y, z, w: x.clone().addcmul_(y, z, value=-0.9),
    "addcdiv": lambda m, x, y, z, w: m.addcdiv(x, y, z.abs() + 0.5, value=-0.01),
    "addcdiv_": lambda m, x, y, z, w: x.clone().addcdiv_(y, z.abs() + 0.5, value=0.3),
    "lerp small weight": lambda m, x, y, z, w: m.lerp(x, y, 0.3),
    "lerp large weight": lambda m, x, y, z, w: m.lerp(x, y, 0.9),
    "lerp negative weight": lambda m, x, y, z, w: m.lerp(x, y, -0.7),
    "lerp_ tensor weight": lambda m, x, y, z, w: x.clone().lerp_(y, w),
}


def _operands(module, dtype):
    rng = np.random.default_rng(0)
    values = [rng.standard_normal(N) for _ in range(3)] + [rng.uniform(-0.2, 1.2, N)]
    return [module.tensor(v).to(getattr(module, dtype)) for v in values]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CASES))
def test_bits_as_torch(case, dtype):
    ours = CASES[case](gradient, *_operands(gradient, dtype))
    theirs = CASES[case](torch, *_operands(torch, dtype))
    assert ours.dtype is getattr(gradient, dtype)
    view = {"float64": (gradient.int64, torch.int64), "float32": (gradient.int32, torch.int32)}
    ours_bits, theirs_bits = view.get(dtype, (gradient.int16, torch.int16))
    assert np.array_equal(ours.view(ours_bits).numpy(), theirs.view(theirs_bits).numpy())


def test_one_rounding_is_not_two():
    """The case the fused step decides: a float32 SGD step, p - lr * g, in one rounding (two
    roundings, NumPy's p + (-lr * g), differ in the last bit for one value in twelve here)."""
    rng = np.random.default_rng(1)
    p, g = (rng.standard_normal(N).astype(np.float32) for _ in range(2))
    ours = gradient.tensor(p).add_(gradient.tensor(g), alpha=-0.1).numpy()
    assert np.array_equal(ours, torch.tensor(p).add_(torch.tensor(g), alpha=-0.1).numpy())
    assert (ours != p + np.float32(-0.1) * g).mean() > 0.05


@pytest.mark.parametrize("case", ["addcmul", "addcdiv", "lerp small weight", "lerp_ tensor weight",
                                  "add alpha"])
def test_gradients_match_torch(case):
    def grads(module):
        leaves = [t.requires_grad_() for t in _operands(module, "float64")]
        out = CASES[case](module, *leaves)
        out.backward(module.tensor(np.linspace(-1, 1, N)))
        return [leaf.grad for leaf in leaves]

    for ours, theirs in zip(grads(gradient), grads(torch)):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("case", ["addcmul", "addcdiv", "lerp small weight", "lerp large weight",
                                  "lerp_ tensor weight", "sub alpha"])
def test_gradcheck(case):
    leaves = [t[:5].clone().requires_grad_() for t in _operands(gradient, "float64")]
    if case == "lerp_ tensor weight":      # (lerp_ writes into a clone: the leaves stay leaves)
        def f(x, y, z, w):
            return x.lerp(y, w)
    else:
        def f(x, y, z, w):
            return CASES[case](gradient, x, y, z, w)
    assert gradient.autograd.gradcheck(f, leaves)
    assert gradient.autograd.gradgradcheck(f, leaves)


@pytest.mark.parametrize("dtype", DTYPES)
def test_without_the_kernel_the_same_formulas_round_twice(monkeypatch, dtype):
    """A backend without the fma kernel (nor the lerp kernel built on it) computes the product
    and the sum in the computing type (float64 for float64, float32 otherwise), each rounded
    there, and the result in the tensors' dtype: its binary ops are given operands of one
    dtype."""
    x, y, z, w = _operands(gradient, dtype)
    without_kernels(monkeypatch, keep=lambda name: name not in ("fma", "lerp"))
    wide = np.float64 if dtype == "float64" else np.float32
    xs, ys, zs = (t.to(gradient.float64).numpy().astype(wide) for t in (x, y, z))
    alpha = wide(gradient.tensor(3.0).to(x.dtype).item())      # (alpha in the dtype first)
    for ours, expected in ((x.add(y, alpha=3.0), xs + alpha * ys),
                           (gradient.addcmul(x, y, z, value=0.37), xs + (wide(0.37) * ys) * zs),
                           (gradient.lerp(x, y, 0.3), xs + wide(0.3) * (ys - xs))):
        assert ours.dtype is x.dtype
        theirs = gradient.tensor(expected).to(x.dtype)
        assert np.array_equal(ours.to(gradient.float64).numpy(), theirs.to(gradient.float64).numpy())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_an_alpha_the_dtype_cannot_hold_is_refused_as_torch(dtype):
    x = gradient.ones(3, dtype=getattr(gradient, dtype))
    with pytest.raises(OverflowError, match="does not fit"):
        x.add(x, alpha=1e300)
    with pytest.raises(OverflowError, match="does not fit"):
        x.sub(x, alpha=-1e300)
    t = torch.ones(3, dtype=getattr(torch, dtype))
    with pytest.raises(RuntimeError, match="overflow"):
        t.add(t, alpha=1e300)
