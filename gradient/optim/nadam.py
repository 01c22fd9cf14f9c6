"""NAdam: Adam with Nesterov momentum, whose momentum coefficient warms up over the steps."""

from ..autograd import no_grad
from ..ops.creation import zeros_like
from .optimizer import (Optimizer, advance_step, as_tuple, check_adam_hyperparameters, check_value,
                        step_counter)


class NAdam(Optimizer):
    """NAdam (Dozat, 2016) with PyTorch's update rule (``torch.optim.NAdam``).

    Per step ``t``, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p           (L2 penalty; with decoupled_weight_decay, "NAdamW",
                                            p *= 1 - lr * weight_decay instead)
        mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))       (the momentum warms up)
        P_t = mu_1 * ... * mu_t
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        d = sqrt(v / (1 - beta2**t)) + eps
        p = p - lr * (1 - mu_t) / (1 - P_t) * g / d - lr * mu_{t+1} / (1 - P_t * mu_{t+1}) * m / d

    State per parameter: ``step`` and ``mu_product`` (P_t; 0-d tensors, kept in float32 as in
    PyTorch, so the product rounds the same way), ``exp_avg`` (m) and ``exp_avg_sq`` (v).

    Example::

        opt = gradient.optim.NAdam(model.parameters(), lr=2e-3, momentum_decay=4e-3)
        opt.zero_grad(); loss.backward(); opt.step()
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        defaults = dict(lr=lr, betas=as_tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable)
        self._validate(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        check_adam_hyperparameters(group)
        check_value("momentum_decay value", group["momentum_decay"], group["momentum_decay"] >= 0,
                    "momentum_decay >= 0")

    def step(self, closure=None):
        """One NAdam update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                beta1, beta2 = group["betas"]
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = step_counter()
                    state["mu_product"] = step_counter().fill_(1.0)
                    state["exp_avg"] = zeros_like(p)
                    state["exp_avg_sq"] = zeros_like(p)
                nadam_update(p, p.grad, state, lr=float(group["lr"]), beta1=beta1, beta2=beta2,
                             eps=group["eps"], weight_decay=group["weight_decay"],
                             momentum_decay=group["momentum_decay"],
                             decoupled_weight_decay=group["decoupled_weight_decay"],
                             maximize=group["maximize"])
        return loss


def nadam_update(p, grad, state, *, lr, beta1, beta2, eps, weight_decay, momentum_decay,
                 decoupled_weight_decay, maximize):
    """Update ``p`` in place from ``grad`` and its NAdam ``state`` (PyTorch's single-tensor path)."""
    if maximize:
        grad = -grad
    step_t = state["step"]
    step = advance_step(step_t)
    bias_correction2 = 1 - beta2 ** step
    if weight_decay != 0:
        if decoupled_weight_decay:
            p.mul_(1 - lr * weight_decay)
        else:
            grad = grad.add(p, alpha=weight_decay)

    # the momentum schedule of this step and the next (Python floats, in double)
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    mu_product_t = state["mu_product"]
    mu_product_t.mul_(mu)  # in the tensor's float32, as torch does
    mu_product = mu_product_t.item()
    mu_product_next = mu_product * mu_next

    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = exp_avg_sq.div(bias_correction2).sqrt().add_(eps)

    # Nesterov: part of the step uses the current gradient, part the updated momentum
    p.addcdiv_(grad, denom, value=-lr * (1.0 - mu) / (1.0 - mu_product))
    p.addcdiv_(exp_avg, denom, value=(-lr * mu_next) / (1.0 - mu_product_next))
