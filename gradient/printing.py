"""How tensors print: ``tensor([[1., 2.], [3., 4.]], requires_grad=True)``, as in PyTorch."""

from __future__ import annotations

import numpy as np


def tensor_repr(t) -> str:
    arr = t._backend.to_numpy(t._data)
    if t.dtype.name in ("bfloat16", "float16"):
        arr = arr.astype(np.float32)
    prefix = "tensor("
    if arr.size == 0:
        body = "[]" if arr.ndim == 1 else f"[], size={tuple(arr.shape)}"
    elif arr.dtype.kind == "f":
        finite = arr[np.isfinite(arr)]
        integral = finite.size == 0 or bool(np.all(finite == np.round(finite)))
        big = finite.size and (np.abs(finite).max() >= 1e8 or 0 < np.abs(finite[finite != 0]).min(
            initial=1) < 1e-4)
        if integral and not big:
            fmt = lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)  # noqa: E731
        elif big:
            fmt = lambda v: f"{v:.4e}"  # noqa: E731
        else:
            fmt = lambda v: f"{v:.4f}"  # noqa: E731
        body = np.array2string(arr, separator=", ", prefix=prefix, threshold=1000, edgeitems=3,
                               formatter={"float_kind": fmt})
    else:
        body = np.array2string(arr, separator=", ", prefix=prefix, threshold=1000, edgeitems=3)
    extras = []
    if t.dtype.name not in ("float32", "int64", "bool") or (t.dtype.name != "float32" and False):
        extras.append(f"dtype=gradient.{t.dtype.name}")
    if t.device.type != "cpu":
        extras.append(f"device='{t.device}'")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return prefix + body + "".join(", " + e for e in extras) + ")"
