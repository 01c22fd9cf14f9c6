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

Differences from PyTorch: Gamma, Beta, Dirichlet and StudentT have no ``rsample`` (PyTorch has
implicit reparameterization for them); Gamma has no ``cdf``; Poisson and Binomial have no
``entropy``; MultivariateNormal is not here yet.

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
from .categorical import Categorical, OneHotCategorical
from .cauchy import Cauchy
from .dirichlet import Dirichlet
from .distribution import Distribution
from .exponential import Exponential
from .gamma import Gamma
from .geometric import Geometric
from .gumbel import Gumbel
from .independent import Independent
from .kl import kl_divergence, register_kl
from .laplace import Laplace
from .log_normal import LogNormal
from .normal import Normal
from .poisson import Poisson
from .studentT import StudentT
from .transformed_distribution import TransformedDistribution
from .transforms import AffineTransform, ExpTransform, SigmoidTransform, TanhTransform, Transform
from .uniform import Uniform

__all__ = [
    "AffineTransform", "Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Dirichlet",
    "Distribution", "ExpTransform", "Exponential", "Gamma", "Geometric", "Gumbel", "Independent",
    "Laplace", "LogNormal", "Normal", "OneHotCategorical", "Poisson", "SigmoidTransform",
    "StudentT", "TanhTransform", "Transform", "TransformedDistribution", "Uniform", "constraints",
    "kl_divergence", "register_kl", "transforms",
]
