"""Adamax: Adam with the second moment replaced by an exponentially weighted infinity norm."""

from ..autograd import no_grad
from ..ops.creation import zeros_like
from ..ops.elementwise import maximum
from .optimizer import (Optimizer, advance_step, as_tuple, check_adam_hyperparameters,
                        fused_step, step_counter)


class Adamax(Optimizer):
    """Adamax (Kingma & Ba, 2014, section 7) with PyTorch's update rule (``torch.optim.Adamax``).

    Per step ``t``, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p                    (L2 penalty, when weight_decay != 0)
        m = beta1 * m + (1 - beta1) * g
        u = max(beta2 * u, |g| + eps)               (the weighted infinity norm)
        p = p - lr / (1 - beta1**t) * m / u

    Note that, as in PyTorch, ``eps`` is added to ``|g|`` inside the maximum (not to the
    denominator). State per parameter: ``step`` (a 0-d tensor), ``exp_avg`` (m) and
    ``exp_inf`` (u).

    Example::

        opt = gradient.optim.Adamax(model.parameters(), lr=2e-3, betas=(0.9, 0.999))
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        defaults = dict(lr=lr, betas=as_tuple(betas), eps=eps, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        self._validate(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        check_adam_hyperparameters(group)

    def step(self, closure=None):
        """One Adamax update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                beta1, beta2 = group["betas"]
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = step_counter()
                    state["exp_avg"] = zeros_like(p)
                    state["exp_inf"] = zeros_like(p)
                adamax_update(p, p.grad, state, lr=float(group["lr"]), beta1=beta1, beta2=beta2,
                              eps=group["eps"], weight_decay=group["weight_decay"],
                              maximize=group["maximize"])
        return loss


def adamax_update(p, grad, state, *, lr, beta1, beta2, eps, weight_decay, maximize):
    """Update ``p`` in place from ``grad`` and its Adamax ``state`` (PyTorch's single-tensor path)."""
    step = advance_step(state["step"])
    exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
    if fused_step("adamax_step", p, grad, exp_avg, exp_inf, lr=lr, beta1=beta1, beta2=beta2,
                  eps=eps, weight_decay=weight_decay, maximize=maximize, step=step):
        return                        # (the operations below, in their order: the same bits)
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(p, alpha=weight_decay)

    exp_avg.lerp_(grad, 1 - beta1)
    exp_inf.copy_(maximum(exp_inf.mul_(beta2), grad.abs() + eps))

    clr = lr / (1 - beta1 ** step)
    p.addcdiv_(exp_avg, exp_inf, value=-clr)
