"""The client's stand-in for an array that lives in a plugin: a handle plus the array's
metadata, kept in a *shadow*, and the array whose storage it views (``base``).

The shadow is a NumPy array of the same dtype, shape and strides whose data pointer is never
read: it is made by ``as_strided`` over one element. The view primitives (reshape, permute,
broadcast_to, windows, basic indexing) run on the shadow here, so the client knows a view's
shape, strides and offset without asking the plugin, exactly as NumPy would make them, and the
plugin makes the same view on its side. Everything upper layers read of a backend array
(``shape``, ``ndim``, ``size``, ``dtype``, ``strides``, ``flags``) comes from the shadow.

When the proxy is garbage-collected its handle is queued for a batched ``free``.

Example::

    >>> a = PluginArray(device, 7, contiguous_shadow((2, 3), np.float32))
    >>> a.shape, a.strides
    ((2, 3), (12, 4))
"""

from __future__ import annotations

import numpy as np

__all__ = ["PluginArray", "contiguous_shadow", "shadow_of"]

_BASES: dict = {}   # dtype -> one element: what every shadow of that dtype points at


def _base(dtype) -> np.ndarray:
    base = _BASES.get(dtype)
    if base is None:
        base = _BASES[dtype] = np.zeros(1, dtype)
    return base


def shadow_of(dtype, shape, strides_elements, offset_elements=0) -> np.ndarray:
    """A shadow with these strides and offset, both counted in elements."""
    dtype = np.dtype(dtype)
    base = _base(dtype)
    # the offset moves the data pointer; the pointer is never read
    start = np.lib.stride_tricks.as_strided(base, (1,), (0,)) if not offset_elements else \
        np.lib.stride_tricks.as_strided(base, (offset_elements + 1,), (dtype.itemsize,))[
            offset_elements:]
    return np.lib.stride_tricks.as_strided(start, tuple(shape),
                                           tuple(s * dtype.itemsize for s in strides_elements))


_CONTIGUOUS: dict = {}   # (shape, dtype) -> shadow: shadows are never written, so shared


def contiguous_shadow(shape, dtype) -> np.ndarray:
    """The shadow of a new C-contiguous array."""
    key = (shape if type(shape) is tuple else tuple(shape), dtype)
    shadow = _CONTIGUOUS.get(key)
    if shadow is None:
        shadow = _contiguous(shape, dtype)
        if len(_CONTIGUOUS) < 4096:
            _CONTIGUOUS[key] = shadow
    return shadow


def _contiguous(shape, dtype) -> np.ndarray:
    shape = tuple(int(n) for n in shape)
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return shadow_of(dtype, shape, tuple(reversed(strides)))


class PluginArray:
    """An array held by a plugin: ``handle`` names it in requests; ``device`` is the
    :class:`~gradient.backends.plugin.backend.PluginBackend` whose session made it."""

    __slots__ = ("device", "session", "handle", "shadow", "base", "__weakref__")

    def __init__(self, device, handle: int, shadow: np.ndarray, base=None):
        self.device, self.session, self.handle, self.shadow = device, device.session, handle, shadow
        #: the array whose storage this one views (the first one made on it), or None: as
        #: NumPy's ``ndarray.base``
        self.base = base

    def __del__(self):
        try:
            self.device._release(self.session, self.handle, self.shadow.nbytes)
        except Exception:   # noqa: BLE001  (interpreter shutdown)
            pass

    shape = property(lambda self: self.shadow.shape)
    ndim = property(lambda self: self.shadow.ndim)
    size = property(lambda self: self.shadow.size)
    dtype = property(lambda self: self.shadow.dtype)
    strides = property(lambda self: self.shadow.strides)
    flags = property(lambda self: self.shadow.flags)
    itemsize = property(lambda self: self.shadow.itemsize)
    nbytes = property(lambda self: self.shadow.nbytes)

    def __len__(self) -> int:
        return self.shadow.shape[0]

    def __repr__(self) -> str:
        return (f"PluginArray(plugin={self.device.name!r}, handle={self.handle}, "
                f"shape={self.shape}, dtype={self.dtype})")

    def __array__(self, dtype=None, copy=None):
        out = self.device.to_numpy(self)
        return out if dtype is None else out.astype(dtype, copy=False)

