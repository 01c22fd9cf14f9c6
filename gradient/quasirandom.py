"""``gradient.quasirandom``: low-discrepancy sequences, as ``torch.quasirandom``.

:class:`SobolEngine` draws Sobol' points, which fill the unit cube more evenly than random
ones (quasi-Monte Carlo integration, design of experiments, Bayesian optimization's candidate
sets). The sequence is SciPy's (``scipy.stats.qmc.Sobol``, Joe and Kuo's direction numbers):
unscrambled it is PyTorch's, point for point; scrambled, it is a randomized Sobol' sequence
as PyTorch's is, but from SciPy's scrambling, so not PyTorch's numbers.

Example::

    >>> engine = gradient.quasirandom.SobolEngine(dimension=2)
    >>> engine.draw(4)
    tensor([[0.0000, 0.0000],
            [0.5000, 0.5000],
            [0.7500, 0.2500],
            [0.2500, 0.7500]])
"""

from __future__ import annotations

import warnings

from .dtypes import as_dtype, get_default_dtype
from .ops.creation import default_generator, tensor
from .tensor import Tensor
from .errors import ArgumentValueError

__all__ = ["SobolEngine"]


class SobolEngine:
    """Draws from the Sobol' sequence of ``dimension`` (1 to 21,201) coordinates, as
    ``torch.quasirandom.SobolEngine``; ``scramble=True`` randomizes it, from ``seed`` (or, when
    None, from gradient's default generator, so ``gradient.manual_seed`` repeats it)."""

    MAXDIM = 21201

    def __init__(self, dimension: int, scramble: bool = False, seed: int | None = None):
        if not isinstance(dimension, int) or not 1 <= dimension <= self.MAXDIM:
            raise ArgumentValueError(
                f"SobolEngine: supported range for dimension is [1, {self.MAXDIM}], "
                f"got {dimension!r}")
        self.dimension, self.scramble, self.seed = dimension, scramble, seed
        if scramble and seed is None:
            seed = int(default_generator._state.integers(2 ** 63))
        from scipy.stats import qmc   # (imported here: SciPy's import is slow)
        self._sequence = qmc.Sobol(dimension, scramble=scramble, seed=seed)
        self.num_generated = 0

    def draw(self, n: int = 1, out: Tensor | None = None, dtype=None) -> Tensor:
        """The next ``n`` points, (n, dimension), in ``dtype`` (the default float dtype)."""
        with warnings.catch_warnings():
            # SciPy warns about n not a power of 2 (balance); PyTorch's draw does not
            warnings.simplefilter("ignore", UserWarning)
            points = self._sequence.random(n)
        self.num_generated += n
        result = tensor(points, dtype=as_dtype(dtype) if dtype is not None else get_default_dtype())
        if out is not None:
            out.resize_as_(result).copy_(result)
            return out
        return result

    def draw_base2(self, m: int, out: Tensor | None = None, dtype=None) -> Tensor:
        """The next ``2**m`` points; the points drawn before and these must number a power of
        2, or Sobol' balance is lost (an error, as in PyTorch)."""
        total = self.num_generated + 2 ** m
        if total & (total - 1):
            raise ArgumentValueError(
                f"The balance properties of Sobol' points require n to be a power "
                f"of 2. {self.num_generated} points have been previously generated, "
                f"then: n={self.num_generated}+2**{m}={total}. If you still want to "
                f"do this, please use 'SobolEngine.draw()' instead.")
        return self.draw(2 ** m, out, dtype)

    def reset(self) -> "SobolEngine":
        """Back to the first point (the same scrambling)."""
        self._sequence.reset()
        self.num_generated = 0
        return self

    def fast_forward(self, n: int) -> "SobolEngine":
        """Skip the next ``n`` points."""
        self._sequence.fast_forward(n)
        self.num_generated += n
        return self

    def __repr__(self) -> str:
        fields = [f"dimension={self.dimension}"]
        if self.scramble:
            fields.append("scramble=True")
        if self.seed is not None:
            fields.append(f"seed={self.seed}")
        return f"SobolEngine({', '.join(fields)})"
