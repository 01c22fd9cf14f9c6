"""Lazy layers, as in ``torch.nn``: the input size is inferred from the first call.

``nn.LazyLinear(10)`` is a :class:`Linear` whose ``in_features`` is not known yet: its
``weight`` is an :class:`~gradient.nn.UninitializedParameter`. A forward pre-hook reads the
first input's size, gives the placeholders their shapes, initializes them like the regular
layer, and then turns the module into that layer (``type(m)`` becomes ``Linear``), as PyTorch
does. Build the optimizer after that first call (or after loading a checkpoint): before it,
``parameters()`` are placeholders.

``state_dict()`` of an uninitialized layer holds the placeholders themselves under the regular
names; ``load_state_dict`` into an uninitialized layer materializes each placeholder with the
checkpoint's shape first, so a trained checkpoint loads without a dummy forward.

Example::

    >>> net = nn.Sequential(nn.LazyConv2d(16, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
    >>> net(gradient.randn(2, 3, 8, 8)).shape
    gradient.Size([2, 10])
    >>> net[0]
    Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1))

Deliberate difference: ``LazyInstanceNorm*`` read the channel count from the right dimension
of unbatched inputs (PyTorch reads ``input.shape[1]`` either way).
"""

from __future__ import annotations

from ...autograd.grad_mode import no_grad
from ...dtypes import int64
from ...errors import ArgumentValueError, ShapeError, UsageError
from ... import ops as _ops
from ..parameter import UninitializedBuffer, UninitializedParameter, is_lazy
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Linear
from .normalization import InstanceNorm1d, InstanceNorm2d, InstanceNorm3d

__all__ = ["LazyLinear", "LazyConv1d", "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d",
           "LazyConvTranspose2d", "LazyConvTranspose3d", "LazyBatchNorm1d", "LazyBatchNorm2d",
           "LazyBatchNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d", "LazyInstanceNorm3d"]


class LazyModuleMixin:
    """Mixed in before a regular layer class: placeholders until the first call, then the layer.

    A subclass sets ``cls_to_become`` and implements ``initialize_parameters(*inputs)``, which
    materializes its placeholders from the inputs' sizes and calls ``reset_parameters()``.
    """

    cls_to_become = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._initialize_hook = self.register_forward_pre_hook(_infer_parameters, with_kwargs=True)

    def has_uninitialized_params(self) -> bool:
        """Whether any of this module's own parameters or buffers is still a placeholder."""
        return any(is_lazy(t) for t in (*self._parameters.values(), *self._buffers.values()))

    def initialize_parameters(self, *args, **kwargs) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement initialize_parameters")

    def _apply(self, fn, recurse: bool = True):
        # ``.to(dtype)`` / ``.double()`` before the first call: parameters keep their identity
        # (and class), but buffers are replaced by fn's result, a plain empty tensor; put a
        # placeholder of the converted dtype and device back in its place
        lazy_buffers = [name for name, buf in self._buffers.items() if is_lazy(buf)]
        super()._apply(fn, recurse)
        for name in lazy_buffers:
            converted = self._buffers[name]
            if not is_lazy(converted):
                self._buffers[name] = UninitializedBuffer(device=converted.device,
                                                          dtype=converted.dtype)
        return self

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        state = super().state_dict(*args, destination=destination, prefix=prefix,
                                   keep_vars=keep_vars)
        # the placeholders themselves (detach() would turn them into plain empty tensors), so a
        # checkpoint of an uninitialized layer says so, as PyTorch's does
        for name, value in (*self._parameters.items(), *self._buffers.items()):
            if is_lazy(value) and prefix + name in state:
                state[prefix + name] = value
        return state

    def _load_own_state(self, state_dict, prefix, strict, assign, missing_keys, unexpected_keys,
                        error_msgs):
        # a placeholder takes the checkpoint's shape first; then the values are copied as usual
        both_lazy = set()
        for name, value in (*self._parameters.items(), *self._buffers.items()):
            key = prefix + name
            if is_lazy(value) and key in state_dict:
                if is_lazy(state_dict[key]):
                    both_lazy.add(key)   # an uninitialized checkpoint: nothing to copy
                else:
                    with no_grad():
                        value.materialize(tuple(state_dict[key].shape))
        super()._load_own_state({k: v for k, v in state_dict.items() if k not in both_lazy},
                                prefix, strict, assign, missing_keys, unexpected_keys, error_msgs)
        missing_keys[:] = [k for k in missing_keys if k not in both_lazy]


def _infer_parameters(module, args, kwargs):
    """The forward pre-hook: size the placeholders from the first input, then become the
    regular layer (and stop being called)."""
    module.initialize_parameters(*args, **kwargs)
    if module.has_uninitialized_params():
        raise UsageError(f"module {type(module).__name__} has not been fully initialized")
    module._initialize_hook.remove()
    del module._initialize_hook
    if module.cls_to_become is not None:
        module.__class__ = module.cls_to_become


# ---------------------------------------------------------------------- Linear
class LazyLinear(LazyModuleMixin, Linear):
    """:class:`Linear` with ``in_features`` taken from the first input's last dimension.

    Example::

        >>> fc = nn.LazyLinear(10)
        >>> fc(gradient.randn(4, 32)).shape, fc
        (gradient.Size([4, 10]), Linear(in_features=32, out_features=10, bias=True))
    """

    cls_to_become = Linear

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(0, 0, False, device, dtype)  # sizes and tensors come below / later
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_features = out_features
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        if self.has_uninitialized_params():
            with no_grad():
                self.in_features = input.shape[-1]
                self.weight.materialize((self.out_features, self.in_features))
                if self.bias is not None:
                    self.bias.materialize((self.out_features,))
                self.reset_parameters()


# ---------------------------------------------------------------------- convolutions
class _LazyConvMixin(LazyModuleMixin):
    """``in_channels`` taken from the first input's channel dimension (batched or unbatched)."""

    def _lazy_init(self, out_channels: int, bias: bool, device, dtype) -> None:
        self.weight = UninitializedParameter(device=device, dtype=dtype)
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        if not self.has_uninitialized_params():
            return
        d = len(self.kernel_size)
        if input.ndim not in (d + 1, d + 2):
            raise ShapeError(f"{type(self).__name__}: expected a {d + 1}-D (unbatched) or "
                             f"{d + 2}-D (batched) input, got input of shape {tuple(input.shape)}")
        self.in_channels = input.shape[0 if input.ndim == d + 1 else 1]
        if self.in_channels % self.groups != 0:
            raise ArgumentValueError(
                f"{type(self).__name__}: in_channels ({self.in_channels}, from the "
                f"input) must be divisible by groups ({self.groups})")
        if self.transposed:
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        with no_grad():
            self.weight.materialize(shape)
            if self.bias is not None:
                self.bias.materialize((self.out_channels,))
            self.reset_parameters()


def _lazy_conv(name: str, base, doc: str):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        # out_channels=0 and bias=False: no tensors are made that would be replaced below
        base.__init__(self, 0, 0, kernel_size, stride, padding, dilation, groups, False,
                      padding_mode, device, dtype)
        self._initialize_hook = self.register_forward_pre_hook(_infer_parameters,
                                                               with_kwargs=True)
        self._lazy_init(out_channels, bias, device, dtype)

    return type(name, (_LazyConvMixin, base), {"__init__": __init__, "cls_to_become": base,
                                               "__doc__": doc, "__module__": __name__})


def _lazy_conv_transpose(name: str, base, doc: str):
    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros",
                 device=None, dtype=None) -> None:
        base.__init__(self, 0, 0, kernel_size, stride, padding, output_padding, groups, False,
                      dilation, padding_mode, device, dtype)
        self._initialize_hook = self.register_forward_pre_hook(_infer_parameters,
                                                               with_kwargs=True)
        self._lazy_init(out_channels, bias, device, dtype)

    return type(name, (_LazyConvMixin, base), {"__init__": __init__, "cls_to_become": base,
                                               "__doc__": doc, "__module__": __name__})


LazyConv1d = _lazy_conv("LazyConv1d", Conv1d, """:class:`Conv1d` with ``in_channels`` from the
    first input. ``nn.LazyConv1d(16, 3)(gradient.randn(2, 4, 10))`` -> Conv1d(4, 16, ...)""")
LazyConv2d = _lazy_conv("LazyConv2d", Conv2d, """:class:`Conv2d` with ``in_channels`` from the
    first input. ``nn.LazyConv2d(16, 3, padding=1)(gradient.randn(2, 3, 8, 8))``""")
LazyConv3d = _lazy_conv("LazyConv3d", Conv3d, """:class:`Conv3d` with ``in_channels`` from the
    first input. ``nn.LazyConv3d(4, 3)(gradient.randn(1, 2, 5, 5, 5))``""")
LazyConvTranspose1d = _lazy_conv_transpose("LazyConvTranspose1d", ConvTranspose1d, """
    :class:`ConvTranspose1d` with ``in_channels`` from the first input.
    ``nn.LazyConvTranspose1d(8, 4, stride=2)(gradient.randn(2, 16, 10))``""")
LazyConvTranspose2d = _lazy_conv_transpose("LazyConvTranspose2d", ConvTranspose2d, """
    :class:`ConvTranspose2d` with ``in_channels`` from the first input.
    ``nn.LazyConvTranspose2d(8, 4, stride=2, padding=1)(gradient.randn(1, 16, 6, 6))``""")
LazyConvTranspose3d = _lazy_conv_transpose("LazyConvTranspose3d", ConvTranspose3d, """
    :class:`ConvTranspose3d` with ``in_channels`` from the first input.
    ``nn.LazyConvTranspose3d(2, 3)(gradient.randn(1, 4, 3, 3, 3))``""")


# ---------------------------------------------------------------------- norms
class _LazyNormMixin(LazyModuleMixin):
    """``num_features`` from the first input's channel dimension. Unlike the regular
    InstanceNorm layers, the lazy ones default to ``affine=True, track_running_stats=True``
    (PyTorch's defaults)."""

    def _lazy_init(self, affine: bool, track_running_stats: bool, bias: bool, device,
                   dtype) -> None:
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = UninitializedParameter(device=device, dtype=dtype)
            if bias:
                self.bias = UninitializedParameter(device=device, dtype=dtype)
        if track_running_stats:
            self.running_mean = UninitializedBuffer(device=device, dtype=dtype)
            self.running_var = UninitializedBuffer(device=device, dtype=dtype)
            self.num_batches_tracked = _ops.tensor(0, dtype=int64, device=device)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def _channel_dim(self, input) -> int:
        return 1

    def initialize_parameters(self, input, *args, **kwargs) -> None:
        if not self.has_uninitialized_params():
            return
        if input.ndim < 2:
            raise ShapeError(f"{type(self).__name__}: expected an input with a channel dimension, "
                             f"got input of shape {tuple(input.shape)}")
        self.num_features = input.shape[self._channel_dim(input)]
        with no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                value = getattr(self, name)
                if is_lazy(value):
                    value.materialize((self.num_features,))
            self.reset_parameters()


def _lazy_norm(name: str, base, doc: str, channel_dim=None):
    def __init__(self, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *,
                 bias: bool = True) -> None:
        # no affine parameters and no statistics yet: their placeholders come below
        base.__init__(self, 0, eps, momentum, False, False, device, dtype, bias=False)
        self._initialize_hook = self.register_forward_pre_hook(_infer_parameters,
                                                               with_kwargs=True)
        self._lazy_init(affine, track_running_stats, bias, device, dtype)

    namespace = {"__init__": __init__, "cls_to_become": base, "__doc__": doc,
                 "__module__": __name__}
    if channel_dim is not None:
        namespace["_channel_dim"] = channel_dim
    return type(name, (_LazyNormMixin, base), namespace)


def _instance_channel_dim(self, input) -> int:
    # (N, C, *spatial) or unbatched (C, *spatial)
    return 0 if input.ndim == self._batched_ndim - 1 else 1


LazyBatchNorm1d = _lazy_norm("LazyBatchNorm1d", BatchNorm1d, """:class:`BatchNorm1d` with
    ``num_features`` from the first input. ``nn.LazyBatchNorm1d()(gradient.randn(8, 16))``""")
LazyBatchNorm2d = _lazy_norm("LazyBatchNorm2d", BatchNorm2d, """:class:`BatchNorm2d` with
    ``num_features`` from the first input. ``nn.LazyBatchNorm2d()(gradient.randn(8, 3, 4, 4))``""")
LazyBatchNorm3d = _lazy_norm("LazyBatchNorm3d", BatchNorm3d, """:class:`BatchNorm3d` with
    ``num_features`` from the first input. ``nn.LazyBatchNorm3d()(gradient.randn(2, 3, 2, 4, 4))``""")
LazyInstanceNorm1d = _lazy_norm("LazyInstanceNorm1d", InstanceNorm1d, """:class:`InstanceNorm1d`
    with ``num_features`` from the first input (affine and tracking by default, as PyTorch's).
    ``nn.LazyInstanceNorm1d()(gradient.randn(4, 16, 50))``""", _instance_channel_dim)
LazyInstanceNorm2d = _lazy_norm("LazyInstanceNorm2d", InstanceNorm2d, """:class:`InstanceNorm2d`
    with ``num_features`` from the first input (affine and tracking by default, as PyTorch's).
    ``nn.LazyInstanceNorm2d()(gradient.randn(4, 3, 8, 8))``""", _instance_channel_dim)
LazyInstanceNorm3d = _lazy_norm("LazyInstanceNorm3d", InstanceNorm3d, """:class:`InstanceNorm3d`
    with ``num_features`` from the first input (affine and tracking by default, as PyTorch's).
    ``nn.LazyInstanceNorm3d()(gradient.randn(2, 3, 2, 4, 4))``""", _instance_channel_dim)
