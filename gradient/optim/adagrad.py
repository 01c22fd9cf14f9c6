"""Adagrad: per-coordinate step sizes that shrink with the sum of all past squared gradients."""

from ..autograd import no_grad
from ..ops.creation import full_like
from .optimizer import (Optimizer, OptimizerError, advance_step, check_unsupported, check_value,
                        fused_step, sparse_rows, step_counter)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011) with PyTorch's update rule (``torch.optim.Adagrad``).

    Per step ``t``, with ``g`` the gradient (negated when ``maximize``)::

        g = g + weight_decay * p                          (when weight_decay != 0)
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g                                     (s starts at initial_accumulator_value)
        p = p - clr * g / (sqrt(s) + eps)

    State per parameter (created when the optimizer is built, as in PyTorch): ``step`` and
    ``sum``. A sparse gradient (``nn.Embedding(sparse=True)``) updates only the rows it holds
    (their ``s`` and ``p``), as in PyTorch, which refuses weight decay with it.

    Example::

        opt = gradient.optim.Adagrad(model.parameters(), lr=0.1, lr_decay=1e-3)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        self._validate(defaults)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    takes_sparse_grads = True

    def _check_hyperparameters(self, group):
        check_unsupported(group)
        check_value("learning rate", group["lr"], group["lr"] >= 0, "lr >= 0")
        check_value("lr_decay value", group["lr_decay"], group["lr_decay"] >= 0, "lr_decay >= 0")
        check_value("weight_decay value", group["weight_decay"], group["weight_decay"] >= 0,
                    "weight_decay >= 0")
        check_value("initial_accumulator_value value", group["initial_accumulator_value"],
                    group["initial_accumulator_value"] >= 0, "initial_accumulator_value >= 0")
        check_value("epsilon value", group["eps"], group["eps"] >= 0, "eps >= 0")

    def _init_state(self, p, group):
        state = self.state[p]
        if len(state) == 0:
            state["step"] = step_counter()
            state["sum"] = full_like(p, group["initial_accumulator_value"])

    def step(self, closure=None):
        """One Adagrad update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                self._init_state(p, group)  # groups added later start here
                adagrad_update(p, p.grad, self.state[p], lr=float(group["lr"]),
                               lr_decay=group["lr_decay"], weight_decay=group["weight_decay"],
                               eps=group["eps"], maximize=group["maximize"])
        return loss


def adagrad_update(p, grad, state, *, lr, lr_decay, weight_decay, eps, maximize):
    """Update ``p`` in place from ``grad`` and its Adagrad ``state``."""
    if grad.is_sparse and weight_decay != 0:
        raise OptimizerError("Adagrad: weight_decay is not compatible with sparse gradients (as "
                             "in PyTorch); set weight_decay=0 for those parameters")
    step = advance_step(state["step"])
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum = state["sum"]
    if not grad.is_sparse and fused_step("adagrad_step", p, grad, state_sum, lr=clr,
                                         weight_decay=weight_decay, eps=eps, maximize=maximize):
        return                        # (the operations below, in their order: the same bits)
    if maximize:
        grad = -grad
    if grad.is_sparse:
        rows, values = sparse_rows(p, grad)
        state_sum.index_add_(0, rows, values * values)
        std = state_sum.index_select(0, rows).sqrt() + eps
        p.index_add_(0, rows, values / std, alpha=-clr)
        return
    if weight_decay != 0:
        grad = grad.add(p, alpha=weight_decay)
    state_sum.addcmul_(grad, grad, value=1)     # (PyTorch's single-tensor ops, in its order)
    std = state_sum.sqrt().add_(eps)
    p.addcdiv_(grad, std, value=-clr)
