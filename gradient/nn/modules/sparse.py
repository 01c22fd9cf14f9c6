"""Embedding and EmbeddingBag: lookup tables of vectors indexed by integer ids, as in ``torch.nn``."""

from __future__ import annotations

from ... import ops as _ops
from ...autograd import no_grad
from ...errors import ArgumentValueError, ShapeError
from ...ops.argument_errors import as_int
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from .linear import _check_size

__all__ = ["Embedding", "EmbeddingBag"]


def _check_padding_idx(layer: str, padding_idx, num_embeddings: int):
    """``padding_idx`` as a row index in 0..num_embeddings-1 (negative ones count from the end),
    or None; out of range is a ValueError, as in PyTorch."""
    if padding_idx is None:
        return None
    padding_idx = as_int(padding_idx, f"{layer}: padding_idx")
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ArgumentValueError(
            f"{layer}: padding_idx must be within num_embeddings "
            f"(-{num_embeddings} <= padding_idx < {num_embeddings}), got {padding_idx}")
    return padding_idx % num_embeddings



def _table(layer: str, _weight, num_embeddings: int, embedding_dim: int, device, dtype,
           requires_grad: bool = True) -> Parameter:
    """The layer's (num_embeddings, embedding_dim) weight: ``_weight`` when given (its shape
    checked), else uninitialized, for reset_parameters to fill."""
    if _weight is None:
        return Parameter(_ops.empty((num_embeddings, embedding_dim), device=device, dtype=dtype),
                         requires_grad=requires_grad)
    if tuple(_weight.shape) != (num_embeddings, embedding_dim):
        raise ShapeError(f"{layer}: _weight has shape {tuple(_weight.shape)}, expected "
                         f"({num_embeddings}, {embedding_dim})")
    return Parameter(_weight, requires_grad=requires_grad)

class Embedding(Module):
    """Rows of ``weight`` (num_embeddings, embedding_dim) looked up by integer ids of any shape.

    ``weight`` starts as N(0, 1), as in PyTorch. With ``padding_idx`` that row starts at zero
    and gets no gradient, so it stays a fixed "padding" vector. ``max_norm`` renormalises the
    looked-up rows in place. With ``sparse=True`` the weight's gradient is a sparse COO tensor of
    the rows looked up, for ``optim.SparseAdam`` (or ``SGD``, ``Adagrad``), which then update
    only those rows.

    Example::

        emb = nn.Embedding(10, 3, padding_idx=0)
        vectors = emb(gradient.tensor([[1, 2, 0]]))   # (1, 3, 3)
        emb2 = nn.Embedding.from_pretrained(gradient.randn(5, 4))
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False, _weight=None,
                 _freeze: bool = False, device=None, dtype=None):
        super().__init__()
        self.num_embeddings = _check_size("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _check_size("Embedding", "embedding_dim", embedding_dim)
        padding_idx = _check_padding_idx("Embedding", padding_idx, num_embeddings)
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        self.weight = _table("Embedding", _weight, num_embeddings, embedding_dim, device, dtype,
                             requires_grad=not _freeze)
        if _weight is None:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            with no_grad():
                self.weight[self.padding_idx] = 0

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, sparse: bool = False) -> Embedding:
        """An Embedding whose weight is the 2-d tensor ``embeddings``, frozen unless
        ``freeze=False``.

        The padding row is not zeroed (as in PyTorch): the given vectors are used as they are.
        """
        if embeddings.ndim != 2:
            raise ShapeError("Embedding.from_pretrained: embeddings must be 2-d (num_embeddings, "
                             f"embedding_dim), got shape {tuple(embeddings.shape)}")
        rows, cols = embeddings.shape
        return cls(num_embeddings=rows, embedding_dim=cols, _weight=embeddings, _freeze=freeze,
                   padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                   scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


class EmbeddingBag(Module):
    """Sums, means or maxima (``mode``) of bags of rows of ``weight`` (num_embeddings,
    embedding_dim), without materialising the rows of each bag as a padded tensor.

    ``forward(input, offsets=None, per_sample_weights=None)``: the bags are the rows of a 2-d
    ``input``, or the runs of a 1-d ``input`` starting at ``offsets``; see
    :func:`gradient.nn.functional.embedding_bag`. ``weight`` starts as N(0, 1); the
    ``padding_idx`` row starts at zero and is left out of every bag. ``sparse=True`` makes the
    weight's gradient sparse, as in :class:`Embedding`.

    Example::

        bag = nn.EmbeddingBag(10, 3, mode="sum")
        ids = gradient.tensor([1, 2, 4, 5, 4, 3, 2, 9])
        out = bag(ids, gradient.tensor([0, 4]))        # (2, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm: float | None = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                 sparse: bool = False, _weight=None, include_last_offset: bool = False,
                 padding_idx: int | None = None, device=None, dtype=None):
        super().__init__()
        self.num_embeddings = _check_size("EmbeddingBag", "num_embeddings", num_embeddings)
        self.embedding_dim = _check_size("EmbeddingBag", "embedding_dim", embedding_dim)
        if mode not in ("sum", "mean", "max"):
            raise ArgumentValueError(
                f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        padding_idx = _check_padding_idx("EmbeddingBag", padding_idx, num_embeddings)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = include_last_offset
        self.padding_idx = padding_idx
        self.weight = _table("EmbeddingBag", _weight, num_embeddings, embedding_dim, device, dtype)
        if _weight is None:
            self.reset_parameters()

    # N(0, 1) with the padding row zeroed, as Embedding
    reset_parameters = Embedding.reset_parameters
    _fill_padding_idx_with_zero = Embedding._fill_padding_idx_with_zero

    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                               self.scale_grad_by_freq, self.mode, self.sparse,
                               per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        mode: str = "mean", sparse: bool = False,
                        include_last_offset: bool = False,
                        padding_idx: int | None = None) -> "EmbeddingBag":
        """An EmbeddingBag on the 2-d tensor ``embeddings`` (frozen unless ``freeze=False``)."""
        if embeddings.ndim != 2:
            raise ShapeError("EmbeddingBag.from_pretrained: embeddings must be 2-d, got shape "
                             f"{tuple(embeddings.shape)}")
        rows, cols = embeddings.shape
        bag = cls(rows, cols, max_norm, norm_type, scale_grad_by_freq, mode, sparse, embeddings,
                  include_last_offset, padding_idx)
        bag.weight.requires_grad = not freeze
        return bag
