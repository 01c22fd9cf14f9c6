"""Flattening parameters into one vector and back, as in ``torch.nn.utils``.

Example::

    vec = nn.utils.parameters_to_vector(model.parameters())   # 1-d, every parameter in order
    nn.utils.vector_to_parameters(vec * 0.5, model.parameters())
"""

from __future__ import annotations

from ...tensor import Tensor
from ...errors import ArgumentTypeError, ArgumentValueError

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _check_same_device(param: Tensor, device):
    if device is None:
        return param.device
    if param.device != device:
        from ...errors import DeviceError
        raise DeviceError(f"Found two parameters on different devices, {device} and {param.device}; "
                          "move the model to one device first")
    return device


def parameters_to_vector(parameters) -> Tensor:
    """All ``parameters`` flattened and concatenated into one 1-d tensor (differentiable)."""
    from ... import ops
    device = None
    parts = []
    for p in parameters:
        device = _check_same_device(p, device)
        parts.append(p.reshape(-1))
    return ops.cat(parts)


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy slices of the 1-d ``vec`` into ``parameters`` (in order), replacing their data.

    As in PyTorch the parameters end up sharing ``vec``'s storage (their ``.data`` is set to
    views of it).
    """
    if not isinstance(vec, Tensor):
        raise ArgumentTypeError(f"expected gradient.Tensor, but got: {type(vec).__name__}")
    device = None
    pointer = 0
    for param in parameters:
        device = _check_same_device(param, device)
        n = param.numel()
        if pointer + n > vec.numel():
            raise ArgumentValueError(
                f"vector_to_parameters: the vector has {vec.numel()} elements, fewer "
                "than the parameters need")
        param.data = vec[pointer:pointer + n].view_as(param).data
        pointer += n
