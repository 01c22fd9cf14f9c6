"""Capturing a step: run a function over a module tree once as written, record the calls it
made (the ops' forwards, the registry's kernels, the KV cache's writes, the modules' hooks)
with the arrays they read and wrote, and replay them for the next steps without the Tensor,
autograd and Module machinery around each call.

This is how the models' fast decode steps are made: derived from their module forwards, not
written again. A user's hook, adapter or replaced module is captured like the rest.

* :class:`CapturedStep` -- a function replayed once captured, per input signature;
* :class:`Plan` -- one captured run, compiled into Python (``plan.source``), its repeated
  blocks of calls (a decoder's layers) into one numba loop (:mod:`.compiled`, ``plan.loop``);
* :class:`Recorder` -- what records a run.

Example::

    >>> step = CapturedStep(blocks_forward, model)
    >>> with gradient.no_grad():
    ...     y = step(x, cache)      # the module graph (captured); later calls replay it
"""

from .plan import Plan
from .recorder import Recorder
from .step import CapturedStep

__all__ = ["CapturedStep", "Plan", "Recorder"]
