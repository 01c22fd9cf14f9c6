"""RAdam: Adam whose adaptive step is switched on (and rectified) once its variance is tractable."""

from ..autograd import no_grad
from ..ops.creation import zeros_like
from .optimizer import (Optimizer, advance_step, as_tuple, check_adam_hyperparameters,
                        step_counter)


class RAdam(Optimizer):
    """RAdam (Liu et al., 2019) with PyTorch's update rule (``torch.optim.RAdam``).

    Per step ``t``, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p           (L2 penalty; with decoupled_weight_decay, "RAdamW",
                                            p *= 1 - lr * weight_decay instead)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * t * beta2**t / (1 - beta2**t)     (length of the approximated SMA)
        m_hat = m / (1 - beta1**t)
        rho_t > 5:  r = sqrt((rho_t - 4) (rho_t - 2) rho_inf / ((rho_inf - 4) (rho_inf - 2) rho_t))
                    p = p - lr * m_hat * sqrt(1 - beta2**t) / (sqrt(v) + eps) * r
        otherwise:  p = p - lr * m_hat                        (SGD with momentum: no warmup needed)

    State per parameter: ``step`` (a 0-d tensor), ``exp_avg`` (m) and ``exp_avg_sq`` (v).

    Example::

        opt = gradient.optim.RAdam(model.parameters(), lr=1e-3, weight_decay=1e-2,
                                   decoupled_weight_decay=True)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        defaults = dict(lr=lr, betas=as_tuple(betas), eps=eps, weight_decay=weight_decay,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        self._validate(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        check_adam_hyperparameters(group)

    def step(self, closure=None):
        """One RAdam update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                beta1, beta2 = group["betas"]
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = step_counter()
                    state["exp_avg"] = zeros_like(p)
                    state["exp_avg_sq"] = zeros_like(p)
                radam_update(p, p.grad, state, lr=float(group["lr"]), beta1=beta1, beta2=beta2,
                             eps=group["eps"], weight_decay=group["weight_decay"],
                             decoupled_weight_decay=group["decoupled_weight_decay"],
                             maximize=group["maximize"])
        return loss


def radam_update(p, grad, state, *, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay,
                 maximize):
    """Update ``p`` in place from ``grad`` and its RAdam ``state`` (PyTorch's single-tensor path)."""
    if maximize:
        grad = -grad
    step_t = state["step"]
    step = advance_step(step_t)
    if weight_decay != 0:
        if decoupled_weight_decay:
            p.mul_(1 - lr * weight_decay)
        else:
            grad = grad.add(p, alpha=weight_decay)

    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)

    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    bias_corrected_exp_avg = exp_avg / bias_correction1

    # rho_t estimates how many gradients the variance average really holds; below 5 the
    # adaptive step's variance is divergent, so the step is plain momentum SGD
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
    if rho_t > 5.0:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        # torch's `scalar / tensor` is tensor.reciprocal() * scalar: written so to round alike
        adaptive_lr = ((exp_avg_sq.sqrt() + eps).reciprocal() * bias_correction2 ** 0.5)
        p.sub_(bias_corrected_exp_avg * lr * adaptive_lr * rect)
    else:
        p.sub_(bias_corrected_exp_avg * lr)
