"""Preparing modules for :func:`vmap`: ``stack_module_state`` (an ensemble's parameters and
buffers stacked, one model per index) and ``replace_all_batch_norm_modules_`` (batch norms
without running statistics, which a vmapped model cannot update), as ``torch.func``'s.
"""

from __future__ import annotations

from ..nn.modules.batchnorm import _BatchNorm
from ..ops.shape import stack
from ..errors import ArgumentValueError

__all__ = ["stack_module_state", "replace_all_batch_norm_modules_"]


def stack_module_state(models) -> tuple[dict, dict]:
    """``(params, buffers)``: for each name in the models' ``named_parameters``/``named_buffers``
    (state-dict names), the models' tensors stacked along a new first dimension. The stacked
    parameters are new leaves that require grad (when the originals do), unrelated to the
    models', so an optimizer can train the ensemble through them.

    Example::

        >>> models = [gradient.nn.Linear(3, 3) for _ in range(5)]
        >>> params, buffers = stack_module_state(models)
        >>> def one(p, b, x):
        ...     return functional_call(models[0], (p, b), (x,))
        >>> vmap(one, in_dims=(0, 0, None))(params, buffers, gradient.randn(64, 3)).shape
        gradient.Size([5, 64, 3])
    """
    models = list(models)
    if not models:
        raise ArgumentValueError("stack_module_state: expected at least one model, got none")
    kind = type(models[0])
    if any(type(m) is not kind for m in models):
        raise ArgumentValueError(f"stack_module_state: expected models of one class, got "
                                 f"{sorted({type(m).__name__ for m in models})}")
    training = {m.training for m in models}
    if len(training) > 1:
        raise ArgumentValueError(
            "stack_module_state: expected the models all in training mode or all "
            "in evaluation mode")

    def stacked(named):
        names = [n for n, _ in named(models[0])]
        per_model = [dict(named(m)) for m in models]
        out = {}
        for name in names:
            tensors = [p[name] for p in per_model]
            out[name] = stack([t.detach() for t in tensors]).requires_grad_(
                tensors[0].requires_grad)
        return out

    return (stacked(lambda m: m.named_parameters()),
            stacked(lambda m: m.named_buffers()))


def replace_all_batch_norm_modules_(root):
    """Make every batch norm in ``root`` use the statistics of the batch it sees, always: no
    running mean and variance to update (``track_running_stats=False``), in place; returns
    ``root``."""
    for module in root.modules():
        if isinstance(module, _BatchNorm):
            module.running_mean = None
            module.running_var = None
            module.num_batches_tracked = None
            module.track_running_stats = False
    return root
