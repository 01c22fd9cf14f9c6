"""gradient.amp.autocast against torch.autocast("cpu", dtype=torch.bfloat16).

Each op of the table runs under both autocasts on the same float32 inputs; the tests compare
the output dtype, the values (within bfloat16 tolerance), and the gradients of the float32
leaves (float32, close to torch's). Then the region mechanics (nesting, decorator, warnings,
the weight cache) and a small MLP trained for a few steps under both.
"""

import threading
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import gradient
import gradient.nn.functional as F
from gradient.autograd import autocast_state
from gradient.errors import DeviceError, DTypeError

BF16_RTOL = 2 ** -7   # one bfloat16 ulp, relative


def pair(*shape, seed=0, dtype="float32", requires_grad=True, scale=1.0):
    data = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)
    return (gradient.tensor(data, requires_grad=requires_grad),
            torch.tensor(data, requires_grad=requires_grad))


def dtype_name(t) -> str:
    return str(t.dtype).replace("torch.", "").replace("gradient.", "")


def as_numpy(t) -> np.ndarray:
    return t.detach().float().numpy()   # the same spelling in both frameworks


def assert_close_bf16(got, want, ulps=2.0):
    """Within a few bfloat16 ulps of the largest magnitude (products accumulate rounding)."""
    got, want = as_numpy(got), as_numpy(want)
    assert got.shape == want.shape
    scale = max(float(np.abs(want).max()), 1e-6) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=ulps * BF16_RTOL, atol=ulps * BF16_RTOL * scale)


# ---------------------------------------------------------------------- the op table
# name: (shapes of the float32 inputs, gradient op, torch op, expected dtype under CPU autocast)
def _conv_t(fn, tfn, d):
    return ([(2, 4) + (5,) * d, (4, 3) + (2,) * d, (3,)], lambda x, w, b: fn(x, w, b, stride=2),
            lambda x, w, b: tfn(x, w, b, stride=2))


OPS = {
    "matmul_2d": ([(3, 4), (4, 5)], gradient.matmul, torch.matmul, "bfloat16"),
    "matmul_broadcast": ([(2, 1, 3, 4), (5, 4, 2)], gradient.matmul, torch.matmul, "bfloat16"),
    "matmul_1d_1d": ([(4,), (4,)], gradient.matmul, torch.matmul, "bfloat16"),
    "matmul_operator": ([(3, 4), (4, 2)], lambda a, b: a @ b, lambda a, b: a @ b, "bfloat16"),
    "mm": ([(3, 4), (4, 5)], gradient.mm, torch.mm, "bfloat16"),
    "bmm": ([(2, 3, 4), (2, 4, 5)], gradient.bmm, torch.bmm, "bfloat16"),
    "addmm": ([(5,), (3, 4), (4, 5)], gradient.addmm, torch.addmm, "bfloat16"),
    "addmm_scaled": ([(3, 5), (3, 4), (4, 5)], lambda i, a, b: gradient.addmm(i, a, b, beta=0.5, alpha=2.0),
                     lambda i, a, b: torch.addmm(i, a, b, beta=0.5, alpha=2.0), "bfloat16"),
    "baddbmm": ([(2, 3, 5), (2, 3, 4), (2, 4, 5)], gradient.baddbmm, torch.baddbmm, "bfloat16"),
    "linear": ([(2, 3, 4), (5, 4), (5,)], F.linear, TF.linear, "bfloat16"),
    "linear_no_bias": ([(3, 4), (5, 4)], F.linear, TF.linear, "bfloat16"),
    "conv1d": ([(2, 4, 9), (3, 4, 3), (3,)], F.conv1d, TF.conv1d, "bfloat16"),
    "conv2d": ([(2, 4, 6, 6), (3, 4, 3, 3), (3,)], lambda x, w, b: F.conv2d(x, w, b, padding=1),
               lambda x, w, b: TF.conv2d(x, w, b, padding=1), "bfloat16"),
    "conv3d": ([(1, 2, 4, 4, 4), (3, 2, 2, 2, 2), (3,)], F.conv3d, TF.conv3d, "bfloat16"),
    "conv_transpose1d": _conv_t(F.conv_transpose1d, TF.conv_transpose1d, 1) + ("bfloat16",),
    "conv_transpose2d": _conv_t(F.conv_transpose2d, TF.conv_transpose2d, 2) + ("bfloat16",),
    "conv_transpose3d": _conv_t(F.conv_transpose3d, TF.conv_transpose3d, 3) + ("bfloat16",),
    "sdpa": ([(2, 2, 5, 8), (2, 2, 6, 8), (2, 2, 6, 8)], F.scaled_dot_product_attention,
             TF.scaled_dot_product_attention, "bfloat16"),
    "sdpa_causal": ([(1, 2, 5, 8)] * 3,
                    lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                    lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True), "bfloat16"),
    "sdpa_float_mask": ([(1, 2, 5, 8), (1, 2, 5, 8), (1, 2, 5, 8), (5, 5)], F.scaled_dot_product_attention,
                        TF.scaled_dot_product_attention, "bfloat16"),
    # composites PyTorch runs through bmm/mm
    "einsum_matmul": ([(3, 4), (4, 5)], lambda a, b: gradient.einsum("ij,jk->ik", a, b),
                      lambda a, b: torch.einsum("ij,jk->ik", a, b), "bfloat16"),
    "einsum_full_contraction": ([(3, 4), (3, 4)], lambda a, b: gradient.einsum("ij,ij->", a, b),
                                lambda a, b: torch.einsum("ij,ij->", a, b), "bfloat16"),
    "einsum_three": ([(3, 4), (4, 5), (5,)], lambda a, b, c: gradient.einsum("ij,jk,k->", a, b, c),
                     lambda a, b, c: torch.einsum("ij,jk,k->", a, b, c), "bfloat16"),
    "tensordot_mm": ([(2, 3, 4), (3, 4, 5)], gradient.tensordot, torch.tensordot, "bfloat16"),
    "tensordot_outer": ([(3,), (4,)], lambda a, b: gradient.tensordot(a, b, dims=0),
                        lambda a, b: torch.tensordot(a, b, dims=0), "bfloat16"),
    # not on the lower-precision list: the input dtype (float32)
    "einsum_elementwise": ([(3, 4), (3, 4)], lambda a, b: gradient.einsum("ij,ij->ij", a, b),
                           lambda a, b: torch.einsum("ij,ij->ij", a, b), "float32"),
    "einsum_outer": ([(3,), (4,)], lambda a, b: gradient.einsum("i,j->ij", a, b),
                     lambda a, b: torch.einsum("i,j->ij", a, b), "float32"),
    "einsum_one_operand": ([(3, 4)], lambda a: gradient.einsum("ij->i", a),
                           lambda a: torch.einsum("ij->i", a), "float32"),
    "tensordot_dot": ([(3, 4), (3, 4)], lambda a, b: gradient.tensordot(a, b, dims=2),
                      lambda a, b: torch.tensordot(a, b, dims=2), "float32"),
    "dot": ([(4,), (4,)], gradient.dot, torch.dot, "float32"),
    "mv": ([(3, 4), (4,)], gradient.mv, torch.mv, "float32"),
    "outer": ([(3,), (4,)], gradient.outer, torch.outer, "float32"),
    "addmv": ([(3,), (3, 4), (4,)], gradient.addmv, torch.addmv, "float32"),
    "softmax": ([(3, 4)], lambda x: F.softmax(x, -1), lambda x: TF.softmax(x, -1), "float32"),
    "layer_norm": ([(3, 4)], lambda x: F.layer_norm(x, (4,)), lambda x: TF.layer_norm(x, (4,)), "float32"),
    "gelu": ([(3, 4)], F.gelu, TF.gelu, "float32"),
    "sum": ([(3, 4)], lambda x: x.sum(), lambda x: x.sum(), "float32"),
    "mul": ([(3, 4), (3, 4)], lambda a, b: a * b, lambda a, b: a * b, "float32"),
}


@pytest.mark.parametrize("name", list(OPS))
def test_op_under_autocast_matches_torch(name):
    shapes, fn, tfn, expected = OPS[name]
    pairs = [pair(*s, seed=i) for i, s in enumerate(shapes)]
    gs, ts = [p[0] for p in pairs], [p[1] for p in pairs]
    with gradient.amp.autocast("cpu", dtype=gradient.bfloat16):
        out = fn(*gs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want = tfn(*ts)
    assert dtype_name(want) == expected  # the table states PyTorch's behaviour
    assert dtype_name(out) == expected
    assert_close_bf16(out, want, ulps=4)

    # backward outside the region (the usual place): grads of float32 leaves are float32
    w = np.random.default_rng(9).standard_normal(tuple(want.shape)).astype("float32")
    (out.float() * gradient.tensor(w)).sum().backward()
    (want.float() * torch.tensor(w)).sum().backward()
    for g, t in zip(gs, ts):
        assert g.grad is not None and dtype_name(g.grad) == "float32"
        assert_close_bf16(g.grad, t.grad, ulps=8)


def test_lower_precision_op_mixes_bf16_activations_with_float32_weights():
    # the common case: the output of one autocast op (bf16) feeds the next with float32 weights
    (x, tx), (w1, tw1), (w2, tw2) = pair(4, 6), pair(8, 6, seed=1), pair(3, 8, seed=2)
    with gradient.amp.autocast("cpu"):
        h = F.linear(x, w1)
        y = h @ w2.T
        z = h + x.sum()           # outside the list: bf16 + float32 0-d promotes like PyTorch
    with torch.autocast("cpu"):
        th = TF.linear(tx, tw1)
        ty = th @ tw2.T
        tz = th + tx.sum()
    assert dtype_name(y) == dtype_name(ty) == "bfloat16"
    assert dtype_name(z) == dtype_name(tz)
    assert_close_bf16(y, ty, ulps=4)


def test_float16_autocast():
    (a, ta), (b, tb) = pair(3, 4), pair(4, 5, seed=1)
    with gradient.amp.autocast("cpu", dtype=gradient.float16):
        out = a @ b
        assert gradient.amp.get_autocast_dtype("cpu") is gradient.float16
    with torch.autocast("cpu", dtype=torch.float16):
        want = ta @ tb
    assert dtype_name(out) == dtype_name(want) == "float16"
    np.testing.assert_allclose(as_numpy(out), as_numpy(want), rtol=2e-3, atol=2e-3)


def test_float64_is_not_cast():
    (a, ta), (b, tb) = pair(3, 4, dtype="float64"), pair(4, 5, dtype="float64")
    with gradient.amp.autocast("cpu"):
        assert (a @ b).dtype is gradient.float64
        with pytest.raises(DTypeError):   # float64 @ (float32 -> bf16): torch refuses it too
            a @ b.float()
    with torch.autocast("cpu"):
        assert (ta @ tb).dtype is torch.float64
        with pytest.raises(RuntimeError):
            ta @ tb.float()


def test_integer_and_none_arguments_pass_through():
    with gradient.amp.autocast("cpu"):
        out = gradient.arange(6).reshape(2, 3) @ gradient.arange(3)
        assert out.dtype is gradient.int64
        assert autocast_state.to_lower_precision(None, 3, "x") == (None, 3, "x")


# ---------------------------------------------------------------------- region mechanics
def test_state_is_restored_and_nested_regions_override():
    assert not gradient.amp.is_autocast_enabled()
    a, b = gradient.randn(2, 2), gradient.randn(2, 2)
    with gradient.amp.autocast("cpu"):
        assert gradient.amp.is_autocast_enabled() and gradient.amp.is_autocast_enabled("cpu")
        assert not gradient.amp.is_autocast_enabled("cuda")
        with gradient.amp.autocast("cpu", enabled=False):
            assert not gradient.amp.is_autocast_enabled("cpu")
            assert (a @ b).dtype is gradient.float32
            with gradient.amp.autocast("cpu", dtype=gradient.float16):
                assert (a @ b).dtype is gradient.float16
            assert (a @ b).dtype is gradient.float32
        assert (a @ b).dtype is gradient.bfloat16
        assert gradient.amp.get_autocast_dtype("cpu") is gradient.bfloat16
    assert not gradient.amp.is_autocast_enabled("cpu")
    assert (a @ b).dtype is gradient.float32
    assert gradient.amp.get_autocast_dtype("cpu") is gradient.bfloat16
    assert gradient.amp.get_autocast_dtype("cuda") is gradient.float16


def test_state_is_restored_when_the_body_raises():
    with pytest.raises(KeyError):
        with gradient.amp.autocast("cpu"):
            raise KeyError("boom")
    assert not gradient.amp.is_autocast_enabled()
    assert not autocast_state._per_thread().cache and autocast_state._per_thread().nesting == 0


def test_decorator_and_recursion():
    a = gradient.randn(2, 2)

    @gradient.amp.autocast("cpu")
    def f(depth):
        assert gradient.amp.is_autocast_enabled("cpu")
        return (a @ a).dtype if depth == 0 else f(depth - 1)

    assert f(3) is gradient.bfloat16
    assert not gradient.amp.is_autocast_enabled()
    with pytest.raises(TypeError, match="requires a callable"):
        gradient.amp.autocast("cpu")(3)


def test_state_is_thread_local():
    seen = []
    with gradient.amp.autocast("cpu"):
        t = threading.Thread(target=lambda: seen.append(gradient.amp.is_autocast_enabled("cpu")))
        t.start()
        t.join()
    assert seen == [False]


def test_unavailable_device_warns_and_disables_like_torch():
    with pytest.warns(UserWarning, match="Disabling autocast"):
        region = gradient.amp.autocast("cuda")
    with region:
        assert not gradient.amp.is_autocast_enabled("cuda")
    with pytest.warns(UserWarning, match="Disabling autocast"):   # torch does the same here
        torch.autocast("cuda")


def test_unsupported_dtype_warns_and_disables_like_torch():
    a = gradient.randn(2, 2)
    with pytest.warns(UserWarning, match="target dtype .* not supported"):
        with gradient.amp.autocast("cpu", dtype=gradient.float32):
            assert not gradient.amp.is_autocast_enabled("cpu")
            assert (a @ a).dtype is gradient.float32
    with pytest.warns(UserWarning, match="target dtype is not supported"):
        torch.autocast("cpu", dtype=torch.float32)


def test_bad_device_types_are_errors():
    with pytest.raises(ValueError, match="of type `str`"):
        gradient.amp.autocast(gradient.device("cpu"))
    with pytest.raises(DeviceError, match="unsupported device_type 'gpu'"):
        gradient.amp.autocast("gpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradient.amp.autocast("cuda", enabled=False)   # disabled: no warning, as in torch


# ---------------------------------------------------------------------- the weight cache
def _cache():
    return autocast_state._per_thread().cache


def test_parameters_are_cast_once_per_region_and_gradients_add_up():
    (x, tx), (w, tw) = pair(3, 4), pair(4, 4, seed=1)
    with gradient.amp.autocast("cpu"):
        h = x @ w
        assert set(_cache()) == {id(x), id(w)}      # both are float32 leaves that require grad
        w_cast = _cache()[id(w)][-1]
        assert w_cast.dtype is gradient.bfloat16 and w_cast.grad_fn is not None
        y = h @ w
        assert len(_cache()) == 2 and _cache()[id(w)][-1] is w_cast   # reused, not cast again
    assert not _cache()   # dropped with the outermost region
    with torch.autocast("cpu"):
        ty = (tx @ tw) @ tw
    assert_close_bf16(y, ty, ulps=4)
    y.float().sum().backward()
    ty.float().sum().backward()
    assert w.grad.dtype is gradient.float32
    assert_close_bf16(w.grad, tw.grad, ulps=8)


def test_cache_disabled_and_not_used_for_non_leaves():
    x, w = gradient.randn(3, 4, requires_grad=True), gradient.randn(4, 4, requires_grad=True)
    with gradient.amp.autocast("cpu", cache_enabled=False):
        x @ w
        assert not _cache()
    with gradient.amp.autocast("cpu"):
        (x * 2) @ (w * 1)    # non-leaves are cast every time
        assert len(_cache()) == 0
        gradient.randn(3, 4) @ gradient.randn(4, 4)   # no requires_grad: not cached either
        assert len(_cache()) == 0


def test_cache_sees_in_place_updates_and_grad_mode():
    w = gradient.ones(2, 2, requires_grad=True)
    x = gradient.ones(1, 2)
    with gradient.amp.autocast("cpu"):
        with gradient.no_grad():
            first = x @ w
            w.mul_(3)               # an update inside the region must not serve the stale cast
            second = x @ w
        assert first.tolist() == [[2.0, 2.0]] and second.tolist() == [[6.0, 6.0]]
        y = x @ w                   # with grad on: not the graph-less cast made under no_grad
        assert y.requires_grad
    y.float().sum().backward()
    assert w.grad.tolist() == [[1.0, 1.0], [1.0, 1.0]]


# ---------------------------------------------------------------------- a small network
def test_mlp_training_under_autocast_tracks_torch():
    rng = np.random.default_rng(0)
    shapes = {"w1": (32, 10), "b1": (32,), "w2": (16, 32), "b2": (16,), "w3": (3, 16), "b3": (3,)}
    init = {k: (rng.standard_normal(s) / np.sqrt(s[-1])).astype("float32") for k, s in shapes.items()}
    x = rng.standard_normal((64, 10)).astype("float32")
    y = rng.integers(0, 3, 64)
    gp = {k: gradient.tensor(v, requires_grad=True) for k, v in init.items()}
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}

    def forward(F_, p, x_, y_):
        h = F_.gelu(F_.linear(x_, p["w1"], p["b1"]))
        h = F_.relu(F_.linear(h, p["w2"], p["b2"]))
        return F_.cross_entropy(F_.linear(h, p["w3"], p["b3"]).float(), y_)

    losses, tlosses = [], []
    for step in range(5):
        with gradient.amp.autocast("cpu", dtype=gradient.bfloat16):
            loss = forward(F, gp, gradient.tensor(x), gradient.tensor(y))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            tloss = forward(TF, tp, torch.tensor(x), torch.tensor(y))
        assert loss.dtype is gradient.float32 and tloss.dtype is torch.float32
        loss.backward()
        tloss.backward()
        for k in gp:
            assert gp[k].grad.dtype is gradient.float32, k
            assert_close_bf16(gp[k].grad, tp[k].grad, ulps=8)
        with gradient.no_grad():
            for p in gp.values():
                p -= 0.5 * p.grad
                p.grad = None
        with torch.no_grad():
            for p in tp.values():
                p -= 0.5 * p.grad
                p.grad = None
        losses.append(loss.item())
        tlosses.append(tloss.item())
    np.testing.assert_allclose(losses, tlosses, rtol=2 * BF16_RTOL)
    assert losses[-1] < losses[0]


def test_low_precision_linear_adds_the_bias_before_rounding_like_torch():
    # found by the MLP test: F.linear on bfloat16 must round x @ w.T + b once, as torch's does
    (x, tx), (w, tw), (b, tb) = pair(64, 10), pair(32, 10, seed=1), pair(32, seed=2)
    out = F.linear(x.bfloat16(), w.bfloat16(), b.bfloat16())
    want = TF.linear(tx.bfloat16(), tw.bfloat16(), tb.bfloat16())
    np.testing.assert_array_equal(as_numpy(out), as_numpy(want))


# ---------------------------------------------------------------------- the float32 list
def test_to_float32_hook_casts_up_and_gradients_flow_back():
    x = gradient.randn(3, requires_grad=True)
    xb = x.bfloat16()
    assert autocast_state.to_float32(xb) == (xb,)           # outside autocast: untouched
    with gradient.amp.autocast("cpu"):
        (up, idx, none) = autocast_state.to_float32(xb, gradient.arange(3), None)
    assert up.dtype is gradient.float32 and idx.dtype is gradient.int64 and none is None
    up.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


LOSSES = {
    "cross_entropy": (lambda F_, x, t: F_.cross_entropy(x, t), "index"),
    "nll_loss": (lambda F_, x, t: F_.nll_loss(F_.log_softmax(x, 1), t), "index"),
    "mse_loss": (lambda F_, x, t: F_.mse_loss(x, t), "float"),
    "l1_loss": (lambda F_, x, t: F_.l1_loss(x, t), "float"),
    "smooth_l1_loss": (lambda F_, x, t: F_.smooth_l1_loss(x, t), "float"),
    "huber_loss": (lambda F_, x, t: F_.huber_loss(x, t), "float"),
    "binary_cross_entropy_with_logits": (lambda F_, x, t: F_.binary_cross_entropy_with_logits(x, t), "prob"),
    "binary_cross_entropy": (lambda F_, x, t: F_.binary_cross_entropy(F_.sigmoid(x), t), "prob"),
    "kl_div": (lambda F_, x, t: F_.kl_div(F_.log_softmax(x, 1), t, reduction="batchmean"), "prob"),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_losses_run_in_float32_like_torch(name):
    fn, kind = LOSSES[name]
    (x, tx), (w, tw) = pair(6, 5), pair(4, 5, seed=1)
    rng = np.random.default_rng(2)
    t = {"index": rng.integers(0, 4, 6), "float": rng.standard_normal((6, 4)).astype("float32"),
         "prob": rng.uniform(0.1, 0.9, (6, 4)).astype("float32")}[kind]
    gt, tt = gradient.tensor(t), torch.tensor(t)
    if kind != "index":   # bfloat16 targets too, so that promotion alone cannot give float32
        gt, tt = gt.bfloat16(), tt.bfloat16()
    with gradient.amp.autocast("cpu"):
        loss = fn(F, F.linear(x, w), gt)     # bf16 logits into the loss
    with torch.autocast("cpu"):
        tloss = fn(TF, TF.linear(tx, tw), tt)
    assert tloss.dtype is torch.float32
    np.testing.assert_allclose(loss.float().item(), tloss.item(), rtol=2 * BF16_RTOL)
    loss.float().backward()
    tloss.backward()
    assert_close_bf16(w.grad, tw.grad, ulps=8)
    assert loss.dtype is gradient.float32
