"""Reverse-mode automatic differentiation: Function, the backward engine, grad modes, gradcheck."""

from .engine import backward, grad
from .function import ArrayFunction, Context, Function
from .gradcheck import gradcheck, gradgradcheck
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,
                        no_grad, set_grad_enabled)

__all__ = ["Function", "ArrayFunction", "Context", "backward", "grad", "no_grad", "enable_grad", "set_grad_enabled",
           "inference_mode", "is_grad_enabled", "is_inference_mode_enabled", "gradcheck",
           "gradgradcheck"]

