"""Gradient clipping and parameter vectors against torch.nn.utils on identical gradients."""

import math

import numpy as np
import pytest
import torch

import gradient
from gradient.errors import AutogradError
from gradient.nn import Parameter
from gradient.nn.utils import (clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_,
                               get_total_norm, parameters_to_vector, vector_to_parameters)

SHAPES = [(3, 4), (5,), (), (2, 3, 2)]


def make(scale=1.0, dtype="float32", with_none=True, seed=0):
    """The same parameters with the same gradients in gradient and torch (one without a grad)."""
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for i, shape in enumerate(SHAPES):
        data = rng.standard_normal(shape).astype(np.float32)
        grad = (rng.standard_normal(shape) * scale).astype(np.float32)
        p = Parameter(gradient.tensor(data, dtype=getattr(gradient, dtype)))
        q = torch.nn.Parameter(torch.tensor(data, dtype=getattr(torch, dtype)))
        if not (with_none and i == 1):
            p.grad = gradient.tensor(grad, dtype=getattr(gradient, dtype))
            q.grad = torch.tensor(grad, dtype=getattr(torch, dtype))
        ours.append(p)
        theirs.append(q)
    return ours, theirs


def grads(params):
    out = []
    for p in params:
        if p.grad is not None:
            g = p.grad
            out.append(g.float().numpy() if isinstance(g, torch.Tensor) else g.float().numpy())
    return out


@pytest.mark.parametrize("norm_type", [2.0, 1, math.inf, 3.0, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    ours, theirs = make(scale=2.0)
    total = clip_grad_norm_(iter(ours), max_norm, norm_type)    # a generator, like model.parameters()
    ttotal = torch.nn.utils.clip_grad_norm_(iter(theirs), max_norm, norm_type)
    assert type(total) is gradient.Tensor and total.ndim == 0 and total.dtype is gradient.float32
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-6)
    for a, b in zip(grads(ours), grads(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    clipped = get_total_norm([p.grad for p in ours if p.grad is not None], norm_type).item()
    if max_norm < total.item():
        assert clipped == pytest.approx(max_norm, rel=1e-5)
    else:
        assert clipped == pytest.approx(total.item(), rel=1e-6)


def test_clip_grad_norm_keeps_grad_identity_and_accepts_a_single_tensor():
    ours, _ = make()
    before = [p.grad for p in ours]
    clip_grad_norm_(ours, 0.1)
    assert all(a is p.grad for a, p in zip(before, ours))
    p = ours[0]
    alone = float(np.sqrt((p.grad.numpy().astype(np.float64) ** 2).sum()))
    total = clip_grad_norm_(p, 0.01)
    assert total.item() == pytest.approx(alone, rel=1e-5)
    assert get_total_norm([p.grad]).item() == pytest.approx(0.01, rel=1e-4)


def test_clip_grad_norm_without_grads_returns_zero_like_torch():
    p = Parameter(gradient.zeros(2))
    assert clip_grad_norm_([p], 1.0).item() == torch.nn.utils.clip_grad_norm_(
        [torch.nn.Parameter(torch.zeros(2))], 1.0).item() == 0.0
    assert clip_grad_norm_([], 1.0).item() == 0.0


def test_non_finite_norm():
    ours, theirs = make()
    ours[0].grad[0, 0] = float("nan")
    theirs[0].grad[0, 0] = float("nan")
    with pytest.raises(AutogradError, match="non-finite"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True)
    total = clip_grad_norm_(ours, 1.0)       # default: scale anyway, like torch
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert math.isnan(total.item()) and math.isnan(ttotal.item())
    for a, b in zip(grads(ours), grads(theirs)):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_clip_grad_norm_other_dtypes_match_torch(dtype):
    ours, theirs = make(scale=3.0, dtype=dtype)
    total = clip_grad_norm_(ours, 1.0)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    assert total.dtype.name == str(ttotal.dtype).removeprefix("torch.")
    tol = {"float16": 2e-3, "bfloat16": 2e-2, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(total.float().item(), ttotal.float().item(), rtol=tol)
    for a, b in zip(grads(ours), grads(theirs)):
        np.testing.assert_allclose(a, b, rtol=2 * tol, atol=tol)
        if dtype != "float64":
            assert a.dtype == np.float32  # (converted for the comparison only)


def test_clip_grads_with_norm_uses_the_given_norm():
    ours, _ = make()
    g0 = ours[0].grad.numpy().copy()
    clip_grads_with_norm_(ours, 1.0, gradient.tensor(4.0))
    np.testing.assert_allclose(ours[0].grad.numpy(), g0 * (1.0 / (4.0 + 1e-6)), rtol=1e-6)


@pytest.mark.parametrize("clip", [0.1, 1.0, 10.0])
def test_clip_grad_value_matches_torch(clip):
    ours, theirs = make(scale=2.0)
    assert clip_grad_value_(ours, clip) is None
    torch.nn.utils.clip_grad_value_(theirs, clip)
    for a, b in zip(grads(ours), grads(theirs)):
        np.testing.assert_array_equal(a, b)
    assert max(np.abs(a).max(initial=0) for a in grads(ours)) <= clip


def test_parameters_to_vector_and_back_match_torch():
    ours, theirs = make()
    vec, tvec = parameters_to_vector(ours), torch.nn.utils.parameters_to_vector(theirs)
    np.testing.assert_array_equal(vec.detach().numpy(), tvec.detach().numpy())
    assert vec.requires_grad                      # differentiable, as in torch
    (vec * vec).sum().backward()
    new = gradient.arange(vec.numel(), dtype=gradient.float32)
    vector_to_parameters(new, ours)
    torch.nn.utils.vector_to_parameters(torch.arange(tvec.numel(), dtype=torch.float32), theirs)
    for p, q in zip(ours, theirs):
        assert type(p) is Parameter and tuple(p.shape) == tuple(q.shape)
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    new[0] = 100.0                                # the parameters are views of the vector, as in torch
    assert ours[0].detach().numpy()[0, 0] == 100.0
    with pytest.raises(TypeError):
        vector_to_parameters([1.0], ours)


def test_reachable_as_nn_utils_like_torch():
    # torch scripts call torch.nn.utils.clip_grad_norm_(...) through the attribute path
    assert gradient.nn.utils.clip_grad_norm_ is clip_grad_norm_


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_raw_array_path_gives_the_bits_of_the_tensor_ops(dtype, monkeypatch):
    """The 2-norm and the scaling of same-dtype gradients run on the raw arrays (no Tensor per
    parameter); they give the bits of the general path, and the scaling still counts as an
    in-place change of each gradient."""
    from gradient.nn.utils import clip_grad
    fast, _ = make(scale=3.0, dtype=dtype)
    slow, _ = make(scale=3.0, dtype=dtype)
    versions = [p.grad._version.value for p in fast if p.grad is not None]
    norm_fast = clip_grad_norm_(fast, 0.5)
    monkeypatch.setattr(clip_grad, "_RAW_DTYPES", ())   # every gradient through tensor ops
    norm_slow = clip_grad_norm_(slow, 0.5)
    assert norm_fast.numpy().tobytes() == norm_slow.numpy().tobytes()
    for a, b in zip(grads(fast), grads(slow)):
        assert a.tobytes() == b.tobytes()
    assert [p.grad._version.value for p in fast if p.grad is not None] == [v + 1 for v in versions]


def test_skip_init_builds_the_module_for_a_checkpoint():
    for lib in (gradient, torch):
        layer = lib.nn.utils.skip_init(lib.nn.Linear, 3, 4, bias=False)
        assert tuple(layer.weight.shape) == (4, 3) and layer.bias is None
        layer.load_state_dict({"weight": lib.ones(4, 3)})
        assert layer(lib.ones(1, 3)).tolist() == [[3.0] * 4]
    with pytest.raises(TypeError, match="device"):
        gradient.nn.utils.skip_init(gradient.nn.ReLU)
