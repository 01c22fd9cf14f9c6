"""Stochastic gradient descent, with optional momentum, dampening, Nesterov and weight decay."""

from ..autograd import no_grad
from ..ops.creation import empty_like
from .optimizer import (Optimizer, OptimizerError, check_unsupported, check_value, fused_step,
                        sparse_rows)


class SGD(Optimizer):
    """Stochastic gradient descent, with PyTorch's update rule (``torch.optim.SGD``).

    Per step, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p                      (L2 penalty, when weight_decay != 0)
        b = g on the first step, else momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b       (when momentum != 0)
        p = p - lr * g

    State per parameter: ``momentum_buffer`` (only when momentum != 0). A sparse gradient
    (``nn.Embedding(sparse=True)``) moves only the rows it holds; with momentum or weight decay,
    which move every row, it is used as the dense gradient of the same values.

    Example::

        opt = gradient.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        opt.zero_grad(); loss.backward(); opt.step()
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False,
                 *, maximize=False, foreach=None, differentiable=False, fused=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)
        self._validate(defaults)
        super().__init__(params, defaults)

    takes_sparse_grads = True

    def _check_hyperparameters(self, group):
        check_unsupported(group)
        check_value("learning rate", group["lr"], group["lr"] >= 0, "lr >= 0")
        check_value("momentum value", group["momentum"], group["momentum"] >= 0, "momentum >= 0")
        check_value("weight_decay value", group["weight_decay"], group["weight_decay"] >= 0,
                    "weight_decay >= 0")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise OptimizerError(f"Nesterov momentum requires a momentum and zero dampening (got "
                                 f"momentum={group['momentum']}, dampening={group['dampening']})")

    def step(self, closure=None):
        """One SGD update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                state = self.state[p] if group["momentum"] != 0 else None
                sgd_update(p, p.grad, state, lr=float(group["lr"]), momentum=group["momentum"],
                           dampening=group["dampening"], weight_decay=group["weight_decay"],
                           nesterov=group["nesterov"], maximize=group["maximize"])
        return loss


def sgd_update(p, grad, state, *, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """Update ``p`` in place from ``grad`` (``state`` holds the momentum buffer, if any)."""
    if not grad.is_sparse and _fused_update(
            p, grad, state, lr=lr, momentum=momentum, dampening=dampening,
            weight_decay=weight_decay, nesterov=nesterov, maximize=maximize):
        return
    if maximize:
        grad = -grad
    if grad.is_sparse:
        if momentum == 0 and weight_decay == 0:
            rows, values = sparse_rows(p, grad)   # only the rows looked up move
            p.index_add_(0, rows, values, alpha=-lr)
            return
        # decay and momentum move every row: the dense gradient of the same values
        grad = grad.to_dense()
    if weight_decay != 0:
        grad = grad.add(p, alpha=weight_decay)
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            # the first step starts the buffer at the gradient itself, undamped (PyTorch's rule)
            buf = state["momentum_buffer"] = grad.detach().clone()
        else:
            buf.mul_(momentum).add_(grad, alpha=1 - dampening)
        grad = grad.add(buf, alpha=momentum) if nesterov else buf
    p.add_(grad, alpha=-lr)


def _fused_update(p, grad, state, **hyper) -> bool:
    """The update above by :func:`~.optimizer.fused_step`; False where it does not run."""
    buf = state.get("momentum_buffer") if state is not None else None
    first = state is not None and buf is None
    if first:
        if grad._backend is not p._backend:
            return False
        buf = empty_like(p)     # (C-contiguous where p is: the kernel takes no other)
    if not fused_step("sgd_step", p, grad, buf, first=first, **hyper):
        return False
    if first:
        state["momentum_buffer"] = buf
    return True
