"""RMSprop: divide the gradient by a running root mean square of recent gradients."""

from ..autograd import no_grad
from ..ops.creation import zeros_like
from .optimizer import (Optimizer, advance_step, check_unsupported, check_value, fused_step,
                        step_counter)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture notes) with PyTorch's update rule (``torch.optim.RMSprop``).

    Per step, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p                          (when weight_decay != 0)
        v = alpha * v + (1 - alpha) * g * g
        a = alpha * a + (1 - alpha) * g                   (centered only)
        d = sqrt(v - a * a) if centered else sqrt(v), then d = d + eps
        b = momentum * b + g / d;  p = p - lr * b         (momentum > 0)
        p = p - lr * g / d                                (otherwise)

    Note that ``eps`` is added outside the square root, as in PyTorch (Keras adds it inside).
    State per parameter: ``step``, ``square_avg``, and ``momentum_buffer`` / ``grad_avg`` when
    momentum > 0 / centered.

    Example::

        opt = gradient.optim.RMSprop(model.parameters(), lr=1e-3, momentum=0.9, centered=True)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        self._validate(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        check_unsupported(group)
        check_value("learning rate", group["lr"], group["lr"] >= 0, "lr >= 0")
        check_value("epsilon value", group["eps"], group["eps"] >= 0, "eps >= 0")
        check_value("momentum value", group["momentum"], group["momentum"] >= 0, "momentum >= 0")
        check_value("weight_decay value", group["weight_decay"], group["weight_decay"] >= 0,
                    "weight_decay >= 0")
        check_value("alpha value", group["alpha"], group["alpha"] >= 0, "alpha >= 0")

    def step(self, closure=None):
        """One RMSprop update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = step_counter()
                    state["square_avg"] = zeros_like(p)
                    if group["momentum"] > 0:
                        state["momentum_buffer"] = zeros_like(p)
                    if group["centered"]:
                        state["grad_avg"] = zeros_like(p)
                rmsprop_update(p, p.grad, state, lr=float(group["lr"]), alpha=group["alpha"],
                               eps=group["eps"], weight_decay=group["weight_decay"],
                               momentum=group["momentum"], centered=group["centered"],
                               maximize=group["maximize"])
        return loss


def rmsprop_update(p, grad, state, *, lr, alpha, eps, weight_decay, momentum, centered, maximize):
    """Update ``p`` in place from ``grad`` and its RMSprop ``state``."""
    advance_step(state["step"])
    if _fused_update(p, grad, state, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                     momentum=momentum, centered=centered, maximize=maximize):
        return
    if maximize:
        grad = -grad
    if weight_decay != 0:
        grad = grad.add(p, alpha=weight_decay)

    square_avg = state["square_avg"]
    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)   # (PyTorch's ops, in order)
    if centered:
        # subtracting the squared mean gives a running variance rather than a second moment
        grad_avg = state["grad_avg"]
        grad_avg.lerp_(grad, 1 - alpha)
        avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
    else:
        avg = square_avg.sqrt()
    avg = avg.add_(eps)

    if momentum > 0:
        buf = state["momentum_buffer"]
        buf.mul_(momentum).addcdiv_(grad, avg)
        p.add_(buf, alpha=-lr)
    else:
        p.addcdiv_(grad, avg, value=-lr)


def _fused_update(p, grad, state, *, momentum, centered, **hyper) -> bool:
    """The update above by :func:`~.optimizer.fused_step`; False where it does not run."""
    return fused_step("rmsprop_step", p, grad, state["square_avg"],
                      state["grad_avg"] if centered else None,
                      state["momentum_buffer"] if momentum > 0 else None, momentum=momentum,
                      **hyper)
