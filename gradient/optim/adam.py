"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

from ..autograd import no_grad
from ..ops.creation import zeros_like
from ..ops.elementwise import maximum
from .optimizer import (Optimizer, advance_step, as_tuple, check_adam_hyperparameters,
                        fused_step, step_counter)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014) with PyTorch's update rule (``torch.optim.Adam``).

    Per step ``t``, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p        (L2 penalty; AdamW instead does p *= 1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)           (amsgrad only; then v_max replaces v below)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    State per parameter: ``step`` (a 0-d tensor), ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with
    amsgrad, ``max_exp_avg_sq``.

    Example::

        opt = gradient.optim.Adam(model.parameters(), lr=3e-4, betas=(0.9, 0.95))
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=as_tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        self._validate(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        check_adam_hyperparameters(group)

    def step(self, closure=None):
        """One Adam update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                beta1, beta2 = group["betas"]
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = step_counter()
                    state["exp_avg"] = zeros_like(p)
                    state["exp_avg_sq"] = zeros_like(p)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = zeros_like(p)
                adam_update(p, p.grad, state, lr=float(group["lr"]), beta1=beta1, beta2=beta2,
                            eps=group["eps"], weight_decay=group["weight_decay"],
                            amsgrad=group["amsgrad"], maximize=group["maximize"],
                            decoupled_weight_decay=group["decoupled_weight_decay"])
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2017), as ``torch.optim.AdamW``.

    The decay shrinks the weights directly (``p *= 1 - lr * weight_decay``) instead of being added
    to the gradient, so it is not rescaled by Adam's per-coordinate step sizes. The default
    ``weight_decay`` is 1e-2. Example (nanoGPT's setup: decay only the matrices)::

        groups = [{'params': [p for p in model.parameters() if p.dim() >= 2], 'weight_decay': 0.1},
                  {'params': [p for p in model.parameters() if p.dim() < 2], 'weight_decay': 0.0}]
        opt = gradient.optim.AdamW(groups, lr=6e-4, betas=(0.9, 0.95), fused=True)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group in self.param_groups:  # an Adam state dict loaded here still decays decoupled
            group["decoupled_weight_decay"] = True


def adam_update(p, grad, state, *, lr, beta1, beta2, eps, weight_decay, amsgrad, maximize,
                decoupled_weight_decay):
    """Update ``p`` in place from ``grad`` and its Adam ``state`` (PyTorch's single-tensor path)."""
    step_t = state["step"]
    step = advance_step(step_t)
    if _fused_update(p, grad, state, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                     weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                     decoupled_weight_decay=decoupled_weight_decay, step=step):
        return
    if maximize:
        grad = -grad
    if weight_decay != 0:
        if decoupled_weight_decay:
            p.mul_(1 - lr * weight_decay)
        else:
            grad = grad.add(p, alpha=weight_decay)

    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)

    # the bias corrections undo the zero start of m and v; they are Python floats (in double)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    step_size = lr / bias_correction1
    if amsgrad:
        max_exp_avg_sq = state["max_exp_avg_sq"]
        max_exp_avg_sq.copy_(maximum(max_exp_avg_sq, exp_avg_sq))
        second = max_exp_avg_sq
    else:
        second = exp_avg_sq
    denom = (second.sqrt() / bias_correction2_sqrt).add_(eps)
    p.addcdiv_(exp_avg, denom, value=-step_size)


def _fused_update(p, grad, state, *, amsgrad, **hyper) -> bool:
    """The update below by :func:`~.optimizer.fused_step`; False where it does not run.

    The kernel performs the same float operations in the same order, so both paths give the
    same bits (tested).
    """
    return fused_step("adam_step", p, grad, state["exp_avg"], state["exp_avg_sq"],
                      state["max_exp_avg_sq"] if amsgrad else None, **hyper)
