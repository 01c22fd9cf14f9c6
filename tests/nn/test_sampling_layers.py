"""Upsample, PixelShuffle and InstanceNorm layers against torch.nn, and F.interpolate's edge cases.

Forward/backward values, gradcheck and gradgradcheck of the functional ops are in the op table
(tests/ops/table_nn.py); this file checks what the table cannot: layer state (parameters,
buffers, running statistics over several steps, eval mode), reprs, argument checking and its
errors and warnings, and the exact source pixels ``nearest`` picks over many sizes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn
import gradient.nn.functional as F

from .test_batchnorm_layers import assert_same_buffers, make_pair
from .test_layers import assert_close, load_from_torch, names_and_shapes, randn, run_both

TF = torch.nn.functional


# ---------------------------------------------------------------------- resampling layers
RESAMPLING = [
    ("Upsample-nearest", lambda nn: nn.Upsample(scale_factor=2), [randn(2, 3, 3, 4)]),
    ("Upsample-nearest-1d", lambda nn: nn.Upsample(size=7), [randn(2, 3, 4)]),
    ("Upsample-nearest-exact", lambda nn: nn.Upsample(scale_factor=1.5, mode="nearest-exact"),
     [randn(1, 2, 5, 3)]),
    ("Upsample-bilinear", lambda nn: nn.Upsample(scale_factor=(2, 1.5), mode="bilinear"),
     [randn(2, 2, 3, 4)]),
    ("Upsample-bilinear-align", lambda nn: nn.Upsample(size=(5, 7), mode="bilinear",
                                                       align_corners=True), [randn(1, 2, 3, 4)]),
    ("Upsample-bicubic", lambda nn: nn.Upsample(scale_factor=1.7, mode="bicubic",
                                                recompute_scale_factor=True), [randn(1, 2, 4, 3)]),
    ("Upsample-linear", lambda nn: nn.Upsample(scale_factor=3, mode="linear"), [randn(2, 2, 4)]),
    ("Upsample-trilinear", lambda nn: nn.Upsample(scale_factor=(1, 2, 1.5), mode="trilinear"),
     [randn(1, 2, 2, 3, 2)]),
    ("Upsample-area-down", lambda nn: nn.Upsample(size=(2, 3), mode="area"), [randn(2, 2, 5, 7)]),
    ("UpsamplingNearest2d", lambda nn: nn.UpsamplingNearest2d(scale_factor=3), [randn(1, 2, 2, 3)]),
    ("UpsamplingBilinear2d", lambda nn: nn.UpsamplingBilinear2d(size=(4, 5)), [randn(2, 1, 3, 3)]),
    ("PixelShuffle", lambda nn: nn.PixelShuffle(2), [randn(2, 8, 3, 2)]),
    ("PixelShuffle-5d", lambda nn: nn.PixelShuffle(3), [randn(2, 1, 9, 2, 2)]),
    ("PixelUnshuffle", lambda nn: nn.PixelUnshuffle(2), [randn(2, 2, 4, 6)]),
]


@pytest.mark.parametrize("name,make,inputs", RESAMPLING, ids=[c[0] for c in RESAMPLING])
def test_resampling_layers_match_torch(name, make, inputs):
    ours, theirs = make(gnn), make(torch.nn)
    run_both(ours, theirs, inputs)
    assert repr(ours) == repr(theirs)
    assert not list(ours.parameters()) and not list(ours.buffers())


def test_upsample_stores_arguments_as_torch_does():
    for kwargs in ({"scale_factor": 2}, {"scale_factor": (2, 3)}, {"scale_factor": 0},
                   {"size": (3, 4), "mode": "bicubic", "align_corners": True},
                   {"size": 5, "recompute_scale_factor": True}):
        ours, theirs = gnn.Upsample(**kwargs), torch.nn.Upsample(**kwargs)
        for attr in ("name", "size", "scale_factor", "mode", "align_corners",
                     "recompute_scale_factor"):
            assert getattr(ours, attr) == getattr(theirs, attr), attr
        assert repr(ours) == repr(theirs)
    assert gnn.UpsamplingBilinear2d(scale_factor=2).align_corners is True
    assert repr(gnn.UpsamplingNearest2d(4)) == repr(torch.nn.UpsamplingNearest2d(4))


def test_upsampling_in_a_small_decoder_trains_like_torch():
    """Conv -> PixelShuffle -> InstanceNorm -> Upsample, two SGD steps, weights copied from torch."""
    def make(nn):
        return nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.PixelShuffle(2),
                             nn.InstanceNorm2d(2, affine=True), nn.ReLU(),
                             nn.Upsample(scale_factor=1.5, mode="bilinear"))
    theirs = make(torch.nn).double()
    ours = make(gnn).double()
    load_from_torch(ours, theirs)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.1)
    opt_o = gradient.optim.SGD(ours.parameters(), lr=0.1)
    rng = np.random.default_rng(3)
    for _ in range(2):
        x, target = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 2, 9, 9))
        loss_t = ((theirs(torch.tensor(x)) - torch.tensor(target)) ** 2).mean()
        loss_o = ((ours(gradient.tensor(x)) - gradient.tensor(target)) ** 2).mean()
        assert_close(loss_o, loss_t, what="loss")
        opt_t.zero_grad()
        opt_o.zero_grad()
        loss_t.backward()
        loss_o.backward()
        opt_t.step()
        opt_o.step()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(p, q, what=name)


# ---------------------------------------------------------------------- instance norm
INSTANCE_SHAPES = {"InstanceNorm1d": [(3, 3, 5), (3, 6)], "InstanceNorm2d": [(2, 3, 4, 3), (3, 2, 5)],
                   "InstanceNorm3d": [(2, 3, 2, 3, 2)]}
INSTANCE_OPTIONS = [
    {},
    {"affine": True},
    {"affine": True, "bias": False},
    {"track_running_stats": True, "momentum": 0.3},
    {"track_running_stats": True, "affine": True, "eps": 1e-3},
    {"track_running_stats": True, "momentum": None},    # the running stats then never move
]


@pytest.mark.parametrize("options", INSTANCE_OPTIONS,
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default")
@pytest.mark.parametrize("cls,shape", [(c, s) for c, shapes in INSTANCE_SHAPES.items() for s in shapes],
                         ids=lambda v: v if isinstance(v, str) else "x".join(map(str, v)))
def test_instance_norm_training_steps_then_eval_match_torch(cls, shape, options):
    ours, theirs = make_pair(cls, **options)
    rng = np.random.default_rng(5)
    for step in range(3):                                  # training: instance statistics
        x = rng.standard_normal(shape) * (step + 1) + step
        run_both(ours, theirs, [x])
        assert_same_buffers(ours, theirs)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape) * 2 - 1                  # eval: running stats when tracked
    run_both(ours, theirs, [x])
    assert_same_buffers(ours, theirs)


def test_instance_norm_running_stats_values():
    norm = gnn.InstanceNorm1d(2, momentum=0.5, track_running_stats=True).double()
    x = np.array([[[1.0, 3.0, 5.0], [10.0, 20.0, 60.0]],
                  [[2.0, 2.0, 8.0], [0.0, 0.0, 3.0]]])
    norm(gradient.tensor(x))
    # the per-instance statistics averaged over the batch; the variance unbiased
    np.testing.assert_allclose(norm.running_mean.numpy(), 0.5 * x.mean((0, 2)), rtol=1e-12)
    np.testing.assert_allclose(norm.running_var.numpy(), 0.5 + 0.5 * x.var(2, ddof=1).mean(0),
                               rtol=1e-12)
    assert norm.num_batches_tracked.item() == 0           # InstanceNorm never counts (as torch)
    norm.eval()
    expect = (x - norm.running_mean.numpy()[:, None]) / np.sqrt(norm.running_var.numpy()[:, None]
                                                                 + 1e-5)
    np.testing.assert_allclose(norm(gradient.tensor(x)).numpy(), expect, rtol=1e-12)
    norm.reset_running_stats()
    np.testing.assert_array_equal(norm.running_var.numpy(), [1, 1])


def test_instance_norm_without_running_stats_uses_instance_stats_in_eval():
    ours, theirs = make_pair("InstanceNorm2d", affine=True)
    ours.eval()
    theirs.eval()
    run_both(ours, theirs, [randn(2, 3, 3, 3)])
    assert ours.running_mean is None and ours.num_batches_tracked is None


@pytest.mark.parametrize("cls", ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"])
def test_instance_norm_names_buffers_repr(cls):
    for kwargs in ({}, {"affine": True}, {"track_running_stats": True}, {"momentum": None},
                   {"affine": True, "bias": False, "eps": 1e-3}):
        ours, theirs = getattr(gnn, cls)(4, **kwargs), getattr(torch.nn, cls)(4, **kwargs)
        assert names_and_shapes(ours, "named_parameters") == names_and_shapes(theirs, "named_parameters")
        assert names_and_shapes(ours, "named_buffers") == names_and_shapes(theirs, "named_buffers")
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert repr(ours) == repr(theirs)
    assert not isinstance(gnn.InstanceNorm2d(3), gnn.modules.batchnorm._BatchNorm)


@pytest.mark.parametrize("cls,bad_shape", [("InstanceNorm1d", (2, 3, 4, 5)), ("InstanceNorm1d", (3,)),
                                           ("InstanceNorm2d", (2, 3)), ("InstanceNorm3d", (2, 3, 4))])
def test_instance_norm_wrong_rank_raises_like_torch(cls, bad_shape):
    with pytest.raises(ValueError, match=r"expected \dD"):
        getattr(torch.nn, cls)(3)(torch.randn(*bad_shape))
    with pytest.raises(ValueError, match=r"expected \dD .*input, got \dD"):
        getattr(gnn, cls)(3)(gradient.randn(*bad_shape))


def test_instance_norm_feature_mismatch():
    with pytest.raises(ValueError, match="num_features"):
        gnn.InstanceNorm2d(4, affine=True)(gradient.randn(2, 3, 4, 4))
    # without affine parameters num_features is unused: a warning, as in torch
    with pytest.warns(UserWarning, match="does not match num_features"):
        out = gnn.InstanceNorm1d(4)(gradient.randn(2, 3, 5))
    with pytest.warns(UserWarning, match="does not match num_features"):
        torch.nn.InstanceNorm1d(4)(torch.randn(2, 3, 5))
    assert out.shape == (2, 3, 5)


def test_instance_norm_functional_errors():
    x = gradient.randn(2, 3, 4)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        F.instance_norm(gradient.randn(2, 3, 1))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        F.instance_norm(gradient.randn(2, 3))
    F.instance_norm(gradient.randn(2, 3, 1), gradient.zeros(3), gradient.ones(3),
                    use_input_stats=False)           # one element is fine with running stats
    with pytest.raises(ValueError, match="both be None or neither"):
        F.instance_norm(x, gradient.zeros(3))
    with pytest.raises(ValueError, match="running_mean and running_var to be defined"):
        F.instance_norm(x, use_input_stats=False)
    with pytest.raises(ValueError, match=r"weight of shape \(3,\)"):
        F.instance_norm(x, weight=gradient.ones(4))
    with pytest.raises(TypeError, match="floating point"):
        F.instance_norm(gradient.ones(2, 3, 4, dtype=gradient.int64))


def test_instance_norm_half_precision_close_to_torch():
    x = randn(2, 3, 8).astype(np.float32)
    for gdt, tdt in ((gradient.float16, torch.float16), (gradient.bfloat16, torch.bfloat16)):
        ours = F.instance_norm(gradient.tensor(x).to(gdt))
        theirs = TF.instance_norm(torch.tensor(x).to(tdt))
        assert ours.dtype is gdt
        np.testing.assert_allclose(ours.float().numpy(), theirs.float().numpy(), atol=2e-2)


# ---------------------------------------------------------------------- interpolate: geometry
def _index_picked(lib, n_in: int, nd: int, dtype, mode: str, **kwargs) -> np.ndarray:
    """The input positions (along the last dimension) that nearest interpolation copies."""
    shape = (1, 1) + (1,) * (nd - 1) + (n_in,)
    x = np.arange(n_in, dtype=dtype).reshape(shape)
    if lib is torch:
        out = TF.interpolate(torch.tensor(x), mode=mode, **kwargs).numpy()
    else:
        out = F.interpolate(gradient.tensor(x), mode=mode, **kwargs).numpy()
    return out.reshape(-1).astype(np.int64)


SCALES = [0.25, 1 / 3, 0.4, 0.6, 2 / 3, 0.7, 0.9, 1.0, 1.1, 4 / 3, 1.5, 1.7, 2.0, 2.05, 2.5, 3.0,
          1 / 0.3, 3.3, 5.5]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize("nd", [1, 2, 3])
def test_nearest_copies_the_same_pixels_as_torch(nd, mode, dtype):
    """nearest is discontinuous in the source coordinate, so every rounding matters: sizes
    1..10 to 1..36 and a range of scale factors, including the 2-D kernel's special cases
    (same size, doubled size) and float32 ties like floor(3 * (1/3))."""
    lead = (1,) * (nd - 1)
    for n_in in range(1, 11):
        configs = [{"size": lead + (o,)} for o in range(1, 37)]
        configs += [{"scale_factor": lead and (1.0,) * (nd - 1) + (s,) or s} for s in SCALES]
        for kwargs in configs:
            try:
                expect = _index_picked(torch, n_in, nd, dtype, mode, **kwargs)
            except RuntimeError:   # an empty output: checked in test_interpolate_errors
                continue
            got = _index_picked(gradient, n_in, nd, dtype, mode, **kwargs)
            np.testing.assert_array_equal(got, expect, err_msg=f"{n_in} -> {kwargs}")


def test_scale_factor_sets_the_step_not_the_output_size():
    """With scale_factor=1.7 a 3-pixel row becomes 5 pixels sampled every 1/1.7 (torch's rule),
    not every 3/5 as size=5 does; recompute_scale_factor=True switches to 3/5."""
    x = randn(1, 1, 3)
    by_scale = F.interpolate(gradient.tensor(x), scale_factor=1.7, mode="linear").numpy()
    by_size = F.interpolate(gradient.tensor(x), size=5, mode="linear").numpy()
    recomputed = F.interpolate(gradient.tensor(x), scale_factor=1.7, mode="linear",
                               recompute_scale_factor=True).numpy()
    assert by_scale.shape == by_size.shape == (1, 1, 5)
    assert not np.allclose(by_scale, by_size)
    np.testing.assert_allclose(recomputed, by_size, rtol=1e-12)
    np.testing.assert_allclose(by_scale, TF.interpolate(torch.tensor(x), scale_factor=1.7,
                                                        mode="linear").numpy(), rtol=1e-12)
    # the linear modes copy a dimension whose size does not change, whatever scale_factor says
    same = F.interpolate(gradient.tensor(x), scale_factor=1.1, mode="linear").numpy()
    np.testing.assert_array_equal(same, x)


def test_bicubic_overshoots_and_uses_torchs_coefficient():
    x = np.zeros((1, 1, 1, 6))
    x[..., 3:] = 1.0                                    # a step edge
    ours = F.interpolate(gradient.tensor(x), size=(1, 12), mode="bicubic").numpy()
    theirs = TF.interpolate(torch.tensor(x), size=(1, 12), mode="bicubic").numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    assert ours.min() < 0 and ours.max() > 1           # A = -0.75 rings at the edge


@pytest.mark.parametrize("mode", ["bilinear", "bicubic", "nearest", "area"])
def test_low_precision_inputs_keep_their_dtype(mode):
    x = randn(1, 2, 3, 4).astype(np.float32)
    for gdt, tdt in ((gradient.float16, torch.float16), (gradient.bfloat16, torch.bfloat16)):
        ours = F.interpolate(gradient.tensor(x).to(gdt), scale_factor=2, mode=mode)
        theirs = TF.interpolate(torch.tensor(x).to(tdt), scale_factor=2, mode=mode)
        assert ours.dtype is gdt
        np.testing.assert_allclose(ours.float().numpy(), theirs.float().numpy(), atol=3e-2)


def test_nearest_accepts_integers_and_bools_interpolating_modes_do_not():
    ids = gradient.arange(6).reshape(1, 1, 2, 3)
    out = F.interpolate(ids, scale_factor=2)
    assert out.dtype is gradient.int64
    np.testing.assert_array_equal(out.numpy(), np.arange(6).reshape(2, 3).repeat(2, 0).repeat(2, 1)[None, None])
    mask = F.interpolate(gradient.tensor([[[True, False]]]), size=4)
    np.testing.assert_array_equal(mask.numpy(), [[[True, True, False, False]]])
    with pytest.raises(TypeError, match="floating-point input"):
        F.interpolate(ids, scale_factor=2, mode="bilinear")


def test_interpolate_returns_new_storage_and_nan_stays_local():
    x = gradient.randn(1, 1, 3, 3)
    for kwargs in ({"size": (3, 3)}, {"scale_factor": 1.1, "mode": "bilinear"}):
        out = F.interpolate(x, **kwargs)
        assert out is not x and out._base is None
    # a nan pixel spoils only the outputs whose taps read it, as in torch's kernels
    y = np.ones((1, 1, 1, 6))
    y[..., 0] = np.nan
    ours = F.interpolate(gradient.tensor(y), size=(1, 12), mode="bilinear").numpy()
    theirs = TF.interpolate(torch.tensor(y), size=(1, 12), mode="bilinear").numpy()
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    assert 0 < np.isnan(ours).sum() <= 3               # not the whole row


# ---------------------------------------------------------------------- interpolate: errors
def _both_raise(error, call, match=None, ours=None):
    """``call(lib, functional)`` raises ``error`` with torch and with gradient (or ``ours``
    with gradient, where the class differs on purpose)."""
    with pytest.raises(error):
        call(torch, TF)
    with pytest.raises(ours or error, match=match):
        call(gradient, F)


def x4(lib):
    return lib.ones(1, 1, 4, 4)


@pytest.mark.parametrize("error,call,match", [
    (ValueError, lambda m, f: f.interpolate(x4(m), scale_factor=2, align_corners=True),
     "align_corners option can only be set"),
    (ValueError, lambda m, f: f.interpolate(x4(m), size=3, scale_factor=2), "only one of size"),
    (ValueError, lambda m, f: f.interpolate(x4(m)), "either size or scale_factor"),
    (ValueError, lambda m, f: f.interpolate(x4(m), size=3, recompute_scale_factor=True),
     "not meaningful with an explicit size"),
    (ValueError, lambda m, f: f.interpolate(x4(m), size=(3,)), "same number of spatial"),
    (ValueError, lambda m, f: f.interpolate(x4(m), scale_factor=(2, 2, 2)), "same number of spatial"),
    (TypeError, lambda m, f: f.interpolate(x4(m), size=(2.0, 3)), "expected size"),
    (TypeError, lambda m, f: f.interpolate(x4(m), size=2.5), "size must be an int"),
    (TypeError, lambda m, f: f.interpolate(x4(m), scale_factor="2"), "scale_factor must be"),
    (NotImplementedError, lambda m, f: f.interpolate(x4(m), size=3, mode="linear"), "needs 3-D"),
    (NotImplementedError, lambda m, f: f.interpolate(m.ones(1, 1, 4), size=3, mode="bilinear"),
     "needs 4-D"),
    (NotImplementedError, lambda m, f: f.interpolate(m.ones(1, 1, 2, 2, 2), size=3, mode="bicubic"),
     "needs 4-D"),
    (NotImplementedError, lambda m, f: f.interpolate(x4(m), size=3, mode="trilinear"), "needs 5-D"),
    (NotImplementedError, lambda m, f: f.interpolate(m.ones(2, 3), scale_factor=2), "3-D, 4-D or 5-D"),
    (NotImplementedError, lambda m, f: f.interpolate(x4(m), scale_factor=2, mode="cubic"),
     "unknown mode"),
    (ValueError, lambda m, f: f.interpolate(x4(m), scale_factor=2, antialias=True),
     "anti-alias option is restricted"),
    (ValueError, lambda m, f: f.interpolate(x4(m), size=3, mode="lanczos"), "requires antialias"),
    (RuntimeError, lambda m, f: f.interpolate(x4(m), scale_factor=0.2), r"output \(H: 0, W: 0\)"),
    (RuntimeError, lambda m, f: f.interpolate(x4(m), size=(3, -1), mode="bilinear"), "W: -1"),
    (RuntimeError, lambda m, f: f.interpolate(m.ones(1, 1, 0, 4), size=3), "H: 0"),
], ids=lambda v: v.__name__ if isinstance(v, type) else None)
def test_interpolate_errors_match_torch(error, call, match):
    _both_raise(error, call, match)


@pytest.mark.parametrize("kwargs", [
    {"size": (5, 7), "mode": "bilinear"}, {"size": (5, 7), "mode": "bicubic"},
    {"scale_factor": 0.37, "mode": "bilinear"}, {"size": (30, 11), "mode": "bicubic"},
    {"size": (30, 40), "mode": "bilinear"},
    {"size": (6, 6), "mode": "bilinear", "align_corners": True},
    {"size": (6, 9), "mode": "bicubic", "align_corners": True}])
def test_interpolate_antialias_matches_torch(kwargs):
    """PIL's resampling as torch computes it (its weights in float32: 1e-5 here)."""
    x = np.random.default_rng(0).standard_normal((2, 3, 17, 23))
    ours = gradient.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    a = F.interpolate(ours, antialias=True, **kwargs)
    b = TF.interpolate(theirs, antialias=True, **kwargs)
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-5)
    weights = np.random.default_rng(1).standard_normal(tuple(b.shape))
    (a * gradient.tensor(weights)).sum().backward()
    (b * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_interpolate_antialias_lanczos_is_refused_clearly():
    with pytest.raises(NotImplementedError, match="lanczos"):
        F.interpolate(gradient.ones(1, 1, 8, 8), size=4, mode="lanczos", antialias=True)


def test_area_mode_makes_empty_outputs_like_torch():
    out = F.interpolate(gradient.ones(1, 2, 4, 4), scale_factor=0.2, mode="area")
    assert out.shape == TF.interpolate(torch.ones(1, 2, 4, 4), scale_factor=0.2, mode="area").shape


def test_deprecated_upsample_functions_warn_and_match_interpolate():
    x = randn(1, 2, 3, 3)
    for name, kwargs, reference in (
            ("upsample", {"scale_factor": 2, "mode": "bilinear"}, {"mode": "bilinear"}),
            ("upsample_nearest", {"size": 5}, {"mode": "nearest"}),
            ("upsample_bilinear", {"scale_factor": 2}, {"mode": "bilinear", "align_corners": True})):
        with pytest.warns(UserWarning, match="deprecated"):
            ours = getattr(F, name)(gradient.tensor(x), **kwargs).numpy()
        size_or_scale = {k: v for k, v in kwargs.items() if k in ("size", "scale_factor")}
        expect = TF.interpolate(torch.tensor(x), **size_or_scale, **reference).numpy()
        np.testing.assert_allclose(ours, expect, rtol=1e-12)


# ---------------------------------------------------------------------- pixel shuffle
def test_pixel_shuffle_layout_and_round_trip():
    x = gradient.arange(16.0).reshape(1, 4, 2, 2)
    out = F.pixel_shuffle(x, 2)
    np.testing.assert_array_equal(out.numpy(), TF.pixel_shuffle(torch.arange(16.0).reshape(1, 4, 2, 2),
                                                                2).numpy())
    np.testing.assert_array_equal(F.pixel_unshuffle(out, 2).numpy(), x.numpy())
    same = F.pixel_shuffle(x, 1)
    assert same is not x and same._base is None        # a copy, as torch's
    np.testing.assert_array_equal(same.numpy(), x.numpy())


@pytest.mark.parametrize("call,match,ours", [
    (lambda m, f: f.pixel_shuffle(m.ones(1, 5, 2, 2), 2), "divisible by the square", None),
    (lambda m, f: f.pixel_shuffle(m.ones(4, 2), 2), "at least 3 dimensions", None),
    (lambda m, f: f.pixel_unshuffle(m.ones(1, 1, 5, 4), 2), "height to be divisible", None),
    (lambda m, f: f.pixel_unshuffle(m.ones(1, 1, 4, 5), 2), "width to be divisible", None),
    # a bad factor is a ValueError here (torch: RuntimeError)
    (lambda m, f: f.pixel_shuffle(m.ones(1, 4, 2, 2), 0), "positive upscale_factor", ValueError),
    (lambda m, f: f.pixel_unshuffle(m.ones(1, 1, 4, 4), -1), "positive downscale_factor", ValueError),
])
def test_pixel_shuffle_errors_match_torch(call, match, ours):
    _both_raise(RuntimeError, call, match, ours)


def test_pixel_shuffle_refuses_a_float_factor():
    _both_raise(TypeError, lambda m, f: f.pixel_shuffle(m.ones(1, 4, 2, 2), 2.0), "must be an int")


# ---------------------------------------------------------------------- grid_sample, affine_grid
def test_identity_affine_grid_samples_the_input_back():
    x = gradient.tensor(randn(2, 3, 4, 5))
    theta = gradient.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]] * 2, dtype=gradient.float64)
    for align in (False, True):
        grid = F.affine_grid(theta, (2, 3, 4, 5), align_corners=align)
        out = F.grid_sample(x, grid, align_corners=align)
        np.testing.assert_allclose(out.numpy(), x.numpy(), atol=1e-12)


def test_grid_sample_default_align_corners_warns_like_torch():
    x, grid = gradient.randn(1, 1, 3, 3), gradient.zeros(1, 2, 2, 2)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        F.grid_sample(x, grid)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        F.affine_grid(gradient.zeros(1, 2, 3), (1, 1, 2, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.grid_sample(x, grid, align_corners=False)


@pytest.mark.parametrize("error,call,match", [
    (ValueError, lambda m, f: f.grid_sample(m.ones(1, 1, 3, 3), m.zeros(1, 2, 2, 2), mode="area",
                                            align_corners=False), "expected mode"),
    (ValueError, lambda m, f: f.grid_sample(m.ones(1, 1, 3, 3), m.zeros(1, 2, 2, 2),
                                            padding_mode="edge", align_corners=False),
     "expected padding_mode"),
    (RuntimeError, lambda m, f: f.grid_sample(m.ones(1, 1, 3, 3), m.zeros(1, 2, 2, 3),
                                              align_corners=False), "size 2 in last dimension"),
    (RuntimeError, lambda m, f: f.grid_sample(m.ones(2, 1, 3, 3), m.zeros(1, 2, 2, 2),
                                              align_corners=False), "same batch size"),
    (RuntimeError, lambda m, f: f.grid_sample(m.ones(1, 1, 3, 3, 3), m.zeros(1, 2, 2, 2, 3),
                                              mode="bicubic", align_corners=False), "bicubic"),
    (ValueError, lambda m, f: f.affine_grid(m.zeros(1, 3, 3), (1, 1, 2, 2), align_corners=False),
     "Nx2x3"),
    (ValueError, lambda m, f: f.affine_grid(m.zeros(1, 2, 3), (1, 1, 0, 2), align_corners=False),
     "positive output size"),
    (NotImplementedError, lambda m, f: f.affine_grid(m.zeros(1, 2, 3), (1, 1, 2),
                                                     align_corners=False), "4D and 5D"),
])
def test_grid_sample_and_affine_grid_errors_match_torch(error, call, match):
    _both_raise(error, call, match)


def test_exported_names():
    for name in ("interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pixel_shuffle",
                 "pixel_unshuffle", "affine_grid", "grid_sample", "instance_norm"):
        assert callable(getattr(F, name)) and callable(getattr(TF, name)), name
    for name in ("Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle",
                 "PixelUnshuffle", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"):
        assert getattr(gnn, name).__name__ == name
