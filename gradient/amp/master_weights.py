"""``MasterWeights``: float32 copies of low-precision parameters for the optimizer to update.

A model whose parameters are stored in bfloat16/float16 (``model.to(gradient.bfloat16)``)
cannot be trained well by updating them directly: an update smaller than half a unit in the
last place (1/256 of the weight in bfloat16) rounds away. The remedy is float32 "master"
weights: the optimizer updates the float32 copies, and the model gets them rounded back after
each step. This is what the float32 parameters + :class:`~gradient.amp.autocast` pattern gives
without any extra code (there the low-precision copy is the cast autocast makes); this helper
is for models kept in low precision to save memory.
"""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..dtypes import float32

__all__ = ["MasterWeights"]


class MasterWeights:
    """Float32 master copies of ``params`` (low-precision tensors that require grad).

    Give :attr:`params` to the optimizer; after backward call :meth:`grads_to_master`, then the
    optimizer's ``step()``, then :meth:`master_to_model`.

    Example::

        model.to(gradient.bfloat16)
        master = gradient.amp.MasterWeights(model.parameters())
        optimizer = gradient.optim.AdamW(master.params, lr=1e-3)
        for x, y in data:
            loss = F.cross_entropy(model(x.bfloat16()).float(), y)
            loss.backward()
            master.grads_to_master()      # model grads -> float32 master grads (model grads cleared)
            optimizer.step()
            optimizer.zero_grad()
            master.master_to_model()      # updated master weights, rounded into the model

    With a :class:`~gradient.amp.GradScaler`, call ``grads_to_master()`` before
    ``scaler.step(optimizer)``: the scaler then unscales and checks the float32 grads.
    """

    def __init__(self, params):
        self.model_params = list(params)
        # detached float32 copies: leaves of their own, so the optimizer's state is float32 too
        self.params = [p.detach().to(float32, copy=True).requires_grad_(True) for p in self.model_params]

    def grads_to_master(self) -> None:
        """Copy each model grad, as float32, into its master's ``.grad``; clear the model grads."""
        with no_grad():
            for p, m in zip(self.model_params, self.params):
                m.grad = None if p.grad is None else p.grad.to(float32, copy=True)
                p.grad = None

    def master_to_model(self) -> None:
        """Round the (updated) master weights into the model's parameters, in place."""
        with no_grad():
            for p, m in zip(self.model_params, self.params):
                p.copy_(m)
