"""How tensors print: ``tensor([[1., 2.], [3., 4.]], requires_grad=True)``, as in PyTorch,
character for character.

The rules are PyTorch's. One format serves every element of a tensor, decided from its
nonzero finite values (from the edges only, when the tensor is summarised):

* integers and booleans print as Python prints them;
* floats whose values are all whole print as ``3.`` (``int mode``), others with
  ``precision`` digits after the point; scientific notation (``1.0000e-05``) when the largest
  magnitude is over 1,000 times the smallest, over 1e8, or the smallest under 1e-4 (or as
  ``sci_mode`` says);
* every element is right-aligned to the widest of those values; as many fit on a line of
  ``linewidth`` characters as the width allows;
* a tensor of more than ``threshold`` elements shows ``edgeitems`` rows (and elements) at
  each end of each dimension, with ``...`` between.

Then come the suffixes: ``device=`` off the CPU, ``dtype=`` but for the default dtype,
int64 and bool, ``grad_fn=`` or ``requires_grad=True``; a suffix that would pass the line
width goes on a line of its own.

:func:`set_printoptions` changes the options as ``torch.set_printoptions`` does,
:func:`get_printoptions` reads them, and :func:`printoptions` changes them for a ``with``
block.

Example::

    >>> gradient.tensor([1.5, -2.25, 100.0])
    tensor([  1.5000,  -2.2500, 100.0000])
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from .errors import ArgumentValueError

__all__ = ["set_printoptions", "get_printoptions", "printoptions"]

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


def get_printoptions() -> dict:
    """The print options as a dict that :func:`set_printoptions` takes back.

    Example: ``saved = gradient.get_printoptions()``
    """
    return dict(_options)


@contextlib.contextmanager
def printoptions(**options):
    """Print options for the ``with`` block only (the keywords of :func:`set_printoptions`).

    Example::

        >>> with gradient.printoptions(precision=2):
        ...     print(gradient.tensor([1 / 3]))
        tensor([0.33])
    """
    saved = get_printoptions()
    set_printoptions(**options)
    try:
        yield
    finally:
        set_printoptions(**saved)


def tensor_repr(t, show_dtype: bool, show_dtype_if_empty: bool) -> str:
    """``repr(t)``: the elements (:func:`_elements_str`) and the suffixes, ``dtype=`` among
    them where the caller says (``show_dtype``, or ``show_dtype_if_empty`` for a tensor
    without elements)."""
    prefix = "tensor("
    indent = len(prefix)
    arr = t._backend.to_numpy(t._data)
    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{t.device}'")
    if arr.size == 0:
        # no elements to tell the dtype by: shown unless it is the default
        if arr.ndim != 1:
            suffixes.append(f"size={tuple(arr.shape)}")
        if show_dtype_if_empty:
            suffixes.append(f"dtype={t.dtype}")
        body = "[]"
    else:
        if not _options["edgeitems"]:
            suffixes.append(f"size={tuple(arr.shape)}")
        if show_dtype:
            suffixes.append(f"dtype={t.dtype}")
        body = _elements_str(arr, t.dtype.is_floating_point, indent)
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return _with_suffixes(prefix + body, suffixes, indent)


def _elements_str(arr: np.ndarray, floating: bool, indent: int) -> str:
    """The bracketed elements of ``arr`` (at least one), lines indented by ``indent``."""
    summarize = arr.size > _options["threshold"]
    formatter = _Formatter(_edges(arr) if summarize else arr, floating)
    return _nested_str(arr, indent, summarize, formatter)


class _Formatter:
    """One format for every element of a tensor, decided from ``values`` (see the module
    docstring)."""

    def __init__(self, values: np.ndarray, floating: bool):
        self.floating, self.int_mode, self.sci_mode, self.width = floating, True, False, 1
        digits = _options["precision"]
        flat = _python_values(values.ravel(), floating)
        if not floating:
            self.width = max([1, *(len(str(v)) for v in flat)])
            return
        flat = np.array(flat, np.float64)
        shown = flat[np.isfinite(flat) & (flat != 0)]
        if shown.size == 0:
            return
        magnitudes = np.abs(shown)
        smallest, largest = magnitudes.min(), magnitudes.max()
        self.int_mode = bool(np.all(shown == np.ceil(shown)))
        sci = _options["sci_mode"]
        self.sci_mode = (largest / smallest > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4
                         if sci is None else bool(sci))
        if self.sci_mode:
            lengths = (len(f"{v:.{digits}e}") for v in shown.tolist())
        elif self.int_mode:
            lengths = (len(f"{v:.0f}") + 1 for v in shown.tolist())   # and the point
        else:
            lengths = (len(f"{v:.{digits}f}") for v in shown.tolist())
        self.width = max(lengths)

    def format(self, value) -> str:
        if not self.floating:
            text = str(value)
        elif self.sci_mode:
            text = f"{value:{self.width}.{_options['precision']}e}"
        elif self.int_mode:
            text = f"{value:.0f}" + ("." if math.isfinite(value) else "")
        else:
            text = f"{value:.{_options['precision']}f}"
        return text.rjust(self.width)


def _edges(arr: np.ndarray) -> np.ndarray:
    """What a summarised tensor shows: ``edgeitems`` at each end of every dimension."""
    edge = _options["edgeitems"]
    if arr.ndim == 0:
        return arr
    if arr.ndim > 1 and not edge:
        return arr[(slice(0, 0),) * arr.ndim]
    rows = (list(range(edge)) + list(range(len(arr) - edge, len(arr)))
            if len(arr) > 2 * edge else range(len(arr)))
    if arr.ndim == 1:
        return arr[list(rows)]
    return np.stack([_edges(arr[i]) for i in rows])


def _python_values(arr: np.ndarray, floating: bool):
    """The elements as Python numbers (a list, or one number for a 0-d array): floats of
    every width as Python floats, their exact values."""
    return (arr.astype(np.float64) if floating else arr).tolist()


def _nested_str(arr: np.ndarray, indent: int, summarize: bool, formatter: _Formatter) -> str:
    edge = _options["edgeitems"]
    if arr.ndim == 0:
        return formatter.format(_python_values(arr, formatter.floating))
    if arr.ndim == 1:
        return _vector_str(arr, indent, summarize, formatter)
    if summarize and len(arr) > 2 * edge:
        slices = ([_nested_str(arr[i], indent + 1, summarize, formatter) for i in range(edge)]
                  + ["..."]
                  + [_nested_str(arr[i], indent + 1, summarize, formatter)
                     for i in range(len(arr) - edge, len(arr))])
    else:
        slices = [_nested_str(row, indent + 1, summarize, formatter) for row in arr]
    return "[" + ("," + "\n" * (arr.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def _vector_str(arr: np.ndarray, indent: int, summarize: bool, formatter: _Formatter) -> str:
    edge = _options["edgeitems"]
    per_line = max(1, (_options["linewidth"] - indent) // (formatter.width + 2))
    if summarize and not edge:
        items = ["..."]
    elif summarize and len(arr) > 2 * edge:
        items = ([formatter.format(v) for v in _python_values(arr[:edge], formatter.floating)]
                 + [" ..."] + [formatter.format(v) for v in
                               _python_values(arr[len(arr) - edge:], formatter.floating)])
    else:
        items = [formatter.format(v) for v in _python_values(arr, formatter.floating)]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _with_suffixes(text: str, suffixes: list, indent: int) -> str:
    """``text`` and its suffixes, each on a line of its own where the line would pass
    ``linewidth``, then the closing parenthesis."""
    parts = [text]
    line = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if line + len(suffix) + 2 > _options["linewidth"]:
            parts.append(",\n" + " " * indent + suffix)
            line = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            line += len(suffix) + 2
    return "".join(parts) + ")"

