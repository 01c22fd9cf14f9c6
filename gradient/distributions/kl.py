"""KL divergences ``KL(p || q)`` between distributions, by a registry of closed forms.

``register_kl(P, Q)`` decorates the function for the pair of types; ``kl_divergence(p, q)``
picks the most specific registered pair for ``type(p), type(q)`` (subclasses inherit their
parents' formulas) and raises NotImplementedError when there is none.

Example::

    >>> from gradient.distributions import Normal, kl_divergence
    >>> kl_divergence(Normal(0.0, 1.0), Normal(1.0, 1.0))
    tensor(0.5000)
"""

from __future__ import annotations

from ..ops import elementwise as _ew
from ..ops import reduce as _reduce
from ..ops.linalg_decompositions import solve_triangular
from ..ops.shape import broadcast_shapes
from .bernoulli import Bernoulli
from .beta import Beta
from .categorical import Categorical, OneHotCategorical
from .dirichlet import Dirichlet
from .exponential import Exponential
from .gamma import Gamma
from .independent import Independent
from .laplace import Laplace
from .multivariate_normal import MultivariateNormal, batch_mahalanobis, half_log_det
from .normal import Normal
from .poisson import Poisson
from .uniform import Uniform
from .utils import softplus, sum_rightmost
from ..errors import ArgumentTypeError, ArgumentValueError, UnsupportedError

__all__ = ["register_kl", "kl_divergence"]

_KL_REGISTRY: dict = {}


def register_kl(type_p, type_q):
    """Register the decorated ``fn(p, q)`` as ``KL(p || q)`` for instances of these types.

    Example::

        @register_kl(MyDist, Normal)
        def _kl_mine_normal(p, q): ...
    """
    if not (isinstance(type_p, type) and isinstance(type_q, type)):
        raise ArgumentTypeError(
            f"register_kl: expected two classes, got {type_p!r} and {type_q!r}")

    def decorator(fn):
        _KL_REGISTRY[type_p, type_q] = fn
        return fn
    return decorator


def _lookup(type_p, type_q):
    """The registered function whose pair of types is nearest to (type_p, type_q) in the MROs."""
    best, best_rank = None, None
    for (tp, tq), fn in _KL_REGISTRY.items():
        if issubclass(type_p, tp) and issubclass(type_q, tq):
            rank = (type_p.__mro__.index(tp), type_q.__mro__.index(tq))
            if best_rank is None or rank < best_rank:
                best, best_rank = fn, rank
    return best


def kl_divergence(p, q):
    """``KL(p || q) = E_p[log p(x) - log q(x)]``, per batch element, in closed form.

    Raises NotImplementedError for pairs without a registered formula.
    """
    fn = _lookup(type(p), type(q))
    if fn is None:
        raise UnsupportedError(f"kl_divergence: no formula registered for {type(p).__name__} and "
                               f"{type(q).__name__}; add one with @register_kl")
    return fn(p, q)


def _inf_where(condition, value):
    return _ew.where(condition, float("inf"), value)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale) ** 2
    t1 = ((p.loc - q.loc) / q.scale) ** 2
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    t1 = p.probs * (softplus(-q.logits) - softplus(-p.logits))
    t2 = (1 - p.probs) * (softplus(q.logits) - softplus(p.logits))
    return t1 + t2


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    # categories p never takes add nothing; ones q never takes (but p does) make it infinite
    t = _ew.where(p.probs == 0, 0.0, _inf_where(q.probs == 0, t))
    return _reduce.sum(t, -1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot_onehot(p, q):
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = ((q.high - q.low) / (p.high - p.low)).log()
    return _inf_where((q.low > p.low) | (q.high < p.high), result)


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    rate_ratio = q.rate / p.rate
    return rate_ratio - 1 - rate_ratio.log()


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    scale_ratio = p.scale / q.scale
    gap = (p.loc - q.loc).abs()
    return -scale_ratio.log() + gap / q.scale + scale_ratio * (-gap / p.scale).exp() - 1


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    pc, qc = p.concentration, q.concentration
    t1 = qc * (p.rate / q.rate).log()
    t2 = qc.lgamma() - pc.lgamma()
    t3 = (pc - qc) * pc.digamma()
    t4 = (q.rate - p.rate) * (pc / p.rate)
    return t1 + t2 + t3 + t4


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    pa, pb, qa, qb = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    p_sum, q_sum = pa + pb, qa + qb
    t1 = qa.lgamma() + qb.lgamma() + p_sum.lgamma()
    t2 = pa.lgamma() + pb.lgamma() + q_sum.lgamma()
    t3 = (pa - qa) * pa.digamma()
    t4 = (pb - qb) * pb.digamma()
    t5 = (q_sum - p_sum) * p_sum.digamma()
    return t1 - t2 + t3 + t4 + t5


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet_dirichlet(p, q):
    pc, qc = p.concentration, q.concentration
    p_sum, q_sum = _reduce.sum(pc, -1), _reduce.sum(qc, -1)
    t1 = p_sum.lgamma() - q_sum.lgamma()
    t2 = _reduce.sum(pc.lgamma() - qc.lgamma(), -1)
    t3 = pc - qc
    t4 = pc.digamma() - p_sum.digamma().unsqueeze(-1)
    return t1 - t2 + _reduce.sum(t3 * t4, -1)


@register_kl(Poisson, Poisson)
def _kl_poisson_poisson(p, q):
    return p.rate * (p.rate.log() - q.rate.log()) - (p.rate - q.rate)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise UnsupportedError("kl_divergence: Independent distributions reinterpreting different "
                               "numbers of batch dimensions")
    return sum_rightmost(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn_mvn(p, q):
    # KL = log(|Σq|/|Σp|)/2 + (tr(Σq⁻¹ Σp) + (μq-μp)ᵀ Σq⁻¹ (μq-μp) - n)/2, all from the Cholesky
    # factors: tr(Σq⁻¹ Σp) is the squared Frobenius norm of Lq⁻¹ Lp (also for the low-rank form)
    if tuple(p.event_shape) != tuple(q.event_shape):
        raise ArgumentValueError(f"kl_divergence: multivariate normals of different sizes "
                                 f"{tuple(p.event_shape)} and {tuple(q.event_shape)}")
    n = p.event_shape[0]
    Lp, Lq = p._unbroadcasted_scale_tril, q._unbroadcasted_scale_tril
    batch = broadcast_shapes(tuple(p.batch_shape), tuple(q.batch_shape))
    M = solve_triangular(Lq.expand(*batch, n, n), Lp.expand(*batch, n, n), upper=False)
    trace_term = _reduce.sum(M * M, (-2, -1))
    mahalanobis = batch_mahalanobis(Lq, q.loc - p.loc)
    return half_log_det(Lq) - half_log_det(Lp) + 0.5 * (trace_term + mahalanobis - n)
