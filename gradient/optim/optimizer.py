"""The Optimizer base class: parameter groups, per-parameter state, and state dicts.

An optimizer holds ``param_groups`` (a list of dicts: ``{'params': [tensors], 'lr': ..., ...}``,
each group with its own hyper-parameters) and ``state`` (a dict from parameter to that parameter's
buffers, e.g. Adam's ``exp_avg``). Subclasses implement :meth:`Optimizer.step`; everything else
(groups, ``zero_grad``, saving and loading) lives here and follows ``torch.optim.Optimizer``, so
state dicts have PyTorch's layout::

    {'state': {0: {'step': tensor(3.), 'exp_avg': ..., ...}, 1: {...}},
     'param_groups': [{'lr': 0.001, 'betas': (0.9, 0.999), ..., 'params': [0, 1]}]}

Parameters are numbered in the order they appear across the groups, which is what makes a saved
state loadable into a fresh optimizer built the same way.

Differences from PyTorch (deliberate):

- a parameter listed twice in one group is an error (PyTorch warns, and says it will become one),
  and so is a set of parameters given directly (PyTorch refuses sets only inside group dicts);
- ``load_state_dict`` copies the state tensors it is given (PyTorch may alias them when dtype
  and device already match, so two optimizers loaded from one dict would share buffers);
- learning rates and other hyper-parameters are Python numbers (no tensor ``lr``), and
  ``capturable``/``differentiable`` are accepted only as False; ``foreach`` and ``fused`` are
  accepted (so scripts that pass ``fused=True`` run) and have no effect: there is one
  implementation;
- no step/state-dict hooks.
"""

import functools
import inspect
import numbers
from collections import defaultdict
from copy import deepcopy
from itertools import chain

import numpy as np

from .. import kernels
from ..autograd import enable_grad
from ..dtypes import float32, float64, get_default_dtype
from ..errors import GradientError, UnsupportedError
from ..nn.utils.grad import zero_grad_
from ..tensor import Tensor


class OptimizerError(GradientError, ValueError):
    """A bad hyper-parameter, a bad parameter list, or a state dict that does not fit."""


class OptimizerTypeError(GradientError, TypeError):
    """Something of the wrong kind where the optimizer needs a tensor, a group dict or a
    number."""


_SET_MESSAGE = ("optimizer parameters need to be organized in ordered collections, but the ordering "
                "of tensors in sets will change between runs. Please use a list instead.")


class _RequiredParameter:
    """Marks a hyper-parameter that has no default: every group must give it."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base class of all optimizers.

    ``params`` is an iterable of tensors, of ``(name, tensor)`` pairs (as from
    ``model.named_parameters()``), or of dicts that each define a parameter group
    (``{'params': [...], 'lr': 0.1}``); ``defaults`` holds the hyper-parameters a group
    gets when it does not set them itself.

    Example::

        opt = gradient.optim.SGD([{'params': model.body.parameters()},
                                  {'params': model.head.parameters(), 'lr': 1e-2}],
                                 lr=1e-3, momentum=0.9)
        loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise OptimizerTypeError(
                f"params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got a single {type(params).__name__}; pass [tensor] or model.parameters()")
        if isinstance(params, (set, frozenset)):
            raise OptimizerTypeError(_SET_MESSAGE)
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        groups = list(params)
        if len(groups) == 0:
            raise OptimizerError("optimizer got an empty parameter list (did the model have no "
                                 "parameters, or was a generator of parameters used up already?)")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # Schedulers warn when they are stepped before the optimizer ever was (the PyTorch 1.1
    # ordering mistake that skips the first learning rate); every step() records that it ran.
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_records_call", False):
            @functools.wraps(step)
            def recorded_step(self, *args, **kw):
                self._opt_called = True
                return step(self, *args, **kw)
            recorded_step._records_call = True
            cls.step = recorded_step

    # ------------------------------------------------------------------ groups
    def _validate(self, group: dict) -> None:
        """Check the hyper-parameters of ``group`` (the defaults, or a group being added):
        numbers where the optimizer's signature has numbers (:func:`check_number_types`),
        then the subclass's own checks of their values."""
        check_number_types(type(self), group)
        self._check_hyperparameters(group)

    def _check_hyperparameters(self, group: dict) -> None:
        """Raise OptimizerError for a bad value in ``group`` (subclasses check their own)."""

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyper-parameters (e.g. unfrozen layers).

        Missing hyper-parameters are taken from the optimizer's defaults. Example:
        ``opt.add_param_group({'params': head.parameters(), 'lr': 1e-4})``.
        """
        if not isinstance(param_group, dict):
            raise OptimizerTypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise OptimizerError("param_group has no 'params' entry: expected "
                                 "{'params': [tensors], ...options}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise OptimizerTypeError(_SET_MESSAGE)
        params = list(params)

        # (name, tensor) pairs from named_parameters(): keep the names for state dicts
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names and len(names) != len(params):
            raise OptimizerError("all optimizer params should be with/without names. Some param "
                                 "names are missing")
        param_group["params"] = params
        if names:
            param_group["param_names"] = names

        for p in params:
            if not isinstance(p, Tensor):
                raise OptimizerTypeError(f"optimizer can only optimize Tensors, but one of the params "
                                         f"is {type(p).__name__}")
            if not (p.is_leaf or p.retains_grad):
                raise OptimizerError("can't optimize a non-leaf Tensor (it is the result of an "
                                     "operation); optimize the leaf it was computed from, or a "
                                     "detached copy: t.detach().requires_grad_()")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise OptimizerError(f"parameter group didn't specify a value of required "
                                     f"optimization parameter {name}")
            param_group.setdefault(name, default)
        self._validate(param_group)

        ids = {id(p) for p in params}
        if len(ids) != len(params):
            raise OptimizerError("optimizer contains a parameter group with duplicate parameters; "
                                 "each parameter must appear once (it would be updated twice per "
                                 "step)")
        for group in self.param_groups:
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise OptimizerError("all optimizer param groups should be with/without names. "
                                     f"cannot add param group {which} to the optimizer")
            if any(id(p) in ids for p in group["params"]):
                raise OptimizerError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``.grad = None`` (the default), or fill them with zeros."""
        zero_grad_((p for group in self.param_groups for p in group["params"]), set_to_none)

    def step(self, closure=None):
        """Update the parameters from their ``.grad`` once; ``closure`` re-evaluates the loss
        (run with gradients enabled) and its result is returned."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step()")

    # whether step() takes the sparse gradients of nn.Embedding(sparse=True) (SGD, Adagrad
    # and SparseAdam do, as in PyTorch); the others refuse them with a clear error
    takes_sparse_grads = False

    def _params_with_grad(self):
        """``(group, param)`` for every parameter that has a gradient, group by group, in order:
        what a step updates (parameters without one are skipped, as in PyTorch)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if p.grad.is_sparse and not self.takes_sparse_grads:
                        raise OptimizerError(
                            f"{type(self).__name__} does not support sparse gradients (those of "
                            f"an nn.Embedding made with sparse=True); use optim.SparseAdam, SGD "
                            f"or Adagrad for those parameters, or sparse=False")
                    yield group, p

    @staticmethod
    def _evaluate(closure):
        """The loss from ``closure`` (with grad enabled, as the closure calls backward), or None."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ------------------------------------------------------------------ saving and loading
    def state_dict(self) -> dict:
        """The optimizer's state in PyTorch's layout: ``{'state': {index: {...}},
        'param_groups': [{..., 'params': [indices]}]}``.

        Parameters are replaced by their index in the order of the groups; the state tensors are
        the optimizer's own (not copies), as in PyTorch: save them before stepping again.
        """
        index: dict[int, int] = {}
        param_groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            param_groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore state and hyper-parameters saved by :meth:`state_dict`.

        The optimizer must have been built with the same groups of the same sizes. State tensors
        are copied onto each parameter's device, and cast to its dtype (except ``step``).
        """
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict \
                or "state" not in state_dict:
            raise OptimizerError("load_state_dict: expected a dict with 'state' and 'param_groups' "
                                 "entries, as made by Optimizer.state_dict()")
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise OptimizerError(
                f"loaded state dict has a different number of parameter groups: it has "
                f"{len(saved_groups)}, this optimizer has {len(groups)}; build the optimizer with "
                f"the same parameter groups as the one that was saved")
        for i, (group, saved) in enumerate(zip(groups, saved_groups)):
            if len(group["params"]) != len(saved["params"]):
                raise OptimizerError(
                    f"loaded state dict contains a parameter group that doesn't match the size of "
                    f"optimizer's group: group {i} has {len(saved['params'])} parameters in the "
                    f"state dict and {len(group['params'])} in this optimizer")

        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = _cast_state(param, v)
            else:
                state[k] = v
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
        self.state = state
        self.param_groups = saved_groups

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"


def _cast_state(param: Tensor, value, key=None):
    """A copy of saved state ``value`` for ``param``: tensors moved to its device (and cast to its
    floating dtype, except the ``step`` counter), containers copied recursively."""
    if isinstance(value, Tensor):
        if key == "step":
            return value.clone()
        if param.is_floating_point():
            return value.to(dtype=param.dtype, device=param.device).clone()
        return value.to(device=param.device).clone()
    if isinstance(value, dict):
        return {k: _cast_state(param, v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(param, v) for v in value)
    return value


# ---------------------------------------------------------------------- helpers for subclasses
def sparse_rows(p: Tensor, grad):
    """A sparse gradient of ``p`` (an embedding table's: one sparse dimension, its rows) as
    ``(rows, values)``: ``grad`` coalesced (each row once, repeats added up), the rows present
    and their values, for updates of those rows only (``p.index_add_(0, rows, ...)``)."""
    if grad.sparse_dim() != 1:
        raise OptimizerError(f"sparse gradients over their first dimension (an embedding "
                             f"table's rows) are supported; this one has {grad.sparse_dim()} "
                             f"sparse dimensions: use its .to_dense()")
    grad = grad.coalesce()
    return grad.indices()[0], grad.values()


def step_counter() -> Tensor:
    """A fresh per-parameter ``step`` count: a 0-d CPU float tensor, as in PyTorch (float64 when
    the default dtype is float64, float32 otherwise), so state dicts compare with torch's."""
    from ..ops.creation import tensor
    return tensor(0.0, dtype=float64 if get_default_dtype() is float64 else float32)


def advance_step(step_t: Tensor) -> float:
    """Add 1 to a :func:`step_counter` in place and return the new count as a Python float.

    Every parameter's update starts with it, so it skips what ``step_t.add_(1)`` does for any
    tensor (type promotion, dispatch, the autograd checks) and writes the 0-d array directly,
    bumping the version counter as an in-place op does.
    """
    data = step_t._data
    if not isinstance(data, np.ndarray) or step_t.requires_grad:   # not the CPU counter: the op
        step_t.add_(1)
        return step_t.item()
    data += 1
    step_t._version.bump("add_")
    return float(data)


@functools.cache
def _number_options(optimizer_class) -> dict:
    """The options of an optimizer class whose defaults are numbers (``lr``, ``eps`` ...:
    ``"number"``) or tuples of numbers (``betas``: ``"numbers"``), by name."""
    kinds = {}
    for name, parameter in inspect.signature(optimizer_class.__init__).parameters.items():
        default = parameter.default
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            kinds[name] = "number"
        elif isinstance(default, tuple) and default and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in default):
            kinds[name] = "numbers"
    return kinds


def as_tuple(values):
    """A list of hyper-parameters (``betas=[0.9, 0.99]``) as a tuple, as the groups keep
    them; anything else as it is, for :func:`check_number_types` to name."""
    return tuple(values) if isinstance(values, list) else values


def _is_number(value) -> bool:
    """A real number, or a tensor (PyTorch takes a tensor ``lr`` or betas; one of several
    elements is refused by the value checks, as PyTorch's ValueError)."""
    return isinstance(value, (numbers.Real, Tensor))


def check_number_types(optimizer_class, group: dict) -> None:
    """An :class:`OptimizerTypeError` naming the option where ``group`` holds no number for
    an option whose default is one (``SGD(params, lr="0.1")``, ``lr=None``: Python's "'>='
    not supported between instances of 'str' and 'int'" before), or no sequence of numbers
    for a tuple of them (``betas``).

    Example: ``check_number_types(SGD, {"lr": 0.1, "momentum": 0.9})``
    """
    for name, kind in _number_options(optimizer_class).items():
        if name not in group:
            continue
        value = group[name]
        if kind == "number":
            ok = _is_number(value)
        else:
            ok = isinstance(value, (tuple, list)) and all(_is_number(v) for v in value)
        if not ok:
            what = "a number" if kind == "number" else "a tuple of numbers"
            raise OptimizerTypeError(f"{optimizer_class.__name__}: {name} must be {what}, "
                                     f"got {type(value).__name__} {value!r}")


def check_value(name: str, value, ok: bool, expected: str) -> None:
    """Raise PyTorch's ``Invalid <name>: <value>`` error, saying what was expected."""
    if not ok:
        raise OptimizerError(f"Invalid {name}: {value} (expected {expected})")


def check_unsupported(group: dict) -> None:
    """Refuse the PyTorch options whose semantics gradient does not implement."""
    for option in ("capturable", "differentiable"):
        if group.get(option):
            raise UnsupportedError(f"{option}=True is not supported by gradient's optimizers; "
                                   f"leave it False")
    lr = group.get("lr")
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise OptimizerError(f"Tensor lr must be 1-element, got shape {tuple(lr.shape)}")


def check_adam_hyperparameters(group: dict) -> None:
    """The checks of Adam and its variants (lr, eps, betas, weight_decay), PyTorch's messages."""
    check_unsupported(group)
    lr, eps, betas, wd = group["lr"], group["eps"], group["betas"], group["weight_decay"]
    check_value("learning rate", lr, lr >= 0, "lr >= 0")
    check_value("epsilon value", eps, eps >= 0, "eps >= 0")
    check_value("betas", betas, isinstance(betas, (tuple, list)) and len(betas) == 2,
                "a pair (beta1, beta2)")
    check_value("beta parameter at index 0", betas[0], 0 <= betas[0] < 1, "0 <= beta1 < 1")
    check_value("beta parameter at index 1", betas[1], 0 <= betas[1] < 1, "0 <= beta2 < 1")
    check_value("weight_decay value", wd, wd >= 0, "weight_decay >= 0")


def fused_step(op: str, p, grad, *state, **hyper) -> bool:
    """Update ``p`` and its ``state`` tensors (None where a variant has none) in place from
    ``grad`` with the backend's fused kernel ``op`` (keyword arguments: its hyperparameters),
    the same operations in the same order as the optimizer's composition (the same bits):
    True when it ran, the versions of what it wrote bumped; False where the backend has no
    such kernel, it declines the arrays, or ``grad`` is on another device than ``p`` (the
    composition then raises, as PyTorch does)."""
    if grad._backend is not p._backend:
        return False
    if not kernels.call(op, p._backend, p._data, grad._data,
                        *(None if t is None else t._data for t in state), **hyper):
        return False
    for t in (p, *state):
        if t is not None:
            t._version.bump(op)
    return True
