"""Mixed precision: ``autocast`` and ``GradScaler``, as in ``torch.amp``.

Matrix products and convolutions are the bulk of the work in a network and lose little from
16-bit inputs (they accumulate in float32); sums, norms and losses need float32. ``autocast``
runs the first kind in bfloat16/float16 and leaves the rest alone; ``GradScaler`` keeps small
float16 gradients from underflowing to zero.

The usual loop (float32 parameters; autocast makes the low-precision copies)::

    import gradient
    import gradient.nn.functional as F

    scaler = gradient.amp.GradScaler("cpu")       # needed for float16; harmless for bfloat16
    for x, y in data:
        optimizer.zero_grad()
        with gradient.amp.autocast("cpu", dtype=gradient.bfloat16):
            # linear/conv/matmul run in bf16; the loss runs in float32, as in PyTorch
            loss = F.cross_entropy(model(x), y)
        scaler.scale(loss).backward()              # backward outside the region, as in PyTorch
        scaler.step(optimizer)                     # float32 grads, unscaled; skipped on inf/nan
        scaler.update()

Training float16/bfloat16 parameters with float32 master weights. There are two ways:

1. Keep the parameters float32 and run the forward pass under ``autocast`` (above). The
   parameters *are* the master weights: autocast casts a bfloat16 copy for each product (once
   per region, cached), the gradient flows back through the cast and arrives in float32, and
   the optimizer updates float32 weights, so no small update is rounded away.
2. Store the model in low precision to halve its memory (``model.to(gradient.bfloat16)``) and
   let the optimizer update float32 copies, rounding them back after each step::

       master = gradient.amp.MasterWeights(model.parameters())
       optimizer = gradient.optim.AdamW(master.params, lr=1e-3)
       loss = F.cross_entropy(model(x.bfloat16()).float(), y)
       loss.backward()
       master.grads_to_master()        # bf16 grads -> float32 .grad of the master copies
       optimizer.step(); optimizer.zero_grad()
       master.master_to_model()        # float32 master weights rounded into the bf16 model

   ``GradScaler`` refuses float16 gradients (as PyTorch's does): with float16 parameters call
   ``master.grads_to_master()`` before ``scaler.step(optimizer)``, which then unscales the
   float32 master grads.

See :mod:`gradient.amp.autocast_mode` for the ops autocast casts and the differences from PyTorch.
"""

from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled
from .custom_functions import custom_bwd, custom_fwd
from .grad_scaler import GradScaler, GradScalerError, GradScalerValueError, OptState
from .master_weights import MasterWeights

__all__ = ["autocast", "is_autocast_enabled", "get_autocast_dtype", "custom_fwd", "custom_bwd",
           "GradScaler", "GradScalerError",
           "GradScalerValueError", "OptState", "MasterWeights"]
