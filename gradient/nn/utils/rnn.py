"""Variable-length sequences for recurrent networks, as in ``torch.nn.utils.rnn``.

A batch of sequences of different lengths is held either *padded*, as one (T, B, *) tensor
(``batch_first=True``: (B, T, *)) whose short sequences are filled up with a padding value, or
*packed*, as a :class:`PackedSequence`: the valid entries only, time step by time step. In the
packed layout the sequences are sorted from longest to shortest, so that at every step the
sequences still running are the first ``batch_sizes[t]`` of the batch; ``data`` holds time step
0 of every sequence, then step 1 of the sequences longer than 1, and so on. The recurrent layers
(:class:`~gradient.nn.LSTM`, :class:`~gradient.nn.GRU`, :class:`~gradient.nn.RNN`) take a packed
input and stop each sequence at its own length.

Example::

    from gradient.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

    seqs = [gradient.randn(5, 8), gradient.randn(2, 8), gradient.randn(3, 8)]
    padded = pad_sequence(seqs, batch_first=True)                  # (3, 5, 8)
    packed = pack_padded_sequence(padded, [5, 2, 3], batch_first=True, enforce_sorted=False)
    out, h_n = nn.GRU(8, 16, batch_first=True)(packed)              # out is a PackedSequence
    out, lengths = pad_packed_sequence(out, batch_first=True)      # (3, 5, 16), [5, 2, 3]

Every function here moves the values with one gather (``index_select``) whose indices are
computed on the host from the lengths alone, so gradients flow through packing and padding, and
the cost does not grow with a Python loop over the elements.

Differences from PyTorch: ``lengths`` may be any sequence of ints or a tensor on any device
(PyTorch insists on a CPU tensor or a list), a sequence longer than the padded input is an error
(PyTorch does not check it), and :func:`unpad_sequence` does not transpose its input in place.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable

import numpy as np

from ... import ops as _ops
from ...dtypes import (bfloat16, float16, float32, float64, int8, int16, int32, int64,
                       promote_types, uint8)
from ...errors import ArgumentTypeError, ArgumentValueError, ShapeError
from ...tensor import Tensor

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence",
           "pad_sequence", "unpad_sequence", "pack_sequence", "unpack_sequence"]


def _index(values, device) -> Tensor:
    """Host-computed int64 indices as a tensor on ``device`` (where the gathered data lives)."""
    return _ops.tensor(np.ascontiguousarray(values, dtype=np.int64), dtype=int64, device=device)


def _host_ints(values, what: str) -> np.ndarray:
    """A 1-d int64 NumPy copy of a list, tuple, array or tensor of integers."""
    if isinstance(values, Tensor):
        if values.is_floating_point():
            raise ArgumentTypeError(
                f"{what}: expected integer values, got a {values.dtype} tensor")
        values = values.tolist()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ShapeError(f"{what}: expected a 1-d sequence of integers, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ArgumentTypeError(f"{what}: expected integers, got {arr.dtype} values {values!r}")
    return arr.astype(np.int64)


_PackedSequenceFields = namedtuple("PackedSequence",
                                   ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])


class PackedSequence(_PackedSequenceFields):
    """A batch of variable-length sequences, packed: what the recurrent layers take and return.

    A named tuple of four fields, as in PyTorch (so ``data, batch_sizes, *_ = packed`` works):

    - ``data``: (sum of the lengths, *) -- the entries of time step 0 of every sequence, then those
      of step 1 of the sequences longer than 1, ..., sequences in decreasing length order;
    - ``batch_sizes``: int64 CPU tensor (T,) -- how many sequences run at each time step;
    - ``sorted_indices``: int64 tensor (B,) or None -- the original batch position of each sorted
      sequence (None when the batch was already sorted);
    - ``unsorted_indices``: its inverse permutation, or None.

    Build one with :func:`pack_padded_sequence` or :func:`pack_sequence` rather than by hand.

    Example::

        packed = pack_sequence([gradient.tensor([1, 2, 3]), gradient.tensor([4, 5])])
        packed.data          # tensor([1, 4, 2, 5, 3])
        packed.batch_sizes   # tensor([2, 2, 1])
    """

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:   # PackedSequence((data, batch_sizes)), as PyTorch also allows
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise ArgumentTypeError("PackedSequence: expected data and batch_sizes, or one "
                                        f"(data, batch_sizes) pair, got {type(data).__name__}")
            data, batch_sizes = data
        if isinstance(batch_sizes, Tensor) and batch_sizes.device.type != "cpu":
            raise ArgumentValueError(
                "PackedSequence: batch_sizes should always be on the CPU, got "
                f"{batch_sizes.device}; build packed sequences with pack_sequence "
                "or pack_padded_sequence")
        if not isinstance(batch_sizes, Tensor):
            batch_sizes = _ops.tensor(_host_ints(batch_sizes, "PackedSequence: batch_sizes"),
                                      dtype=int64)
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> "PackedSequence":
        """Convert ``data`` like ``Tensor.to`` (dtype and/or device); the index tensors follow
        ``data``'s device and ``batch_sizes`` stays on the CPU. Returns ``self`` if nothing
        changes.

        Example: ``packed = packed.to(gradient.float64)``
        """
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self

        def follow(t):
            return None if t is None else t.to(data.device)
        return type(self)(data, self.batch_sizes, follow(self.sorted_indices),
                          follow(self.unsorted_indices))

    def cpu(self) -> "PackedSequence":
        return self.to("cpu")

    def cuda(self, device=None) -> "PackedSequence":
        return self.to("cuda" if device is None else device)

    def double(self) -> "PackedSequence":
        return self.to(dtype=float64)

    def float(self) -> "PackedSequence":
        return self.to(dtype=float32)

    def half(self) -> "PackedSequence":
        return self.to(dtype=float16)

    def bfloat16(self) -> "PackedSequence":
        return self.to(dtype=bfloat16)

    def long(self) -> "PackedSequence":
        return self.to(dtype=int64)

    def int(self) -> "PackedSequence":
        return self.to(dtype=int32)

    def short(self) -> "PackedSequence":
        return self.to(dtype=int16)

    def char(self) -> "PackedSequence":
        return self.to(dtype=int8)

    def byte(self) -> "PackedSequence":
        return self.to(dtype=uint8)

    @property
    def is_cuda(self) -> bool:
        """Whether ``data`` is on a CUDA device."""
        return self.data.device.type == "cuda"


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a permutation (None stays None): ``p[invert_permutation(p)]`` is 0, 1, ...

    Example: ``invert_permutation(gradient.tensor([2, 0, 1]))`` -> tensor([1, 2, 0])
    """
    if permutation is None:
        return None
    perm = _host_ints(permutation, "invert_permutation")
    if not np.array_equal(np.sort(perm), np.arange(perm.size)):
        raise ArgumentValueError(
            f"invert_permutation: expected a permutation of 0..{perm.size - 1}, got "
            f"{perm.tolist()}")
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    return _index(inverse, permutation.device if isinstance(permutation, Tensor) else None)


def _batch_sizes_of(sorted_lengths: np.ndarray) -> np.ndarray:
    """How many of the (decreasingly sorted) sequences are longer than t, for every step t."""
    steps = np.arange(int(sorted_lengths[0]) if sorted_lengths.size else 0)
    return (sorted_lengths[None, :] > steps[:, None]).sum(axis=1).astype(np.int64)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) (``batch_first``: (B, T, *)) of sequences of ``lengths``.

    With ``enforce_sorted=True`` (the default) the sequences must come longest first; with
    ``enforce_sorted=False`` they are sorted here and the permutation is kept in the result, so
    that :func:`pad_packed_sequence` and the recurrent layers' final states give them back in
    the original order. Entries past a sequence's length are ignored.

    Example::

        x = gradient.randn(4, 3, 8)                                   # 3 sequences of up to 4 steps
        packed = pack_padded_sequence(x, [4, 1, 3], enforce_sorted=False)
        packed.batch_sizes                                            # tensor([3, 2, 2, 1])
    """
    fn = "pack_padded_sequence"
    if not isinstance(input, Tensor):
        raise ArgumentTypeError(
            f"{fn}: expected a gradient.Tensor input, got {type(input).__name__}")
    if input.ndim < 2:
        raise ShapeError(f"{fn}: expected a padded input of at least 2 dimensions "
                         f"({'(B, T, *)' if batch_first else '(T, B, *)'}), got shape "
                         f"{tuple(input.shape)}")
    lengths = _host_ints(lengths, f"{fn}: lengths")
    steps, batch = (input.shape[1], input.shape[0]) if batch_first else tuple(input.shape[:2])
    if lengths.size != batch:
        raise ShapeError(f"{fn}: expected one length per sequence, batch_size={batch} "
                         f"(input shape {tuple(input.shape)}, batch_first={batch_first}), got "
                         f"{lengths.size} lengths")
    if batch == 0:
        raise ShapeError(f"{fn}: cannot pack an empty batch (input shape {tuple(input.shape)})")
    if lengths.min() <= 0:
        raise ShapeError(f"{fn}: every sequence needs a length greater than 0, got lengths "
                         f"{lengths.tolist()}; leave the empty sequences out of the batch")
    if lengths.max() > steps:
        raise ShapeError(f"{fn}: a length of {int(lengths.max())} does not fit the padded "
                         f"input's {steps} time steps (shape {tuple(input.shape)}, "
                         f"batch_first={batch_first}); check lengths and batch_first")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise ShapeError(f"{fn}: `lengths` array must be sorted in decreasing order when "
                             f"`enforce_sorted` is True, got {lengths.tolist()}; pass "
                             "enforce_sorted=False to pack_padded_sequence or pack_sequence "
                             "to have the batch sorted for you")
        order, sorted_indices = np.arange(batch), None
    else:
        # stable, as PyTorch's CPU sort: equal lengths keep their batch order
        order = np.argsort(-lengths, kind="stable")
        sorted_indices = _index(order, input.device)
    sorted_lengths = lengths[order]
    batch_sizes = _batch_sizes_of(sorted_lengths)
    # (t, j) for every valid entry in packed order: time-major, then sorted position j
    t, j = np.nonzero(np.arange(batch_sizes.size)[:, None] < sorted_lengths[None, :])
    b = order[j]
    flat = b * steps + t if batch_first else t * batch + b
    rows = input.reshape(steps * batch, *input.shape[2:])
    data = rows.index_select(0, _index(flat, input.device))
    return PackedSequence(data, _ops.tensor(batch_sizes, dtype=int64), sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):
    """Unpack a :class:`PackedSequence` into ``(padded, lengths)``: the inverse of
    :func:`pack_padded_sequence`.

    ``padded`` is (T, B, *) (``batch_first``: (B, T, *)) with T the longest length, or
    ``total_length`` when given; the sequences are in their original batch order, and
    ``lengths`` is an int64 CPU tensor of their lengths.

    Example::

        out, h_n = lstm(packed)
        padded, lengths = pad_packed_sequence(out, batch_first=True)
    """
    fn = "pad_packed_sequence"
    if not isinstance(sequence, PackedSequence):
        raise ArgumentTypeError(f"{fn}: expected a PackedSequence, got {type(sequence).__name__}")
    data = sequence.data
    batch_sizes = _host_ints(sequence.batch_sizes, f"{fn}: batch_sizes")
    steps = batch_sizes.size
    if steps == 0:
        raise ShapeError(f"{fn}: the packed sequence has no time steps (empty batch_sizes)")
    if total_length is not None:
        if total_length < steps:
            raise ArgumentValueError(
                f"{fn}: expected total_length to be at least the length of the "
                f"longest sequence in input, but got total_length={total_length} "
                f"and max sequence length being {steps}")
        steps = total_length
    batch = int(batch_sizes[0])
    n = int(batch_sizes.sum())
    if data.ndim == 0 or data.shape[0] != n:
        raise ShapeError(f"{fn}: data of shape {tuple(data.shape)} does not hold the "
                         f"{n} entries that batch_sizes {batch_sizes.tolist()} count")
    # where entry (t, j) of the sorted batch sits in data, or n (the padding row) past its end
    # (total_length may add steps past the packed ones: no sequence runs there)
    sizes = np.concatenate([batch_sizes, np.zeros(steps - batch_sizes.size, np.int64)])
    starts = np.cumsum(sizes) - sizes
    col = np.arange(batch)[None, :]
    valid = col < sizes[:, None]
    where = np.where(valid, starts[:, None] + col, n)
    lengths = valid.sum(axis=0)
    if sequence.unsorted_indices is not None:   # back to the batch order the user packed
        unsorted = _host_ints(sequence.unsorted_indices, f"{fn}: unsorted_indices")
        where, lengths = where[:, unsorted], lengths[unsorted]
    if batch_first:
        where = where.T
    source = data
    if not valid.all():
        pad = _ops.full((1, *data.shape[1:]), padding_value, dtype=data.dtype, device=data.device)
        source = _ops.cat([data, pad], 0)
    padded = source.index_select(0, _index(where.reshape(-1), data.device))
    padded = padded.reshape(*where.shape, *data.shape[1:])
    return padded, _ops.tensor(lengths.astype(np.int64), dtype=int64)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences of shapes (L_i, *) into one (T, B, *) tensor (``batch_first``: (B, T, *)),
    T the longest L_i, filling the rest with ``padding_value`` on the ``padding_side``
    ('right' or 'left').

    Example::

        a, b = gradient.ones(3, 2), gradient.ones(1, 2)
        pad_sequence([a, b], batch_first=True).shape                   # (2, 3, 2)
        pad_sequence([a, b], padding_side="left")[:, 1, 0]              # tensor([0., 0., 1.])
    """
    fn = "pad_sequence"
    if padding_side not in ("left", "right"):
        raise ArgumentValueError(
            f"{fn}: expected padding_side to be one of left or right, but got "
            f"{padding_side!r}")
    if not isinstance(sequences, (Iterable, Tensor)):
        raise ArgumentTypeError(
            f"{fn}: expected an iterable of tensors, got {type(sequences).__name__}")
    sequences = list(sequences.unbind(0) if isinstance(sequences, Tensor) else sequences)
    if not sequences:
        raise ShapeError(f"{fn}: received an empty list of sequences")
    for i, s in enumerate(sequences):
        if not isinstance(s, Tensor):
            raise ArgumentTypeError(
                f"{fn}: expected tensors, got {type(s).__name__} at position {i}")
        if s.ndim == 0:
            raise ShapeError(f"{fn}: sequence {i} is a 0-d tensor; each sequence needs a first "
                             "(time) dimension")
        if tuple(s.shape[1:]) != tuple(sequences[0].shape[1:]):
            raise ShapeError(f"{fn}: every sequence must have the same trailing shape, got "
                             f"{tuple(sequences[0].shape)} (sequence 0) and {tuple(s.shape)} "
                             f"(sequence {i})")
    lengths = np.array([s.shape[0] for s in sequences], dtype=np.int64)
    steps, batch = int(lengths.max()), len(sequences)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n = int(lengths.sum())
    time = np.arange(steps)[:, None]
    # a sequence's step t sits at time t (right padding) or at t + (T - L) (left padding)
    shift = np.zeros(batch, np.int64) if padding_side == "right" else steps - lengths
    pos = time - shift[None, :]
    valid = (pos >= 0) & (pos < lengths[None, :])
    where = np.where(valid, starts[None, :] + pos, n)
    if batch_first:
        where = where.T
    trailing = tuple(sequences[0].shape[1:])
    parts = list(sequences)
    if not valid.all():
        dtype = sequences[0].dtype
        for s in sequences[1:]:   # the dtype cat will give the joined sequences
            dtype = promote_types(dtype, s.dtype)
        parts.append(_ops.full((1, *trailing), padding_value, dtype=dtype,
                               device=sequences[0].device))
    source = _ops.cat(parts, 0)
    return source.index_select(0, _index(where.reshape(-1), source.device)).reshape(
        *where.shape, *trailing)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """Split a padded batch (T, B, *) (``batch_first``: (B, T, *)) back into a list of B
    sequences of shapes (lengths[i], *): the inverse of :func:`pad_sequence` (right padding).

    Example::

        padded = pad_sequence([gradient.ones(3, 2), gradient.ones(1, 2)])
        [s.shape for s in unpad_sequence(padded, [3, 1])]               # [(3, 2), (1, 2)]
    """
    fn = "unpad_sequence"
    lengths = _host_ints(lengths, f"{fn}: lengths")
    batch = padded_sequences.shape[0 if batch_first else 1]
    steps = padded_sequences.shape[1 if batch_first else 0]
    if lengths.size != batch:
        raise ShapeError(f"{fn}: expected one length per sequence, batch_size={batch} "
                         f"(shape {tuple(padded_sequences.shape)}), got {lengths.size} lengths")
    if lengths.size and (lengths.min() < 0 or lengths.max() > steps):
        raise ShapeError(f"{fn}: lengths {lengths.tolist()} do not fit {steps} time steps")
    by_batch = padded_sequences.unbind(0 if batch_first else 1)
    return [s[:int(n)] for s, n in zip(by_batch, lengths)]


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences of shapes (L_i, *) (longest first unless
    ``enforce_sorted=False``): ``pad_sequence`` followed by ``pack_padded_sequence``.

    Example::

        packed = pack_sequence([gradient.randn(2, 4), gradient.randn(3, 4)], enforce_sorted=False)
        out, h_n = nn.RNN(4, 6)(packed)
    """
    sequences = list(sequences)
    lengths = [s.shape[0] if isinstance(s, Tensor) and s.ndim else 0 for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of sequences a :class:`PackedSequence` holds, in their original order: the
    inverse of :func:`pack_sequence`.

    Example::

        seqs = unpack_sequence(pack_sequence([gradient.ones(3), gradient.ones(2)]))
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
