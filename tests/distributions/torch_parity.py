"""A gradient distribution against torch's on the same float64 parameters: the comparison the
distribution test tables share (values, shapes and parameter gradients of named quantities).

Example::

    build = lambda lib: (make(lib), params)          # the distribution and its leaf tensors
    assert_values_match(build, quantity, ["log_prob", "mean"], rtol=1e-10, atol=1e-12, case="Normal")
    ours, theirs = weighted_gradients(build, quantity, ["log_prob", "mean"], seed=1, case="Normal")
"""

import numpy as np
import pytest

import gradient

torch = pytest.importorskip("torch")


def tensor(lib, a, requires_grad=False):
    """``a`` as a float64 tensor of ``lib`` (gradient or torch)."""
    if lib is torch:
        return torch.tensor(a, dtype=torch.float64, requires_grad=requires_grad)
    return gradient.tensor(a, dtype=gradient.float64, requires_grad=requires_grad)


def as_numpy(t):
    return t.detach().numpy()


def assert_values_match(build, quantity, names, *, rtol, atol, case, equal_nan=True):
    """The two distributions ``build(lib)[0]`` have the same batch and event shapes, and each
    quantity ``quantity(dist, name, lib)`` in ``names`` the same shape and values."""
    ours, _ = build(gradient)
    theirs, _ = build(torch)
    assert tuple(ours.batch_shape) == tuple(theirs.batch_shape)
    assert tuple(ours.event_shape) == tuple(theirs.event_shape)
    for name in names:
        o, t = quantity(ours, name, gradient), quantity(theirs, name, torch)
        assert tuple(o.shape) == tuple(t.shape), f"{case}.{name}: {tuple(o.shape)} != {tuple(t.shape)}"
        np.testing.assert_allclose(as_numpy(o), as_numpy(t), rtol=rtol, atol=atol,
                                   equal_nan=equal_nan, err_msg=f"{case}.{name}")


def weighted_gradients(build, quantity, names, *, seed, case, every=False):
    """The gradients (ours, torch's) of the parameters that ``build(lib)`` returns with its
    distribution, of a random weighting (``seed``, the same weights for both) of the quantities
    in ``names``. Quantities that are not floating, not finite (Cauchy's mean) or constant
    (torch's ``zeros_like`` modes) are left out, and at least one must remain; with
    ``every=True`` none may be left out."""
    grads = []
    for lib in (gradient, torch):
        dist, params = build(lib)
        weights = np.random.default_rng(seed)
        total = 0
        for name in names:
            q = quantity(dist, name, lib)
            w = weights.standard_normal(tuple(q.shape))  # drawn for every quantity: same in both
            counts = (q.dtype.is_floating_point and np.isfinite(as_numpy(q)).all()
                      and q.requires_grad)
            assert counts or not every, f"{case}.{name}: not a finite differentiable value"
            if not counts:
                continue
            total = total + (q * tensor(lib, w)).sum()
        assert not isinstance(total, int), f"{case}: nothing differentiable to compare"
        total.backward()
        grads.append({k: v.grad for k, v in params.items() if v.requires_grad})
    return tuple(grads)


def assert_gradients_match(ours, theirs, *, rtol, atol, case):
    """Each parameter's gradient equal to torch's; where torch has none, ours is none or zero."""
    for k in theirs:
        if theirs[k] is None:
            assert ours[k] is None or not np.any(as_numpy(ours[k])), f"{case}: grad of {k}"
            continue
        assert ours[k] is not None, f"{case}: no gradient for {k}"
        np.testing.assert_allclose(as_numpy(ours[k]), as_numpy(theirs[k]), rtol=rtol, atol=atol,
                                   err_msg=f"{case}: grad of {k}")
