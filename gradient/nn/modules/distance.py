"""CosineSimilarity and PairwiseDistance, as in ``torch.nn``: thin layers over the functionals.

Example::

    >>> cos = nn.CosineSimilarity(dim=1)
    >>> cos(gradient.randn(8, 16), gradient.randn(8, 16)).shape
    gradient.Size([8])
"""

from __future__ import annotations

from .. import functional as F
from ..module import Module

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class PairwiseDistance(Module):
    """``||x1 - x2 + eps||_p`` over the last dimension (``F.pairwise_distance``).

    Example::

        d = nn.PairwiseDistance(p=2)(gradient.randn(100, 128), gradient.randn(100, 128))  # (100,)
    """

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p  # PyTorch keeps p under this name
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1, x2):
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class CosineSimilarity(Module):
    """Cosine similarity of ``x1`` and ``x2`` along ``dim`` (``F.cosine_similarity``).

    Example::

        sim = nn.CosineSimilarity(dim=1, eps=1e-6)(gradient.randn(100, 128), gradient.randn(100, 128))
    """

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1, x2):
        return F.cosine_similarity(x1, x2, self.dim, self.eps)
