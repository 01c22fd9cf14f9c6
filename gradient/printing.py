"""How tensors print: ``tensor([[1., 2.], [3., 4.]], requires_grad=True)``, as in PyTorch.

:func:`set_printoptions` changes it as ``torch.set_printoptions`` does: digits, when to
summarise with ``...``, line width, scientific notation.
"""

from __future__ import annotations

import math
import sys

import numpy as np
from .errors import ArgumentValueError

__all__ = ["set_printoptions"]

_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}
_options = dict(_PROFILES["default"], sci_mode=None)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None) -> None:
    """How tensors print from now on, as ``torch.set_printoptions``.

    ``precision`` digits after the point (4); ``threshold`` elements beyond which a tensor is
    summarised with ``...`` (1000); ``edgeitems`` shown at each end of a summarised dimension
    (3); ``linewidth`` characters per line (80); ``profile`` "default", "short" or "full" resets
    all four; ``sci_mode`` True/False forces scientific notation on or off, None decides.

    Example: ``gradient.set_printoptions(precision=2)``
    """
    if profile is not None:
        if profile not in _PROFILES:
            raise ArgumentValueError(
                f"set_printoptions: profile must be one of {sorted(_PROFILES)}, got "
                f"{profile!r}")
        _options.update(_PROFILES[profile])
    for name, value in (("precision", precision), ("threshold", threshold),
                        ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if value is not None:
            _options[name] = value
    _options["sci_mode"] = sci_mode


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
        sci, digits = _options["sci_mode"], _options["precision"]
        if sci is None:
            sci = bool(big)
        if integral and not sci:
            fmt = lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)  # noqa: E731
        elif sci:
            fmt = lambda v: f"{v:.{digits}e}"  # noqa: E731
        else:
            fmt = lambda v: f"{v:.{digits}f}"  # noqa: E731
        body = np.array2string(arr, separator=", ", prefix=prefix, formatter={"float_kind": fmt},
                               **_layout())
    else:
        body = np.array2string(arr, separator=", ", prefix=prefix, **_layout())
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


def _layout() -> dict:
    """NumPy's array2string arguments for the summarising and line-width options."""
    threshold = _options["threshold"]
    return dict(threshold=sys.maxsize if threshold == math.inf else int(threshold),
                edgeitems=int(_options["edgeitems"]), max_line_width=int(_options["linewidth"]))
