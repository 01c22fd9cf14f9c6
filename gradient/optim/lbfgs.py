"""L-BFGS: a quasi-Newton method that builds a curvature estimate from recent steps, optionally
with a strong-Wolfe line search. Each ``step(closure)`` runs up to ``max_iter`` iterations."""

from ..autograd import no_grad
from ..ops.creation import zeros
from ..ops.shape import cat
from ..tensor import Tensor
from .optimizer import Optimizer, OptimizerError, check_unsupported, check_value


class LBFGS(Optimizer):
    """L-BFGS (Nocedal, 1980; Liu & Nocedal, 1989) as ``torch.optim.LBFGS``, after minFunc.

    ``step(closure)`` re-evaluates the loss through ``closure`` (which must zero the gradients,
    compute the loss, call ``backward()`` and return the loss) as often as it needs: once per
    iteration with a fixed step of ``lr``, or several times per iteration with
    ``line_search_fn="strong_wolfe"``. It stops after ``max_iter`` iterations or ``max_eval``
    evaluations (default ``max_iter * 5 // 4``), when the largest gradient entry is at most
    ``tolerance_grad``, or when the loss or the parameters change by less than
    ``tolerance_change``. It returns the loss from the first evaluation.

    The search direction is the two-loop recursion over the last ``history_size`` pairs of
    parameter steps ``s`` and gradient changes ``y`` (pairs with ``y.s <= 1e-10`` are skipped, as
    they would break the positive-definiteness of the estimate). The first iteration is a
    gradient step of length ``min(1, 1 / sum|g|) * lr``.

    All parameters are optimized as one flat vector, so there is one parameter group only. The
    state lives under the first parameter (as in torch, so state dicts look alike): ``func_evals``,
    ``n_iter``, and the history ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``,
    ``prev_flat_grad``, ``prev_loss``, ``al``. Unlike torch, an unknown ``line_search_fn`` is
    refused when the optimizer is built (torch refuses it at the first step).

    Example::

        opt = gradient.optim.LBFGS(model.parameters(), lr=1, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = gradient.nn.functional.mse_loss(model(x), y)
            loss.backward()
            return loss

        for _ in range(10):
            opt.step(closure)
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                        tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                        history_size=history_size, line_search_fn=line_search_fn)
        self._validate(defaults)        # (before max_iter is used: it may be no number)
        if max_eval is None:
            defaults["max_eval"] = max_iter * 5 // 4
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        check_unsupported(group)
        check_value("learning rate", group["lr"], group["lr"] >= 0, "lr >= 0")
        check_value("line_search_fn", repr(group["line_search_fn"]),
                    group["line_search_fn"] in (None, "strong_wolfe"), "None or 'strong_wolfe'")

    def add_param_group(self, param_group):
        if self.param_groups:
            raise OptimizerError("LBFGS doesn't support per-parameter options (parameter "
                                 "groups): it optimizes all parameters as one vector")
        super().add_param_group(param_group)

    # ------------------------------------------------------------------ the flat vector
    @property
    def _params(self):
        return self.param_groups[0]["params"]

    def _flat_grad(self) -> Tensor:
        """All gradients as one new vector (zeros for a parameter without a gradient)."""
        return cat([zeros(p.numel(), dtype=p.dtype, device=p.device) if p.grad is None
                    else p.grad.reshape(-1) for p in self._params])

    def _move(self, t, d: Tensor) -> None:
        """``params += t * d``, with ``d`` the flat direction."""
        offset = 0
        for p in self._params:
            n = p.numel()
            p.add_(d[offset:offset + n].view_as(p), alpha=float(t))
            offset += n

    def _loss_and_grad_at(self, closure, start, t, d):
        """The loss and flat gradient at ``start + t * d``; the parameters are left at ``start``."""
        self._move(t, d)
        loss = float(self._evaluate(closure))
        flat_grad = self._flat_grad()
        for p, x in zip(self._params, start):
            p.copy_(x)
        return loss, flat_grad

    # ------------------------------------------------------------------ the iterations
    def step(self, closure):
        """Run up to ``max_iter`` L-BFGS iterations; ``closure`` recomputes loss and gradients.

        Returns the loss of the first evaluation (before this step moved the parameters).
        """
        if closure is None:
            raise OptimizerError("LBFGS.step needs a closure that zeroes the gradients, computes "
                                 "the loss, calls loss.backward() and returns the loss")
        group = self.param_groups[0]
        lr, max_iter, max_eval = float(group["lr"]), group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size = group["history_size"]

        # the global state lives under the first parameter, as in torch
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        with no_grad():
            orig_loss = self._evaluate(closure)
            loss = float(orig_loss)
            evals = 1
            state["func_evals"] += 1
            flat_grad = self._flat_grad()
            if flat_grad.abs().max() <= tolerance_grad:
                return orig_loss  # already at a stationary point

            d, t = state.get("d"), state.get("t")
            old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
            H_diag = state.get("H_diag")
            prev_flat_grad, prev_loss = state.get("prev_flat_grad"), state.get("prev_loss")

            n_iter = 0
            while n_iter < max_iter:
                n_iter += 1
                state["n_iter"] += 1

                # ---- the search direction
                if state["n_iter"] == 1:
                    d = flat_grad.neg()
                    old_dirs, old_stps, ro = [], [], []
                    H_diag = 1
                else:
                    y = flat_grad.sub(prev_flat_grad)  # gradient change over the last step
                    s = d.mul(t)                       # the last step
                    ys = y.dot(s)
                    if ys > 1e-10:  # keep only pairs of positive curvature
                        if len(old_dirs) == history_size:
                            old_dirs.pop(0)
                            old_stps.pop(0)
                            ro.pop(0)
                        old_dirs.append(y)
                        old_stps.append(s)
                        ro.append(1.0 / ys)
                        H_diag = ys / y.dot(y)  # scale of the initial inverse Hessian
                    if "al" not in state:
                        state["al"] = [None] * history_size
                    d = _two_loop_direction(flat_grad, old_dirs, old_stps, ro, H_diag,
                                            state["al"])

                if prev_flat_grad is None:
                    prev_flat_grad = flat_grad.clone()
                else:
                    prev_flat_grad.copy_(flat_grad)
                prev_loss = loss

                # ---- the step length
                t = min(1.0, 1.0 / flat_grad.abs().sum()) * lr if state["n_iter"] == 1 else lr
                gtd = flat_grad.dot(d)  # directional derivative
                if gtd > -tolerance_change:
                    break  # not a descent direction (any more)

                used_evals = 0
                if group["line_search_fn"] == "strong_wolfe":
                    start = [p.clone() for p in self._params]
                    loss, flat_grad, t, used_evals = _strong_wolfe(
                        lambda step_t: self._loss_and_grad_at(closure, start, step_t, d),
                        t, d, loss, flat_grad, gtd, max_ls=max_eval - evals)
                    self._move(t, d)
                    opt_cond = flat_grad.abs().max() <= tolerance_grad
                else:
                    self._move(t, d)
                    opt_cond = False
                    if n_iter != max_iter:
                        # the last iteration skips the evaluation: with noisy (mini-batch)
                        # losses it would tell nothing the next step() does not
                        loss = float(self._evaluate(closure))
                        flat_grad = self._flat_grad()
                        opt_cond = flat_grad.abs().max() <= tolerance_grad
                        used_evals = 1
                evals += used_evals
                state["func_evals"] += used_evals

                # ---- stopping
                if n_iter == max_iter or evals >= max_eval or opt_cond:
                    break
                if d.mul(t).abs().max() <= tolerance_change:
                    break  # the parameters hardly move
                if abs(loss - prev_loss) < tolerance_change:
                    break  # the loss hardly moves

            state.update(d=d, t=t, old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=H_diag,
                         prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
        return orig_loss


def _two_loop_direction(flat_grad, old_dirs, old_stps, ro, H_diag, al):
    """``-H g`` for the L-BFGS inverse-Hessian estimate ``H`` (Nocedal & Wright, Alg. 7.4).

    ``old_dirs`` are the gradient changes y_i, ``old_stps`` the steps s_i, ``ro`` 1 / (y_i . s_i);
    ``al`` is scratch space for the first loop's coefficients (kept in the state, as in torch).
    """
    q = flat_grad.neg()
    for i in reversed(range(len(old_dirs))):
        al[i] = old_stps[i].dot(q) * ro[i]
        q.add_(old_dirs[i], alpha=-float(al[i]))
    r = q.mul(H_diag)
    for i in range(len(old_dirs)):
        be_i = old_dirs[i].dot(r) * ro[i]
        r.add_(old_stps[i], alpha=float(al[i] - be_i))
    return r


# ---------------------------------------------------------------------- strong-Wolfe line search
def _scalar_over(numerator: float, denominator):
    """``numerator / denominator``, rounded as torch rounds a Python number over a 0-d tensor
    (``reciprocal(denominator) * numerator``), so float32 line searches take torch's branches."""
    if isinstance(denominator, Tensor):
        return denominator.reciprocal() * numerator
    return numerator / denominator


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimizer of the cubic through (x1, f1) and (x2, f2) with slopes g1 and g2, clamped
    to ``bounds`` (default: between x1 and x2); their midpoint when the cubic has no minimum."""
    lo, hi = bounds if bounds is not None else ((x1, x2) if x1 <= x2 else (x2, x1))
    d1 = g1 + g2 - _scalar_over(3 * (f1 - f2), x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square < 0:
        return (lo + hi) / 2.0
    d2 = d2_square.sqrt()
    if x1 <= x2:
        min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(min_pos, lo), hi)


def _strong_wolfe(loss_and_grad_at, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9,
                  max_ls=25):
    """A step length ``t`` along ``d`` satisfying the strong Wolfe conditions (Nocedal & Wright,
    Alg. 3.5 and 3.6; minFunc's ``WolfeLineSearch``), starting from the trial step ``t``.

    Sufficient decrease: ``f(t) <= f + c1 * t * gtd``; curvature: ``|f'(t)| <= -c2 * gtd``.
    First the step grows (by cubic extrapolation) until an interval is known to contain such a
    point, then that interval shrinks (by cubic interpolation) until one is found, for at most
    ``max_ls`` evaluations in all. Returns ``(loss, flat_grad, t, evaluations)`` at the best point.
    """
    d_norm = d.abs().max()

    def trial(step):
        loss, grad = loss_and_grad_at(step)
        return [step, loss, grad, grad.dot(d)]  # point: t, f(t), gradient, slope along d

    start = [0, f, g.clone(), gtd]
    new = trial(t)
    evals, ls_iter, done = 1, 0, False
    prev = start

    # ---- bracketing: grow the step until [prev, new] holds an acceptable point
    bracket = None
    while ls_iter < max_ls:
        step, f_new, _, gtd_new = new
        if f_new > f + c1 * step * gtd or (ls_iter > 1 and f_new >= prev[1]):
            bracket = [prev, new]  # too far: the loss went up
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, done = [new], True  # both conditions hold here
            break
        if gtd_new >= 0:
            bracket = [prev, new]  # the slope turned: a minimum lies in between
            break
        # still descending steeply: extrapolate, at least 1% further and at most 10x
        next_step = _cubic_interpolate(prev[0], prev[1], prev[3], step, f_new, gtd_new,
                                       bounds=(step + 0.01 * (step - prev[0]), step * 10))
        prev = new
        new = trial(next_step)
        evals += 1
        ls_iter += 1
    if bracket is None:  # out of evaluations while extrapolating
        bracket = [start, new]

    # ---- zoom: shrink the bracket around an acceptable point
    low, high = (0, 1) if bracket[0][1] <= bracket[-1][1] else (1, 0)
    insufficient_progress = False
    while not done and ls_iter < max_ls:
        a, b = bracket[0][0], bracket[1][0]
        if abs(b - a) * d_norm < tolerance_change:
            break  # the bracket is too small to matter
        step = _cubic_interpolate(a, bracket[0][1], bracket[0][3], b, bracket[1][1],
                                  bracket[1][3])
        # a trial next to an end of the bracket shrinks it little: the second time in a row
        # (or when it falls outside), move it a tenth of the bracket's length inside instead
        lo, hi = min(a, b), max(a, b)
        margin = 0.1 * (hi - lo)
        if min(hi - step, step - lo) < margin:
            if insufficient_progress or step >= hi or step <= lo:
                step = hi - margin if abs(step - hi) < abs(step - lo) else lo + margin
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False

        new = trial(step)
        evals += 1
        ls_iter += 1
        _, f_new, _, gtd_new = new
        if f_new > f + c1 * step * gtd or f_new >= bracket[low][1]:
            bracket[high] = new  # not better than the low end: it becomes the high end
            low, high = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high][0] - bracket[low][0]) >= 0:
                bracket[high] = bracket[low]  # keep the minimum between the two ends
            bracket[low] = new

    step, loss, grad, _ = bracket[low]
    return loss, grad, step, evals
