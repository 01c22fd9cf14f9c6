"""Op table entries for the losses and scaled_dot_product_attention (gradient.nn.functional).

Class weights get no gradient (PyTorch has no derivative for nll_loss's weight), so samples
with a weight list the differentiable positions in ``grad``. Targets are built by hand
where they must contain ``ignore_index``.
"""

import numpy as np

from .op_info import OpInfo, Sample, arr, ints, positive


def F(m):
    """``m.nn.functional``, for m = gradient or torch."""
    return m.nn.functional


def _ce(m, x, t, *w, **k):
    return F(m).cross_entropy(x, t, *w, **k)


def _nll(m, x, t, *w, **k):
    return F(m).nll_loss(x, t, *w, **k)


def _probs(r, *shape, dim=1):
    p = positive(r, *shape, low=0.1, high=1.0)
    return p / p.sum(axis=dim, keepdims=True)


def _with_ignored(t, value, *positions):
    t = t.copy()
    for pos in positions:
        t[pos] = value
    return t


def _ce_samples(r):
    R = ("none", "mean", "sum")
    return (
        [Sample((arr(r, 4, 5), ints(r, 4, high=5)), {"reduction": red}, name=red) for red in R]
        + [Sample((arr(r, 4, 5), ints(r, 4, high=5), positive(r, 5)), {"reduction": red}, grad=(0,),
                  name=f"weight-{red}") for red in R]
        + [
            Sample((arr(r, 5, 4), _with_ignored(ints(r, 5, high=4), -100, 1, 3)), name="ignore"),
            Sample((arr(r, 5, 4), _with_ignored(ints(r, 5, high=4), 2, 0)), {"ignore_index": 2},
                   name="ignore-in-range"),
            Sample((arr(r, 5, 4), _with_ignored(ints(r, 5, high=4), -1, 2), positive(r, 4)),
                   {"ignore_index": -1}, grad=(0,), name="weight-ignore"),
            Sample((arr(r, 5, 4), _with_ignored(ints(r, 5, high=4), -1, 2), positive(r, 4)),
                   {"ignore_index": -1, "reduction": "sum"}, grad=(0,), name="weight-ignore-sum"),
        ]
        + [Sample((arr(r, 4, 5), _with_ignored(ints(r, 4, high=5), -100, 1)),
                  {"label_smoothing": 0.2, "reduction": red}, name=f"smooth-ignore-{red}")
           for red in R]
        + [Sample((arr(r, 4, 5), _with_ignored(ints(r, 4, high=5), -100, 1), positive(r, 5)),
                  {"label_smoothing": 0.3, "reduction": red}, grad=(0,),
                  name=f"smooth-weight-{red}")
           for red in R]
        + [
            Sample((arr(r, 2, 3, 4), ints(r, 2, 4, high=3)), name="spatial"),
            Sample((arr(r, 2, 3, 2, 2), _with_ignored(ints(r, 2, 2, 2, high=3), -100, (0, 1, 0)),
                    positive(r, 3)), {"label_smoothing": 0.1, "reduction": "none"}, grad=(0,),
                   name="spatial-2d-all"),
            Sample((arr(r, 2, 3, 4), ints(r, 2, 4, high=3), positive(r, 3)), {"reduction": "sum"},
                   grad=(0,), name="spatial-weight-sum"),
            Sample((arr(r, 6), np.array(4)), name="1d-input-0d-target"),
            Sample((arr(r, 6), np.array(4)), {"reduction": "none", "label_smoothing": 0.2},
                   name="1d-smooth"),
            Sample((arr(r, 0, 4), ints(r, 0, high=4)), {"reduction": "sum"}, name="empty"),
        ]
        + [Sample((arr(r, 3, 4), _probs(r, 3, 4)), {"reduction": red}, name=f"probs-{red}")
           for red in R]
        + [
            Sample((arr(r, 3, 4), _probs(r, 3, 4), positive(r, 4)), {"label_smoothing": 0.2},
                   grad=(0, 1), name="probs-weight-smooth"),
            Sample((arr(r, 2, 3, 2), _probs(r, 2, 3, 2)), {"reduction": "none"},
                   name="probs-spatial"),
            Sample((arr(r, 5), _probs(r, 5, dim=0)), name="probs-1d"),
        ]
    )


def _nll_samples(r):
    return [
        Sample((arr(r, 4, 5), ints(r, 4, high=5))),
        Sample((arr(r, 4, 5), ints(r, 4, high=5)), {"reduction": "none"}, name="none"),
        Sample((arr(r, 4, 5), _with_ignored(ints(r, 4, high=5), -100, 0), positive(r, 5)),
               grad=(0,), name="weight-ignore"),
        Sample((arr(r, 4, 5), _with_ignored(ints(r, 4, high=5), 3, 0), positive(r, 5)),
               {"ignore_index": 3, "reduction": "sum"}, grad=(0,), name="weight-ignore-in-range"),
        Sample((arr(r, 2, 3, 4), ints(r, 2, 4, high=3)), {"reduction": "none"}, name="spatial"),
        Sample((arr(r, 4), np.array(1)), name="1d"),
    ]


def _pointwise_samples(r, extra=None):
    extra = extra or {}
    out = []
    for red in ("none", "mean", "sum"):
        out.append(Sample((arr(r, 3, 4), arr(r, 3, 4)), {"reduction": red, **extra}, name=red))
    out += [
        Sample((arr(r, 3, 4), arr(r, 4)), dict(extra), name="broadcast"),
        Sample((arr(r), arr(r)), dict(extra), name="0-d"),
        Sample((arr(r, 0, 3), arr(r, 0, 3)), {"reduction": "sum", **extra}, name="empty"),
    ]
    return out


def _weighted_samples(r):
    return [Sample((arr(r, 3, 4), arr(r, 3, 4), positive(r, 3, 4)), {"reduction": red},
                   name=f"weight-{red}") for red in ("none", "mean", "sum")]


def _bce_samples(r):
    def p(*shape):
        return r.uniform(0.05, 0.95, size=shape)
    return (
        [Sample((p(3, 4), r.uniform(0, 1, size=(3, 4))), {"reduction": red}, name=red)
         for red in ("none", "mean", "sum")]
        + [
            Sample((p(3, 4), (r.uniform(size=(3, 4)) > 0.5).astype(np.float64), positive(r, 4)),
                   grad=(0, 1), name="weight-broadcast"),
            Sample((p(2, 3), r.uniform(0, 1, size=(2, 3)), positive(r, 2, 3)), {"reduction": "sum"},
                   grad=(0, 1), name="weight-sum"),
            Sample((p(), r.uniform(0, 1, size=())), name="0-d"),
        ]
    )


def _bce_logits(m, x, t, w=None, pw=None, **k):
    return F(m).binary_cross_entropy_with_logits(x, t, w, pos_weight=pw, **k)


def _bce_logits_samples(r):
    return (
        [Sample((arr(r, 3, 4, low=-4, high=4), r.uniform(0, 1, size=(3, 4))), {"reduction": red},
                name=red) for red in ("none", "mean", "sum")]
        + [
            Sample((arr(r, 3, 4), r.uniform(0, 1, size=(3, 4)), positive(r, 3, 4)), grad=(0, 1),
                   name="weight"),
            Sample((arr(r, 3, 4), r.uniform(0, 1, size=(3, 4)), None, positive(r, 4)),
                   {"reduction": "sum"}, grad=(0, 1), name="pos_weight"),
            Sample((arr(r, 2, 3), r.uniform(0, 1, size=(2, 3)), positive(r, 3), positive(r, 3)),
                   {"reduction": "none"}, grad=(0, 1), name="weight-pos_weight"),
            Sample((np.array([-30.0, -5.0, 0.0, 5.0, 30.0]), np.array([0.0, 1.0, 0.5, 0.0, 1.0])),
                   {"reduction": "none"}, name="large-logits"),
        ]
    )


def _kl_samples(r):
    def logp(*shape):
        return np.log(_probs(r, *shape, dim=-1))
    out = [Sample((logp(3, 4), _probs(r, 3, 4, dim=-1)), {"reduction": red}, name=red)
           for red in ("none", "mean", "sum", "batchmean")]
    out += [
        Sample((logp(3, 4), np.log(_probs(r, 3, 4, dim=-1))), {"reduction": "batchmean",
                                                               "log_target": True},
               name="log_target"),
        Sample((logp(2, 3), np.array([[0.0, 0.5, 0.5], [0.2, 0.0, 0.8]])), {"reduction": "none"},
               grad=(0,), name="zero-target"),
        Sample((logp(4), _probs(r, 4, dim=-1)), {"reduction": "batchmean"}, name="1d"),
    ]
    return out


def _sdpa(m, q, k, v, mask=None, **kw):
    return F(m).scaled_dot_product_attention(q, k, v, mask, **kw)


def _sdpa_samples(r):
    def causal_ok(L, S):
        return np.tril(np.ones((L, S), dtype=bool))
    mask = r.uniform(size=(3, 4)) > 0.4
    mask[:, 0] = True                                  # every row sees at least one key
    dead = mask.copy()
    dead[1] = False                                    # a fully masked row: zeros, as PyTorch
    return [
        Sample((arr(r, 2, 3, 2), arr(r, 2, 4, 2), arr(r, 2, 4, 3)), name="basic"),
        Sample((arr(r, 3, 2), arr(r, 4, 2), arr(r, 4, 2)), name="2d"),
        Sample((arr(r, 1, 2, 3, 2), arr(r, 1, 2, 4, 2), arr(r, 1, 2, 4, 2), mask),
               name="bool-mask"),
        Sample((arr(r, 2, 3, 2), arr(r, 2, 4, 2), arr(r, 2, 4, 2), dead), name="fully-masked-row"),
        Sample((arr(r, 2, 3, 2), arr(r, 2, 4, 2), arr(r, 2, 4, 2), arr(r, 3, 4)),
               name="float-mask"),
        Sample((arr(r, 2, 3, 2), arr(r, 2, 4, 2), arr(r, 2, 4, 2), arr(r, 2, 1, 4)),
               name="float-mask-broadcast"),
        Sample((arr(r, 2, 3, 2), arr(r, 2, 3, 2), arr(r, 2, 3, 2)), {"is_causal": True},
               name="causal"),
        Sample((arr(r, 2, 3, 2), arr(r, 2, 4, 2), arr(r, 2, 4, 2)), {"is_causal": True},
               name="causal-L<S"),
        Sample((arr(r, 4, 2), arr(r, 2, 2), arr(r, 2, 3)), {"is_causal": True}, name="causal-L>S"),
        Sample((arr(r, 2, 3, 2), arr(r, 2, 4, 2), arr(r, 2, 4, 2)), {"scale": 0.3}, name="scale"),
        Sample((arr(r, 4, 2, 2), arr(r, 2, 3, 2), arr(r, 2, 3, 2)), {"enable_gqa": True},
               name="gqa"),
        Sample((arr(r, 4, 2, 2), arr(r, 2, 3, 2), arr(r, 1, 3, 2), arr(r, 4, 2, 3)),
               {"enable_gqa": True}, name="gqa-mask-kv-heads-differ"),
        Sample((arr(r, 1, 4, 2, 2), arr(r, 1, 1, 3, 2), arr(r, 1, 1, 3, 2)), {"is_causal": True},
               name="kv-head-broadcast"),
        Sample((arr(r, 2, 3, 2), arr(r, 1, 4, 2), arr(r, 1, 4, 2)), {"dropout_p": 0.0},
               name="batch-broadcast-dropout0"),
        Sample((arr(r, 3, 2), arr(r, 3, 2), arr(r, 3, 2), causal_ok(3, 3)), name="bool-mask-2d"),
    ]


OPS = [
    OpInfo("cross_entropy", _ce, _ce_samples),
    OpInfo("nll_loss", _nll, _nll_samples),
    OpInfo("mse_loss", lambda m, x, t, **k: F(m).mse_loss(x, t, **k), _pointwise_samples),
    OpInfo("mse_loss_weight", lambda m, x, t, w, **k: F(m).mse_loss(x, t, weight=w, **k),
           _weighted_samples),
    OpInfo("l1_loss", lambda m, x, t, **k: F(m).l1_loss(x, t, **k), _pointwise_samples),
    OpInfo("l1_loss_weight", lambda m, x, t, w, **k: F(m).l1_loss(x, t, weight=w, **k),
           _weighted_samples),
    OpInfo("smooth_l1_loss", lambda m, x, t, **k: F(m).smooth_l1_loss(x, t, **k),
           lambda r: _pointwise_samples(r) + [
               Sample((arr(r, 3, 4), arr(r, 3, 4)), {"beta": 0.5}, name="beta"),
               Sample((arr(r, 3, 4), arr(r, 3, 4)), {"beta": 0.0}, name="beta0"),
           ]),
    OpInfo("huber_loss", lambda m, x, t, **k: F(m).huber_loss(x, t, **k),
           lambda r: _pointwise_samples(r, {"delta": 0.7}) + [
               Sample((arr(r, 3, 4), arr(r, 3, 4)), name="default-delta"),
           ]),
    OpInfo("huber_loss_weight", lambda m, x, t, w, **k: F(m).huber_loss(x, t, weight=w, **k),
           _weighted_samples),
    OpInfo("binary_cross_entropy",
           lambda m, x, t, *w, **k: F(m).binary_cross_entropy(x, t, *w, **k), _bce_samples),
    OpInfo("binary_cross_entropy_with_logits", _bce_logits, _bce_logits_samples),
    OpInfo("kl_div", lambda m, x, t, **k: F(m).kl_div(x, t, **k), _kl_samples),
    OpInfo("scaled_dot_product_attention", _sdpa, _sdpa_samples),
]
