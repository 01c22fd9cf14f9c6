"""Adafactor: Adam-like second moments stored as row and column factors, with relative steps."""

from ..autograd import no_grad
from ..dtypes import finfo
from ..ops.creation import zeros, zeros_like
from .optimizer import Optimizer, advance_step, check_unsupported, check_value, step_counter
from ..errors import ArgumentTypeError


class Adafactor(Optimizer):
    """Adafactor (Shazeer & Stern, 2018) with PyTorch's update rule (``torch.optim.Adafactor``).

    Per step ``t``, with ``g`` the gradient (negated when ``maximize``) and ``rms(x)`` the root
    mean square ``norm(x) / sqrt(x.numel())``::

        beta = t ** beta2_decay                         (the weight of the new g*g: 1, then decays)
        rho = min(lr, 1 / sqrt(t))                      (the relative step size)
        alpha = max(eps2, rms(p)) * rho                 (the step is relative to the weights' size)
        p = p * (1 - lr * weight_decay)                 (decoupled, when weight_decay != 0)
        for a matrix (or a stack of them, factored over the last two dims):
            R = lerp(R, mean(g*g, dim=-1), beta);  C = lerp(C, mean(g*g, dim=-2), beta)
            v = R @ C / max(mean(R, dim=-2), eps1)      (a rank-1 estimate of the second moment)
        otherwise:  v = lerp(v, g*g, beta)
        u = g / sqrt(max(v, eps1 ** 2))
        p = p - alpha * u / max(1, rms(u) / d)          (updates clipped to an RMS of d)

    There is no first moment, and a matrix of shape (n, m) keeps n + m numbers of state instead of
    n * m. ``eps`` is the pair ``(eps1, eps2)``; ``eps1=None`` means the parameter dtype's
    machine epsilon. State per parameter: ``step``, and ``row_var`` and ``col_var`` (matrices) or
    ``variance`` (vectors and scalars).

    ``foreach`` is accepted and has no effect. Unlike torch, an ``eps1`` of None is resolved
    per parameter (torch takes the first parameter's dtype for the whole group); the two agree
    whenever a group has one dtype.

    Example::

        opt = gradient.optim.Adafactor(model.parameters(), lr=1e-2, weight_decay=0.01)
        opt.zero_grad(); loss.backward(); opt.step()
    """

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                 weight_decay=0.0, *, foreach=None, maximize=False):
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize)
        self._validate(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        check_unsupported(group)
        check_value("learning rate", group["lr"], group["lr"] >= 0, "lr >= 0")
        check_value("beta2_decay value", group["beta2_decay"], group["beta2_decay"] <= 0,
                    "beta2_decay <= 0")
        eps = group["eps"]
        check_value("epsilon values", eps, isinstance(eps, (tuple, list)) and len(eps) == 2,
                    "a pair (eps1 or None, eps2)")
        check_value("epsilon1 value", eps[0], eps[0] is None or eps[0] >= 0, "eps1 >= 0 or None")
        check_value("epsilon2 value", eps[1], eps[1] >= 0, "eps2 >= 0")
        check_value("clipping threshold d", group["d"], group["d"] >= 1, "d >= 1")
        check_value("weight_decay value", group["weight_decay"], group["weight_decay"] >= 0,
                    "weight_decay >= 0")

    def step(self, closure=None):
        """One Adafactor update of every parameter that has a gradient; returns ``closure()``'s
        loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                eps1, eps2 = group["eps"]
                if not p.is_floating_point():
                    raise ArgumentTypeError(f"Adafactor: parameters must be floating point, got "
                                            f"{p.dtype}")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = step_counter()
                    if p.grad.dim() > 1:
                        # factored second moment: one number per row and one per column
                        shape = list(p.grad.shape)
                        state["row_var"] = zeros(*shape[:-1], 1, dtype=p.grad.dtype,
                                                 device=p.grad.device)
                        state["col_var"] = zeros(*shape[:-2], 1, shape[-1],
                                                 dtype=p.grad.dtype, device=p.grad.device)
                    else:
                        state["variance"] = zeros_like(p.grad)
                adafactor_update(p, p.grad, state, lr=float(group["lr"]),
                                 beta2_decay=group["beta2_decay"],
                                 eps1=finfo(p.dtype).eps if eps1 is None else eps1, eps2=eps2,
                                 d=group["d"], weight_decay=group["weight_decay"],
                                 maximize=group["maximize"])
        return loss


def _rms(t) -> float:
    return t.norm(2).item() / (t.numel() ** 0.5)


def adafactor_update(p, grad, state, *, lr, beta2_decay, eps1, eps2, d, weight_decay, maximize):
    """Update ``p`` in place from ``grad`` and its Adafactor ``state``."""
    if maximize:
        grad = -grad
    step_t = state["step"]
    step = advance_step(step_t)
    beta = step ** beta2_decay
    rho = min(lr, 1 / step ** 0.5)
    alpha = max(eps2, _rms(p)) * rho  # measured before the weight decay, as torch does

    if weight_decay != 0:
        p.mul_(1 - lr * weight_decay)

    if grad.dim() > 1:
        row_var, col_var = state["row_var"], state["col_var"]
        # mean(g * g) written as norm(g)^2 / n, which is how torch rounds it
        row_var.lerp_(grad.norm(dim=-1, keepdim=True).square() / grad.shape[-1], beta)
        col_var.lerp_(grad.norm(dim=-2, keepdim=True).square() / grad.shape[-2], beta)
        # the outer product R C over-counts the total by mean(R); dividing makes it unbiased
        var_estimate = (row_var @ col_var) / row_var.mean(dim=-2, keepdim=True).clamp(min=eps1)
    else:
        variance = state["variance"]
        variance.lerp_(grad * grad, beta)
        var_estimate = variance

    update = var_estimate.clamp(min=eps1 * eps1).rsqrt() * grad
    denom = max(1.0, update.norm(2).item() / (update.numel() ** 0.5 * d))
    p.add_(update, alpha=-alpha / denom)
