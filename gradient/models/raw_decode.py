"""What the models' decode steps on raw arrays share: the test that a module may be skipped
(its forward's arithmetic run directly on backend arrays) and the linear projection.

A decode step (one new token per sequence) of a small model on the CPU is a few hundred tiny
calls, and the Module/Tensor machinery around each costs about as much as the arithmetic.
GPT-2 and the LLaMA family therefore run their blocks on raw backend arrays when nothing can
observe the difference: no graph recorded, no autocast, evaluation mode, and every module of
the plain class the model file built, without hooks. The path calls the same forwards in the
same order as the modules, so its logits are bit for bit the module graph's.

Example::

    >>> plain(model.transformer.h[0].ln_1, nn.LayerNorm)   # eval mode, no hooks: True
"""

from __future__ import annotations

from .. import nn
from ..autograd import autocast_state as _autocast
from ..autograd import is_grad_enabled
from ..ops.nn import Linear as _LinearFn


def step_may_skip_modules(stack, cache) -> bool:
    """The conditions on the whole decoder ``stack`` (``GPT2Model``, ``LlamaModel``): it allows
    the path (its ``fused_decode`` flag), the cache is a :class:`KVCache`, the stack is in
    evaluation mode, nothing is recorded and no autocast is active. Each model then checks its
    own modules with :func:`plain` and :func:`plain_linear`."""
    from ..generation.kv_cache import KVCache   # generation sits above models
    return (stack.fused_decode and type(cache) is KVCache and not stack.training
            and not is_grad_enabled() and not _autocast.any_enabled())


def plain(module, cls) -> bool:
    """``module`` is exactly ``cls``, in evaluation mode, without forward hooks and without a
    ``forward`` of its own (set on the instance): running its class's forward arithmetic on raw
    arrays then does what calling it would."""
    return type(module) is cls and not module.training and not (
        module._forward_hooks or module._forward_pre_hooks) and "forward" not in module.__dict__


def _defined_in(cls, name):
    """The class of ``cls``'s method resolution order that defines ``name``, or None."""
    return next((k for k in cls.__mro__ if name in k.__dict__), None)


def plain_linear(module, dtype) -> bool:
    """A plain ``nn.Linear`` whose parameters have the NumPy ``dtype`` (``F.linear`` raises on
    mixed dtypes: the module graph is left to raise it), or a plain layer whose class defines
    ``forward_arrays(backend, x)`` (its forward on a raw array, nothing recorded: the quantized
    layers of :mod:`gradient.quant`) where it defines ``forward`` (a subclass with a forward of
    its own is not taken), whose bias (if any) has that dtype."""
    cls = type(module)
    arrays = _defined_in(cls, "forward_arrays")
    if (not (cls is nn.Linear or (arrays is not None and arrays is _defined_in(cls, "forward")))
            or not plain(module, cls)):
        return False
    weight, bias = module._parameters.get("weight"), module._parameters["bias"]
    return ((weight is None or weight._data.dtype == dtype)
            and (bias is None or bias._data.dtype == dtype))


def linear(b, x, module):
    """``module(x)`` for a :func:`plain_linear` module, on the raw array ``x`` of backend ``b``."""
    if type(module) is not nn.Linear:
        return module.forward_arrays(b, x)
    weight, bias = module._parameters["weight"], module._parameters["bias"]
    return _LinearFn.forward_arrays(b, x, weight._data, None if bias is None else bias._data)
