"""Activation layers, as in ``torch.nn``: thin modules around ``gradient.nn.functional``.

Each stores its arguments under PyTorch's attribute names and prints the same ``extra_repr``.
MultiheadAttention, which PyTorch also keeps in its activation.py, lives in attention.py.
"""

from __future__ import annotations


from ... import ops as _ops
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from ...errors import ArgumentValueError
from ...ops.argument_errors import as_number

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
           "Hardtanh", "Hardsigmoid", "Hardswish", "Sigmoid", "Tanh", "LogSigmoid", "Softplus",
           "Softsign", "Tanhshrink", "Hardshrink", "Softshrink", "Threshold", "GLU",
           "Softmax", "LogSoftmax", "Softmin", "Softmax2d", "RReLU"]


def _inplace(inplace: bool, lead: str = "") -> str:
    """PyTorch's reprs mention ``inplace`` only when it is True."""
    return f"{lead}inplace=True" if inplace else ""


class ReLU(Module):
    """max(x, 0). ``nn.ReLU()(gradient.tensor([-1.0, 2.0]))`` -> [0., 2.]"""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace(self.inplace)


class Hardtanh(Module):
    """x clipped to [min_val, max_val]. ``nn.Hardtanh(-2.0, 2.0)``."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        if as_number(max_val, "Hardtanh: max_val") <= as_number(min_val, "Hardtanh: min_val"):
            raise ArgumentValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val "
                                     f"({min_val})")
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace(self.inplace, ', ')}"


class ReLU6(Hardtanh):
    """min(max(x, 0), 6) (MobileNet). ``nn.ReLU6()``."""

    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return _inplace(self.inplace)


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x. ``nn.LeakyReLU(0.2)``."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{_inplace(self.inplace, ', ')}"


class PReLU(Module):
    """LeakyReLU with a learned slope: one (``num_parameters=1``) or one per channel (dim 1).

    ``weight`` (num_parameters,) starts at ``init`` (0.25). ``nn.PReLU(num_parameters=16)``.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters = num_parameters
        self.init = as_number(init, "PReLU: init")
        self.weight = Parameter(_ops.empty(num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class ELU(Module):
    """x for x > 0, alpha * (exp(x) - 1) otherwise. ``nn.ELU(alpha=1.0)``."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace(self.inplace, ', ')}"


class CELU(Module):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)). ``nn.CELU(alpha=1.0)``."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace(self.inplace, ', ')}"


class SELU(Module):
    """Scaled ELU with the self-normalising constants. ``nn.SELU()``."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.selu(input, self.inplace)

    def extra_repr(self) -> str:
        return _inplace(self.inplace)


class GELU(Module):
    """x * Phi(x), exact (``approximate='none'``) or with the tanh formula (``'tanh'``, GPT-2).

    ``nn.GELU(approximate='tanh')``
    """

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ArgumentValueError(
                f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x * sigmoid(x), also called swish (LLaMA's MLP). ``nn.SiLU()``."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.silu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace(self.inplace)


class Mish(Module):
    """x * tanh(softplus(x)). ``nn.Mish()``."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.mish(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace(self.inplace)


class Hardsigmoid(Module):
    """relu6(x + 3) / 6. ``nn.Hardsigmoid()``."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardsigmoid(input, self.inplace)


class Hardswish(Module):
    """x * relu6(x + 3) / 6 (MobileNetV3). ``nn.Hardswish()``."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return F.hardswish(input, self.inplace)


class Sigmoid(Module):
    """1 / (1 + exp(-x)). ``nn.Sigmoid()``."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """tanh(x). ``nn.Tanh()``."""

    def forward(self, input):
        return F.tanh(input)


class LogSigmoid(Module):
    """log(sigmoid(x)), stable for large |x|. ``nn.LogSigmoid()``."""

    def forward(self, input):
        return F.logsigmoid(input)


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, linear above ``threshold``. ``nn.Softplus(beta=2)``."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softsign(Module):
    """x / (1 + |x|). ``nn.Softsign()``."""

    def forward(self, input):
        return F.softsign(input)


class Tanhshrink(Module):
    """x - tanh(x). ``nn.Tanhshrink()``."""

    def forward(self, input):
        return F.tanhshrink(input)


class Hardshrink(Module):
    """x where |x| > lambd, else 0. ``nn.Hardshrink(0.5)``."""

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return F.hardshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Softshrink(Module):
    """Shrink towards 0 by ``lambd``, 0 inside [-lambd, lambd]. ``nn.Softshrink(0.5)``."""

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def forward(self, input):
        return F.softshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return str(self.lambd)


class Threshold(Module):
    """x where x > threshold, else ``value``. ``nn.Threshold(0.1, 20.0)``."""

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}{_inplace(self.inplace, ', ')}"


class GLU(Module):
    """a * sigmoid(b) for the two halves a, b of the input along ``dim``. ``nn.GLU(dim=-1)``."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``dim``.

    Example::

        probs = nn.Softmax(dim=-1)(logits)
    """

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)          # (None: PyTorch's legacy rule, warned)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) along ``dim``, computed stably. ``nn.LogSoftmax(dim=1)``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmin(Module):
    """softmax(-x) along ``dim``. ``nn.Softmin(dim=1)``."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmin(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax2d(Module):
    """Softmax over the channels of each spatial position: ``softmax(x, dim=-3)`` of a
    (N, C, H, W) or (C, H, W) input.

    Example::

        probs = nn.Softmax2d()(gradient.randn(2, 5, 8, 8))   # sums to 1 over dim 1
    """

    def forward(self, input):
        if input.ndim not in (3, 4):
            raise ArgumentValueError(
                f"Softmax2d: expected a 3-d (C, H, W) or 4-d (N, C, H, W) input, got "
                f"{input.ndim}-d")
        return F.softmax(input, -3)


class RReLU(Module):
    """Randomized leaky ReLU: while training each negative element is scaled by a slope drawn
    from U(lower, upper) (gradient's default generator); in evaluation by their mean.

    Example::

        act = nn.RReLU(0.1, 0.3)
        y = act(x)          # random slopes while training
        act.eval()
        act(x)              # slope 0.2
    """

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False):
        super().__init__()
        self.lower = lower
        self.upper = upper
        self.inplace = inplace

    def forward(self, input):
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}{_inplace(self.inplace, ', ')}"
