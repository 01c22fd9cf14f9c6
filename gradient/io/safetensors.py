"""The safetensors format: flat ``name -> tensor`` files that hold data and nothing else.

A safetensors file is three parts::

    8 bytes    N, the header length (unsigned 64-bit little-endian)
    N bytes    a JSON object: {"wte.weight": {"dtype": "F32", "shape": [50257, 768],
                                              "data_offsets": [0, 154389504]}, ...,
                               "__metadata__": {"format": "pt"}}   (optional; string values only)
    the rest   every tensor's bytes, C order, little-endian; offsets count from here

That is the whole format, so gradient reads and writes it itself (this module) rather than
through the ``safetensors`` package: the reader checks every number in the header before it
trusts it, and a corrupt or hostile file gets a :class:`~gradient.errors.FileFormatError` that
names the file and the tensor, never a crash or an allocation the file's size does not justify.
Files written here load in ``safetensors.torch.load_file`` and the other way round.

Example::

    >>> gradient.io.save_safetensors({"w": gradient.ones(2, 3)}, "w.safetensors")
    >>> gradient.io.load_safetensors("w.safetensors")["w"].shape
    gradient.Size([2, 3])
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

import numpy as np

from ..dtypes import (DType, bfloat16, bool_, float16, float32, float64, from_numpy_dtype, int8, int16,
                      int32, int64, uint8)
from ..errors import ArgumentTypeError, ArgumentValueError, FileFormatError
from .atomic import atomic_write
from .mapped_pages import release

__all__ = ["save_safetensors", "load_safetensors", "safetensors_metadata", "SafetensorsReader"]

# The format's dtype codes that gradient has a dtype for. Others (U16, U32, U64, F8_*, C64)
# are reported by name when a file holds them.
DTYPES: dict[str, DType] = {"BOOL": bool_, "U8": uint8, "I8": int8, "I16": int16, "I32": int32,
                            "I64": int64, "F16": float16, "BF16": bfloat16, "F32": float32, "F64": float64}
CODES: dict[DType, str] = {d: code for code, d in DTYPES.items()}

MAX_HEADER_BYTES = 100_000_000  # the reference implementation's limit
MAX_NDIM = 64  # NumPy's limit


# ---------------------------------------------------------------------------- writing
def save_safetensors(tensors: dict, path, metadata: dict[str, str] | None = None) -> None:
    """Write a flat ``{name: tensor}`` dict as a safetensors file, atomically.

    ``metadata`` is a ``{str: str}`` dict stored in the header; ``None`` writes
    ``{"format": "pt"}``, as Hugging Face's ``save_pretrained`` does, so ``transformers``
    accepts the file as PyTorch weights. Non-contiguous tensors are fine; tensors that share
    memory are each written in full (``safetensors.torch.save_file`` refuses those instead).
    Values may also be NumPy arrays. ``path`` may be a writable binary file object (then the
    write is not atomic).

    Example::

        >>> gradient.io.save_safetensors(model.state_dict(), "model.safetensors")
    """
    if not isinstance(tensors, dict):
        raise ArgumentTypeError(
            f"save_safetensors: expected a dict of name -> tensor, got {type(tensors).__name__}")
    from ..tensor import Tensor
    for name, value in tensors.items():
        if not isinstance(name, str):
            raise ArgumentTypeError(
                f"save_safetensors: tensor names must be str, got {name!r} "
                f"({type(name).__name__}); use gradient.save for nested or int-keyed data")
        if not isinstance(value, (Tensor, np.ndarray)):
            raise ArgumentTypeError(
                f"save_safetensors: {name!r} is a {type(value).__name__}, expected a Tensor "
                "(or a NumPy array); use gradient.save for checkpoints with other values")
    if metadata is None:
        metadata = {"format": "pt"}
    write_safetensors(path, tensors, metadata)


def write_safetensors(path, arrays: dict, metadata: dict[str, str] | None) -> None:
    """Write ``{name: Tensor or ndarray}`` to ``path`` (atomically) or to a binary file object."""
    entries = []  # (name, source, code, shape, nbytes)
    for name, src in arrays.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ArgumentValueError(
                f"safetensors: bad tensor name {name!r}: names are strings other than "
                "'__metadata__'")
        dtype = src.dtype if isinstance(src.dtype, DType) else from_numpy_dtype(src.dtype)
        shape = tuple(int(d) for d in src.shape)
        entries.append((name, src, CODES[dtype], shape, int(np.prod(shape, dtype=object)) * dtype.itemsize))
    if metadata is not None:
        bad = [(k, v) for k, v in metadata.items() if not (isinstance(k, str) and isinstance(v, str))]
        if bad:
            raise ArgumentTypeError(
                f"safetensors: metadata keys and values must be str, got {bad[0]!r}")

    # Larger elements first, as the reference writer does: with the data section starting on an
    # 8-byte boundary every tensor then starts aligned to its element size, which memory-mapped
    # readers (ours included) can use without copying.
    entries.sort(key=lambda e: (-DTYPES[e[2]].itemsize, e[0]))
    header: dict = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name, _, code, shape, nbytes in entries:
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # pad so the data starts 8-byte aligned

    def write(f):
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for _, src, _, _, nbytes in entries:
            if nbytes:
                f.write(_little_endian_bytes(src))

    if hasattr(path, "write"):
        write(path)
    else:
        with atomic_write(path) as f:
            write(f)


def _little_endian_bytes(src) -> memoryview:
    """The tensor's bytes in C order, little-endian; copies one tensor at most (when non-contiguous)."""
    from ..tensor import Tensor
    arr = src.detach().numpy() if isinstance(src, Tensor) else src
    arr = np.ascontiguousarray(arr)
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and sys.byteorder == "big"):
        arr = arr.byteswap()
    return memoryview(arr.reshape(-1).view(np.uint8))


# ---------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class TensorInfo:
    """One header entry, checked: dtype, shape, and byte range within the data section."""
    dtype: DType
    shape: tuple
    begin: int
    end: int


class SafetensorsReader:
    """An open safetensors file whose header has been read and checked; tensors are read on demand.

    ``source`` is a path or a seekable binary file object. With ``mmap=True`` (paths only),
    :meth:`read` returns copy-on-write memory maps of the file: nothing is read until used, and
    writes to the arrays stay private to the process.

    Example::

        with SafetensorsReader("model.safetensors") as r:
            print(r.metadata, list(r.entries))
            wte = r.read("wte.weight")     # a NumPy array
    """

    def __init__(self, source, *, mmap: bool = False):
        self._owns_file = not hasattr(source, "read")
        if self._owns_file:
            self.name = os.fspath(source)
            self._f = open(self.name, "rb")
        else:
            if mmap:
                raise ArgumentValueError(
                    "safetensors: mmap=True needs a file path, not a file object")
            self.name = str(getattr(source, "name", "<file object>"))
            self._f = source
        self._map = None
        try:
            self._read_header()
            if mmap:
                self._map = np.memmap(self.name, dtype=np.uint8, mode="c")
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self._owns_file:
            self._f.close()

    def error(self, message: str) -> FileFormatError:
        return FileFormatError(f"{self.name}: {message}")

    # ------------------------------------------------------------------ header
    def _read_header(self) -> None:
        f = self._f
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        head = f.read(8)
        if len(head) < 8:
            raise self.error(_other_format(head) or f"not a safetensors file: it is {size} bytes "
                             f"long, shorter than the 8-byte header length")
        n = int.from_bytes(head, "little")
        if n > size - 8 or n > MAX_HEADER_BYTES or n < 2:
            other = _other_format(head)
            if other:           # a file of another kind: say what it is, in one line
                raise self.error(other)
            what = (f"the file is only {size} bytes long (truncated?)" if n > size - 8 else
                    f"the limit is {MAX_HEADER_BYTES}" if n > MAX_HEADER_BYTES else
                    "too short for a JSON object")
            raise self.error(f"not a valid safetensors file: the header length says {n} bytes "
                             f"but {what}")
        raw = f.read(n)
        if len(raw) != n:
            raise self.error(f"truncated: could read only {len(raw)} of the {n} header bytes")
        try:
            text = raw.decode("utf-8")
            if not text.startswith("{"):
                raise _CorruptHeader("the header does not start with '{'")
            header = json.loads(text, object_pairs_hook=_no_duplicate_keys)
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise self.error(f"corrupt safetensors header: {e}"[:500]) from None
        if not isinstance(header, dict):
            raise self.error("corrupt safetensors header: expected a JSON object")

        metadata = header.pop("__metadata__", None)
        if metadata is not None and not (isinstance(metadata, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())):
            raise self.error("corrupt safetensors header: '__metadata__' must map strings to strings")
        self.metadata: dict[str, str] | None = metadata
        self.data_start = 8 + n
        self.data_size = size - self.data_start
        self.entries: dict[str, TensorInfo] = {name: self._check_entry(name, e) for name, e in header.items()}
        self._check_layout(size)

    def _check_entry(self, name: str, entry) -> TensorInfo:
        where = f"tensor {name!r}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise self.error(f"corrupt safetensors header: {where} must have exactly the fields "
                             f"dtype, shape, data_offsets; got {entry!r}"[:500])
        code, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(code, str) or code not in DTYPES:    # (a list or dict: unhashable)
            if isinstance(code, str) and code.isupper():
                raise self.error(f"{where} has dtype {code}, which gradient does not support "
                                 f"(supported: {', '.join(DTYPES)})")
            raise self.error(f"corrupt safetensors header: {where} has unknown dtype {code!r}"[:500])
        dtype = DTYPES[code]
        if not (isinstance(shape, list) and len(shape) <= MAX_NDIM and all(_is_count(d) for d in shape)):
            raise self.error(f"corrupt safetensors header: {where} has shape {shape!r}; expected a list of "
                             f"at most {MAX_NDIM} non-negative integers"[:500])
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)
                and offsets[0] <= offsets[1]):
            raise self.error(f"corrupt safetensors header: {where} has data_offsets {offsets!r}; "
                             "expected [begin, end] with 0 <= begin <= end"[:500])
        # The byte count must be what the shape needs: this is what bounds every allocation by the
        # file's size. NumPy also refuses shapes whose non-zero dimensions overflow 64 bits, even
        # with a zero elsewhere, so those are absurd too.
        nonzero = 1
        for d in shape:
            nonzero *= d or 1
        numel = nonzero if all(shape) else 0
        if nonzero * dtype.itemsize > sys.maxsize or numel * dtype.itemsize != offsets[1] - offsets[0]:
            raise self.error(f"corrupt safetensors header: {where} has shape {tuple(shape)} of {code}, which "
                             f"needs {numel * dtype.itemsize} bytes, but its data_offsets {offsets} span "
                             f"{offsets[1] - offsets[0]}"[:500])
        return TensorInfo(dtype, tuple(shape), offsets[0], offsets[1])

    def _check_layout(self, size: int) -> None:
        """Tensors must tile the data section exactly: no overlaps, no holes, nothing past the end."""
        expected = 0
        for name, info in sorted(self.entries.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
            if info.begin != expected:
                problem = "overlaps the tensor before it" if info.begin < expected else \
                    f"leaves a hole of {info.begin - expected} bytes before it"
                raise self.error(f"corrupt safetensors header: tensor {name!r} at bytes "
                                 f"[{info.begin}, {info.end}) {problem}")
            expected = info.end
        if expected > self.data_size:
            raise self.error(f"truncated: the header describes {expected} bytes of tensor data but the file "
                             f"holds only {self.data_size} (file size {size}, expected "
                             f"{self.data_start + expected}); was a copy or download interrupted?")
        if expected < self.data_size:
            raise self.error(f"corrupt safetensors file: {self.data_size - expected} bytes follow the last "
                             "tensor's data")

    # ------------------------------------------------------------------ data
    def read(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a NumPy array (a fresh array, or a copy-on-write map with ``mmap``)."""
        info = self.entries.get(name)
        if info is None:
            raise KeyError(f"{self.name}: no tensor named {name!r}")
        np_dtype = info.dtype.numpy
        start = self.data_start + info.begin
        stop = self.data_start + info.end
        if self._map is not None:
            arr = np.asarray(self._map[start:stop]).view(np_dtype).reshape(info.shape)
        else:
            arr = np.empty(info.shape, np_dtype)
            if arr.nbytes:
                self._f.seek(start)
                buf = memoryview(arr.reshape(-1).view(np.uint8))
                got = 0
                while got < len(buf):
                    n = self._f.readinto(buf[got:])
                    if not n:
                        raise self.error(f"truncated: tensor {name!r} ends at byte {stop}, the file ended "
                                         f"at {start + got} (did it change while being read?)")
                    got += n
        if sys.byteorder == "big" and info.dtype.itemsize > 1:  # the file is little-endian
            arr = arr.byteswap()
        if info.dtype is bool_ and arr.size and arr.view(np.uint8).max() > 1:
            raise self.error(f"corrupt data: bool tensor {name!r} holds bytes other than 0 and 1")
        return arr

    def release(self, name: str) -> None:
        """With ``mmap``: let the operating system drop tensor ``name``'s mapped pages from
        this process's memory, after a loader copied it (see :mod:`.mapped_pages`; reading it
        again pages it back in). Without ``mmap``, nothing to do."""
        info = self.entries.get(name)
        if self._map is not None and info is not None:
            release(self._map, self.data_start + info.begin, info.end - info.begin)


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


class _CorruptHeader(ValueError):
    """A header that is no safetensors header, found while it is parsed: a ValueError, as
    json's own errors are, which the reader raises as its FileFormatError."""


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise _CorruptHeader(f"the key {dup!r} appears twice in one JSON object")
    return dict(pairs)


_CONVERT = ("gradient never unpickles files, because unpickling can run arbitrary code. Convert "
            "it in PyTorch: safetensors.torch.save_file(torch.load(path, weights_only=True), "
            "'model.safetensors'), then load that")


def _other_format(head: bytes) -> str:
    """What a file that is not safetensors is, by its first bytes, and what to do: a message,
    or "" where it is not recognised."""
    if head.startswith(b"PK\x03\x04"):
        return f"a PyTorch checkpoint (torch.save's zip of pickles), not safetensors: {_CONVERT}"
    if head[:1] == b"\x80":
        return f"a Python pickle (torch.save's older format), not safetensors: {_CONVERT}"
    if head.startswith(b"GGUF"):
        return "a GGUF file, not safetensors: gradient.hub.load(path) reads it"
    return ""


def load_safetensors(path, *, mmap: bool = False, device=None) -> dict:
    """Read a safetensors file into a ``{name: Tensor}`` dict (in the header's order).

    ``mmap=True`` maps the file instead of reading it: loading is immediate, pages are read as
    tensors are used, and in-place changes stay private (copy-on-write), so the file is never
    modified. ``device`` moves every tensor there (default: the CPU). ``path`` may also be a
    seekable binary file object. Raises :class:`~gradient.errors.FileFormatError` for files that
    are not valid safetensors.

    Example::

        >>> sd = gradient.io.load_safetensors("model.safetensors", mmap=True)
        >>> model.load_state_dict(sd)
    """
    from ..ops.creation import from_numpy
    with SafetensorsReader(path, mmap=mmap) as reader:
        tensors = {name: from_numpy(reader.read(name)) for name in reader.entries}
    if device is not None:
        tensors = {name: t.to(device) for name, t in tensors.items()}
    return tensors


def safetensors_metadata(path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (``{}`` if it has none); reads the header only."""
    with SafetensorsReader(path) as reader:
        return dict(reader.metadata or {})
