"""The categorical distribution (and its one-hot form)."""

from __future__ import annotations

from ..dtypes import finfo, int64
from ..ops import index as _index
from ..ops import nn as _nn
from ..ops import reduce as _reduce
from ..ops.shape import broadcast_tensors
from . import constraints
from .distribution import Distribution
from .utils import lazy_property, probs_or_logits, logits_to_probs, probs_to_logits
from ..errors import ArgumentValueError


class Categorical(Distribution):
    """One of ``K`` categories (an int64 index), with ``probs`` (nonnegative, normalized over the
    last dimension) or unnormalized ``logits``; the last dimension of the parameter indexes the
    categories, the others are the batch. Not reparameterizable.

    Example::

        >>> d = Categorical(probs=gradient.tensor([0.1, 0.2, 0.7]))
        >>> d.log_prob(gradient.tensor(2))
        tensor(-0.3567)
    """
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        _, param = probs_or_logits(type(self).__name__, probs, logits)
        if param.ndim < 1:
            raise ArgumentValueError(
                f"{type(self).__name__}: the parameter must have at least one dimension")
        if probs is not None:
            self.probs = probs / _reduce.sum(probs, -1, keepdim=True)
        else:
            # normalized: logits are log-probabilities from here on
            self.logits = logits - _reduce.logsumexp(logits, dim=-1, keepdim=True)
        self._num_events = param.shape[-1]
        super().__init__(param.shape[:-1], validate_args=validate_args)

    def _param_shape(self, name):
        return (self._num_events,)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits)

    @property
    def param_shape(self):
        return self.__dict__.get("probs", self.__dict__.get("logits")).shape

    @property
    def mean(self):
        return _nan_like(self.probs, self._extended_shape())

    @property
    def mode(self):
        return _reduce.argmax(self.probs, dim=-1)

    @property
    def variance(self):
        return _nan_like(self.probs, self._extended_shape())

    def sample(self, sample_shape=()):
        sample_shape = tuple(sample_shape)
        n = 1
        for s in sample_shape:
            n *= s
        probs_2d = self.probs.detach().reshape(-1, self._num_events)
        draws = _index.multinomial(probs_2d, n, replacement=True)  # (batch, n)
        return draws.T.reshape(self._extended_shape(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = broadcast_tensors(value, self.logits)
        return _index.gather(log_pmf, -1, value[..., :1]).squeeze(-1)

    def entropy(self):
        # -inf logits (impossible categories) count as the dtype's most negative value, so that
        # 0 * -inf does not make the sum nan
        logits = self.logits.clamp(min=finfo(self.logits.dtype).min)
        return -_reduce.sum(logits * self.probs, -1)

    def enumerate_support(self, expand: bool = True):
        from ..ops.creation import arange
        values = arange(self._num_events, dtype=int64).reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((self._num_events,) + tuple(self.batch_shape)) if expand else values


class OfCategorical:
    """``probs``, ``logits`` and ``param_shape`` of a distribution built on its
    ``_categorical`` (OneHotCategorical, Multinomial). A mixin, listed before Distribution."""

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def param_shape(self):
        return self._categorical.param_shape


class OneHotCategorical(OfCategorical, Distribution):
    """:class:`Categorical` with one-hot vectors as values (event shape ``(K,)``).

    Example: ``OneHotCategorical(probs=p).sample()`` is a float vector with a single 1.
    """
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    support = constraints.independent(constraints.boolean, 1)  # one-hot (PyTorch: constraints.one_hot)
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = type(self).__new__(type(self))
        new._categorical = self._categorical.expand(batch_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self):
        return self._categorical.probs

    @property
    def mode(self):
        return _nn.one_hot(self._categorical.mode, self.event_shape[-1]).to(self.probs.dtype)

    @property
    def variance(self):
        return self._categorical.probs * (1 - self._categorical.probs)

    def sample(self, sample_shape=()):
        indices = self._categorical.sample(sample_shape)
        return _nn.one_hot(indices, self.event_shape[-1]).to(self.probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(_reduce.argmax(value, dim=-1))

    def entropy(self):
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True):
        from ..ops.creation import eye
        n = self.event_shape[0]
        values = eye(n, dtype=self.probs.dtype).reshape((n,) + (1,) * len(self.batch_shape) + (n,))
        return values.expand((n,) + tuple(self.batch_shape) + (n,)) if expand else values


def _nan_like(like, shape):
    from ..ops.creation import full
    return full(tuple(shape), float("nan"), dtype=like.dtype, device=like.device)


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """:class:`OneHotCategorical` whose ``rsample`` passes gradients "straight through": the
    one-hot draw in the forward pass, ``probs``' gradient in the backward (Bengio et al., 2013),
    as PyTorch's.

    Example: ``OneHotCategoricalStraightThrough(logits=theta).rsample()`` is one-hot, and
    differentiable in ``theta``.
    """
    has_rsample = True

    def rsample(self, sample_shape=()):
        draws = self.sample(sample_shape)
        probs = self._categorical.probs
        return draws + (probs - probs.detach())

