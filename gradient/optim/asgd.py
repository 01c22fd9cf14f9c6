"""ASGD: stochastic gradient descent with a decaying step size and a running (Polyak) average."""

from ..autograd import no_grad
from ..ops.creation import zeros_like
from .optimizer import Optimizer, advance_step, check_unsupported, check_value, step_counter


class ASGD(Optimizer):
    """Averaged SGD (Polyak & Juditsky, 1992) with PyTorch's update rule (``torch.optim.ASGD``).

    Per step ``t``, with ``g`` the gradient (negated when ``maximize``) and ``eta``, ``mu`` the
    values left by the previous step (``eta = lr`` and ``mu = 1`` at the start)::

        g = g + weight_decay * p                          (when weight_decay != 0)
        p = p * (1 - lambd * eta) - eta * g
        ax = p if mu == 1 else ax + mu * (p - ax)         (the averaged parameters)
        eta = lr / (1 + lambd * lr * t) ** alpha
        mu = 1 / max(1, t - t0)                           (averaging starts after t0 steps)

    The parameters themselves follow plain (decaying-step) SGD; the average is kept in the
    state as ``ax``, for the caller to copy into the model at the end, as in PyTorch. State per
    parameter: ``step``, ``eta`` and ``mu`` (0-d tensors) and ``ax``.

    Example::

        opt = gradient.optim.ASGD(model.parameters(), lr=0.01, t0=1000)
        ...                                               # train
        with gradient.no_grad():                          # then use the averaged weights
            for p in model.parameters():
                p.copy_(opt.state[p]["ax"])
    """

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        self._validate(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        check_unsupported(group)
        check_value("learning rate", group["lr"], group["lr"] >= 0, "lr >= 0")
        check_value("weight_decay value", group["weight_decay"], group["weight_decay"] >= 0,
                    "weight_decay >= 0")

    def step(self, closure=None):
        """One ASGD update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = step_counter()
                    state["eta"] = step_counter().fill_(float(group["lr"]))
                    state["mu"] = step_counter().fill_(1.0)
                    state["ax"] = zeros_like(p)
                asgd_update(p, p.grad, state, lr=float(group["lr"]), lambd=group["lambd"],
                            alpha=group["alpha"], t0=group["t0"],
                            weight_decay=group["weight_decay"], maximize=group["maximize"])
        return loss


def asgd_update(p, grad, state, *, lr, lambd, alpha, t0, weight_decay, maximize):
    """Update ``p`` in place from ``grad`` and its ASGD ``state``."""
    if maximize:
        grad = -grad
    step_t = state["step"]
    advance_step(step_t)
    if weight_decay != 0:
        grad = grad.add(p, alpha=weight_decay)

    # eta and mu are 0-d tensors in the state (float32 unless the default dtype is float64):
    # their rounded values are what the update uses, as in torch
    eta = state["eta"].item()
    p.mul_(1 - lambd * eta)
    p.add_(grad, alpha=-eta)

    ax, mu = state["ax"], state["mu"].item()
    if mu != 1:
        ax.add_((p - ax) * mu)
    else:
        ax.copy_(p)  # before t0 the "average" is just the latest iterate

    step = step_t.item()
    state["eta"].fill_(lr / ((1 + lambd * lr * step) ** alpha))
    state["mu"].fill_(1 / max(1, step - t0))
