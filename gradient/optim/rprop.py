"""Rprop: per-coordinate step sizes that grow while the gradient keeps its sign and shrink when
it flips; only the gradient's sign is used."""

from ..autograd import no_grad
from ..ops.creation import full_like, ones_like, zeros_like
from ..ops.elementwise import where
from .optimizer import Optimizer, advance_step, check_unsupported, check_value, step_counter


class Rprop(Optimizer):
    """Resilient backpropagation (Riedmiller & Braun, 1993), as ``torch.optim.Rprop``.

    Per step, with ``g`` the gradient (negated when ``maximize``) and ``g_prev`` the one kept
    from the previous step (``prev``, zero at the start)::

        f = etaplus if g * g_prev > 0, etaminus if g * g_prev < 0, else 1
        s = clamp(s * f, step_size_min, step_size_max)       (s starts at lr)
        g = 0 where g * g_prev < 0                           (skip the step after a sign flip)
        p = p - sign(g) * s;  g_prev = g

    It ignores the gradient's magnitude, which suits full-batch training and not mini-batches.
    State per parameter: ``step``, ``prev`` and ``step_size``.

    Example::

        opt = gradient.optim.Rprop(model.parameters(), lr=0.01, etas=(0.5, 1.2))
        opt.zero_grad(); loss.backward(); opt.step()
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        defaults = dict(lr=lr, etas=etas, step_sizes=step_sizes, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        self._validate(defaults)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        check_unsupported(group)
        check_value("learning rate", group["lr"], group["lr"] >= 0, "lr >= 0")
        etas = group["etas"]
        check_value("eta values", etas, isinstance(etas, (tuple, list)) and len(etas) == 2,
                    "a pair (etaminus, etaplus)")
        check_value("eta values", f"{etas[0]}, {etas[1]}", 0 < etas[0] < 1 < etas[1],
                    "0 < etaminus < 1 < etaplus")
        sizes = group["step_sizes"]
        check_value("step_sizes", sizes, isinstance(sizes, (tuple, list)) and len(sizes) == 2,
                    "a pair (step_size_min, step_size_max)")

    def step(self, closure=None):
        """One Rprop update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = step_counter()
                    state["prev"] = zeros_like(p)
                    state["step_size"] = full_like(p.grad, float(group["lr"]))
                rprop_update(p, p.grad, state, etas=group["etas"],
                             step_sizes=group["step_sizes"], maximize=group["maximize"])
        return loss


def rprop_update(p, grad, state, *, etas, step_sizes, maximize):
    """Update ``p`` in place from ``grad`` and its Rprop ``state``."""
    if maximize:
        grad = -grad
    advance_step(state["step"])
    etaminus, etaplus = etas
    prev, step_size = state["prev"], state["step_size"]

    # the sign of the (rounded) product, as torch takes it: an underflow to 0 counts as "no sign"
    agreement = grad * prev
    flipped = agreement < 0
    factor = where(agreement > 0, etaplus, where(flipped, etaminus, ones_like(grad)))
    step_size.mul_(factor).clamp_(step_sizes[0], step_sizes[1])

    # after a sign flip the step is skipped, and the zero stored as prev makes the next step
    # neither grow nor shrink the step size
    grad = where(flipped, 0.0, grad)
    p.add_(grad.sign() * step_size * -1)
    prev.copy_(grad)
