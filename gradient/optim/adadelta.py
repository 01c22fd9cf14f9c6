"""Adadelta: step sizes from running averages of squared gradients and of squared updates."""

from ..autograd import no_grad
from ..ops.creation import zeros_like
from .optimizer import Optimizer, advance_step, check_unsupported, check_value, step_counter


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012) with PyTorch's update rule (``torch.optim.Adadelta``).

    Per step, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p                          (when weight_decay != 0)
        v = rho * v + (1 - rho) * g * g                   (square_avg)
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta           (acc_delta)
        p = p - lr * delta

    The ratio of the two running RMS values gives each coordinate a step in the units of the
    parameter, so ``lr`` (default 1.0) only rescales it. State per parameter: ``step``,
    ``square_avg`` (v) and ``acc_delta`` (u).

    Example::

        opt = gradient.optim.Adadelta(model.parameters(), lr=1.0, rho=0.9)
        opt.zero_grad(); loss.backward(); opt.step()
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        self._validate(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        check_unsupported(group)
        check_value("learning rate", group["lr"], group["lr"] >= 0, "lr >= 0")
        check_value("rho value", group["rho"], 0 <= group["rho"] <= 1, "0 <= rho <= 1")
        check_value("epsilon value", group["eps"], group["eps"] >= 0, "eps >= 0")
        check_value("weight_decay value", group["weight_decay"], group["weight_decay"] >= 0,
                    "weight_decay >= 0")

    def step(self, closure=None):
        """One Adadelta update of every parameter with a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = step_counter()
                    state["square_avg"] = zeros_like(p)
                    state["acc_delta"] = zeros_like(p)
                adadelta_update(p, p.grad, state, lr=float(group["lr"]), rho=group["rho"],
                                eps=group["eps"], weight_decay=group["weight_decay"],
                                maximize=group["maximize"])
        return loss


def adadelta_update(p, grad, state, *, lr, rho, eps, weight_decay, maximize):
    """Update ``p`` in place from ``grad`` and its Adadelta ``state``."""
    advance_step(state["step"])
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(p, alpha=weight_decay)
    square_avg, acc_delta = state["square_avg"], state["acc_delta"]
    square_avg.mul_(rho).addcmul_(grad, grad, value=1 - rho)     # (PyTorch's ops, in order)
    std = (square_avg + eps).sqrt()
    delta = (acc_delta + eps).sqrt() / std * grad
    acc_delta.mul_(rho).addcmul_(delta, delta, value=1 - rho)
    p.add_(delta, alpha=-lr)
