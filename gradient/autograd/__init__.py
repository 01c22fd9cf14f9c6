"""Reverse-mode automatic differentiation: Function, the backward engine, grad modes, gradcheck,
anomaly detection, ``functional`` (jacobian, hessian, vjp, jvp, hvp, vhp), and ``profiler`` (each
op's time: ``torch.autograd.profiler``)."""

from .anomaly_mode import (detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled,
                           set_detect_anomaly)
from .engine import backward, grad
from .function import ArrayFunction, Context, Function
from .gradcheck import gradcheck, gradgradcheck
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,
                        no_grad, set_grad_enabled)
from .variable import Variable
from . import functional  # noqa: E402  (its functions import the ops they use when called)
from . import profiler  # noqa: E402  (torch.autograd.profiler)
from . import graph  # noqa: E402  (torch.autograd.graph: nodes, saved-tensor hooks)
from . import forward_ad  # noqa: E402  (dual tensors, on the reverse-mode graph)

__all__ = ["Function", "ArrayFunction", "Context", "backward", "grad", "no_grad", "enable_grad", "set_grad_enabled",
           "inference_mode", "is_grad_enabled", "is_inference_mode_enabled", "gradcheck",
           "gradgradcheck", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
           "is_anomaly_check_nan_enabled", "functional", "profiler", "graph", "forward_ad",
           "Variable"]

