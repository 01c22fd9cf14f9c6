"""Pruning, as ``torch.nn.utils.prune``: zero a share of a layer's weights (the smallest, a
random share, or whole channels) through a mask that stays applied while the model trains.

Pruning parameter ``name`` of a module moves it to ``name + "_orig"`` (still the parameter
the optimizer updates), adds the buffer ``name + "_mask"`` (ones where weights are kept), and
makes ``name`` the product of the two, computed again by a forward pre-hook before every call.
Pruning the same parameter again prunes what is left (an ``amount`` of 0.5 twice keeps a
quarter): the masks combine. :func:`remove` makes the pruning permanent (the parameter becomes
the masked values, the mask and the hook go).

- :func:`l1_unstructured`, :func:`random_unstructured`: single weights, by magnitude or at
  random; ``amount`` a fraction in [0, 1] or a count.
- :func:`ln_structured`, :func:`random_structured`: whole channels along ``dim``, by their
  ``n``-norm or at random.
- :func:`global_unstructured`: the smallest weights across several parameters together.
- :func:`custom_from_mask`, :func:`identity`, :func:`is_pruned`, :func:`remove`.

Example::

    >>> prune.l1_unstructured(model.fc, name="weight", amount=0.3)   # 30% of fc.weight zero
    >>> list(dict(model.fc.named_buffers()))
    ['weight_mask']
    >>> prune.remove(model.fc, "weight")                              # fc.weight a parameter
"""

from __future__ import annotations

import numbers

import numpy as np

from ...autograd import no_grad
from ...ops.creation import ones_like, rand, tensor
from ...tensor import Tensor
from ...errors import ArgumentTypeError, ArgumentValueError, IndexRangeError

__all__ = ["BasePruningMethod", "PruningContainer", "Identity", "RandomUnstructured",
           "L1Unstructured", "RandomStructured", "LnStructured", "CustomFromMask", "identity",
           "random_unstructured", "l1_unstructured", "random_structured", "ln_structured",
           "global_unstructured", "custom_from_mask", "remove", "is_pruned"]


def _check_amount(amount) -> None:
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise ArgumentTypeError(f"prune: amount must be an int or a float, got {amount!r}")
    if (amount < 0 if isinstance(amount, numbers.Integral)
            else not 0.0 <= float(amount) <= 1.0):
        raise ArgumentValueError(
            f"prune: amount={amount} must be a float in [0, 1] (a fraction) or a "
            f"non-negative int (a count)")


def _how_many(amount, size: int) -> int:
    """The count ``amount`` means among ``size`` entries (a fraction rounds, half to even)."""
    count = amount if isinstance(amount, numbers.Integral) else round(amount * size)
    if count > size:
        raise ArgumentValueError(
            f"prune: amount={amount} is more than the {size} entries left to prune")
    return int(count)


class BasePruningMethod:
    """A way of pruning: ``compute_mask(t, default_mask)`` gives the new mask of a tensor
    (zeros where pruned) on top of the mask it already has. As a forward pre-hook it sets the
    pruned tensor on the module before each call. ``PRUNING_TYPE`` says what a repeated pruning
    chooses among: ``"unstructured"`` the weights still kept, ``"structured"`` the channels
    still kept, ``"global"`` everything."""

    PRUNING_TYPE = "unstructured"
    _tensor_name = None

    def compute_mask(self, t, default_mask):
        raise NotImplementedError(f"{type(self).__name__} must define compute_mask(t, "
                                  f"default_mask)")

    def __call__(self, module, inputs):
        setattr(module, self._tensor_name, self.apply_mask(module))

    def apply_mask(self, module):
        """The pruned tensor: ``name_orig * name_mask`` of ``module``."""
        if self._tensor_name is None:
            raise ArgumentValueError(
                f"{type(self).__name__} has pruned no tensor yet: apply it first")
        original = getattr(module, self._tensor_name + "_orig")
        return getattr(module, self._tensor_name + "_mask").to(original.dtype) * original

    def prune(self, t, default_mask=None, importance_scores=None):
        """``t`` times the mask this method computes for it (nothing is registered)."""
        scores = t if importance_scores is None else importance_scores
        _same_shape(scores, t, "importance_scores")
        mask = self.compute_mask(scores, ones_like(t) if default_mask is None else default_mask)
        return t * mask

    @classmethod
    def apply(cls, module, name: str, *args, importance_scores=None, **kwargs):
        """Prune ``module``'s parameter ``name`` with a new ``cls(*args, **kwargs)``, combined
        with the pruning it already has; returns the method (or container) now in charge."""
        method = cls(*args, **kwargs)
        method._tensor_name = name
        earlier = [(key, hook) for key, hook in module._forward_pre_hooks.items()
                   if isinstance(hook, BasePruningMethod) and hook._tensor_name == name]
        if earlier:
            key, before = earlier[0]
            del module._forward_pre_hooks[key]
            container = before if isinstance(before, PruningContainer) else \
                PruningContainer(before)
            container.add_pruning_method(method)
            method = container
        original = getattr(module, name)
        scores = original if importance_scores is None else importance_scores
        _same_shape(scores, original, "importance_scores")
        first = not earlier
        if first:
            module.register_parameter(name + "_orig", original)
            del module._parameters[name]
            default_mask = ones_like(original)
        else:
            default_mask = getattr(module, name + "_mask").detach().clone()
        try:
            with no_grad():
                mask = method.compute_mask(scores.detach(), default_mask=default_mask)
            module.register_buffer(name + "_mask", mask)
            setattr(module, name, method.apply_mask(module))
            module.register_forward_pre_hook(method)
        except Exception:
            if first:                   # leave the module as it was
                original = module._parameters.pop(name + "_orig")
                module.register_parameter(name, original)
            raise
        return method

    def remove(self, module) -> None:
        """Make the pruning permanent: the parameter ``name`` holds the pruned values."""
        if self._tensor_name is None:
            raise ArgumentValueError(
                f"{type(self).__name__} has pruned no tensor: nothing to remove")
        name = self._tensor_name
        with no_grad():
            pruned = self.apply_mask(module)
        if name in module.__dict__:
            delattr(module, name)
        parameter = module._parameters.pop(name + "_orig")
        with no_grad():
            parameter.copy_(pruned)
        del module._buffers[name + "_mask"]
        module.register_parameter(name, parameter)


def _same_shape(scores, t, what: str) -> None:
    if tuple(scores.shape) != tuple(t.shape):
        raise ArgumentValueError(
            f"prune: {what} must have the parameter's shape {tuple(t.shape)}, "
            f"got {tuple(scores.shape)}")


class PruningContainer(BasePruningMethod):
    """The prunings of one tensor, in order; the last one prunes what the earlier left (the
    weights, or channels, still kept; everything for a ``"global"`` one)."""

    def __init__(self, *methods):
        self._pruning_methods = ()
        if methods:
            self._tensor_name = methods[0]._tensor_name
        for method in methods:
            self.add_pruning_method(method)

    def add_pruning_method(self, method) -> None:
        if not isinstance(method, BasePruningMethod):
            raise ArgumentTypeError(f"PruningContainer takes pruning methods, got {type(method)}")
        if self._tensor_name is not None and method._tensor_name != self._tensor_name:
            raise ArgumentValueError(
                f"PruningContainer of '{self._tensor_name}' cannot take a pruning "
                f"of '{method._tensor_name}'")
        self._tensor_name = method._tensor_name
        self._pruning_methods += (method,)

    def __len__(self):
        return len(self._pruning_methods)

    def __iter__(self):
        return iter(self._pruning_methods)

    def __getitem__(self, index):
        return self._pruning_methods[index]

    def compute_mask(self, t, default_mask):
        method = self._pruning_methods[-1]
        mask = default_mask.to(t.dtype).clone()
        if method.PRUNING_TYPE == "unstructured":
            kept = mask == 1
        elif method.PRUNING_TYPE == "structured":
            dim = method.dim % t.ndim
            others = [d for d in range(t.ndim) if d != dim]
            channels = mask.sum(dim=others) != 0
            kept = (slice(None),) * dim + (channels,)
        elif method.PRUNING_TYPE == "global":
            kept = (slice(None),) * t.ndim
        else:
            raise ArgumentValueError(f"unknown PRUNING_TYPE {method.PRUNING_TYPE!r}")
        mask[kept] = method.compute_mask(t[kept], default_mask=mask[kept]).to(mask.dtype)
        return mask


class Identity(BasePruningMethod):
    """Prunes nothing: the reparametrization with a mask of ones."""

    PRUNING_TYPE = "unstructured"

    def compute_mask(self, t, default_mask):
        return default_mask

    @classmethod
    def apply(cls, module, name):
        return super().apply(module, name)


class _Unstructured(BasePruningMethod):
    PRUNING_TYPE = "unstructured"

    def __init__(self, amount):
        _check_amount(amount)
        self.amount = amount

    def compute_mask(self, t, default_mask):
        count = _how_many(self.amount, t.numel())
        mask = default_mask.clone()
        if count:
            flat = mask.reshape(-1)
            flat[tensor(self._chosen(t, count))] = 0
            mask = flat.reshape(mask.shape)
        return mask


class L1Unstructured(_Unstructured):
    """Prunes the ``amount`` weights of smallest magnitude."""

    def _chosen(self, t, count):
        return np.argsort(np.abs(t.detach().float().numpy().reshape(-1)),
                          kind="stable")[:count]

    @classmethod
    def apply(cls, module, name, amount, importance_scores=None):
        return super().apply(module, name, amount=amount, importance_scores=importance_scores)


class RandomUnstructured(_Unstructured):
    """Prunes ``amount`` weights chosen at random."""

    def _chosen(self, t, count):
        return np.argsort(-rand(t.numel()).numpy(), kind="stable")[:count]

    @classmethod
    def apply(cls, module, name, amount):
        return super().apply(module, name, amount=amount)


class _Structured(BasePruningMethod):
    PRUNING_TYPE = "structured"

    def compute_mask(self, t, default_mask):
        if t.ndim <= 1:
            raise ArgumentValueError(
                f"structured pruning takes a tensor of 2 or more dimensions, got "
                f"shape {tuple(t.shape)}")
        if not -t.ndim <= self.dim < t.ndim:
            raise IndexRangeError(
                f"prune: dim={self.dim} is out of range for shape {tuple(t.shape)}")
        dim = self.dim % t.ndim
        channels = t.shape[dim]
        count = _how_many(self.amount, channels)
        if count == 0:
            return default_mask
        kept = np.ones(channels, bool)
        kept[self._pruned_channels(t, dim, count)] = False
        shape = [1] * t.ndim
        shape[dim] = channels
        keep = tensor(kept.reshape(shape)).to(t.dtype)
        return default_mask.to(t.dtype) * keep.expand(*t.shape)


class LnStructured(_Structured):
    """Prunes the ``amount`` channels along ``dim`` of smallest ``n``-norm."""

    def __init__(self, amount, n, dim=-1):
        _check_amount(amount)
        self.amount, self.n, self.dim = amount, n, dim

    def _pruned_channels(self, t, dim, count):
        others = [d for d in range(t.ndim) if d != dim]
        norms = t.detach().float().norm(p=self.n, dim=others).numpy()
        return np.argsort(-norms, kind="stable")[t.shape[dim] - count:]

    @classmethod
    def apply(cls, module, name, amount, n, dim, importance_scores=None):
        return super().apply(module, name, amount=amount, n=n, dim=dim,
                             importance_scores=importance_scores)


class RandomStructured(_Structured):
    """Prunes ``amount`` channels along ``dim`` chosen at random."""

    def __init__(self, amount, dim=-1):
        _check_amount(amount)
        self.amount, self.dim = amount, dim

    def _pruned_channels(self, t, dim, count):
        return np.argsort(rand(t.shape[dim]).numpy(), kind="stable")[:count]

    @classmethod
    def apply(cls, module, name, amount, dim=-1):
        return super().apply(module, name, amount=amount, dim=dim)


class CustomFromMask(BasePruningMethod):
    """Prunes where ``mask`` is zero."""

    PRUNING_TYPE = "global"

    def __init__(self, mask):
        self.mask = mask

    def compute_mask(self, t, default_mask):
        _same_shape(self.mask, default_mask, "mask")
        return default_mask * self.mask.to(default_mask.dtype)

    @classmethod
    def apply(cls, module, name, mask):
        return super().apply(module, name, mask=mask)


def identity(module, name: str):
    """Reparametrize ``module``'s parameter ``name`` with a mask of ones (nothing pruned)."""
    Identity.apply(module, name)
    return module


def random_unstructured(module, name: str, amount):
    """Prune ``amount`` of the (still kept) entries of ``module.name`` at random."""
    RandomUnstructured.apply(module, name, amount)
    return module


def l1_unstructured(module, name: str, amount, importance_scores=None):
    """Prune the ``amount`` (still kept) entries of ``module.name`` of smallest magnitude (or
    of smallest ``importance_scores``, a tensor of its shape)."""
    L1Unstructured.apply(module, name, amount=amount, importance_scores=importance_scores)
    return module


def random_structured(module, name: str, amount, dim: int):
    """Prune ``amount`` of the (still kept) channels of ``module.name`` along ``dim`` at
    random."""
    RandomStructured.apply(module, name, amount, dim)
    return module


def ln_structured(module, name: str, amount, n, dim: int, importance_scores=None):
    """Prune the ``amount`` (still kept) channels of ``module.name`` along ``dim`` of smallest
    ``n``-norm (``n`` as ``Tensor.norm``'s ``p``)."""
    LnStructured.apply(module, name, amount, n, dim, importance_scores=importance_scores)
    return module


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """Prune the ``(module, name)`` pairs of ``parameters`` together: ``pruning_method`` (an
    unstructured one, such as :class:`L1Unstructured`, with ``kwargs`` such as ``amount``)
    chooses among all their (still kept) entries at once, so that a layer of small weights
    loses more than one of large weights."""
    parameters = list(parameters)
    scores = importance_scores or {}
    if not isinstance(scores, dict):
        raise ArgumentTypeError(
            "global_unstructured: importance_scores must be a dict of (module, "
            "name) -> tensor")
    method = pruning_method(**kwargs)
    if method.PRUNING_TYPE != "unstructured":
        raise ArgumentTypeError(f"global_unstructured takes an unstructured pruning method, got "
                                f"{pruning_method.__name__} ({method.PRUNING_TYPE})")
    method._tensor_name = "all"

    def flat(tensors):
        from ...ops.shape import cat
        return cat([t.detach().reshape(-1) for t in tensors])
    together = flat([scores.get((m, n), getattr(m, n)) for m, n in parameters])
    before = flat([m._buffers[n + "_mask"] if n + "_mask" in m._buffers
                   else ones_like(getattr(m, n)) for m, n in parameters])
    with no_grad():
        mask = PruningContainer(method).compute_mask(together, before)
    at = 0
    for module, name in parameters:
        size = getattr(module, name).numel()
        custom_from_mask(module, name, mask[at:at + size].reshape(getattr(module, name).shape))
        at += size


def custom_from_mask(module, name: str, mask: Tensor):
    """Prune ``module.name`` where ``mask`` (of its shape) is zero."""
    CustomFromMask.apply(module, name, mask=mask)
    return module


def remove(module, name: str):
    """Make the pruning of ``module.name`` permanent: it becomes a parameter holding the
    pruned values, without ``name_orig``, ``name_mask`` or the hook."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, BasePruningMethod) and hook._tensor_name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ArgumentValueError(
        f"parameter '{name}' of {type(module).__name__} is not pruned: prune it "
        f"before removing its pruning")


def is_pruned(module) -> bool:
    """Whether ``module`` or one of its submodules has a pruned parameter."""
    return any(isinstance(hook, BasePruningMethod)
               for _, sub in module.named_modules() for hook in sub._forward_pre_hooks.values())
