"""``gradient.distributions``: probability distributions, as ``torch.distributions``.

Every distribution has ``batch_shape`` and ``event_shape``, ``sample`` (no gradient) and, where
``has_rsample``, ``rsample`` (reparameterized: gradients flow to the parameters),
``log_prob``, ``entropy``, ``mean``, ``mode``, ``variance``, ``stddev``, ``cdf``/``icdf`` where
they have closed forms, and ``expand``. Parameters are checked against ``arg_constraints`` (see
:mod:`~gradient.distributions.constraints`) unless ``validate_args=False`` or
``Distribution.set_default_validate_args(False)``. ``kl_divergence(p, q)`` dispatches on the
pair of types (``register_kl`` adds pairs).

Draws come from gradient's default generator, so ``gradient.manual_seed`` makes them
reproducible (gamma, Poisson and binomial draws are made by its NumPy state on the host).

Gamma draws are reparameterized by their implicit gradient, so Gamma, Chi2, Beta, Dirichlet,
StudentT and FisherSnedecor have ``rsample`` as in PyTorch (for Dirichlet and Beta one draw's
gradient differs from PyTorch's, their expectations agree).

Differences from PyTorch: Poisson and Binomial have no ``entropy``;
LowRankMultivariateNormal factors its full covariance (same values, O(n^3)). Not here:
LKJCholesky, Wishart, and the CorrCholesky, Cat, Stack and CumulativeDistribution transforms.

``biject_to(constraint)`` and ``transform_to(constraint)`` map the real numbers onto a
constraint's set (:mod:`~gradient.distributions.constraint_registry`), to optimize constrained
parameters through unconstrained tensors.

Example::

    >>> import gradient
    >>> from gradient.distributions import Normal, kl_divergence
    >>> loc = gradient.zeros(3, requires_grad=True)
    >>> d = Normal(loc, 1.0)
    >>> d.rsample((5,)).mean().backward()       # gradients reach loc
    >>> kl_divergence(d, Normal(1.0, 2.0)).shape
    gradient.Size([3])
"""

from . import constraints, transforms
from .bernoulli import Bernoulli
from .beta import Beta
from .binomial import Binomial
from .categorical import Categorical, OneHotCategorical, OneHotCategoricalStraightThrough
from .cauchy import Cauchy
from .chi2 import Chi2
from .continuous_bernoulli import ContinuousBernoulli
from .dirichlet import Dirichlet
from .distribution import Distribution
from .exponential import Exponential
from .fishersnedecor import FisherSnedecor
from .gamma import Gamma
from .geometric import Geometric
from .gumbel import Gumbel
from .half_cauchy import HalfCauchy
from .half_normal import HalfNormal
from .independent import Independent
from .inverse_gamma import InverseGamma
from .kumaraswamy import Kumaraswamy
from .kl import kl_divergence, register_kl
from .laplace import Laplace
from .log_normal import LogNormal
from .logistic_normal import LogisticNormal
from .mixture_same_family import MixtureSameFamily
from .multinomial import Multinomial
from .multivariate_normal import LowRankMultivariateNormal, MultivariateNormal
from .negative_binomial import NegativeBinomial
from .normal import Normal
from .pareto import Pareto
from .poisson import Poisson
from .relaxed_bernoulli import LogitRelaxedBernoulli, RelaxedBernoulli
from .relaxed_categorical import ExpRelaxedCategorical, RelaxedOneHotCategorical
from .studentT import StudentT
from .transformed_distribution import TransformedDistribution
from .transforms import (AbsTransform, AffineTransform, ComposeTransform, ExpTransform,
                         IndependentTransform, LowerCholeskyTransform, PositiveDefiniteTransform,
                         PowerTransform, ReshapeTransform, SigmoidTransform, SoftmaxTransform,
                         SoftplusTransform, StickBreakingTransform, TanhTransform, Transform,
                         identity_transform)
from . import constraint_registry
from .constraint_registry import biject_to, transform_to
from .uniform import Uniform
from .von_mises import VonMises
from .weibull import Weibull

__all__ = [
    "AffineTransform", "Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Chi2",
    "ContinuousBernoulli", "Dirichlet",
    "Distribution", "ExpRelaxedCategorical", "ExpTransform", "Exponential", "Gamma", "Geometric",
    "Gumbel", "HalfCauchy", "HalfNormal", "Independent", "Laplace", "LogNormal",
    "LogitRelaxedBernoulli", "LowRankMultivariateNormal", "MixtureSameFamily", "MultivariateNormal",
    "Normal", "OneHotCategorical", "OneHotCategoricalStraightThrough", "InverseGamma",
    "Pareto", "Poisson", "RelaxedBernoulli",
    "RelaxedOneHotCategorical", "SigmoidTransform", "StudentT", "TanhTransform", "Transform",
    "ComposeTransform", "FisherSnedecor", "Kumaraswamy", "Multinomial", "NegativeBinomial",
    "PowerTransform", "SoftplusTransform", "AbsTransform", "LogisticNormal",
    "StickBreakingTransform", "IndependentTransform", "ReshapeTransform", "SoftmaxTransform",
    "LowerCholeskyTransform", "PositiveDefiniteTransform", "identity_transform", "biject_to",
    "transform_to", "constraint_registry",
    "TransformedDistribution", "Uniform", "VonMises", "Weibull", "constraints", "kl_divergence",
    "register_kl", "transforms",
]
