"""Helpers shared by the distributions: broadcasting parameters, probs <-> logits, host draws."""

from __future__ import annotations

import numbers

from .. import dtypes
from ..ops import creation as _creation
from ..ops import elementwise as _ew
from ..ops import special as _special
from ..ops.shape import broadcast_tensors
from ..ops.reduce import logsumexp, sum as _sum
from ..tensor import Tensor
from ..errors import ArgumentTypeError, ArgumentValueError


def probs_or_logits(name: str, probs, logits) -> tuple[str, object]:
    """``("probs", probs)`` or ``("logits", logits)``: the one parameter given (exactly one must be)."""
    if (probs is None) == (logits is None):
        raise ArgumentValueError(
            f"{name}: give either probs or logits, not both (and not neither)")
    return ("probs", probs) if probs is not None else ("logits", logits)


def store_probs_or_logits(dist, probs, logits) -> Tensor:
    """Keep on ``dist`` the one of ``probs``/``logits`` given, as a tensor (the other is computed
    from it when asked for: a :class:`lazy_property`); returns that tensor."""
    key, value = probs_or_logits(type(dist).__name__, probs, logits)
    (tensor,) = broadcast_all(value)
    setattr(dist, key, tensor)
    return tensor


def store_count_and_probs(dist, total_count, probs, logits) -> None:
    """Keep on ``dist`` (a binomial or negative binomial) its ``total_count`` and the one of
    ``probs``/``logits`` given, broadcast together, the count in the probabilities' dtype."""
    key, value = probs_or_logits(type(dist).__name__, probs, logits)
    count, value = broadcast_all(total_count, value)
    dist.total_count = count.to(value.dtype)
    setattr(dist, key, value)


def broadcast_all(*values):
    """Tensors and numbers broadcast to one shape; numbers become tensors of the tensors' dtype
    (the default float dtype when there are none), as ``torch.distributions.utils.broadcast_all``."""
    tensors = [v for v in values if isinstance(v, Tensor)]
    if len(tensors) < len(values):
        for v in values:
            if not isinstance(v, (Tensor, numbers.Number)):
                raise ArgumentTypeError(
                    f"expected tensors or numbers as parameters, got {type(v).__name__}")
        like = tensors[0] if tensors else None
        dtype = like.dtype if like is not None else dtypes.get_default_dtype()
        device = like.device if like is not None else None
        values = [v if isinstance(v, Tensor) else _creation.tensor(float(v), dtype=dtype, device=device)
                  for v in values]
    return broadcast_tensors(*values)


def as_tensor_like(value, like: Tensor) -> Tensor:
    """``value`` itself if it is a tensor, else a 0-d tensor of ``like``'s dtype and device
    (a temperature or a bound given as a Python number)."""
    if isinstance(value, Tensor):
        return value
    return _creation.tensor(float(value), dtype=like.dtype, device=like.device)


def sum_rightmost(value: Tensor, dim: int) -> Tensor:
    """``value`` summed over its ``dim`` rightmost dimensions (itself when dim is 0)."""
    return _sum(value, tuple(range(-dim, 0))) if dim > 0 else value


def clamp_probs(probs: Tensor) -> Tensor:
    """Probabilities kept inside (0, 1) by the dtype's epsilon, so their logs stay finite."""
    eps = dtypes.finfo(probs.dtype).eps
    return _ew.clamp(probs, eps, 1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """Log-odds of binary probabilities, or log-probabilities of categorical ones."""
    p = clamp_probs(probs)
    return _ew.log(p) - _ew.log1p(-p) if is_binary else _ew.log(p)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """Probabilities from log-odds (sigmoid) or from unnormalized log-probabilities (softmax)."""
    if is_binary:
        return _ew.sigmoid(logits)
    return _ew.exp(logits - logsumexp(logits, dim=-1, keepdim=True))


def softplus(x: Tensor) -> Tensor:
    """``log(1 + exp(x))`` without overflow, with gradient exactly ``sigmoid(x)`` (also at 0)."""
    return _special.logaddexp(x, 0.0)


class lazy_property:
    """A property computed on first access and then stored on the instance (``probs`` from
    ``logits`` or the reverse): only the parameter given is stored until the other is asked for."""

    def __init__(self, fn):
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = self.fn(instance)
        instance.__dict__[self.__name__] = value
        return value



class BinaryProbsOrLogits:
    """``probs`` and ``logits`` of a distribution with one success probability per entry
    (Bernoulli, Binomial, Geometric ...): the one given is stored by
    :func:`store_probs_or_logits`, the other computed from it on first access. A mixin, listed
    before :class:`Distribution`: ``class Bernoulli(BinaryProbsOrLogits, Distribution)``."""

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits, is_binary=True)

def host_generator():
    """The NumPy generator behind gradient's default generator (every backend draws its random
    numbers on the host), for the draws the backends have no primitive for (gamma, Poisson,
    binomial): ``gradient.manual_seed`` makes them reproducible like the rest."""
    return _creation.default_generator._state


def from_host(array, like: Tensor) -> Tensor:
    """A host NumPy array as a tensor of ``like``'s dtype and device (no gradient)."""
    return _creation.tensor(array, dtype=like.dtype, device=like.device)


def host_array(t: Tensor):
    """A tensor's values as a float64 NumPy array on the host."""
    return t.detach().to(dtypes.float64).cpu().numpy()
