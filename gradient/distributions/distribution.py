"""The :class:`Distribution` base class (``torch.distributions.Distribution``'s API)."""

from __future__ import annotations

from ..autograd.grad_mode import no_grad
from ..ops import elementwise as _ew
from ..ops.shape import broadcast_shapes
from ..tensor import Size, Tensor
from . import constraints
from .utils import lazy_property
from ..errors import ArgumentValueError


class Distribution:
    """A probability distribution over tensors of shape ``batch_shape + event_shape``.

    ``batch_shape`` indexes independent distributions of one family (a Normal per element of
    ``loc``); ``event_shape`` is the shape of one draw (``(k,)`` for a k-category one-hot
    vector). ``sample(sample_shape)`` gives ``sample_shape + batch_shape + event_shape``.

    With ``validate_args`` (the default, like PyTorch; switch it off for every new instance with
    :meth:`set_default_validate_args`), parameters are checked against ``arg_constraints`` when
    the distribution is made, and values against ``support`` in ``log_prob``.

    Example::

        >>> d = gradient.distributions.Normal(gradient.zeros(3), 1.0)
        >>> d.sample((2,)).shape
        gradient.Size([2, 3])
        >>> d.log_prob(gradient.zeros(3))
        tensor([-0.9189, -0.9189, -0.9189])
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = True

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Turn argument (and sample) validation on or off for distributions made afterwards."""
        if value not in (True, False):
            raise ArgumentValueError(
                f"set_default_validate_args: expected True or False, got {value!r}")
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None):
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            self._check_parameters()

    def _check_parameters(self) -> None:
        for name, constraint in self.arg_constraints.items():
            if constraints.is_dependent(constraint):
                continue
            if name not in self.__dict__ and isinstance(getattr(type(self), name, None), lazy_property):
                continue  # the other form of the parameter was given (probs for logits)
            value = getattr(self, name)
            with no_grad():
                ok = constraint.check(value)
                if not bool(ok.all()):
                    raise ArgumentValueError(
                        f"{type(self).__name__}: expected parameter {name} of shape "
                        f"{tuple(value.shape)} to satisfy the constraint {constraint!r}, but found "
                        f"invalid values:\n{value}")

    # ------------------------------------------------------------------ shapes
    @property
    def batch_shape(self) -> Size:
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        return self._event_shape

    @property
    def arg_constraints(self) -> dict:
        """Parameter name -> :class:`~gradient.distributions.constraints.Constraint`."""
        return {}

    @property
    def support(self):
        """The constraint every sample satisfies."""
        raise NotImplementedError

    def _extended_shape(self, sample_shape=()) -> Size:
        return Size(tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape))

    def _param_shape(self, name: str) -> tuple:
        """The trailing (per-batch-element) shape of parameter ``name``: the event shape."""
        return tuple(self._event_shape)

    def expand(self, batch_shape, _instance=None):
        """This distribution with its parameters broadcast (as views) to ``batch_shape``.

        Example: ``Normal(0.0, 1.0).expand((3,)).batch_shape`` is ``Size([3])``.
        """
        batch_shape = Size(batch_shape)
        new = _instance if _instance is not None else type(self).__new__(type(self))
        for name, value in self.__dict__.items():
            if isinstance(value, Tensor) and (name in self.arg_constraints or name.startswith("_param")):
                value = value.expand(tuple(batch_shape) + self._param_shape(name.lstrip("_")))
            new.__dict__[name] = value
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    # ------------------------------------------------------------------ sampling
    def sample(self, sample_shape=()):
        """A draw of shape ``sample_shape + batch_shape + event_shape``, without gradient."""
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        """A reparameterized draw: gradients flow to the parameters (where ``has_rsample``)."""
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sampler (rsample)")

    def sample_n(self, n: int):
        """``sample((n,))`` (deprecated in PyTorch, kept for ported code)."""
        return self.sample((n,))

    # ------------------------------------------------------------------ densities and moments
    def log_prob(self, value):
        raise NotImplementedError

    def cdf(self, value):
        raise NotImplementedError

    def icdf(self, value):
        raise NotImplementedError

    def entropy(self):
        raise NotImplementedError

    def enumerate_support(self, expand: bool = True):
        raise NotImplementedError

    @property
    def mean(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement mean")

    @property
    def mode(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement mode")

    @property
    def variance(self):
        raise NotImplementedError(f"{type(self).__name__} does not implement variance")

    @property
    def stddev(self):
        return _ew.sqrt(self.variance)

    def perplexity(self):
        return _ew.exp(self.entropy())

    # ------------------------------------------------------------------ validation
    def _validate_sample(self, value) -> None:
        """Check a value given to log_prob (or cdf): a tensor, of a broadcastable shape, in the support."""
        if not isinstance(value, Tensor):
            raise ArgumentValueError(
                f"{type(self).__name__}: the value must be a Tensor, got {type(value).__name__}")
        n = len(self._event_shape)
        if n and tuple(value.shape[value.ndim - n:]) != tuple(self._event_shape):
            raise ArgumentValueError(
                f"{type(self).__name__}: the value's rightmost dimensions "
                f"{tuple(value.shape)} must match the event shape {tuple(self._event_shape)}")
        try:
            broadcast_shapes(tuple(value.shape), tuple(self._batch_shape) + tuple(self._event_shape))
        except Exception:
            raise ArgumentValueError(
                f"{type(self).__name__}: the value of shape {tuple(value.shape)} does not "
                f"broadcast with batch_shape + event_shape "
                f"{tuple(self._batch_shape) + tuple(self._event_shape)}") from None
        support = self.support
        with no_grad():
            if not bool(support.check(value).all()):
                raise ArgumentValueError(
                    f"{type(self).__name__}: expected the value to be in the support "
                    f"{support!r}, but found invalid values:\n{value}")

    def __repr__(self) -> str:
        names = [k for k in self.arg_constraints if k in self.__dict__]
        args = ", ".join(f"{k}: {self.__dict__[k] if self.__dict__[k].numel() == 1 else tuple(self.__dict__[k].shape)}"
                         for k in names)
        return f"{type(self).__name__}({args})"
