"""What both sides of the plugin protocol agree on beyond frames: the protocol's version, the
dtypes by name, the primitives, and index specs (``docs/plugin-protocol.md``, sections 4-5).

Example::

    >>> numpy_dtype("bfloat16")
    dtype(bfloat16)
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
from ...errors import ArgumentTypeError, ArgumentValueError

PROTOCOL = 1

DTYPES = {name: np.dtype(t) for name, t in (
    ("float32", np.float32), ("float64", np.float64), ("float16", np.float16),
    ("bfloat16", ml_dtypes.bfloat16), ("int8", np.int8), ("int16", np.int16),
    ("int32", np.int32), ("int64", np.int64), ("uint8", np.uint8), ("bool", np.bool_))}

#: primitives whose results are views of their input's storage (the others' results are new,
#: C-contiguous arrays)
VIEWS = ("reshape", "permute", "broadcast_to", "windows", "getitem")

#: the primitives of the backend contract, as request ops (section 5)
PRIMITIVES = (
    "empty", "full", "arange", "from_bytes", "to_bytes", "generator", "uniform", "normal",
    "randint", "permutation", "unary", "binary", "binary_", "where", "cast", "reduce", "cumsum",
    "matmul", "einsum", "solve", "solve_triangular", "cholesky", "det", "slogdet", "qr", "eigh",
    "svd", "matrix_exp", "reshape", "permute", "broadcast_to", "windows", "copy", "contiguous",
    "concatenate", "pad", "getitem", "setitem", "index_add", "take_along_axis", "scatter_add",
    "put_along_axis", "sort", "nonzero", "searchsorted")


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype of a protocol dtype name; ValueError for another name."""
    try:
        return DTYPES[name]
    except KeyError:
        raise ArgumentValueError(
            f"unknown dtype {name!r}: expected one of {', '.join(DTYPES)}") from None


def dtype_name(dtype) -> str:
    """The protocol name of a NumPy dtype."""
    return np.dtype(dtype).name


class WireDType:
    """What a backend primitive reads of a dtype argument (gradient's ``DType`` has the same
    attributes): ``name``, ``numpy`` and ``itemsize``."""

    __slots__ = ("name", "numpy", "itemsize")

    def __init__(self, name: str):
        self.name, self.numpy = name, numpy_dtype(name)
        self.itemsize = self.numpy.itemsize


def encode_index(index, handle_of) -> list:
    """An index tuple (ints, slices, None, Ellipsis, arrays) as the protocol's index spec;
    ``handle_of(array)`` names an array argument."""
    spec = []
    for item in index if type(index) is tuple else (index,):
        if item is None:
            spec.append("none")
        elif item is Ellipsis:
            spec.append("...")
        elif type(item) is slice:
            spec.append({"slice": [item.start, item.stop, item.step]})
        elif isinstance(item, (bool, np.bool_)):
            raise ArgumentTypeError(
                "a bool index (x[True]) is not supported over the plugin protocol")
        elif isinstance(item, (int, np.integer)):
            spec.append(int(item))
        else:
            spec.append({"array": handle_of(item)})
    return spec


def decode_index(spec: list, array_of) -> tuple:
    """The inverse of :func:`encode_index`; ``array_of(handle)`` gives an array."""
    index = []
    for item in spec:
        if item == "none":
            index.append(None)
        elif item == "...":
            index.append(Ellipsis)
        elif type(item) is int:
            index.append(item)
        elif type(item) is dict and "slice" in item:
            index.append(slice(*item["slice"]))
        elif type(item) is dict and "array" in item:
            index.append(array_of(item["array"]))
        else:
            raise ArgumentValueError(f"not an index spec entry: {item!r}")
    return tuple(index)


# Each primitive's arguments, in the backend method's order, with how they travel: "array"
# (a handle), "arrays" (a list of handles), "gen" (a generator's handle), "dtype" (a name),
# "index" (an index spec), "float" (a number, see frames.encode_float) or "value" (JSON as is).
SIGNATURES = {
    "empty": (("shape", "value"), ("dtype", "dtype")),
    "full": (("shape", "value"), ("value", "float"), ("dtype", "dtype")),
    "arange": (("start", "float"), ("stop", "float"), ("step", "float"), ("dtype", "dtype")),
    "generator": (("seed", "value"),),
    "uniform": (("gen", "gen"), ("shape", "value"), ("low", "float"), ("high", "float"),
                ("dtype", "dtype")),
    "normal": (("gen", "gen"), ("shape", "value"), ("mean", "float"), ("std", "float"),
               ("dtype", "dtype")),
    "randint": (("gen", "gen"), ("low", "value"), ("high", "value"), ("shape", "value"),
                ("dtype", "dtype")),
    "permutation": (("gen", "gen"), ("n", "value"), ("dtype", "dtype")),
    "unary": (("name", "value"), ("x", "array")),
    "binary": (("name", "value"), ("a", "array"), ("b", "array")),
    "binary_": (("name", "value"), ("a", "array"), ("b", "array")),
    "where": (("cond", "array"), ("a", "array"), ("b", "array")),
    "cast": (("x", "array"), ("dtype", "dtype")),
    "reduce": (("name", "value"), ("x", "array"), ("axis", "value"), ("keepdims", "value")),
    "cumsum": (("x", "array"), ("axis", "value")),
    "matmul": (("a", "array"), ("b", "array")),
    "einsum": (("equation", "value"), ("operands", "arrays")),
    "solve": (("a", "array"), ("b", "array")),
    "solve_triangular": (("a", "array"), ("b", "array"), ("upper", "value"),
                         ("unitriangular", "value")),
    "cholesky": (("a", "array"),),
    "det": (("a", "array"),),
    "slogdet": (("a", "array"),),
    "qr": (("a", "array"), ("complete", "value")),
    "eigh": (("a", "array"), ("upper", "value")),
    "svd": (("a", "array"), ("full_matrices", "value")),
    "matrix_exp": (("a", "array"),),
    "reshape": (("x", "array"), ("shape", "value")),
    "permute": (("x", "array"), ("axes", "value")),
    "broadcast_to": (("x", "array"), ("shape", "value")),
    "windows": (("x", "array"), ("axes", "value"), ("sizes", "value"), ("steps", "value"),
                ("dilations", "value")),
    "copy": (("x", "array"),),
    "contiguous": (("x", "array"),),
    "concatenate": (("xs", "arrays"), ("axis", "value")),
    "pad": (("x", "array"), ("widths", "value"), ("mode", "value"), ("value", "float")),
    "getitem": (("x", "array"), ("index", "index")),
    "setitem": (("x", "array"), ("index", "index"), ("value", "array")),
    "index_add": (("x", "array"), ("index", "index"), ("value", "array")),
    "take_along_axis": (("x", "array"), ("index", "array"), ("axis", "value")),
    "scatter_add": (("x", "array"), ("axis", "value"), ("index", "array"), ("src", "array")),
    "put_along_axis": (("x", "array"), ("index", "array"), ("values", "array"),
                       ("axis", "value")),
    "sort": (("x", "array"), ("axis", "value"), ("descending", "value"), ("stable", "value")),
    "nonzero": (("x", "array"),),
    "searchsorted": (("sorted_rows", "array"), ("values", "array"), ("right", "value")),
}

#: primitives that write into their first array argument and make nothing
IN_PLACE = ("binary_", "setitem", "index_add", "scatter_add", "put_along_axis")
