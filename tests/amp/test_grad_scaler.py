"""gradient.amp.GradScaler against torch.amp.GradScaler("cpu"): the same gradients (with
injected inf and nan) give the same scales, the same skipped steps and the same parameters.
Then the misuse errors, disabled scalers, state dicts and the float32-master-weights helper.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import gradient
import gradient.nn.functional as F
from gradient.amp import GradScaler, GradScalerError, MasterWeights


class SGD:
    """The smallest optimizer with PyTorch's interface (gradient.optim is written elsewhere)."""

    def __init__(self, params, lr):
        groups = params if isinstance(params[0], dict) else [{"params": list(params)}]
        self.param_groups = [dict(g, lr=g.get("lr", lr)) for g in groups]
        self.steps = 0

    def step(self, scale_lr=1.0):
        self.steps += 1
        with gradient.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p -= group["lr"] * scale_lr * p.grad
        return "stepped"


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    data = [rng.standard_normal(s).astype("float32") for s in ((4,), (2, 3), (3,))]
    return ([gradient.tensor(d, requires_grad=True) for d in data],
            [torch.tensor(d, requires_grad=True) for d in data])


def coefficients(step, rng):
    """The per-step data; some steps hold inf or nan so the scaled gradients overflow."""
    c = [rng.standard_normal(s).astype("float32") for s in ((4,), (2, 3))]
    if step in (3, 4, 11, 20):
        c[0][1] = np.inf
    if step in (7, 21):
        c[1][0, 2] = np.nan
    if step == 15:
        c[0][0] = 3e38   # finite, but scale * 3e38 overflows float32
    return c


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the injected overflows
@pytest.mark.parametrize("growth_interval,backoff,growth", [(3, 0.5, 2.0), (2, 0.25, 3.0)])
def test_scale_and_skipped_steps_match_torch(growth_interval, backoff, growth):
    gp, tp = make_params()
    opt = SGD([{"params": gp[:2]}, {"params": gp[2:], "lr": 0.01}], lr=0.1)
    topt = torch.optim.SGD([{"params": tp[:2]}, {"params": tp[2:], "lr": 0.01}], lr=0.1)
    kw = dict(init_scale=2.0 ** 10, growth_factor=growth, backoff_factor=backoff,
              growth_interval=growth_interval)
    scaler, tscaler = GradScaler("cpu", **kw), torch.amp.GradScaler("cpu", **kw)
    rng = np.random.default_rng(1)
    skipped, tskipped, scales = [], [], []
    for step in range(30):
        c = coefficients(step, rng)
        # the third param gets no gradient (its .grad stays None after the first zeroing)
        loss = (gp[0] * gradient.tensor(c[0])).sum() + (gp[1] * gradient.tensor(c[1])).sum()
        tloss = (tp[0] * torch.tensor(c[0])).sum() + (tp[1] * torch.tensor(c[1])).sum()
        scaler.scale(loss).backward()
        tscaler.scale(tloss).backward()
        before = opt.steps
        ret = scaler.step(opt)
        tscaler.step(topt)
        skipped.append(opt.steps == before)
        assert ret == (None if skipped[-1] else "stepped")
        tskipped.append(not all(torch.isfinite(p.grad).all() for p in tp[:2]))
        scaler.update()
        tscaler.update()
        scales.append(scaler.get_scale())
        assert scaler.get_scale() == tscaler.get_scale(), step
        assert scaler.state_dict() == tscaler.state_dict(), step
        for p, tpar in zip(gp, tp):
            np.testing.assert_allclose(p.detach().numpy(), tpar.detach().numpy(), rtol=1e-6, atol=1e-7)
        for p in gp:
            p.grad = None
        topt.zero_grad()
    assert skipped == tskipped
    assert sum(skipped) == 7                      # the injected overflows, and nothing else
    assert max(scales) > 2.0 ** 10 > min(scales)  # the scale both grew and backed off


def test_unscale_then_clip_sees_true_gradients():
    gp, tp = make_params()
    opt, topt = SGD(gp, lr=0.1), torch.optim.SGD(tp, lr=0.1)
    scaler, tscaler = GradScaler("cpu", init_scale=1000.0), torch.amp.GradScaler("cpu", init_scale=1000.0)
    w = np.arange(1, 5, dtype="float32") / 3
    scaler.scale((gp[0] * gradient.tensor(w)).sum() + gp[1].sum()).backward()
    tscaler.scale((tp[0] * torch.tensor(w)).sum() + tp[1].sum()).backward()
    scaler.unscale_(opt)
    tscaler.unscale_(topt)
    for p, tpar in zip(gp[:2], tp[:2]):
        np.testing.assert_array_equal(p.grad.numpy(), tpar.grad.numpy())   # bit for bit
    np.testing.assert_allclose(gp[0].grad.numpy(), w, rtol=1e-6)
    with pytest.raises(GradScalerError, match="already been called"):
        scaler.unscale_(opt)
    scaler.step(opt)   # does not unscale again: the step uses the true gradients
    tscaler.step(topt)
    np.testing.assert_allclose(gp[0].detach().numpy(), tp[0].detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(gp[0].detach().numpy(), make_params()[0][0].detach().numpy() - 0.1 * w,
                               rtol=1e-6)


def test_bfloat16_gradients_are_unscaled_in_float32_like_torch():
    data = np.random.default_rng(3).standard_normal(64).astype("float32")
    g = gradient.tensor(data).bfloat16().requires_grad_()
    t = torch.tensor(data).bfloat16().requires_grad_()
    scaler, tscaler = GradScaler("cpu", init_scale=3.0), torch.amp.GradScaler("cpu", init_scale=3.0)
    scaler.scale((g * g).sum()).backward()
    tscaler.scale((t * t).sum()).backward()
    assert g.grad.dtype is gradient.bfloat16
    scaler.unscale_(SGD([g], lr=1.0))
    tscaler.unscale_(torch.optim.SGD([t], lr=1.0))
    np.testing.assert_array_equal(g.grad.float().numpy(), t.grad.float().numpy())


def test_scale_keeps_the_structure_of_outputs():
    scaler = GradScaler("cpu", init_scale=4.0)
    a, b, c = gradient.tensor([1.0]), gradient.tensor([2.0]), gradient.tensor(3.0)
    out = scaler.scale([a, (b, [c])])
    assert isinstance(out, list) and isinstance(out[1], tuple) and isinstance(out[1][1], list)
    assert out[0].tolist() == [4.0] and out[1][0].tolist() == [8.0] and out[1][1][0].item() == 12.0
    lazy = scaler.scale(iter([a]))              # other iterables come back as iterators, as in torch
    assert [t.tolist() for t in lazy] == [[4.0]]
    with pytest.raises(ValueError, match="Tensor or an iterable of Tensors"):
        scaler.scale(3.0)


def test_scaled_low_precision_loss_promotes_like_torch():
    for gd, td in ((gradient.bfloat16, torch.bfloat16), (gradient.float16, torch.float16)):
        scaled = GradScaler("cpu").scale(gradient.tensor(1.5, dtype=gd))
        tscaled = torch.amp.GradScaler("cpu").scale(torch.tensor(1.5, dtype=td))
        assert str(scaled.dtype).split(".")[-1] == str(tscaled.dtype).split(".")[-1] == "float32"
        # a vector keeps its dtype; 0.75 * 2**16 fits in float16 (2**16 itself does not)
        vec = GradScaler("cpu").scale(gradient.tensor([0.75, 0.5], dtype=gd, requires_grad=True))
        tvec = torch.amp.GradScaler("cpu").scale(torch.tensor([0.75, 0.5], dtype=td, requires_grad=True))
        assert vec.dtype is gd and tvec.dtype is td
        assert vec.float().tolist() == tvec.float().tolist() == [49152.0, 32768.0]


def test_misuse_errors():
    p = gradient.tensor([1.0, 2.0], requires_grad=True)
    opt = SGD([p], lr=0.1)
    scaler = GradScaler("cpu")
    with pytest.raises(GradScalerError, match="did not use scaler.scale"):
        scaler.step(opt)
    with pytest.raises(GradScalerError, match="did not use scaler.scale"):
        scaler.unscale_(opt)
    loss = scaler.scale(p.sum())
    with pytest.raises(GradScalerError, match="No inf checks"):   # no grads yet
        scaler.step(opt)
    scaler = GradScaler("cpu")
    scaler.scale(p.sum()).backward()
    with pytest.raises(GradScalerError, match="Closure"):
        scaler.step(opt, closure=lambda: loss)
    with pytest.raises(GradScalerError, match="No inf checks were recorded prior to update"):
        scaler.update()
    scaler.step(opt)
    with pytest.raises(GradScalerError, match="step\\(\\) has already been called"):
        scaler.step(opt)
    with pytest.raises(GradScalerError, match="after step"):
        scaler.unscale_(opt)
    scaler.update()
    half = gradient.tensor([1.0], dtype=gradient.float16, requires_grad=True)
    (half * 2).sum().backward()
    with pytest.raises(ValueError, match="FP16 gradients"):
        scaler.unscale_(SGD([half], lr=0.1))
    with pytest.raises(ValueError, match="growth factor"):
        GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(ValueError, match="backoff factor"):
        GradScaler("cpu", backoff_factor=1.0)


def test_disabled_scaler_is_transparent():
    p = gradient.tensor([1.0], requires_grad=True)
    opt = SGD([p], lr=1.0)
    scaler = GradScaler("cpu", enabled=False)
    loss = (p * 3).sum()
    assert scaler.scale(loss) is loss
    loss.backward()
    scaler.unscale_(opt)
    assert scaler.step(opt, 2.0) == "stepped" and p.item() == -5.0     # args go to optimizer.step
    scaler.update()
    assert not scaler.is_enabled() and scaler.get_scale() == 1.0 and scaler.state_dict() == {}
    scaler.load_state_dict({})                                         # a no-op when disabled


def test_cuda_without_a_gpu_warns_and_disables_like_torch():
    with pytest.warns(UserWarning, match="Disabling"):
        scaler = GradScaler()          # PyTorch's default device is "cuda"
    assert not scaler.is_enabled()
    with pytest.warns(UserWarning, match="Disabling"):
        assert not torch.amp.GradScaler().is_enabled()


def test_state_dict_round_trip_and_manual_scale():
    scaler = GradScaler("cpu", init_scale=8.0, growth_interval=5)
    assert scaler.get_scale() == 8.0 and scaler.state_dict() == torch.amp.GradScaler(
        "cpu", init_scale=8.0, growth_interval=5).state_dict()
    p = gradient.tensor([1.0], requires_grad=True)
    opt = SGD([p], lr=0.1)
    for _ in range(2):
        scaler.scale(p.sum()).backward()
        scaler.step(opt)
        scaler.update()
        p.grad = None
    state = scaler.state_dict()
    assert state == {"scale": 8.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 5,
                     "_growth_tracker": 2}
    fresh = GradScaler("cpu")
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    with pytest.raises(GradScalerError, match="state dict is empty"):
        fresh.load_state_dict({})
    scaler.update(new_scale=3.0)
    assert scaler.get_scale() == 3.0
    scaler.update(new_scale=gradient.tensor(5.0))
    assert scaler.get_scale() == 5.0
    with pytest.raises(GradScalerError, match="1-element"):
        scaler.update(new_scale=gradient.tensor([1.0, 2.0]))


def test_growth_stops_before_float32_overflow_like_torch():
    kw = dict(init_scale=2.0 ** 127, growth_interval=1)
    scaler, tscaler = GradScaler("cpu", **kw), torch.amp.GradScaler("cpu", **kw)
    p, tp = gradient.tensor([0.0], requires_grad=True), torch.tensor([0.0], requires_grad=True)
    for _ in range(2):
        scaler.scale(p.sum()).backward()
        tscaler.scale(tp.sum()).backward()
        scaler.step(SGD([p], lr=0.1))
        tscaler.step(torch.optim.SGD([tp], lr=0.1))
        scaler.update()
        tscaler.update()
        assert scaler.get_scale() == tscaler.get_scale() == 2.0 ** 127
        assert math.isfinite(scaler.get_scale())


def test_with_gradient_optim_sgd_when_available():
    SGDClass = getattr(gradient.optim, "SGD", None)
    if SGDClass is None:
        pytest.skip("gradient.optim.SGD is not written yet")
    gp, tp = make_params()
    opt, topt = SGDClass(gp[:2], lr=0.1, momentum=0.9), torch.optim.SGD(tp[:2], lr=0.1, momentum=0.9)
    scaler, tscaler = GradScaler("cpu", growth_interval=2), torch.amp.GradScaler("cpu", growth_interval=2)
    rng = np.random.default_rng(1)
    for step in range(12):
        c = coefficients(step, rng)
        loss = (gp[0] * gradient.tensor(c[0])).sum() + (gp[1] * gradient.tensor(c[1])).sum()
        tloss = (tp[0] * torch.tensor(c[0])).sum() + (tp[1] * torch.tensor(c[1])).sum()
        opt.zero_grad()
        topt.zero_grad()
        scaler.scale(loss).backward()
        tscaler.scale(tloss).backward()
        scaler.step(opt)
        tscaler.step(topt)
        scaler.update()
        tscaler.update()
        assert scaler.get_scale() == tscaler.get_scale()
        for p, tpar in zip(gp[:2], tp[:2]):
            np.testing.assert_allclose(p.detach().numpy(), tpar.detach().numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- float32 master weights
def test_master_weights_train_a_bfloat16_model_like_torch():
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 5)).astype("float32")
    x = rng.standard_normal((16, 5)).astype("float32")
    y = rng.standard_normal((16, 3)).astype("float32")
    w = gradient.tensor(w0).bfloat16().requires_grad_()
    master = MasterWeights([w])
    assert master.params[0].dtype is gradient.float32 and master.params[0].is_leaf
    opt = SGD(master.params, lr=1e-3)
    tw = torch.tensor(w0).bfloat16().requires_grad_()
    tmaster = tw.detach().float().requires_grad_()
    for _ in range(20):
        loss = ((gradient.tensor(x).bfloat16() @ w.T).float() - gradient.tensor(y)).pow(2).mean()
        loss.backward()
        master.grads_to_master()
        assert w.grad is None and master.params[0].grad.dtype is gradient.float32
        opt.step()
        master.master_to_model()
        tloss = ((torch.tensor(x).bfloat16() @ tw.T).float() - torch.tensor(y)).pow(2).mean()
        tloss.backward()
        with torch.no_grad():
            tmaster -= 1e-3 * tw.grad.float()
            tw.copy_(tmaster)
            tw.grad = None
        np.testing.assert_allclose(master.params[0].detach().numpy(), tmaster.detach().numpy(), rtol=1e-5)
        np.testing.assert_array_equal(w.detach().float().numpy(), tw.detach().float().numpy())
    # updating the bfloat16 weights directly would have lost most of these small steps
    assert not np.array_equal(master.params[0].detach().numpy(), w.detach().float().numpy())


# ---------------------------------------------------------------------- with autocast
def test_float16_autocast_training_loop_matches_torch():
    rng = np.random.default_rng(0)
    shapes = {"w1": (16, 10), "b1": (16,), "w2": (3, 16), "b2": (3,)}
    init = {k: (rng.standard_normal(s) / np.sqrt(s[-1])).astype("float32") for k, s in shapes.items()}
    x, y = rng.standard_normal((32, 10)).astype("float32"), rng.integers(0, 3, 32)
    gp = {k: gradient.tensor(v, requires_grad=True) for k, v in init.items()}
    tp = {k: torch.tensor(v, requires_grad=True) for k, v in init.items()}
    opt, topt = SGD(list(gp.values()), lr=0.5), torch.optim.SGD(list(tp.values()), lr=0.5)
    scaler, tscaler = GradScaler("cpu", growth_interval=3), torch.amp.GradScaler("cpu", growth_interval=3)
    for step in range(8):
        with gradient.amp.autocast("cpu", dtype=gradient.float16):
            h = F.relu(F.linear(gradient.tensor(x), gp["w1"], gp["b1"]))
            # .float(): gradient's losses are not on autocast's float32 list yet (see autocast_mode)
            loss = F.cross_entropy(F.linear(h, gp["w2"], gp["b2"]).float(), gradient.tensor(y))
        with torch.autocast("cpu", dtype=torch.float16):
            th = TF.relu(TF.linear(torch.tensor(x), tp["w1"], tp["b1"]))
            tloss = TF.cross_entropy(TF.linear(th, tp["w2"], tp["b2"]), torch.tensor(y))
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=2e-3)
        scaler.scale(loss).backward()
        tscaler.scale(tloss).backward()
        for k in gp:
            assert gp[k].grad.dtype is gradient.float32
        scaler.step(opt)
        tscaler.step(topt)
        scaler.update()
        tscaler.update()
        assert scaler.get_scale() == tscaler.get_scale()
        for p in gp.values():
            p.grad = None
        topt.zero_grad()
    assert scaler.get_scale() == 2.0 ** 18    # grew twice (after steps 3 and 6): no overflow
