"""The differentiation transforms of ``gradient.func``: grad, grad_and_value, vjp, jvp, jacrev,
jacfwd, hessian.

How they nest without functorch's "levels": each call of a transformed function
(:class:`_Call`) gives ``func`` fresh inputs. An input that already carries a graph (it
requires grad: an outer transform, or the user's own autograd, differentiates through it) is
passed as a view of itself, so the result stays connected to that outer graph; any other input
becomes a new leaf that requires grad. The backward pass records its own graph
(``create_graph=True``) only when grad mode is on and something outside this call can be
reached from the output, and each result is handed back detached unless its graph reaches
something outside this call (a walk over the graph, :func:`_reaches_outside`). So
``grad(grad(f))(x)`` and ``jacrev(grad(f))(x)`` compose, ``grad(f)(x)`` on a plain tensor returns a
plain tensor, and a model parameter captured by ``f`` stays differentiable, as in PyTorch.

The Jacobians reuse :func:`gradient.autograd.functional.jacobian` and ``jvp`` reuses
:func:`gradient.autograd.functional.jvp` (the double-backward trick): gradient has no
forward-mode AD, so ``jacfwd`` and ``jvp`` are computed in reverse mode; they give the same values.
"""

from __future__ import annotations

import functools

from ..autograd import functional as _functional
from ..autograd import grad_mode
from ..autograd.function import AccumulateGrad
from ..errors import ArgumentValueError, AutogradError
from ..tensor import Tensor
from ._pytree import tree_flatten, tree_unflatten

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "linearize", "jacrev", "jacfwd", "hessian"]


# ---------------------------------------------------------------------------- helpers
def _reaches_outside(tensor, own_leaves: set) -> bool:
    """Whether ``tensor``'s graph reaches a leaf other than the ones in ``own_leaves`` (ids),
    i.e. whether it depends on something an outer transform or the caller differentiates."""
    if not tensor.requires_grad:
        return False
    if tensor.grad_fn is None:
        return id(tensor) not in own_leaves
    seen = set()
    stack = [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, AccumulateGrad):
            if id(node.tensor) not in own_leaves:
                return True
            continue
        stack.extend(edge[0] for edge in node.next_edges if edge is not None)
    return False


class _Call:
    """One call of a transformed function: its fresh inputs, and the rule for its results."""

    def __init__(self, leaves, fn_name: str):
        self.inputs = []
        for t in leaves:
            if not isinstance(t, Tensor):
                raise ArgumentValueError(
                    f"{fn_name}: the inputs to differentiate with respect to must be "
                    f"Tensors, got {type(t)}. Pass the non-Tensor arguments through "
                    "positions not named in argnums.")
            if not t.is_floating_point():
                raise AutogradError(f"{fn_name}: only Tensors of floating point dtype can be "
                                    f"differentiated, got {t.dtype}. Convert it with .float().")
            if t.requires_grad:
                self.inputs.append(t.view_as(t))     # stays connected to the outer graph
            else:
                self.inputs.append(t.detach().requires_grad_(True))
        self.own = {id(t) for t in self.inputs if t.grad_fn is None}
        self.grad_enabled = grad_mode.is_grad_enabled()

    def needs_graph(self, tensors) -> bool:
        """``create_graph`` for a backward from ``tensors``: only when an outer graph can use it."""
        return self.grad_enabled and any(isinstance(t, Tensor) and _reaches_outside(t, self.own)
                                         for t in tensors)

    def finish(self, tree):
        """``tree`` with each tensor detached unless it depends on something outside the call."""
        leaves, spec = tree_flatten(tree)
        out = [t.detach() if isinstance(t, Tensor) and not (self.grad_enabled
                                                            and _reaches_outside(t, self.own))
               else t for t in leaves]
        return tree_unflatten(out, spec)


def _check_argnums(argnums, num_args: int, fn_name: str):
    """``argnums`` as a tuple of non-negative positions, with PyTorch's errors."""
    if isinstance(argnums, bool) or not isinstance(argnums, (int, tuple)):
        raise AutogradError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)}")
    nums = (argnums,) if isinstance(argnums, int) else argnums
    if not nums:
        raise AutogradError("argnums must be non-empty")
    for a in nums:
        if isinstance(a, bool) or not isinstance(a, int):
            raise AutogradError(f"argnums must be int or Tuple[int, ...], got: {type(argnums)} "
                                f"holding {type(a)}")
        if not -num_args <= a < num_args:
            raise AutogradError(f"{fn_name}: Got argnum={a}, but only {num_args} positional inputs")
    normalized = tuple(a % num_args for a in nums)
    if len(set(normalized)) != len(normalized):
        raise AutogradError(f"argnums elements must be unique, got {argnums}")
    return normalized


def _select_args(args, argnums, fn_name: str):
    """``(leaves, rebuild)``: the tensors of the differentiated arguments, flat, and a function
    that puts replacements for them back into a copy of ``args``; plus the structure of the
    result (one argument's tree for an int argnums, a tuple of them otherwise)."""
    nums = _check_argnums(argnums, len(args), fn_name)
    chosen = tuple(args[i] for i in nums)
    leaves, spec = tree_flatten(chosen if not isinstance(argnums, int) else chosen[0])

    def rebuild(new_leaves):
        new = tree_unflatten(new_leaves, spec)
        new = (new,) if isinstance(argnums, int) else new
        out = list(args)
        for i, value in zip(nums, new):
            out[i] = value
        return tuple(out)

    return leaves, spec, rebuild


def _split_aux(output, has_aux: bool, fn_name: str):
    if not has_aux:
        return output, None
    if not (isinstance(output, tuple) and len(output) == 2):
        raise AutogradError(f"{fn_name}: output of function f should be a tuple: (output, aux) if "
                            "has_aux is True")
    return output


def _check_tensor_leaves(leaves, fn_name: str, what: str) -> None:
    for t in leaves:
        if not isinstance(t, Tensor):
            raise AutogradError(f"{fn_name}: expected f(*primals) to return only tensors, got "
                                f"unsupported type {type(t)}{what}")


# ---------------------------------------------------------------------------- vjp, grad
def vjp(func, *primals, has_aux: bool = False):
    """Run ``func(*primals)`` and return ``(output, vjp_fn)`` (``(output, vjp_fn, aux)`` with
    ``has_aux``), as ``torch.func.vjp``.

    ``vjp_fn(cotangents)`` takes a pytree of tensors shaped as ``output`` and returns a tuple
    with one entry per primal (each shaped as that primal's pytree): the vector-Jacobian
    products. It may be called several times. Primals and outputs may be pytrees (tuples,
    lists, dicts) of floating-point tensors.

    Example::

        >>> x = gradient.tensor([1.0, 2.0])
        >>> out, vjp_fn = vjp(lambda t: t ** 2, x)
        >>> vjp_fn(gradient.ones(2))
        (tensor([2., 4.]),)
    """
    leaves, spec = tree_flatten(primals)
    call = _Call(leaves, "vjp(f, *primals)")
    with grad_mode.enable_grad():
        output = func(*tree_unflatten(call.inputs, spec))
    output, aux = _split_aux(output, has_aux, "vjp(f, *primals)")
    out_leaves, out_spec = tree_flatten(output)
    _check_tensor_leaves(out_leaves, "vjp(f, *primals)", "")

    def vjp_fn(cotangents, retain_graph: bool = True, create_graph=None):
        ct_leaves, ct_spec = tree_flatten(cotangents)
        if ct_spec != out_spec:
            raise AutogradError("Expected pytree structure of cotangents to be the same as pytree "
                                f"structure of outputs to the function. cotangents: {ct_spec!r}, "
                                f"primal output: {out_spec!r}")
        for i, (c, o) in enumerate(zip(ct_leaves, out_leaves)):
            if not isinstance(c, Tensor):
                raise AutogradError(f"vjp_fn: cotangents must be Tensors, got {type(c)} at leaf {i}")
            if tuple(c.shape) != tuple(o.shape):
                raise AutogradError(f"Mismatch in shape: grad_output[{i}] has a shape of {c.shape} and "
                                    f"output[{i}] has a shape of {o.shape}.")
        if create_graph is None:
            create_graph = call.needs_graph(out_leaves) or (
                grad_mode.is_grad_enabled() and any(c.requires_grad for c in ct_leaves))
        grads = _functional._grad(tuple(out_leaves), tuple(call.inputs), tuple(ct_leaves),
                                  create_graph=create_graph, retain_graph=retain_graph)
        grads = _functional._zeros_where_missing(grads, call.inputs, False, create_graph, "back")
        return call.finish(tree_unflatten(list(grads), spec))

    output = call.finish(output)
    if has_aux:
        return output, vjp_fn, call.finish(aux)
    return output, vjp_fn


def grad_and_value(func, argnums=0, has_aux: bool = False):
    """Like :func:`grad`, but the transformed function returns ``(gradient, value)`` (with
    ``has_aux``: ``(gradient, (value, aux))``), as ``torch.func.grad_and_value``.

    Example::

        >>> g, v = grad_and_value(lambda x: (x ** 2).sum())(gradient.tensor([1.0, 3.0]))
        >>> g, v
        (tensor([2., 6.]), tensor(10.))
    """
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        name = "grad_and_value(f)(*args)"
        leaves, spec, rebuild = _select_args(args, argnums, name)
        call = _Call(leaves, name)
        with grad_mode.enable_grad():
            output = func(*rebuild(call.inputs), **kwargs)
        output, aux = _split_aux(output, has_aux, name)
        if not isinstance(output, Tensor):
            raise AutogradError(f"{name}: Expected f(*args) to return a Tensor, got {type(output)}")
        if output.dim() != 0:
            raise AutogradError(f"{name}: Expected f(*args) to return a scalar Tensor, got tensor "
                                f"with {output.dim()} dims. Maybe you wanted to use the vjp or "
                                "jacrev APIs instead?")
        create_graph = call.needs_graph([output])
        grads = _functional._grad((output,), tuple(call.inputs), create_graph=create_graph)
        grads = _functional._zeros_where_missing(grads, call.inputs, False, create_graph, "back")
        gradient = call.finish(tree_unflatten(list(grads), spec))
        value = call.finish(output)
        if has_aux:
            return gradient, (value, call.finish(aux))
        return gradient, value

    return wrapper


def grad(func, argnums=0, has_aux: bool = False):
    """The gradient of a scalar function, as ``torch.func.grad``: ``grad(f)(*args)`` is
    d f(*args) / d args[argnums].

    ``argnums`` is an int (the result has that argument's structure: a tensor, or a pytree of
    tensors) or a tuple of ints (a tuple of such). ``f`` must return a 0-d tensor, or
    ``(value, aux)`` with ``has_aux=True`` (then the result is ``(gradient, aux)``). Transforms
    compose: ``grad(grad(f))``, ``jacrev(grad(f))``, ``vmap(grad(f))`` for per-sample gradients.

    Example::

        >>> f = lambda x: (x ** 3).sum()
        >>> grad(f)(gradient.tensor([1.0, 2.0]))           # 3x^2
        tensor([ 3., 12.])
        >>> grad(lambda x: grad(f)(x).sum())(gradient.tensor([1.0, 2.0]))   # 6x
        tensor([ 6., 12.])
    """
    inner = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        gradient, value = inner(*args, **kwargs)
        if has_aux:
            return gradient, value[1]
        return gradient

    return wrapper


# ---------------------------------------------------------------------------- jvp, jacobians
def jvp(func, primals, tangents, *, strict: bool = False, has_aux: bool = False):
    """``(func(*primals), J @ tangents)`` (with ``has_aux``: ``(output, jvp_out, aux)``), as
    ``torch.func.jvp``. ``primals`` and ``tangents`` are tuples of the same pytree structure.

    Differs from PyTorch: computed in reverse mode by the double-backward trick
    (:func:`gradient.autograd.functional.jvp`), two backward passes, since gradient has no
    forward-mode AD; the values are the same. ``strict`` is accepted and ignored.

    Example::

        >>> x = gradient.tensor([1.0, 2.0])
        >>> jvp(lambda t: t ** 2, (x,), (gradient.tensor([1.0, 0.0]),))
        (tensor([1., 4.]), tensor([2., 0.]))
    """
    name = "jvp(f, primals, tangents)"
    if not isinstance(primals, tuple):
        raise AutogradError(f"{name}: Expected primals to be a tuple. E.g. it should be valid to "
                            "call f(*primals).")
    if not isinstance(tangents, tuple):
        raise AutogradError(f"{name}: Expected tangents to be a tuple. E.g. it should be valid to "
                            "call f(*primals) and tangents to be shaped as primals.")
    leaves, spec = tree_flatten(primals)
    t_leaves, t_spec = tree_flatten(tangents)
    if t_spec != spec:
        raise AutogradError(f"{name}: Expected primals and tangents to have the same python "
                            f"structure. For example, if primals is a tuple of 3 tensors, tangents "
                            f"also must be. Got primals with structure {spec!r} and tangents with "
                            f"structure {t_spec!r}")
    for p, t in zip(leaves, t_leaves):
        if not isinstance(t, Tensor) or tuple(t.shape) != tuple(p.shape):
            raise AutogradError(f"{name}: Expected primals and tangents to have the same shape, got a "
                                f"primal of shape {tuple(p.shape)} and a tangent of "
                                f"{tuple(t.shape) if isinstance(t, Tensor) else type(t)}")
    call = _Call(leaves, name)
    box = {}

    def flat_func(*flat_inputs):
        output = func(*tree_unflatten(list(flat_inputs), spec))
        output, box["aux"] = _split_aux(output, has_aux, name)
        out_leaves, box["spec"] = tree_flatten(output)
        _check_tensor_leaves(out_leaves, name, "")
        return tuple(out_leaves)

    create_graph = call.grad_enabled
    output, tangent_out = _functional.jvp(flat_func, tuple(call.inputs), tuple(t_leaves),
                                          create_graph=create_graph)
    output = call.finish(tree_unflatten(list(output), box["spec"]))
    tangent_out = call.finish(tree_unflatten(list(tangent_out), box["spec"]))
    if has_aux:
        return output, tangent_out, call.finish(box["aux"])
    return output, tangent_out


def _check_chunk_size(chunk_size) -> None:
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ArgumentValueError(
            f"jacrev: `chunk_size` should be greater than 0, got {chunk_size}")


def jacrev(func, argnums=0, *, has_aux: bool = False, chunk_size=None, _preallocate_and_copy=False):
    """The Jacobian of ``func`` with respect to ``args[argnums]``, by reverse mode, as
    ``torch.func.jacrev``.

    The result has the output's pytree structure; at each output tensor ``o`` sits the
    structure of the differentiated argument(s) (a tuple of them for a tuple ``argnums``), each
    entry of shape ``o.shape + input.shape``. With ``has_aux`` the result is ``(jacobian,
    aux)``. One backward pass per output element, through
    :func:`gradient.autograd.functional.jacobian`; ``chunk_size`` is accepted and ignored.

    Example::

        >>> jacrev(lambda x: x ** 2)(gradient.tensor([1.0, 2.0]))
        tensor([[2., 0.],
                [0., 4.]])
    """
    _check_chunk_size(chunk_size)
    return _jacobian_transform(func, argnums, has_aux, "jacrev")


def jacfwd(func, argnums=0, has_aux: bool = False, *, randomness: str = "error"):
    """The Jacobian of ``func`` with respect to ``args[argnums]``, as ``torch.func.jacfwd``:
    same arguments and result structure as :func:`jacrev`.

    Differs from PyTorch: gradient has no forward-mode AD, so this is computed in reverse mode
    exactly as :func:`jacrev` (one backward pass per output element, rather than one forward
    pass per input element); values are the same. ``randomness`` is checked and otherwise
    ignored (no vmap batching is involved).

    Example::

        >>> jacfwd(lambda x: x.sin().sum())(gradient.zeros(2))
        tensor([1., 1.])
    """
    if randomness not in ("error", "different", "same"):
        raise AutogradError("Only allowed values for randomness are 'error', 'different', or "
                            f"'same'. Got {randomness}")
    return _jacobian_transform(func, argnums, has_aux, "jacfwd")


def _jacobian_transform(func, argnums, has_aux: bool, fn_name: str):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        name = f"{fn_name}(f, argnums=...)(*args)"
        leaves, in_spec, rebuild = _select_args(args, argnums, name)
        call = _Call(leaves, name)
        box = {}

        def flat_func(*flat_inputs):
            output = func(*rebuild(list(flat_inputs)), **kwargs)
            output, box["aux"] = _split_aux(output, has_aux, name)
            out_leaves, box["spec"] = tree_flatten(output)
            _check_tensor_leaves(out_leaves, name, "")
            if not out_leaves:
                raise AutogradError(f"{name}: f returned no tensors; there is nothing to differentiate")
            return tuple(out_leaves)

        # jac[i][j]: d output leaf i / d input leaf j, shaped output.shape + input.shape
        jac = _functional.jacobian(flat_func, tuple(call.inputs), create_graph=call.grad_enabled)
        per_output = [tree_unflatten(list(row), in_spec) for row in jac]
        result = call.finish(tree_unflatten(per_output, box["spec"]))
        if has_aux:
            return result, call.finish(box["aux"])
        return result

    return wrapper


def hessian(func, argnums=0):
    """The Hessian of a scalar function with respect to ``args[argnums]``, as
    ``torch.func.hessian``: the Jacobian of its gradient, ``jacfwd(jacrev(func, argnums),
    argnums)`` (both in reverse mode here). For one tensor argument of shape S the result has
    shape S + S.

    Example::

        >>> hessian(lambda x: (x ** 3).sum())(gradient.tensor([1.0, 2.0]))   # diag(6x)
        tensor([[ 6.,  0.],
                [ 0., 12.]])
    """
    return jacfwd(jacrev(func, argnums), argnums)


def linearize(func, *primals) -> tuple:
    """``(func(*primals), jvp_fn)``, where ``jvp_fn(*tangents)`` is the Jacobian of ``func`` at
    ``primals`` times ``tangents``, as ``torch.func.linearize``. Differs from PyTorch: each
    ``jvp_fn`` call runs :func:`jvp` again (gradient keeps no linearized graph), so it costs a
    forward and two backward passes; the values are the same.

    Example::

        >>> out, jvp_fn = linearize(lambda t: t.sin(), gradient.tensor([0.0, 1.0]))
        >>> jvp_fn(gradient.tensor([1.0, 1.0]))          # cos(x)
        tensor([1.0000, 0.5403])
    """
    output = func(*primals)

    def jvp_fn(*tangents):
        return jvp(func, primals, tangents)[1]
    return output, jvp_fn
