"""The GGUF format: llama.cpp's single-file models (metadata, tokenizer and quantized tensors).

A GGUF file (version 2 or 3, little-endian) is::

    "GGUF"  uint32 version  uint64 n_tensors  uint64 n_kv
    n_kv x      key (string), uint32 value type, value
    n_tensors x name (string), uint32 n_dims, n_dims x uint64 dims (innermost first),
                uint32 ggml type, uint64 offset (from the start of the data section)
    padding to `general.alignment` (default 32)
    the data section: each tensor's bytes, at its offset (a multiple of the alignment)

Strings are a uint64 byte length and UTF-8 bytes; values are one of 13 types (integers,
floats, bool, string, or an array of one of them). See :mod:`gradient.quant.ggml` for the
tensor types and their blocks.

:class:`GGUFReader` parses the header itself (rather than through the ``gguf`` package, whose
reader builds a NumPy array for each of the ~100k vocabulary strings and takes seconds), checks
every count, size and offset against the file before trusting it, and memory-maps the file:
a tensor's bytes are read from disk when they are used. A truncated or corrupt file raises
:class:`~gradient.errors.FileFormatError` naming the file (and the key or tensor at fault),
never a crash or an allocation the file's size does not justify.

Example::

    >>> f = GGUFReader("SmolLM2-135M-Instruct.Q4_1.gguf")
    >>> f.metadata["general.architecture"], f.tensors["blk.0.attn_q.weight"].type_name
    ('llama', 'Q4_1')
    >>> f.dequantize("blk.0.attn_q.weight").shape           # float32
    (576, 576)
"""

from __future__ import annotations

import os
import struct
import sys
from dataclasses import dataclass

import numpy as np

from ..errors import ArgumentValueError, FileFormatError
from ..quant.ggml import BLOCK_SIZES, UnsupportedQuantTypeError, dequantize, type_name
from .mapped_pages import release

__all__ = ["GGUFReader", "GGUFTensorInfo", "gguf_metadata", "GGUF_MAGIC", "VALUE_TYPES"]

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4            # ggml's GGML_MAX_DIMS
MAX_ARRAY_NESTING = 8   # arrays of arrays are legal; deeper than this is a corrupt file

# value type id -> (name, struct format or None for string/array, size in bytes)
VALUE_TYPES = {
    0: ("UINT8", "<B", 1), 1: ("INT8", "<b", 1), 2: ("UINT16", "<H", 2), 3: ("INT16", "<h", 2),
    4: ("UINT32", "<I", 4), 5: ("INT32", "<i", 4), 6: ("FLOAT32", "<f", 4), 7: ("BOOL", "<?", 1),
    8: ("STRING", None, 8), 9: ("ARRAY", None, 12), 10: ("UINT64", "<Q", 8),
    11: ("INT64", "<q", 8), 12: ("FLOAT64", "<d", 8),
}
_STRING, _ARRAY, _BOOL = 8, 9, 7
_U64 = struct.Struct("<Q")
# smallest encoding of one tensor info: empty name, 1 dim, type, offset
_MIN_TENSOR_INFO = 8 + 4 + 8 + 4 + 8
_MIN_KV = 8 + 4 + 1


@dataclass(frozen=True)
class GGUFTensorInfo:
    """One tensor of a GGUF file: its GGML type id, shape in NumPy order (GGUF stores the
    dimensions innermost first; this is reversed), and where its bytes are in the file."""

    name: str
    ggml_type: int
    shape: tuple
    offset: int      # absolute, in bytes from the start of the file
    nbytes: int

    @property
    def type_name(self) -> str:
        """``"Q4_K"``, ``"F32"`` ..."""
        return type_name(self.ggml_type)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


class _Corrupt(Exception):
    """Raised inside the parser; turned into a FileFormatError naming the file."""


class _Cursor:
    """Reads little-endian values from a buffer, checking each read against its end."""

    def __init__(self, buf, size: int):
        self.buf, self.size, self.pos = buf, size, 0

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _Corrupt(f"truncated: {what} needs {n} bytes at offset {self.pos}, but the file "
                           f"ends at {self.size}")

    def unpack(self, fmt: str, size: int, what: str):
        self.need(size, what)
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return self.unpack("<I", 4, what)

    def u64(self, what: str) -> int:
        return self.unpack("<Q", 8, what)

    def string(self, what: str) -> str:
        n = self.u64(f"the length of {what}")
        self.need(n, what)
        start = self.pos
        self.pos += n
        try:
            return str(self.buf[start:self.pos], "utf-8")
        except UnicodeDecodeError as e:
            raise _Corrupt(f"{what} is not valid UTF-8 ({e})") from None

    def strings(self, count: int, what: str) -> list[str]:
        """``count`` strings (a vocabulary: ~100k of them, so this loop is kept tight)."""
        buf, size, pos = self.buf, self.size, self.pos
        length = _U64.unpack_from
        out = []
        append = out.append
        try:
            for i in range(count):
                if pos + 8 > size:
                    raise _Corrupt(f"truncated: item {i} of {what} starts at offset {pos}, at "
                                   f"the end of the file ({size} bytes)")
                (n,) = length(buf, pos)
                pos += 8
                if n > size - pos:
                    raise _Corrupt(f"truncated: item {i} of {what} is {n} bytes long at offset "
                                   f"{pos}, past the end of the file ({size} bytes)")
                append(str(buf[pos:pos + n], "utf-8"))
                pos += n
        except UnicodeDecodeError as e:
            raise _Corrupt(f"item {len(out)} of {what} is not valid UTF-8 ({e})") from None
        self.pos = pos
        return out

    def value(self, vtype: int, what: str, depth: int = 0):
        if vtype not in VALUE_TYPES:
            raise _Corrupt(f"{what} has value type {vtype}, which GGUF does not define (0..12)")
        _, fmt, size = VALUE_TYPES[vtype]
        if fmt is not None:
            return self.unpack(fmt, size, what)
        if vtype == _STRING:
            return self.string(what)
        return self.array(what, depth)

    def array(self, what: str, depth: int):
        if depth >= MAX_ARRAY_NESTING:
            raise _Corrupt(f"{what} nests arrays more than {MAX_ARRAY_NESTING} deep")
        item_type = self.u32(f"the item type of {what}")
        count = self.u64(f"the length of {what}")
        if item_type not in VALUE_TYPES:
            raise _Corrupt(f"{what} is an array of value type {item_type}, which GGUF does not "
                           f"define (0..12)")
        name, fmt, size = VALUE_TYPES[item_type]
        # every item takes at least `size` bytes: this bounds `count` by the file's size
        if count > (self.size - self.pos) // size:
            raise _Corrupt(f"truncated: {what} is an array of {count} {name} values, more than "
                           f"the {self.size - self.pos} bytes left in the file can hold")
        if fmt is not None:   # numbers: one read for the whole array
            dtype = np.dtype(fmt if item_type != _BOOL else "<u1")
            items = np.frombuffer(self.buf, dtype=dtype, count=count, offset=self.pos)
            self.pos += count * size
            return (items != 0).tolist() if item_type == _BOOL else items.tolist()
        if item_type == _STRING:
            return self.strings(count, what)
        return [self.array(f"item {i} of {what}", depth + 1) for i in range(count)]


class GGUFReader:
    """An open GGUF file whose header has been read and checked; tensors are read on demand.

    Attributes: ``path``, ``version``, ``alignment``, ``metadata`` (``{key: value}``: ints,
    floats, bools, strings, lists), ``tensors`` (``{name: GGUFTensorInfo}`` in file order).
    :meth:`raw` gives a tensor's bytes (a read-only-in-effect, copy-on-write memory map) and
    :meth:`dequantize` its float32 values.

    Example::

        >>> with GGUFReader("model.gguf") as f:
        ...     embed = f.dequantize("token_embd.weight")     # (vocab, hidden) float32
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._map = None
        try:
            size = os.path.getsize(self.path)
        except OSError as e:
            raise FileNotFoundError(f"{self.path}: cannot open GGUF file ({e.strerror})") from None
        if size < 24:
            with open(self.path, "rb") as f:
                head = f.read(9)
            raise self._error(f"not a GGUF file: it is {size} bytes long, shorter than the "
                              f"24-byte GGUF header" + self._hint(head))
        self._map = np.memmap(self.path, dtype=np.uint8, mode="c")
        try:
            self._parse(size)
        except _Corrupt as e:
            self.close()
            raise self._error(str(e)) from None
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Drop this reader's map of the file (arrays already returned keep theirs alive)."""
        self._map = None

    def __repr__(self) -> str:
        return (f"GGUFReader({self.path!r}, version={self.version}, "
                f"architecture={self.metadata.get('general.architecture')!r}, "
                f"{len(self.metadata)} keys, {len(self.tensors)} tensors)")

    def _error(self, message: str) -> FileFormatError:
        return FileFormatError(f"{self.path}: {message}")

    @staticmethod
    def _hint(head: bytes) -> str:
        if head[:2] == b"PK":
            return "; it looks like a zip (PyTorch) checkpoint"
        if head[:1] == b"\x80":
            return "; it looks like a Python pickle"
        if head[8:9] == b"{":
            return "; it looks like a safetensors file"
        return ""

    # ------------------------------------------------------------------ header
    def _parse(self, size: int) -> None:
        cur = _Cursor(memoryview(self._map), size)   # slicing a memoryview is cheap
        magic = bytes(self._map[:4])
        if magic != GGUF_MAGIC:
            hint = self._hint(bytes(self._map[:9]))
            raise _Corrupt(f"not a GGUF file: it starts with {magic!r}, not the magic "
                           f"{GGUF_MAGIC!r}{hint}")
        cur.pos = 4
        version = cur.u32("the version")
        if version not in SUPPORTED_VERSIONS:
            if version & 0xFFFFFF == 0 and (version >> 24) in (1, 2, 3):   # 3 written big-endian
                raise _Corrupt("a big-endian GGUF file; gradient reads little-endian GGUF only "
                               "(convert it with llama.cpp's gguf tools)")
            raise _Corrupt(f"GGUF version {version} is not supported (supported: "
                           f"{', '.join(map(str, SUPPORTED_VERSIONS))}); re-convert the model "
                           f"with a current llama.cpp")
        self.version = version
        n_tensors = cur.u64("the tensor count")
        n_kv = cur.u64("the metadata count")
        if n_kv > (size - cur.pos) // _MIN_KV:
            raise _Corrupt(f"the header says {n_kv} metadata entries, more than the file's "
                           f"{size} bytes can hold (corrupt or truncated)")
        if n_tensors > (size - cur.pos) // _MIN_TENSOR_INFO:
            raise _Corrupt(f"the header says {n_tensors} tensors, more than the file's "
                           f"{size} bytes can hold (corrupt or truncated)")

        metadata: dict = {}
        for i in range(n_kv):
            key = cur.string(f"the key of metadata entry {i}")
            vtype = cur.u32(f"the value type of {key!r}")
            if key in metadata:
                raise _Corrupt(f"the metadata key {key!r} appears twice")
            metadata[key] = cur.value(vtype, f"metadata {key!r}")
        self.metadata = metadata

        alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if (not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0
                or alignment & (alignment - 1)):
            raise _Corrupt(f"general.alignment is {alignment!r}; expected a power of two")
        self.alignment = alignment

        infos = []
        for i in range(n_tensors):
            name = cur.string(f"the name of tensor {i}")
            n_dims = cur.u32(f"the dimension count of tensor {name!r}")
            if not 1 <= n_dims <= MAX_DIMS:
                raise _Corrupt(f"tensor {name!r} has {n_dims} dimensions; GGUF tensors have 1 "
                               f"to {MAX_DIMS}")
            dims = [cur.u64(f"dimension {d} of tensor {name!r}") for d in range(n_dims)]
            ggml_type = cur.u32(f"the type of tensor {name!r}")
            offset = cur.u64(f"the data offset of tensor {name!r}")
            infos.append((name, dims, ggml_type, offset))

        data_start = -(-cur.pos // alignment) * alignment
        data_size = size - data_start
        tensors: dict[str, GGUFTensorInfo] = {}
        for name, dims, ggml_type, offset in infos:
            if name in tensors:
                raise _Corrupt(f"two tensors are named {name!r}")
            tensors[name] = self._check_tensor(name, dims, ggml_type, offset, data_start,
                                               data_size)
        spans = sorted((t.offset, t.offset + t.nbytes, t.name) for t in tensors.values())
        for (_, end, a), (begin, _, b) in zip(spans, spans[1:]):
            if begin < end:
                raise _Corrupt(f"the data of tensors {a!r} and {b!r} overlap")
        self.data_start = data_start
        self.tensors = tensors

    def _check_tensor(self, name, dims, ggml_type, offset, data_start, data_size):
        where = f"tensor {name!r}"
        if ggml_type not in BLOCK_SIZES:
            raise UnsupportedQuantTypeError(
                f"{self.path}: {where} has GGML type id {ggml_type}, which gradient does not "
                f"know (known: {', '.join(f'{t.name}={int(t)}' for t in BLOCK_SIZES)}); the "
                f"file may need a newer gradient, or be corrupt")
        block, type_size = BLOCK_SIZES[ggml_type]
        nonzero = 1
        for d in dims:
            nonzero *= d or 1
        numel = nonzero if all(dims) else 0
        if nonzero > data_size * block:   # more values than the file could store
            raise _Corrupt(f"{where} has shape {tuple(dims)} (innermost first), too large for "
                           f"the file's {data_size} bytes of data (corrupt or truncated)")
        if dims[0] % block:
            raise _Corrupt(f"{where} is {type_name(ggml_type)} with rows of {dims[0]} values, "
                           f"not a multiple of its {block}-value blocks")
        nbytes = numel // block * type_size
        if offset % self.alignment:
            raise _Corrupt(f"{where} starts at data offset {offset}, not a multiple of the "
                           f"alignment {self.alignment}")
        if offset + nbytes > data_size:
            raise _Corrupt(f"truncated: {where} ({type_name(ggml_type)}, {nbytes} bytes at data "
                           f"offset {offset}) ends past the end of the file (the data section "
                           f"holds {data_size} bytes); was a download interrupted?")
        return GGUFTensorInfo(name, ggml_type, tuple(int(d) for d in reversed(dims)),
                              data_start + offset, nbytes)

    # ------------------------------------------------------------------ data
    def _info(self, name: str) -> GGUFTensorInfo:
        info = self.tensors.get(name)
        if info is None:
            raise KeyError(f"{self.path}: no tensor named {name!r}")
        if self._map is None:
            raise ArgumentValueError(f"{self.path}: the reader is closed")
        return info

    def raw(self, name: str) -> np.ndarray:
        """The stored bytes of tensor ``name``: a 1-d uint8 view of the mapped file."""
        info = self._info(name)
        return np.asarray(self._map[info.offset:info.offset + info.nbytes])

    def release(self, name: str) -> None:
        """Let the operating system drop the pages of tensor ``name`` from this process's
        memory (``madvise(MADV_DONTNEED)``): after a loader has copied or converted a tensor,
        its mapped bytes no longer count in the resident memory. Reading them again (through
        arrays from :meth:`raw`) pages them back in from the file; nothing is lost, since the
        map is never written. Pages shared with a neighbouring tensor are kept."""
        info = self._info(name)
        release(self._map, info.offset, info.nbytes)

    def dequantize(self, name: str) -> np.ndarray:
        """Tensor ``name`` as float32 values of its (NumPy-order) shape.

        Raises :class:`~gradient.quant.UnsupportedQuantTypeError` (naming the tensor and its
        type id) for types gradient does not dequantize.
        """
        info = self._info(name)
        if sys.byteorder == "big":
            raise FileFormatError(f"{self.path}: reading GGUF tensors on a big-endian machine "
                                  f"is not supported")
        try:
            return dequantize(self.raw(name), info.ggml_type, info.shape, name=name)
        except UnsupportedQuantTypeError as e:
            raise UnsupportedQuantTypeError(f"{self.path}: {e}") from None


def gguf_metadata(path) -> dict:
    """The metadata of a GGUF file (``{"general.architecture": "llama", ...}``); reads the
    header only.

    Example: ``gguf_metadata("model.gguf")["llama.block_count"]``
    """
    with GGUFReader(path) as reader:
        return dict(reader.metadata)
