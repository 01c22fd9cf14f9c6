"""Muon: momentum orthogonalized by Newton-Schulz iterations, for the 2-d weights of a network."""

import math

from ..autograd import no_grad
from ..dtypes import bfloat16, float32
from ..ops.creation import zeros_like
from .optimizer import Optimizer, OptimizerError, as_tuple, check_unsupported, check_value

_ADJUSTMENTS = (None, "original", "match_rms_adamw")


class Muon(Optimizer):
    """Muon (Jordan et al., 2024) with PyTorch's update rule (``torch.optim.Muon``), for 2-d
    parameters (the hidden layers' weight matrices; train embeddings, heads, biases and norms
    with AdamW beside it).

    Per step, with ``g`` the gradient::

        b = momentum * b + (1 - momentum) * g                 (b starts at zero)
        u = g + momentum * (b - g) if nesterov else b         (torch's lerps)
        o = NS(u)           ns_steps Newton-Schulz iterations towards the nearest
                            orthogonal matrix, in bfloat16 as PyTorch computes them
        p = p * (1 - lr * weight_decay) - lr' * o             (decoupled weight decay)

    where ``lr' = lr * sqrt(max(1, rows / cols))`` ("original") or
    ``0.2 * lr * sqrt(max(rows, cols))`` ("match_rms_adamw": AdamW's learning rates carry over).
    State per parameter: ``momentum_buffer``.

    Example::

        hidden = [p for p in model.parameters() if p.ndim == 2]
        opt = gradient.optim.Muon(hidden, lr=0.02, momentum=0.95)
    """

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(3.4445, -4.775, 2.0315), eps=1e-7, ns_steps=5,
                 adjust_lr_fn=None):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=as_tuple(ns_coefficients), eps=eps, ns_steps=ns_steps,
                        adjust_lr_fn=adjust_lr_fn)
        self._validate(defaults)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise OptimizerError(f"Muon only supports 2D parameters whereas we found a "
                                         f"parameter with size: {tuple(p.shape)} (train it with "
                                         f"AdamW in a second optimizer)")

    def _check_hyperparameters(self, group):
        check_unsupported(group)
        check_value("learning rate", group["lr"], group["lr"] >= 0, "lr >= 0")
        check_value("momentum", group["momentum"], group["momentum"] >= 0, "momentum >= 0")
        check_value("weight decay", group["weight_decay"], group["weight_decay"] >= 0,
                    "weight_decay >= 0")
        if group["adjust_lr_fn"] not in _ADJUSTMENTS:
            raise OptimizerError(f"Adjust learning rate function {group['adjust_lr_fn']} is not "
                                 f"supported: use 'original' or 'match_rms_adamw'")
        if len(group["ns_coefficients"]) != 3:
            raise OptimizerError(f"ns_coefficients must be three numbers (a, b, c), got "
                                 f"{group['ns_coefficients']}")
        if not 0 < group["ns_steps"] < 100:
            raise OptimizerError(f"ns_steps must be from 1 to 99, got {group['ns_steps']}")

    def step(self, closure=None):
        """One Muon update of every parameter that has a gradient; returns ``closure()``'s loss."""
        loss = self._evaluate(closure)
        with no_grad():
            for group, p in self._params_with_grad():
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = zeros_like(p.grad)
                muon_update(p, p.grad, state["momentum_buffer"], lr=float(group["lr"]),
                            weight_decay=group["weight_decay"], momentum=group["momentum"],
                            nesterov=group["nesterov"], ns_coefficients=group["ns_coefficients"],
                            ns_steps=group["ns_steps"], eps=group["eps"],
                            adjust_lr_fn=group["adjust_lr_fn"])
        return loss


def muon_update(p, grad, buf, *, lr, weight_decay, momentum, nesterov, ns_coefficients,
                ns_steps, eps, adjust_lr_fn):
    """Update ``p`` in place from ``grad`` and its momentum buffer ``buf`` (updated too)."""
    buf.lerp_(grad, 1 - momentum)
    update = grad.lerp(buf, momentum) if nesterov else buf
    orthogonal = newton_schulz(update, ns_coefficients, ns_steps, eps)
    rows, cols = p.shape
    if adjust_lr_fn == "match_rms_adamw":
        adjusted = lr * 0.2 * math.sqrt(max(rows, cols))
    else:
        adjusted = lr * math.sqrt(max(1, rows / cols))
    p.mul_(1 - lr * weight_decay)
    p.add_(orthogonal, alpha=-adjusted)


def newton_schulz(g, coefficients, steps: int, eps: float):
    """``steps`` quintic Newton-Schulz iterations ``X = a X + (b A + c A A) X`` with
    ``A = X X^T``, from ``X = g / |g|`` (on the wide orientation of ``g``): the singular values
    of the result are close to 1 (between about 0.5 and 1.5: the coefficients trade exactness
    for speed), its singular vectors ``g``'s. Each product is made as PyTorch's bfloat16 ``mm``
    and ``addmm`` make it: bfloat16 operands, float32 sums, one rounding to bfloat16."""
    a, b, c = coefficients
    x = g.to(bfloat16)
    tall = g.shape[0] > g.shape[1]
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)

    def rounded(value):
        return value.to(bfloat16)

    for _ in range(steps):
        x32 = x.to(float32)
        gram = rounded(x32 @ x32.T).to(float32)
        update = rounded(b * gram + c * (gram @ gram)).to(float32)
        x = rounded(a * x32 + update @ x32)
    return x.T if tall else x
