"""Op table entries for gradient.nn.functional: activations, softmax, linear, norms, embedding, distances,
resampling (interpolate, pixel_shuffle, affine_grid, grid_sample).

Each op is called as ``m.nn.functional.<name>`` with ``m`` = gradient or torch. Inputs of the
piecewise activations are kept away from their kinks (0, the clip ends, the shrink thresholds),
where finite differences and PyTorch's subgradient conventions do not agree.
"""

import numpy as np

import gradient.nn.functional  # noqa: F401  (makes gradient.nn available as m.nn)

from .op_info import OpInfo, Sample, arr, away_from_zero, distinct, ints, positive


def F(m):
    return m.nn.functional


def avoid(rng, *shape, kinks=(0.0,), low=-2.0, high=2.0, gap=0.2):
    """Uniform values in [low, high) that stay at least ``gap`` away from every kink."""
    vals = rng.uniform(low, high, size=shape)
    for _ in range(100):
        bad = np.zeros(vals.shape, bool)
        for k in kinks:
            bad |= np.abs(vals - k) < gap
        if not bad.any():
            return vals
        vals = np.where(bad, rng.uniform(low, high, size=shape), vals)
    raise AssertionError("could not sample values away from the kinks")


def fn(name, **fixed):
    """``m.nn.functional.<name>(*args, **fixed, **kwargs)``."""
    return lambda m, *a, **k: getattr(F(m), name)(*a, **fixed, **k)


def unary(name, sample_fn, **opts):
    """An elementwise activation: a 2-d input, a 0-d input and an empty one."""
    return OpInfo(name, fn(name), lambda r: [
        Sample((sample_fn(r, 3, 4),)),
        Sample((np.asarray(sample_fn(r)),), name="0-d"),
        Sample((sample_fn(r, 0, 3),), name="empty"),
    ], **opts)


OPS = [
    # ------------------------------------------------------------------ activations
    unary("relu", away_from_zero),
    OpInfo("relu6", fn("relu6"), lambda r: [
        Sample((avoid(r, 4, 5, kinks=(0.0, 6.0), low=-2.0, high=8.0),)),
    ]),
    OpInfo("leaky_relu", fn("leaky_relu"), lambda r: [
        Sample((away_from_zero(r, 3, 4),)),
        Sample((away_from_zero(r, 2, 3),), {"negative_slope": 0.2}, name="slope"),
        Sample((np.asarray(away_from_zero(r)),), name="0-d"),
    ]),
    OpInfo("hardtanh", fn("hardtanh"), lambda r: [
        Sample((avoid(r, 3, 4, kinks=(-1.0, 1.0)),)),
        Sample((avoid(r, 3, 4, kinks=(-0.5, 1.5)),), {"min_val": -0.5, "max_val": 1.5}, name="range"),
    ]),
    OpInfo("gelu", fn("gelu"), lambda r: [
        Sample((arr(r, 3, 4, low=-4, high=4),)),
        Sample((arr(r, 3, 4, low=-4, high=4),), {"approximate": "tanh"}, name="tanh"),
        Sample((np.asarray(arr(r)),), name="0-d"),
        Sample((arr(r, 0, 2),), {"approximate": "tanh"}, name="empty-tanh"),
    ]),
    unary("silu", lambda r, *s: arr(r, *s, low=-4, high=4)),
    OpInfo("softplus", fn("softplus"), lambda r: [
        Sample((arr(r, 3, 4, low=-4, high=4),)),
        Sample((avoid(r, 3, 4, kinks=(0.5,)),), {"beta": 2.0, "threshold": 1.0}, name="threshold"),
        Sample((np.asarray(arr(r)),), name="0-d"),
    ]),
    OpInfo("elu", fn("elu"), lambda r: [
        Sample((away_from_zero(r, 3, 4),)),
        Sample((away_from_zero(r, 3, 4),), {"alpha": 0.5}, name="alpha"),
        Sample((away_from_zero(r, 0, 4),), name="empty"),
    ]),
    unary("selu", away_from_zero),
    OpInfo("celu", fn("celu"), lambda r: [
        Sample((away_from_zero(r, 3, 4),)),
        Sample((away_from_zero(r, 3, 4),), {"alpha": 2.0}, name="alpha"),
    ]),
    unary("mish", lambda r, *s: arr(r, *s, low=-4, high=4)),
    unary("hardsigmoid", lambda r, *s: avoid(r, *s, kinks=(-3.0, 3.0), low=-5, high=5)),
    unary("hardswish", lambda r, *s: avoid(r, *s, kinks=(-3.0, 3.0), low=-5, high=5)),
    unary("logsigmoid", lambda r, *s: arr(r, *s, low=-6, high=6)),
    unary("softsign", away_from_zero),
    unary("tanhshrink", arr),
    OpInfo("hardshrink", fn("hardshrink"), lambda r: [
        Sample((avoid(r, 3, 4, kinks=(-0.5, 0.5)),)),
        Sample((avoid(r, 3, 4, kinks=(-1.0, 1.0)),), {"lambd": 1.0}, name="lambd"),
    ]),
    OpInfo("softshrink", fn("softshrink"), lambda r: [
        Sample((avoid(r, 3, 4, kinks=(-0.5, 0.5)),)),
        Sample((avoid(r, 3, 4, kinks=(-1.0, 1.0)),), {"lambd": 1.0}, name="lambd"),
    ]),
    OpInfo("threshold", fn("threshold"), lambda r: [
        Sample((avoid(r, 3, 4, kinks=(0.5,)), 0.5, -3.0)),
    ]),
    OpInfo("prelu", fn("prelu"), lambda r: [
        Sample((away_from_zero(r, 2, 3, 4), positive(r, 3, low=0.1, high=0.5)), name="per-channel"),
        Sample((away_from_zero(r, 3, 4), positive(r, 1, low=0.1, high=0.5)), name="shared"),
        Sample((away_from_zero(r, 5), positive(r, 1, low=0.1, high=0.5)), name="1-d"),
    ]),
    OpInfo("glu", fn("glu"), lambda r: [
        Sample((arr(r, 3, 4),)),
        Sample((arr(r, 4, 3),), {"dim": 0}, name="dim0"),
        Sample((arr(r, 2, 2, 4),), {"dim": -2}, name="3-d"),
    ]),

    # ------------------------------------------------------------------ softmax family
    OpInfo("softmax", fn("softmax"), lambda r: [
        Sample((arr(r, 3, 4), -1)),
        Sample((arr(r, 2, 3, 4), 1), name="dim1"),
        Sample((arr(r, 3, 4) * 50, 0), name="large"),
        Sample((np.asarray(arr(r)), -1), name="0-d"),
        Sample((arr(r, 2, 0), -1), name="empty-dim"),
    ]),
    OpInfo("softmax_dtype", lambda m, x, d: F(m).softmax(x, d, dtype=m.float64), lambda r: [
        Sample((arr(r, 3, 4), -1)),
    ]),
    OpInfo("log_softmax", fn("log_softmax"), lambda r: [
        Sample((arr(r, 3, 4), -1)),
        Sample((arr(r, 2, 3, 4), 0), name="dim0"),
        Sample((np.asarray(arr(r)), 0), name="0-d"),
        Sample((arr(r, 2, 0), 1), name="empty-dim"),
    ]),
    OpInfo("softmin", fn("softmin"), lambda r: [
        Sample((arr(r, 3, 4), 1)),
    ]),
    OpInfo("Tensor.softmax", lambda m, x, d: x.softmax(d), lambda r: [Sample((arr(r, 3, 4), 0))]),
    OpInfo("Tensor.relu", lambda m, x: x.relu(), lambda r: [Sample((away_from_zero(r, 3, 4),))]),

    # ------------------------------------------------------------------ linear
    OpInfo("linear", fn("linear"), lambda r: [
        Sample((arr(r, 4, 3), arr(r, 5, 3), arr(r, 5)), name="bias"),
        Sample((arr(r, 4, 3), arr(r, 5, 3)), name="no-bias"),
        Sample((arr(r, 2, 3, 3), arr(r, 4, 3), arr(r, 4)), name="3-d"),
        Sample((arr(r, 3), arr(r, 4, 3), arr(r, 4)), name="1-d-input"),
        Sample((arr(r, 0, 3), arr(r, 2, 3), arr(r, 2)), name="empty"),
        Sample((arr(r, 2, 3, 3), arr(r, 4, 3), arr(r, 3, 4)), name="bias-broadcast"),
    ]),

    # ------------------------------------------------------------------ normalization
    OpInfo("layer_norm", fn("layer_norm"), lambda r: [
        Sample((arr(r, 3, 4), (4,)), name="no-affine"),
        Sample((arr(r, 3, 4), (4,), positive(r, 4), arr(r, 4)), name="affine"),
        Sample((arr(r, 2, 2, 3), (2, 3), positive(r, 2, 3), arr(r, 2, 3)), name="2-d-shape"),
        Sample((arr(r, 2, 2, 3), [2, 3]), {"eps": 1e-3}, name="2-d-no-affine"),
        Sample((arr(r, 3, 4), (4,), positive(r, 4)), name="weight-only"),
    ], atol=1e-4),
    OpInfo("rms_norm", fn("rms_norm"), lambda r: [
        Sample((arr(r, 3, 4), (4,)), name="no-weight"),
        Sample((arr(r, 3, 4), (4,), positive(r, 4)), {"eps": 1e-6}, name="weight"),
        Sample((arr(r, 2, 2, 3), (2, 3), positive(r, 2, 3)), name="2-d-shape"),
    ], atol=1e-4),
    OpInfo("group_norm", fn("group_norm"), lambda r: [
        Sample((arr(r, 2, 4, 3), 2, positive(r, 4), arr(r, 4)), name="affine"),
        Sample((arr(r, 2, 4, 3), 4), name="instance-like"),
        Sample((arr(r, 2, 2, 2, 3), 1, positive(r, 2), arr(r, 2)), name="4-d-one-group"),
    ], atol=1e-4),
    # batch_norm(input, running_mean, running_var, weight, bias, training): the running
    # statistics are plain (non-grad) arguments
    OpInfo("batch_norm", fn("batch_norm"), lambda r: [
        Sample((arr(r, 4, 3), arr(r, 3), positive(r, 3), positive(r, 3), arr(r, 3), True),
               grad=(0, 3, 4), name="train-2d"),
        Sample((arr(r, 2, 3, 4), arr(r, 3), positive(r, 3), positive(r, 3), arr(r, 3), True),
               grad=(0, 3, 4), name="train-3d"),
        Sample((arr(r, 2, 2, 2, 3), None, None, None, None, True), name="train-4d-no-stats"),
        Sample((arr(r, 4, 3), arr(r, 3), positive(r, 3), positive(r, 3), arr(r, 3), False),
               grad=(0, 3, 4), name="eval-2d"),
        Sample((arr(r, 2, 2, 2, 3), arr(r, 2), positive(r, 2)), {"eps": 1e-3}, grad=(0,),
               name="eval-4d-no-affine"),
    ], atol=1e-4),

    # ------------------------------------------------------------------ embedding
    OpInfo("embedding", fn("embedding"), lambda r: [
        Sample((np.array([[1, 2, 1], [4, 1, 0]]), arr(r, 5, 3)), name="repeats"),
        Sample((np.array(2), arr(r, 3, 4)), name="0-d-ids"),
        Sample((np.zeros((0, 2), np.int64), arr(r, 3, 4)), name="empty-ids"),
    ]),
    # padding_idx and scale_grad_by_freq change the gradient on purpose (it is no longer the
    # derivative, so gradcheck does not apply): forward here, backward vs torch in
    # test_nn_functional.py
    OpInfo("embedding_options", fn("embedding"), lambda r: [
        Sample((np.array([1, 0, 3, 0, 3]), arr(r, 4, 3)), {"padding_idx": 0}, name="padding"),
        Sample((np.array([2, 1, 2]), arr(r, 3, 4)), {"padding_idx": -1}, name="negative-padding"),
        Sample((ints(r, 2, 3, low=0, high=4), arr(r, 4, 2)), {"scale_grad_by_freq": True},
               name="scale-grad-by-freq"),
    ], grad=False),

    # ------------------------------------------------------------------ norms and distances
    OpInfo("normalize", fn("normalize"), lambda r: [
        Sample((arr(r, 3, 4),)),
        Sample((arr(r, 3, 4),), {"dim": -1}, name="dim-1"),
        Sample((away_from_zero(r, 3, 4),), {"p": 1.0, "dim": 0}, name="p1"),
        Sample((away_from_zero(r, 3, 4),), {"p": 3.0}, name="p3"),
        Sample((arr(r, 4),), {"dim": 0}, name="1-d"),
        Sample((distinct(r, 3, 4),), {"p": float("inf")}, name="p-inf"),
    ]),
    OpInfo("cosine_similarity", fn("cosine_similarity"), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 3, 4))),
        Sample((arr(r, 3, 4), arr(r, 4)), {"dim": -1}, name="broadcast"),
        Sample((arr(r, 2, 3, 2), arr(r, 2, 3, 2)), {"dim": 0}, name="dim0"),
    ]),
    OpInfo("pairwise_distance", fn("pairwise_distance"), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 3, 4))),
        Sample((arr(r, 3, 4), arr(r, 3, 4)), {"p": 1.0, "keepdim": True}, name="p1-keepdim"),
        Sample((arr(r, 3, 4), arr(r, 4)), {"p": 3.0}, name="broadcast-p3"),
    ]),

    # ------------------------------------------------------------------ instance norm
    # instance_norm(input, running_mean, running_var, weight, bias, use_input_stats): the
    # running statistics are plain (non-grad) arguments, updated in place when given
    OpInfo("instance_norm", fn("instance_norm"), lambda r: [
        Sample((arr(r, 2, 3, 4),), name="3-d"),
        Sample((arr(r, 2, 3, 2, 3), None, None, positive(r, 3), arr(r, 3)), name="4-d-affine"),
        Sample((arr(r, 1, 2, 2, 2, 3), None, None, positive(r, 2)), {"eps": 1e-3},
               name="5-d-weight-only"),
        Sample((arr(r, 2, 3, 4), arr(r, 3), positive(r, 3), positive(r, 3), arr(r, 3), True),
               {"momentum": 0.3}, grad=(0, 3, 4), name="running-stats-train"),
        Sample((arr(r, 2, 3, 4), arr(r, 3), positive(r, 3), positive(r, 3), arr(r, 3), False),
               grad=(0, 3, 4), name="running-stats-eval"),
    ], atol=1e-4),

    # ------------------------------------------------------------------ resampling
    # interpolate is linear in its input, so gradcheck is exact for every mode (nearest too).
    # Each mode: size and scale_factor, up and down, integer and non-integer factors,
    # align_corners both ways; torch's source-index rule for a given scale_factor shows where
    # in / out and 1 / scale_factor differ (3 * 1.7 -> 5, not 3 / 5).
    OpInfo("interpolate", fn("interpolate"), lambda r: [
        Sample((arr(r, 1, 2, 3),), {"size": 5}, name="nearest-1d-size"),
        Sample((arr(r, 2, 1, 2, 3),), {"scale_factor": 2}, name="nearest-2d-x2"),
        Sample((arr(r, 1, 2, 3, 2),), {"scale_factor": (1.7, 2.5)}, name="nearest-2d-fractional"),
        Sample((arr(r, 1, 1, 4, 5),), {"size": (2, 3)}, name="nearest-2d-down"),
        Sample((arr(r, 1, 1, 2, 2, 3),), {"scale_factor": (1.0, 2.0, 1.5)}, name="nearest-3d"),
        Sample((arr(r, 1, 2, 3, 4),), {"scale_factor": 1.7, "mode": "nearest-exact"},
               name="nearest-exact-up"),
        Sample((arr(r, 1, 2, 5),), {"scale_factor": 0.6, "mode": "nearest-exact"},
               name="nearest-exact-down"),
        Sample((arr(r, 2, 1, 3),), {"scale_factor": 2.5, "mode": "linear"}, name="linear"),
        Sample((arr(r, 1, 2, 3),), {"size": 5, "mode": "linear", "align_corners": True},
               name="linear-align"),
        Sample((arr(r, 1, 1, 5),), {"scale_factor": 0.5, "mode": "linear"}, name="linear-down"),
        Sample((arr(r, 1, 2, 2, 3),), {"size": (3, 5), "mode": "bilinear"}, name="bilinear-size"),
        Sample((arr(r, 1, 1, 2, 3),), {"scale_factor": (1.5, 2), "mode": "bilinear",
                                       "align_corners": True}, name="bilinear-align"),
        Sample((arr(r, 1, 1, 4, 5),), {"scale_factor": 0.6, "mode": "bilinear"},
               name="bilinear-down"),
        Sample((arr(r, 1, 1, 3, 2),), {"scale_factor": 1.7, "mode": "bilinear",
                                       "recompute_scale_factor": True}, name="bilinear-recompute"),
        Sample((arr(r, 1, 1, 2, 3),), {"scale_factor": 2, "mode": "bicubic"}, name="bicubic"),
        Sample((arr(r, 1, 1, 3, 2),), {"size": (4, 3), "mode": "bicubic", "align_corners": True},
               name="bicubic-align"),
        Sample((arr(r, 1, 1, 3, 4),), {"size": (2, 2), "mode": "bicubic"}, name="bicubic-down"),
        Sample((arr(r, 1, 1, 2, 2, 2),), {"scale_factor": 1.5, "mode": "trilinear"},
               name="trilinear"),
        Sample((arr(r, 1, 1, 2, 3, 2),), {"size": (2, 4, 3), "mode": "trilinear",
                                          "align_corners": True}, name="trilinear-align"),
        Sample((arr(r, 1, 2, 4, 5),), {"size": (2, 3), "mode": "area"}, name="area-2d"),
        Sample((arr(r, 1, 1, 6),), {"scale_factor": 0.5, "mode": "area"}, name="area-1d"),
        Sample((arr(r, 0, 2, 2, 2),), {"scale_factor": 2, "mode": "bilinear"}, name="empty-batch"),
    ]),
    OpInfo("pixel_shuffle", fn("pixel_shuffle"), lambda r: [
        Sample((arr(r, 1, 8, 2, 3), 2)),
        Sample((arr(r, 2, 1, 9, 2, 1), 3), name="extra-batch-dims"),
        Sample((arr(r, 4, 2, 2), 2), name="3-d"),
        Sample((arr(r, 1, 3, 2, 2), 1), name="factor-1"),
        Sample((ints(r, 1, 4, 2, 2), 2), name="int"),
    ]),
    OpInfo("pixel_unshuffle", fn("pixel_unshuffle"), lambda r: [
        Sample((arr(r, 1, 2, 4, 6), 2)),
        Sample((arr(r, 2, 1, 1, 3, 3), 3), name="extra-batch-dims"),
        Sample((arr(r, 1, 2, 2), 1), name="factor-1"),
    ]),
    # grid_sample's output is piecewise smooth in the grid (kinks where a sample crosses a pixel
    # centre, or the border under padding): random coordinates stay clear of them. The nearest
    # mode gives the grid no gradient (PyTorch: zeros), so only the input is differentiated.
    OpInfo("affine_grid", fn("affine_grid"), lambda r: [
        Sample((arr(r, 2, 2, 3), (2, 3, 4, 5)), {"align_corners": False}, name="2d"),
        Sample((arr(r, 1, 2, 3), (1, 1, 3, 2)), {"align_corners": True}, name="2d-align"),
        Sample((arr(r, 1, 3, 4), (1, 2, 2, 3, 2)), {"align_corners": False}, name="3d"),
    ]),
    OpInfo("grid_sample", fn("grid_sample"), lambda r: [
        Sample((arr(r, 1, 2, 3, 4), arr(r, 1, 2, 3, 2, low=-1.2, high=1.2)),
               {"align_corners": False}, name="bilinear-zeros"),
        Sample((arr(r, 2, 1, 3, 3), arr(r, 2, 2, 2, 2, low=-1.5, high=1.5)),
               {"padding_mode": "border", "align_corners": True}, name="bilinear-border"),
        Sample((arr(r, 1, 1, 4, 3), arr(r, 1, 3, 2, 2, low=-2.5, high=2.5)),
               {"padding_mode": "reflection", "align_corners": False}, name="bilinear-reflection"),
        Sample((arr(r, 1, 1, 3, 4), arr(r, 1, 2, 2, 2, low=-2.5, high=2.5)),
               {"padding_mode": "reflection", "align_corners": True}, name="reflection-align"),
        Sample((arr(r, 1, 1, 3, 4), arr(r, 1, 2, 2, 2, low=-1.3, high=1.3)),
               {"mode": "bicubic", "padding_mode": "border", "align_corners": False},
               name="bicubic"),
        Sample((arr(r, 1, 2, 3, 3), arr(r, 1, 2, 3, 2, low=-1.2, high=1.2)),
               {"mode": "nearest", "align_corners": False}, grad=(0,), name="nearest"),
        Sample((arr(r, 1, 1, 2, 3, 2), arr(r, 1, 2, 1, 2, 3, low=-1.2, high=1.2)),
               {"align_corners": False}, name="trilinear"),
    ]),
]
