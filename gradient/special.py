"""``gradient.special``: PyTorch's ``torch.special`` namespace.

The gamma family (``gammaln``, ``digamma``/``psi``, ``polygamma``, ``multigammaln``), the
error-function family (``erf``, ``erfc``, ``erfinv``, ``ndtr``, ``ndtri``, ``log_ndtr``),
modified Bessel functions (``i0``, ``i0e``, ``i1``, ``i1e``), ``expit``/``logit``, ``xlogy``,
``xlog1py``, ``entr``, ``sinc``, the Hurwitz ``zeta``, the incomplete gamma functions
(``gammainc``, ``gammaincc``), ``erfcx``, the Bessel functions and Airy's Ai
(:mod:`gradient.ops.bessel`), the orthogonal polynomials (Chebyshev, Hermite, Laguerre,
Legendre: :mod:`gradient.ops.orthogonal_polynomials`) and the usual helpers under their
``torch.special`` names. They are ops of :mod:`gradient.ops` (mostly
:mod:`gradient.ops.special`), with first and second derivatives where PyTorch has them (the
Bessel functions, Airy's Ai and the polynomials have none). Where a function differs from
PyTorch's, its docstring says so.

Example::

    >>> import gradient
    >>> gradient.special.gammaln(gradient.tensor([4.0]))        # log(3!)
    tensor([1.7918])
    >>> gradient.special.xlogy(gradient.tensor([0.0]), gradient.tensor([0.0]))
    tensor([0.])
"""

from __future__ import annotations

from .ops.elementwise import erf, exp2, expm1, log1p, round, sigmoid
from .ops.nn import log_softmax as _log_softmax
from .ops.nn import softmax as _softmax
from .ops.reduce import logsumexp
from .ops.special import (digamma, entr, erfc, erfinv, i0, i0e, i1, i1e, lgamma, log_ndtr, logit,
                          mvlgamma, ndtr, ndtri, polygamma, sinc, xlog1py, xlogy, zeta)
from .ops.bessel import (airy_ai, bessel_j0, bessel_j1, bessel_y0, bessel_y1,  # noqa: F401
                         modified_bessel_i0, modified_bessel_i1, modified_bessel_k0,
                         modified_bessel_k1, scaled_modified_bessel_k0,
                         scaled_modified_bessel_k1, spherical_bessel_j0)
from .ops.orthogonal_polynomials import *  # noqa: F401,F403  (Chebyshev, Hermite ...)
from .ops.orthogonal_polynomials import __all__ as _polynomials
from .ops.special import erfcx  # noqa: F401
from .ops.special import igamma as gammainc
from .ops.special import igammac as gammaincc

__all__ = [
    "gammaln", "digamma", "psi", "polygamma", "multigammaln", "erf", "erfc", "erfinv", "expit",
    "logit", "xlogy", "xlog1py", "log_ndtr", "ndtr", "ndtri", "i0", "i0e", "i1", "i1e", "sinc",
    "entr", "log1p", "expm1", "exp2", "logsumexp", "softmax", "log_softmax", "round", "zeta",
    "gammainc", "gammaincc", "erfcx", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1",
    "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
    "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0", "airy_ai",
    *_polynomials,
]

gammaln = lgamma
psi = digamma
expit = sigmoid


def multigammaln(input, p: int):
    """The log of the multivariate gamma function (``torch.special.multigammaln``): see
    :func:`gradient.mvlgamma`. Example: ``gradient.special.multigammaln(x, 2)``."""
    return mvlgamma(input, p)


def softmax(input, dim: int, *, dtype=None):
    """``exp(x) / sum(exp(x))`` along ``dim`` (required here, as in torch.special).

    Example: ``gradient.special.softmax(logits, dim=-1)``.
    """
    return _softmax(input, dim, dtype)


def log_softmax(input, dim: int, *, dtype=None):
    """``log(softmax(x))`` along ``dim``, computed stably: ``gradient.special.log_softmax(x, 1)``."""
    return _log_softmax(input, dim, dtype)
