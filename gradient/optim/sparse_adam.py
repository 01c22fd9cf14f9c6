"""SparseAdam: Adam for sparse gradients, moving only the rows a step's gradient holds."""

import math

from ..autograd import no_grad
from ..ops.creation import zeros_like
from .optimizer import (Optimizer, OptimizerError, advance_step, as_tuple,
                        check_adam_hyperparameters, sparse_rows, step_counter)


class SparseAdam(Optimizer):
    """Adam for the sparse gradients of ``nn.Embedding(sparse=True)``, with PyTorch's update
    rule (``torch.optim.SparseAdam``, "lazy Adam"): the moments and the parameter change only in
    the rows the gradient holds, so a step costs the rows looked up, not the table.

    Per step ``t``, for each row ``r`` present in the (coalesced) gradient ``g``::

        m[r] = beta1 * m[r] + (1 - beta1) * g[r]
        v[r] = beta2 * v[r] + (1 - beta2) * g[r]**2
        p[r] = p[r] - lr * sqrt(1 - beta2**t) / (1 - beta1**t) * m[r] / (sqrt(v[r]) + eps)

    ``t`` counts the parameter's steps, present rows or not. State per parameter: ``step``,
    ``exp_avg`` (m) and ``exp_avg_sq`` (v). Dense gradients are refused, as in PyTorch.

    Example::

        emb = gradient.nn.Embedding(10000, 64, sparse=True)
        opt = gradient.optim.SparseAdam(emb.parameters(), lr=1e-3)
    """

    takes_sparse_grads = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        defaults = dict(lr=lr, betas=as_tuple(betas), eps=eps, maximize=maximize)
        self._validate(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        check_adam_hyperparameters({"weight_decay": 0, **group})

    def step(self, closure=None):
        """One update of every parameter that has a (sparse) gradient; returns ``closure()``'s
        loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                if not p.grad.is_sparse:
                    raise OptimizerError(
                        "SparseAdam does not support dense gradients, please consider Adam "
                        "instead (or make the embedding with sparse=True)")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = step_counter()
                    state["exp_avg"] = zeros_like(p)
                    state["exp_avg_sq"] = zeros_like(p)
                beta1, beta2 = group["betas"]
                sparse_adam_update(p, p.grad, state, lr=float(group["lr"]), beta1=beta1, beta2=beta2,
                                   eps=group["eps"], maximize=group["maximize"])
        return loss


def sparse_adam_update(p, grad, state, *, lr, beta1, beta2, eps, maximize):
    """Update the rows of ``p`` that the sparse ``grad`` holds, and their moments in ``state``."""
    step = advance_step(state["step"])
    rows, values = sparse_rows(p, -grad if maximize else grad)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    # PyTorch's order of operations: the moments' increments, then their new values
    old_avg = exp_avg.index_select(0, rows)
    avg_change = (values - old_avg) * (1 - beta1)
    exp_avg.index_add_(0, rows, avg_change)
    old_avg_sq = exp_avg_sq.index_select(0, rows)
    avg_sq_change = (values * values - old_avg_sq) * (1 - beta2)
    exp_avg_sq.index_add_(0, rows, avg_sq_change)
    numer = avg_change + old_avg
    denom = (avg_sq_change + old_avg_sq).sqrt() + eps
    step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
    p.index_add_(0, rows, numer / denom * -step_size)
