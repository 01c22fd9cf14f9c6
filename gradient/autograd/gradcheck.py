"""Numerical gradient checks: finite differences against the analytic backward, in float64.

Example::

    >>> x = gradient.randn(3, dtype=gradient.float64, requires_grad=True)
    >>> gradient.autograd.gradcheck(lambda t: (t.sin() * t).sum(), (x,))
    True

``gradcheck`` compares the full Jacobian of ``fn`` (column by column, by central differences)
with the one backward computes (row by row); ``gradgradcheck`` runs ``gradcheck`` on the
function that computes the first gradient with ``create_graph=True``.
On a mismatch both raise :class:`GradcheckError` showing the analytic and numerical values.
"""

from __future__ import annotations

import numpy as np

from ..errors import ArgumentTypeError, AutogradError


class GradcheckError(AutogradError):
    """The analytic gradient differs from the numerical one."""


def _as_tuple(x):
    return x if isinstance(x, tuple) else tuple(x) if isinstance(x, list) else (x,)


def _differentiable_inputs(inputs):
    from ..tensor import Tensor
    return [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]


def _outputs(fn, inputs):
    from ..tensor import Tensor
    return [o for o in _as_tuple(fn(*inputs)) if isinstance(o, Tensor) and o.dtype.is_floating_point]


def _numerical_jacobian(fn, inputs, i, eps):
    """d(outputs)/d(inputs[i]) by central differences: one column per input element."""
    x = inputs[i]
    flat = x._data.reshape(-1) if x._data.flags.c_contiguous else None
    if flat is None:
        raise GradcheckError("gradcheck: inputs must be contiguous")
    columns = []
    # fn runs with grad enabled: gradgradcheck's fn itself calls autograd.grad
    for k in range(flat.size):
        orig = flat[k].copy()
        flat[k] = orig + eps
        plus = [o._backend.to_numpy(o._data).astype(np.float64).ravel() for o in _outputs(fn, inputs)]
        flat[k] = orig - eps
        minus = [o._backend.to_numpy(o._data).astype(np.float64).ravel() for o in _outputs(fn, inputs)]
        flat[k] = orig
        columns.append(np.concatenate([(p - m) / (2 * eps) for p, m in zip(plus, minus)])
                       if plus else np.zeros(0))
    n_out = sum(o.numel() for o in _outputs(fn, inputs))
    return np.stack(columns, axis=1) if columns else np.zeros((n_out, 0))


def _analytic_jacobians(fn, inputs, diff_idx):
    """d(outputs)/d(inputs) from backward: one row per output element (through autograd.grad)."""
    from ..ops.creation import zeros_like
    from .engine import grad
    outputs = _outputs(fn, inputs)
    n_out = sum(o.numel() for o in outputs)
    jac = [np.zeros((n_out, inputs[i].numel())) for i in diff_idx]
    row = 0
    for n, o in enumerate(outputs):
        for k in range(o.numel()):
            grad_out = [zeros_like(x) for x in outputs]
            grad_out[n]._data.reshape(-1)[k] = 1
            used = [x for x, g in zip(outputs, grad_out) if x.requires_grad]
            gouts = [g for x, g in zip(outputs, grad_out) if x.requires_grad]
            if used:
                grads = grad(used, [inputs[i] for i in diff_idx], gouts, retain_graph=True,
                             allow_unused=True)
                for j, g in enumerate(grads):
                    if g is not None:
                        jac[j][row] = g._backend.to_numpy(g._data).astype(np.float64).ravel()
            row += 1
    return jac


# PyTorch's gradcheck options that need no code here: the check is always the full,
# deterministic, backward-mode one, with grads of undefined outputs and dtypes not inspected
_ACCEPTED = {"fast_mode", "nondet_tol", "check_undefined_grad", "check_grad_dtypes",
             "check_backward_ad", "masked", "gen_non_contig_grad_outputs",
             "check_fwd_over_rev", "check_rev_over_rev"}
# ... and those asking for checks gradient has no machinery for (forward mode, vmap)
_UNSUPPORTED = {"check_forward_ad", "check_batched_grad", "check_batched_forward_grad"}


def _check_options(name: str, options: dict) -> None:
    """Refuse unknown options, and options that ask for checks gradient cannot do."""
    for key, value in options.items():
        if key in _UNSUPPORTED:
            if value:
                raise GradcheckError(f"{name}: {key}=True is not supported (gradient has no "
                                     "forward-mode AD or vmap); leave it False")
        elif key not in _ACCEPTED:
            raise ArgumentTypeError(f"{name}() got an unexpected keyword argument {key!r}")


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, **options) -> bool:
    """Check the gradients of ``fn`` at ``inputs`` (tensors that require grad; use float64).

    Returns True when they match; otherwise raises :class:`GradcheckError` (or returns False
    with ``raise_exception=False``). PyTorch's other options are accepted (see
    :func:`_check_options`): the whole Jacobian is always compared, so ``fast_mode`` checks
    no less.
    """
    _check_options("gradcheck", options)
    inputs = _as_tuple(inputs)
    diff_idx = _differentiable_inputs(inputs)
    if not diff_idx:
        raise GradcheckError("gradcheck: no input requires grad; create them with requires_grad=True")
    for i in diff_idx:
        if inputs[i].dtype.name != "float64":
            raise GradcheckError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need "
                                 "float64 inputs (use .double())")
    analytic = _analytic_jacobians(fn, inputs, diff_idx)
    for j, i in enumerate(diff_idx):
        numerical = _numerical_jacobian(fn, inputs, i, eps)
        a = analytic[j]
        if a.shape != numerical.shape or not np.allclose(a, numerical, rtol=rtol, atol=atol):
            if not raise_exception:
                return False
            with np.printoptions(precision=6, suppress=True, linewidth=120, threshold=200):
                raise GradcheckError(
                    f"gradcheck: Jacobian mismatch for input {i} (atol={atol}, rtol={rtol}):\n"
                    f"analytic:\n{a}\nnumerical:\n{numerical}\n"
                    f"largest difference: "
                    f"{np.max(np.abs(a - numerical)) if a.size and a.shape == numerical.shape else 'n/a'}")
    return True


def gradgradcheck(fn, inputs, grad_outputs=None, eps: float = 1e-6, atol: float = 1e-5,
                  rtol: float = 1e-3, raise_exception: bool = True, **options) -> bool:
    """Check second derivatives: gradcheck of the vector-Jacobian product of ``fn``.

    ``grad_outputs`` default to fixed random tensors (treated as further differentiable inputs,
    as PyTorch does), so every second-order term is exercised. Options as :func:`gradcheck`.
    """
    _check_options("gradgradcheck", options)
    from ..ops.creation import tensor
    from .engine import grad

    inputs = _as_tuple(inputs)
    diff_idx = _differentiable_inputs(inputs)
    outputs = _outputs(fn, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = [tensor(rng.standard_normal(tuple(o.shape)), dtype=o.dtype,
                               requires_grad=True) for o in outputs]
    grad_outputs = list(_as_tuple(grad_outputs))
    n = len(inputs)

    def first_grad(*args):
        ins, gos = args[:n], args[n:]
        outs = _outputs(fn, ins)
        pairs = [(o, g) for o, g in zip(outs, gos) if o.requires_grad]
        if not pairs:
            return ()
        grads = grad([o for o, _ in pairs], [ins[i] for i in diff_idx], [g for _, g in pairs],
                     create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None)

    return gradcheck(first_grad, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
