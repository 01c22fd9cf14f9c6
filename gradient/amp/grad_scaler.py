"""``GradScaler``: loss scaling for float16 training, like ``torch.amp.GradScaler``.

Small float16 gradients underflow to zero. The scaler multiplies the loss by a large factor
before backward (so every gradient is that much larger), divides the gradients by it again
before the optimizer step, and skips the step when the scaled gradients overflowed to inf or
nan. The factor adapts: it is halved after an overflow and doubled after ``growth_interval``
clean steps, so it settles near the largest value that does not overflow.

bfloat16 has float32's range and rarely needs scaling; the scaler works with it all the same.

Differences from PyTorch:

* The scale and the growth tracker live on the host (a float32 number and an int), not in
  device tensors: gradient checks the gradients for inf/nan with a host sync anyway.
* Misuse that PyTorch reports with ``AssertionError`` (``step`` before any ``scale``, no
  gradients to check, a bad ``new_scale``) raises :class:`GradScalerError` (a RuntimeError).
* Optimizers that unscale by themselves (PyTorch's ``_step_supports_amp_scaling``) are not
  special-cased; every optimizer gets ``unscale_`` + ``step``.
"""

from __future__ import annotations

import math
import warnings
from collections import abc, defaultdict
from enum import Enum

import numpy as np

from ..autograd.grad_mode import no_grad
from ..backends import get_backend
from ..dtypes import bfloat16, float16, float32, result_type
from ..errors import ArgumentTypeError, DeviceError, GradientError
from ..ops.creation import tensor
from ..ops.elementwise import isfinite
from ..tensor import Tensor

__all__ = ["GradScaler", "OptState", "GradScalerError", "GradScalerValueError"]


class GradScalerError(GradientError, RuntimeError):
    """GradScaler used out of order (PyTorch raises AssertionError for most of these)."""


class GradScalerValueError(GradientError, ValueError):
    """A bad argument to GradScaler (a ValueError, as PyTorch's): float16 grads, a growth
    factor <= 1, outputs that are not tensors."""


class OptState(Enum):
    READY = 0      # nothing done yet this iteration
    UNSCALED = 1   # unscale_ ran: grads are divided by the scale, inf/nan recorded
    STEPPED = 2    # step ran (or was skipped)


def _fresh_optimizer_state() -> dict:
    return {"stage": OptState.READY, "found_inf": None}


def _f32(x: float) -> float:
    """``x`` rounded to float32, the precision PyTorch keeps the scale in."""
    return float(np.float32(x))


class GradScaler:
    """Dynamic loss scaling: ``scale(loss).backward()``, ``step(optimizer)``, ``update()``.

    Args:
        device: "cuda" (PyTorch's default) or "cpu". A device whose backend is not available
            here (CUDA without a GPU) gives a warning and a disabled scaler, as in PyTorch.
        init_scale: the first scale factor.
        growth_factor: the scale is multiplied by it after ``growth_interval`` clean steps.
        backoff_factor: the scale is multiplied by it after a step with inf/nan gradients.
        growth_interval: how many consecutive clean steps make the scale grow.
        enabled: False makes every method a no-op (``step`` just calls ``optimizer.step()``).

    The optimizer is anything with PyTorch's interface: ``param_groups`` (a list of dicts
    whose ``"params"`` are tensors) and ``step()``.

    Example::

        scaler = gradient.amp.GradScaler("cpu")
        for x, y in data:
            optimizer.zero_grad()
            with gradient.amp.autocast("cpu", dtype=gradient.float16):
                loss = F.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)          # optional: to clip or inspect the true gradients
            gradient.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            scaler.step(optimizer)              # skipped if a gradient is inf or nan
            scaler.update()                     # back off after an overflow, grow after clean runs
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True):
        self._device = device
        self._enabled = bool(enabled)
        if self._enabled:
            try:
                get_backend(device)
            except DeviceError as err:
                warnings.warn(f"GradScaler is enabled, but device {device!r} is not available ({err}) "
                              "Disabling.", stacklevel=2)
                self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise GradScalerValueError(
                    f"GradScaler: the growth factor must be > 1.0, got {growth_factor}")
            if backoff_factor >= 1.0:
                raise GradScalerValueError(
                    f"GradScaler: the backoff factor must be < 1.0, got {backoff_factor}")
        self._init_scale = init_scale
        self._scale: float | None = None          # set by the first scale() call, as in PyTorch
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        self._init_growth_tracker = 0
        self._growth_tracker: int | None = None   # consecutive clean steps
        self._per_optimizer_states: dict = defaultdict(_fresh_optimizer_state)

    # ------------------------------------------------------------------ the training-loop calls
    def scale(self, outputs):
        """``outputs`` (a tensor, or nested lists/tuples of them) multiplied by the scale factor.

        The factor is a 0-d float32 tensor, so a 0-d float16/bfloat16 loss becomes float32 (the
        promotion rules PyTorch applies too). Disabled: ``outputs`` unchanged.
        """
        if not self._enabled:
            return outputs
        if self._scale is None:
            self._scale, self._growth_tracker = _f32(self._init_scale), self._init_growth_tracker

        def apply(val):
            if isinstance(val, Tensor):
                factor = tensor(self._scale, dtype=float32, device=val.device)
                if val.dtype in (float16, bfloat16) and val.ndim > 0:
                    # multiply in float32 and round once, as PyTorch's kernel does: gradient's own
                    # float16 * 0-d float32 first casts the factor to float16, where 2**16 is inf
                    return (val.float() * factor).to(result_type(val, factor))
                return val * factor
            if isinstance(val, abc.Iterable):
                scaled = map(apply, val)
                return type(val)(scaled) if isinstance(val, (list, tuple)) else scaled
            raise GradScalerValueError("GradScaler.scale: outputs must be a Tensor or an iterable of "
                                       f"Tensors, got {type(val).__name__}")
        return apply(outputs)

    def unscale_(self, optimizer) -> None:
        """Divide the gradients of ``optimizer``'s params by the scale, in place, and note
        whether any is inf or nan. Optional: :meth:`step` calls it if you did not. Call it at
        most once per optimizer between :meth:`update` calls (after all backward passes).
        """
        if not self._enabled:
            return
        self._check_started("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.UNSCALED:
            raise GradScalerError("unscale_() has already been called on this optimizer since the last "
                                  "update(); call it once per iteration")
        if state["stage"] is OptState.STEPPED:
            raise GradScalerError("unscale_() is being called after step(); call it before step(), "
                                  "or call update() first to start a new iteration")
        # PyTorch's inverse: 1 / scale in float64, rounded to float32
        inv_scale = _f32(1.0 / float(self._scale))
        state["found_inf"] = self._unscale_grads_(optimizer, inv_scale)
        state["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """``unscale_(optimizer)`` if not done yet, then ``optimizer.step(*args, **kwargs)``
        unless a gradient was inf or nan. Returns what ``optimizer.step`` returned (None when
        skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise GradScalerError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_started("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.STEPPED:
            raise GradScalerError("step() has already been called since the last update(); call "
                                  "scaler.update() once per iteration")
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        if state["found_inf"] is None:
            raise GradScalerError("No inf checks were recorded for this optimizer: none of its params "
                                  "has a .grad; run backward on the scaled loss first")
        retval = None
        if not state["found_inf"]:
            retval = optimizer.step(*args, **kwargs)
        state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale=None) -> None:
        """Adjust the scale for the next iteration (call once per iteration, after the steps).

        After an iteration in which some optimizer found inf/nan gradients the scale is
        multiplied by ``backoff_factor``; after ``growth_interval`` clean iterations in a row,
        by ``growth_factor`` (unless that overflows float32). ``new_scale`` (a float or a
        one-element tensor) sets it instead.
        """
        if not self._enabled:
            return
        self._check_started("update")
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1 or new_scale.requires_grad:
                    raise GradScalerError("new_scale should be a float or a 1-element tensor with "
                                          f"requires_grad=False, got shape {tuple(new_scale.shape)} "
                                          f"(requires_grad={new_scale.requires_grad})")
                new_scale = new_scale.item()
            self._scale = _f32(new_scale)
        else:
            found = [s["found_inf"] for s in self._per_optimizer_states.values()
                     if s["found_inf"] is not None]
            if not found:
                raise GradScalerError("No inf checks were recorded prior to update(); call "
                                      "scaler.step(optimizer) (or unscale_) first")
            self._update_scale(any(found))
        self._per_optimizer_states = defaultdict(_fresh_optimizer_state)

    def _update_scale(self, found_inf: bool) -> None:
        """PyTorch's ``_amp_update_scale_``, in float32."""
        if found_inf:
            self._scale = _f32(np.float32(self._scale) * np.float32(self._backoff_factor))
            self._growth_tracker = 0
            return
        successful = self._growth_tracker + 1
        if successful == self._growth_interval:
            with np.errstate(over="ignore"):   # an overflow to inf is checked for just below
                grown = _f32(np.float32(self._scale) * np.float32(self._growth_factor))
            if math.isfinite(grown):
                self._scale = grown
            self._growth_tracker = 0
        else:
            self._growth_tracker = successful

    # ------------------------------------------------------------------ helpers
    def _check_started(self, funcname: str) -> None:
        if self._scale is None:
            raise GradScalerError(f"Attempted {funcname} but the scale is not set yet. This may "
                                  "indicate your script did not use scaler.scale(loss or outputs) "
                                  "earlier in the iteration.")

    @staticmethod
    def _unscale_grads_(optimizer, inv_scale: float):
        """Multiply every grad by ``inv_scale`` in place; True if any was inf/nan, None if no
        param had a grad. The product is computed in float32 for float16/bfloat16 grads (one
        rounding, as PyTorch's kernel) and in the grad's dtype otherwise."""
        found_inf = None
        with no_grad():
            for group in optimizer.param_groups:
                for param in group["params"]:
                    if not isinstance(param, Tensor):
                        raise ArgumentTypeError(
                            f"GradScaler: expected the optimizer's params to be Tensors, "
                            f"got {type(param).__name__}")
                    g = param.grad
                    if g is None:
                        continue
                    if g.dtype is float16:
                        raise GradScalerValueError(
                            "Attempting to unscale FP16 gradients. Keep float32 master params in the "
                            "optimizer and use autocast (or a float16 copy) for the forward pass; see "
                            "the gradient.amp docs")
                    finite = bool(isfinite(g).all().item())
                    found_inf = (found_inf or False) or not finite
                    if g.dtype is bfloat16:
                        g.copy_(g.float() * inv_scale)
                    else:
                        g.mul_(inv_scale)
        return found_inf

    # ------------------------------------------------------------------ state
    def get_scale(self) -> float:
        """The current scale (``init_scale`` before the first :meth:`scale`), or 1.0 when disabled."""
        if not self._enabled:
            return 1.0
        return float(self._init_scale) if self._scale is None else self._scale

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        return self._init_growth_tracker if self._growth_tracker is None else self._growth_tracker

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict:
        """``{"scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"}``
        (PyTorch's keys; an empty dict when disabled). Save it after :meth:`update`."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` returned (a no-op when disabled)."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise GradScalerError("The source state dict is empty, possibly because it was saved from "
                                  "a disabled instance of GradScaler.")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale = _f32(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._growth_tracker is not None:
            self._growth_tracker = self._init_growth_tracker
