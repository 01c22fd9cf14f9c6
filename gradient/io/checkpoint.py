"""``gradient.save`` / ``gradient.load``: nested checkpoints in one safetensors file, never pickle.

``torch.save`` pickles, and unpickling a file can run any code in it. A gradient checkpoint is a
plain safetensors file instead: every tensor is stored under a path-like name
(``"model/fc.weight"``, ``"optimizer/state/0/exp_avg"``), and the rest of the object -- the dicts,
lists and tuples around the tensors, and the numbers and strings in them -- is stored as JSON in
the header's metadata under ``"gradient.checkpoint"``. Any safetensors reader can list and read the
tensors; ``gradient.load`` puts the structure back together.

The JSON tree has one node per value::

    1, 2.5, true, null, "text"               plain values, as themselves
    {"dict": [[key, node], ...]}             a dict; keys are str, int, float, bool or None, kept
    {"odict": [[key, node], ...]}            an OrderedDict     exactly (optimizer state is keyed by int)
    {"list": [node, ...]}  {"tuple": [...]}  sequences
    {"tensor": "model/fc.weight"}            a Tensor (+ "requires_grad": true, "parameter": true)
    {"ndarray": "name"}                      a NumPy array (+ "scalar": true for a NumPy scalar)
    {"dtype": "float32"}                     a gradient dtype

Example::

    >>> gradient.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 100},
    ...               "ckpt.safetensors")
    >>> ckpt = gradient.load("ckpt.safetensors")
    >>> model.load_state_dict(ckpt["model"]); opt.load_state_dict(ckpt["optimizer"])
"""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np

from ..device import as_device, device as _device
from ..dtypes import DType, as_dtype, from_numpy_dtype
from ..errors import ArgumentTypeError, ArgumentValueError, DTypeError, FileFormatError
from ..tensor import Tensor
from .safetensors import SafetensorsReader, write_safetensors

__all__ = ["save", "load"]

FORMAT = "gradient.checkpoint"  # the metadata key holding the structure; also the "format" value
VERSION = 1


# ---------------------------------------------------------------------------- save
def save(obj, f) -> None:
    """Save ``obj`` -- tensors in (nested) dicts, lists and tuples, plus plain values -- to ``f``.

    Like ``torch.save(obj, f)``, with these differences:

    * the file is safetensors, not pickle: it holds data only, so ``gradient.load`` can never run
      code from it. What can be stored: Tensors (any dtype, any device, contiguous or not),
      NumPy arrays and scalars, dicts (keys str, int, float, bool or None, types kept exactly),
      OrderedDicts, lists, tuples, int, float, bool, None, str and gradient dtypes. Anything
      else (a Module, an arbitrary object) raises ``TypeError``: save its ``state_dict()``.
      Subclasses of dict, list and tuple (defaultdict, namedtuple, Size) come back as the base type.
    * saving to a path is atomic: the file is written to ``.<name>.tmp-<pid>-<random>`` in the
      same directory, fsynced and renamed over ``f``, so a crash mid-save leaves the previous
      checkpoint intact. ``f`` may also be a writable binary file object (not atomic).
    * tensors that are the same view of the same memory (tied weights in a state dict) are
      stored once and share memory again after loading, as with torch; tensors that overlap
      only partly (a tensor and a slice of it) are stored as separate copies.
    * ``requires_grad`` and ``nn.Parameter`` are kept; ``.grad`` is not. As with torch, a non-leaf
      tensor that requires grad is refused: save ``tensor.detach()``.

    Example::

        >>> gradient.save({"model": model.state_dict(), "step": 100}, "ckpt.safetensors")
    """
    encoder = _Encoder()
    root = encoder.encode(obj, "obj", [])
    structure = json.dumps({"version": VERSION, "root": root}, separators=(",", ":"), allow_nan=True)
    write_safetensors(f, encoder.tensors, {"format": FORMAT, FORMAT: structure})


class _Encoder:
    """Turns an object into a JSON tree plus a flat ``{name: Tensor or ndarray}`` dict."""

    def __init__(self):
        self.tensors: dict = {}
        self._names_by_view: dict = {}  # memory identity of a view -> its name in the file
        self._active: set[int] = set()  # containers being encoded, to catch cycles

    def encode(self, obj, where: str, parts: list[str]):
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, Tensor):
            if not obj.is_leaf:  # as torch.save: a graph cannot be stored, and dropping it hides bugs
                raise ArgumentValueError(
                    f"save: {where} is a non-leaf tensor that requires grad (it has a grad_fn); "
                    "save tensor.detach() instead")
            node = {"tensor": self._store(obj, parts)}
            if obj.requires_grad:
                node["requires_grad"] = True
            if _is_parameter(obj):
                node["parameter"] = True
            return node
        if isinstance(obj, (np.ndarray, np.generic)):
            self._check_numpy_dtype(obj, where)
            node = {"ndarray": self._store(np.asarray(obj), parts)}
            if isinstance(obj, np.generic):
                node["scalar"] = True
            return node
        if isinstance(obj, DType):
            return {"dtype": obj.name}
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in self._active:
                raise ArgumentValueError(
                    f"save: {where} contains itself; checkpoints must be trees")
            self._active.add(id(obj))
            try:
                if isinstance(obj, dict):
                    items = []
                    for key, value in obj.items():
                        if not _is_key(key):
                            raise ArgumentTypeError(
                                f"save: {where} has a key {key!r} of type {type(key).__name__}; "
                                "dict keys in checkpoints must be str, int, float, bool or None")
                        items.append([key, self.encode(value, f"{where}[{key!r}]", parts + [str(key)])])
                    return {"odict" if isinstance(obj, OrderedDict) else "dict": items}
                kind = "tuple" if isinstance(obj, tuple) else "list"
                return {kind: [self.encode(v, f"{where}[{i}]", parts + [str(i)]) for i, v in enumerate(obj)]}
            finally:
                self._active.discard(id(obj))
        kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
        raise ArgumentTypeError(
            f"save: cannot store {where}, a {kind}: checkpoints hold "
            "tensors, NumPy arrays, dicts, lists, tuples, numbers, strings, bools and None, never pickled "
            "objects. Save its state instead (e.g. module.state_dict()) or convert it to one of those.")

    def _store(self, value, parts: list[str]) -> str:
        # Same memory, same shape, strides and dtype means the same values: store them once, and
        # load them as one array again (tied weights stay tied, as torch.load keeps shared storage).
        if isinstance(value, Tensor):
            view = ("tensor", value._backend.name, value.data_ptr(), tuple(value.shape), value.stride(),
                    value.dtype.name)
        else:
            view = ("ndarray", value.__array_interface__["data"][0], value.shape, value.strides,
                    value.dtype.str)
        if value.size if isinstance(value, np.ndarray) else value.numel():
            name = self._names_by_view.get(view)
            if name is not None:
                return name
        base = "/".join(parts) or "root"
        name, n = base, 1
        while name in self.tensors or name == "__metadata__":
            n += 1
            name = f"{base}#{n}"
        self.tensors[name] = value
        self._names_by_view[view] = name
        return name

    @staticmethod
    def _check_numpy_dtype(obj, where: str) -> None:
        try:
            from_numpy_dtype(obj.dtype)
        except DTypeError:
            raise ArgumentTypeError(
                f"save: {where} is a NumPy {obj.dtype} value; checkpoints hold the dtypes "
                "gradient has (bool, uint8, int8-64, float16, bfloat16, float32, float64): "
                "convert it first") from None


def _is_parameter(t: Tensor) -> bool:
    from ..nn.parameter import Parameter  # imported late: gradient/__init__ imports io before nn
    return isinstance(t, Parameter)


# ---------------------------------------------------------------------------- load
def load(f, map_location=None, *, weights_only: bool = True, mmap: bool | None = None):
    """Load what :func:`save` wrote: the same nested structure, with gradient Tensors.

    The signature is ``torch.load``'s less ``pickle_module``. ``map_location`` (None, ``"cpu"``,
    ``"cuda"`` or a :class:`gradient.device`) is where the tensors go; unlike torch, tensors do not
    remember the device they were saved from: without ``map_location`` everything loads on the CPU.
    Torch's dict (``{"cuda:0": "cpu"}``) and callable (``lambda storage, loc: storage``) forms
    are asked where a CPU tensor goes. ``weights_only`` is
    accepted for torch compatibility and changes nothing: gradient checkpoints hold no code, so
    loading is always as safe as torch's ``weights_only=True``.
    ``mmap=True`` maps the file instead of reading it (copy-on-write; see
    :func:`gradient.io.load_safetensors`).

    Any safetensors file loads: one without gradient's structure (e.g. Hugging Face weights)
    comes back as a flat ``{name: Tensor}`` dict. Files that are truncated, corrupt or not
    safetensors raise :class:`~gradient.errors.FileFormatError` naming the file.

    Example::

        >>> ckpt = gradient.load("ckpt.safetensors", map_location="cpu")
        >>> ckpt["step"]
        100
    """
    target = _map_location(map_location)
    with SafetensorsReader(f, mmap=bool(mmap)) as reader:
        metadata = reader.metadata or {}
        if FORMAT not in metadata:  # a plain safetensors file
            tensors = {name: _tensor(reader.read(name), target) for name in reader.entries}
            return tensors
        decoder = _Decoder(reader, target)
        try:
            structure = json.loads(metadata[FORMAT])
        except (ValueError, RecursionError) as e:
            raise reader.error(f"corrupt checkpoint structure (metadata {FORMAT!r}): {e}"[:500]) from None
        if not isinstance(structure, dict) or "root" not in structure:
            raise reader.error(f"corrupt checkpoint structure: expected an object with 'root', got "
                               f"{type(structure).__name__}")
        version = structure.get("version")
        if version != VERSION:
            raise reader.error(f"checkpoint format version {version!r}; this gradient reads version {VERSION}"
                               " (written by a newer gradient? upgrade it)")
        # Check the whole tree against the header before reading any tensor data.
        decoder.check(structure["root"], "obj")
        unused = set(reader.entries) - decoder.referenced
        if unused:
            raise reader.error(f"checkpoint structure does not match the tensors: the file holds tensors "
                               f"the structure never mentions: {sorted(unused)[:5]}")
        try:
            return decoder.build(structure["root"])
        except RecursionError:
            raise reader.error("checkpoint structure is nested too deeply") from None


def _map_location(map_location):
    """Where loaded tensors go: None for the CPU, else a device. gradient's files do not record
    the device a tensor was saved from, so torch's dict and callable forms are asked where a
    CPU tensor ('cpu') goes."""
    if map_location is None:
        return None
    if isinstance(map_location, (str, _device)):
        dev = as_device(map_location)
        return None if dev.type == "cpu" else dev
    if isinstance(map_location, dict):
        return _map_location(map_location.get("cpu"))
    if callable(map_location):
        # torch calls it with each storage and its saved location ('cpu' here); what it gives
        # back says where the storage goes (the storage itself: stay)
        placed = map_location(_StoragePlace("cpu"), "cpu")
        return None if placed is None else _map_location(getattr(placed, "device", "cpu"))
    raise ArgumentTypeError(f"load: map_location must be None, a device (or its name), a dict of "
                            f"locations or a function of (storage, location); got "
                            f"{type(map_location).__name__}")


class _StoragePlace:
    """What a ``map_location`` function is given for a storage: it answers ``cuda()``,
    ``cpu()`` and ``to()`` with where the storage would go."""

    def __init__(self, device: str):
        self.device = device

    def cuda(self, device=None, non_blocking: bool = False) -> "_StoragePlace":
        index = device.index if isinstance(device, _device) else device
        return _StoragePlace("cuda" if index is None else f"cuda:{index}")

    def cpu(self) -> "_StoragePlace":
        return _StoragePlace("cpu")

    def to(self, device, *args, **kwargs) -> "_StoragePlace":
        return _StoragePlace(str(device))


def _tensor(array: np.ndarray, target) -> Tensor:
    t = Tensor._make(array)
    return t if target is None else t.to(target)


def _is_key(key) -> bool:
    return key is None or isinstance(key, (str, int, float))  # (bool is an int)


_TAGS = ("dict", "odict", "list", "tuple", "tensor", "ndarray", "dtype")
_FLAGS = {"tensor": {"requires_grad", "parameter"}, "ndarray": {"scalar"}}


class _Decoder:
    """Checks the JSON tree against the file's tensors, then builds the object."""

    def __init__(self, reader: SafetensorsReader, target):
        self.reader = reader
        self.target = target
        self.referenced: set[str] = set()
        self._arrays: dict[str, np.ndarray] = {}

    def _bad(self, where: str, message: str) -> FileFormatError:
        return self.reader.error(f"corrupt checkpoint structure at {where}: {message}"[:600])

    def check(self, node, where: str) -> None:
        """Raise FileFormatError unless ``node`` is a valid tree whose tensors are in the file."""
        stack = [(node, where)]  # iterative: a hostile file cannot exhaust the Python stack
        while stack:
            node, where = stack.pop()
            if node is None or isinstance(node, (bool, int, float, str)):
                continue
            if not isinstance(node, dict) or not node:
                raise self._bad(where, f"expected a value or a tagged object, got {node!r}")
            tag = next(iter(node))
            if tag not in _TAGS or set(node) - {tag} - _FLAGS.get(tag, set()):
                raise self._bad(where, f"unknown node {sorted(node)}")
            value = node[tag]
            if tag in ("dict", "odict"):
                if not isinstance(value, list) or not all(
                        isinstance(kv, list) and len(kv) == 2 and _is_key(kv[0]) for kv in value):
                    raise self._bad(where, "a dict must be a list of [key, value] pairs with plain keys")
                stack.extend((v, f"{where}[{k!r}]") for k, v in reversed(value))
            elif tag in ("list", "tuple"):
                if not isinstance(value, list):
                    raise self._bad(where, f"a {tag} must be a JSON array")
                stack.extend((v, f"{where}[{i}]") for i, v in reversed(list(enumerate(value))))
            elif tag in ("tensor", "ndarray"):
                if not isinstance(value, str) or value not in self.reader.entries:
                    raise self.reader.error(f"checkpoint structure does not match the tensors: {where} "
                                            f"refers to tensor {value!r}, which the file does not hold"[:600])
                if any(not isinstance(node[flag], bool) for flag in set(node) - {tag}):
                    raise self._bad(where, f"flags must be true or false: {node!r}")
                if tag == "ndarray" and node.get("scalar") and self.reader.entries[value].shape != ():
                    raise self._bad(where, "a NumPy scalar must be a 0-d tensor")
                if node.get("requires_grad") and not self.reader.entries[value].dtype.is_floating_point:
                    raise self._bad(where, f"tensor {value!r} is not floating point, so it cannot "
                                           "require grad")
                self.referenced.add(value)
            elif tag == "dtype":
                try:
                    as_dtype(value if isinstance(value, str) else None)
                except DTypeError:
                    raise self._bad(where, f"unknown dtype {value!r}") from None

    def _array(self, name: str) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None:
            array = self._arrays[name] = self.reader.read(name)
        return array

    def build(self, node):
        """The object for a checked node (recursion depth = nesting depth, bounded by the JSON parser's)."""
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        tag = next(iter(node))
        value = node[tag]
        if tag == "dict":
            return {k: self.build(v) for k, v in value}
        if tag == "odict":
            return OrderedDict((k, self.build(v)) for k, v in value)
        if tag == "list":
            return [self.build(v) for v in value]
        if tag == "tuple":
            return tuple(self.build(v) for v in value)
        if tag == "dtype":
            return as_dtype(value)
        if tag == "ndarray":
            array = self._array(value)
            return array[()] if node.get("scalar") else array
        # A tensor: each node gets its own Tensor object; nodes naming the same entry share its memory.
        t = _tensor(self._array(value), self.target)
        if node.get("parameter"):
            from ..nn.parameter import Parameter
            return Parameter(t, requires_grad=bool(node.get("requires_grad")))
        if node.get("requires_grad"):
            t.requires_grad_(True)
        return t
