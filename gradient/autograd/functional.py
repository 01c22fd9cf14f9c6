"""Higher-level autograd functions, as ``torch.autograd.functional``: whole Jacobians and Hessians,
and their products with a vector, of a function of tensors.

Each takes ``func`` (tensors in, a tensor or a tuple of tensors out) and ``inputs`` (a tensor or a
tuple of tensors), and returns what PyTorch's does, in the same structure: a tensor where PyTorch
gives a tensor, a tuple (or a tuple of tuples) where it gives one.

Example::

    >>> from gradient.autograd.functional import jacobian, hessian
    >>> x = gradient.tensor([1.0, 2.0], dtype=gradient.float64)
    >>> jacobian(lambda t: t ** 2, x)           # diag(2x)
    tensor([[2., 0.],
            [0., 4.]], dtype=gradient.float64)
    >>> hessian(lambda t: (t ** 3).sum(), x)   # diag(6x)
    tensor([[6., 0.],
            [0., 12.]], dtype=gradient.float64)

How they work, as PyTorch's reverse-mode path:

* ``vjp``, ``vhp``: one backward pass (two for ``vhp``: the gradient, then its vjp).
* ``jacobian``, ``hessian``: one backward pass per output element (one row at a time);
  ``vectorize=True`` is accepted and gives the same result, computed the same way (gradient has
  no vmap to batch the rows).
* ``jvp``, ``hvp``: gradient has no forward-mode AD, so, as PyTorch does, they use the
  "double-backward trick": the vjp ``g(u) = J^T u`` is linear in ``u``, and the vjp of ``g``
  with respect to ``u`` along ``v`` is ``J v``. It costs two backward passes, and needs every
  op on the path to be twice differentiable (gradient's ops are).

``strategy="forward-mode"`` raises NotImplementedError (no forward-mode AD here).

Layering: this module is part of ``autograd``, which sits below ``ops``; the few ops it needs
(``zeros``, ``zeros_like``, ``stack``) are imported inside the functions, at call time, when
``ops`` exists, instead of at module level (which would make autograd import ops while ops is
importing autograd).
"""

from __future__ import annotations

from ..errors import (ArgumentTypeError, ArgumentValueError, AutogradError, ShapeError,
                      UnsupportedError)
from . import function, grad_mode
from .engine import grad as _autograd_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "hvp", "vhp"]


# ---------------------------------------------------------------------------- helpers
def _as_tuple(value, what: str, fn: str):
    """``(was a tuple, the value as a tuple of Tensors)``, with PyTorch's TypeError otherwise."""
    Tensor = function.Tensor
    was_tuple = isinstance(value, tuple)
    items = value if was_tuple else (value,)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            where = f"the value at index {i}" if was_tuple else f"the given {what}"
            raise ArgumentTypeError(
                f"The {what} given to {fn} must be either a Tensor or a tuple of Tensors "
                f"but {where} has type {type(item)}. Pass a gradient.Tensor (or a tuple "
                "of them; a list is not accepted).")
    return was_tuple, items


def _unpack(result, was_tuple: bool):
    return result if was_tuple else result[0]


def _fresh(tensors, create_graph: bool, need_graph: bool) -> tuple:
    """New Tensor objects for ``tensors``, so that the graph built from them is told apart from
    any graph ``func`` builds from the caller's tensors it captured. With ``create_graph`` a
    tensor that requires grad stays connected to its history (a view of it), so the results can
    be differentiated with respect to it; otherwise it is detached, and requires grad when
    ``need_graph`` (the inputs we differentiate with respect to)."""
    out = []
    for t in tensors:
        if create_graph and t.requires_grad:
            out.append(t.view_as(t))
        else:
            t = t.detach()
            if need_graph:
                t.requires_grad_(True)
            out.append(t)
    return tuple(out)


def _check_v(v, refs, refs_were_tuple: bool) -> None:
    """``v`` (a tuple) must have one tensor per ref, each of the ref's shape."""
    if len(v) != len(refs):
        if refs_were_tuple:
            raise AutogradError(f"v is a tuple of invalid length: should be {len(refs)} but got "
                                f"{len(v)}. Give one tensor of v per tensor it multiplies.")
        raise AutogradError("The given v should contain a single Tensor. Pass one tensor of the "
                            "same shape as the tensor it multiplies.")
    for i, (a, ref) in enumerate(zip(v, refs)):
        if tuple(a.shape) != tuple(ref.shape):
            prefix = f"Entry {i} in " if refs_were_tuple else ""
            raise ShapeError(f"{prefix}v has invalid size: should be {ref.shape} but got {a.shape}.")


def _check_differentiable(tensors, kind: str, strict: bool) -> None:
    """In strict mode, refuse a None or a tensor without graph where a graph is needed; ``kind``
    says which tensors these are, for PyTorch's message."""
    if not strict:
        return
    for i, t in enumerate(tensors):
        if t is None:
            raise AutogradError(f"The output of the user-provided function is independent of input {i}. "
                                "This is not allowed in strict mode.")
        if t.requires_grad:
            continue
        if kind == "outputs":
            msg = (f"Output {i} of the user-provided function does not require gradients. The outputs "
                   "must be computed in a differentiable manner from the input when running in "
                   "strict mode.")
        elif kind == "grad_inputs":
            msg = (f"The gradient with respect to input {i} is independent of the inputs of the "
                   "user-provided function. This is not allowed in strict mode.")
        else:  # "jacobian"
            msg = ("While computing the hessian, found that the jacobian of the user-provided function "
                   f"with respect to input {i} is independent of the input. This is not allowed in "
                   "strict mode. You should ensure that your function is twice differentiable and "
                   "that the jacobian depends on the inputs (this would be violated by a linear "
                   "function for example).")
        raise AutogradError(msg)


def _grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None) -> tuple:
    """``autograd.grad`` that skips outputs which are None or carry no graph, and gives None for
    inputs nothing depends on (rather than raising, as ``grad`` does for such outputs)."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not pairs:
        return (None,) * len(inputs)
    return _autograd_grad([o for o, _ in pairs], inputs, [g for _, g in pairs],
                          retain_graph=retain_graph, create_graph=create_graph, allow_unused=True)


# What a missing gradient means at each stage, for the strict-mode error.
_INDEPENDENT = {
    "back": "The output of the user-provided function is independent of input {i}. This is not "
            "allowed in strict mode.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the "
                  "grad_outputs when using the double backward trick to compute forward mode "
                  "gradients. This is not allowed in strict mode.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}. This "
                   "is not allowed in strict mode.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry {i} in "
                         "the grad_jacobian. This is not allowed in strict mode as it prevents from "
                         "using the double backward trick to replace forward mode AD.",
}


def _zeros_where_missing(grads, refs, strict: bool, create_graph: bool, stage: str) -> tuple:
    """Zeros (shaped as ``refs[i]``) for the None gradients, or PyTorch's strict-mode errors."""
    from ..ops.creation import zeros_like  # ops sits above autograd: imported when called

    out = []
    for i, (g, ref) in enumerate(zip(grads, refs)):
        if g is None:
            if strict:
                raise AutogradError(_INDEPENDENT[stage].format(i=i))
            g = zeros_like(ref)
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if stage.startswith("double") else "jacobian"
            raise AutogradError(f"The {what} of the user-provided function is independent of input "
                                f"{i}. This is not allowed in strict mode when create_graph=True.")
        out.append(g)
    return tuple(out)


def _detach(value, create_graph: bool):
    """Results without history unless the caller asked for a graph (tuples of tuples too)."""
    if create_graph:
        return value
    if isinstance(value, tuple):
        return tuple(_detach(v, False) for v in value)
    return value.detach()


def _prepare_v(v, refs, refs_were_tuple: bool, create_graph: bool, fn: str, of_input: bool):
    """``v`` as a tuple checked against ``refs`` (the inputs, or the outputs for vjp), or None
    where it may be left out (``refs`` is one single-element tensor)."""
    if v is None:   # only where it would be the single number 1
        if len(refs) != 1 or refs[0].numel() != 1:
            what = ("the input to the user-provided function is" if of_input
                    else "the user-provided function returns")
            raise AutogradError(f"The vector v can only be None if {what} a single Tensor with a "
                                "single element. Pass v, shaped as the "
                                f"{'inputs' if of_input else 'outputs'}.")
        return None
    _, v = _as_tuple(v, "v", fn)
    v = _fresh(v, create_graph, need_graph=False)
    _check_v(v, refs, refs_were_tuple)
    return v


def _check_strategy(strategy: str, fn: str, argument: str) -> None:
    if strategy == "reverse-mode":
        return
    if strategy == "forward-mode":
        raise UnsupportedError(
            f"{fn}: {argument}='forward-mode' is not supported: gradient has no forward-mode "
            f"automatic differentiation. Use {argument}='reverse-mode' (the default), which gives "
            "the same result.")
    raise ArgumentValueError(
        f'{fn}: expected {argument} to be either "forward-mode" or "reverse-mode", got '
        f"{strategy!r}")


def _scalar_output(func, fn: str, strict: bool):
    """``func`` wrapped to check it returns one single-element tensor (for hessian, hvp, vhp)."""
    Tensor = function.Tensor

    def wrapped(*inputs):
        out = func(*inputs)
        _, outs = _as_tuple(out, "outputs of the user-provided function", fn)
        _check_differentiable(outs, "outputs", strict)
        if not isinstance(out, Tensor):
            raise AutogradError(f"The function given to {fn} should return a single Tensor, it "
                                f"returned a tuple of {len(outs)}. Return a scalar (e.g. the loss).")
        if out.numel() != 1:
            raise AutogradError(f"The Tensor returned by the function given to {fn} should contain a "
                                f"single element, it has shape {tuple(out.shape)}. Reduce it (e.g. "
                                ".sum()) to a scalar.")
        return out
    return wrapped


def _scalar_gradient(func, inputs, v, create_graph: bool, strict: bool, fn: str):
    """What hvp and vhp start with (under enable_grad): the inputs as fresh leaves, v checked
    against them, the scalar output of ``func`` and its gradient with a graph (the Jacobian
    they differentiate again). ``(inputs_were_tuple, inputs, v, output, jac)``."""
    inputs_were_tuple, inputs = _as_tuple(inputs, "inputs", fn)
    inputs = _fresh(inputs, create_graph, need_graph=True)
    v = _prepare_v(v, inputs, inputs_were_tuple, create_graph, fn, of_input=True)
    output = _scalar_output(func, fn, strict)(*inputs)
    jac = _grad((output,), inputs, create_graph=True)
    _check_differentiable(jac, "jacobian", strict)
    return inputs_were_tuple, inputs, v, output, jac


# ---------------------------------------------------------------------------- public functions
def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """The output of ``func`` at ``inputs``, and the vector-Jacobian product ``v^T J`` (one
    backward pass), as ``torch.autograd.functional.vjp``.

    Returns ``(func_output, vjp)``: ``func_output`` as ``func`` returned it, ``vjp`` shaped as
    ``inputs`` (a tensor, or a tuple if ``inputs`` is a tuple). ``v`` has the shape of the
    output(s); it may be left out when the output is a single element. With
    ``create_graph=True`` the results can be differentiated again; ``strict=True`` raises when
    an output does not depend on an input instead of giving zeros.

    Example::

        >>> x = gradient.tensor([1.0, 2.0], dtype=gradient.float64)
        >>> out, g = vjp(lambda t: t ** 2, x, gradient.ones(2, dtype=gradient.float64))
        >>> g                          # 2x
        tensor([2., 4.], dtype=gradient.float64)
    """
    with grad_mode.enable_grad():
        inputs_were_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _fresh(inputs, create_graph, need_graph=True)
        outputs_were_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function",
                                                "vjp")
        _check_differentiable(outputs, "outputs", strict)
        v = _prepare_v(v, outputs, outputs_were_tuple, create_graph, "vjp", of_input=False)
    grads = _grad(outputs, inputs, v, create_graph=create_graph)
    grads = _zeros_where_missing(grads, inputs, strict, create_graph, "back")
    return (_unpack(_detach(outputs, create_graph), outputs_were_tuple),
            _unpack(_detach(grads, create_graph), inputs_were_tuple))


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """The output of ``func`` at ``inputs``, and the Jacobian-vector product ``J v``, as
    ``torch.autograd.functional.jvp``.

    Returns ``(func_output, jvp)``, ``jvp`` shaped as the output(s). ``v`` has the shape of
    ``inputs`` (optional for a single-element input). Computed as PyTorch does, by the
    double-backward trick (two backward passes; see the module docstring), since gradient has
    no forward-mode AD.

    Example::

        >>> x = gradient.tensor([1.0, 2.0], dtype=gradient.float64)
        >>> out, d = jvp(lambda t: t ** 2, x, gradient.tensor([1.0, 0.0], dtype=gradient.float64))
        >>> d                          # 2x * v
        tensor([2., 0.], dtype=gradient.float64)
    """
    from ..ops.creation import zeros_like  # ops sits above autograd: imported when called

    with grad_mode.enable_grad():
        inputs_were_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _fresh(inputs, create_graph, need_graph=True)
        v = _prepare_v(v, inputs, inputs_were_tuple, create_graph, "jvp", of_input=True)
        outputs_were_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function",
                                                "jvp")
        _check_differentiable(outputs, "outputs", strict)
        # u: the backward is linear in it, so its value never shows in the result; zeros keep
        # any inf or nan in the Jacobian from leaking into it
        u = tuple(zeros_like(o, requires_grad=True) for o in outputs)
        grad_inputs = _grad(outputs, inputs, u, create_graph=True)      # J^T u, a graph in u
        _check_differentiable(grad_inputs, "grad_inputs", strict)
    grads = _grad(grad_inputs, u, v, create_graph=create_graph)        # d(v . J^T u)/du = J v
    grads = _zeros_where_missing(grads, outputs, strict, create_graph, "back_trick")
    return (_unpack(_detach(outputs, create_graph), outputs_were_tuple),
            _unpack(_detach(grads, create_graph), outputs_were_tuple))


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``, as ``torch.autograd.functional.jacobian``.

    For one input and one output, a tensor of shape ``output.shape + input.shape``; for tuples,
    ``result[i][j]`` is d(output i)/d(input j) (a tuple over outputs of tuples over inputs; only
    the tuple levels the caller used are kept). One backward pass per output element.
    ``vectorize=True`` is accepted and computes the same rows the same way, one at a time
    (gradient has no vmap); as in PyTorch it cannot be combined with ``strict=True``.
    ``strategy="forward-mode"`` raises NotImplementedError: gradient has no forward-mode AD.

    Example::

        >>> x = gradient.tensor([1.0, 2.0], dtype=gradient.float64)
        >>> y = gradient.tensor([3.0], dtype=gradient.float64)
        >>> jx, jy = jacobian(lambda a, b: a * b, (x, y))
        >>> jx                         # diag(b)
        tensor([[3., 0.],
                [0., 3.]], dtype=gradient.float64)
        >>> jy                         # a, as a column
        tensor([[1.],
                [2.]], dtype=gradient.float64)
    """
    from ..ops.creation import zeros, zeros_like
    from ..ops.shape import stack  # ops sits above autograd: imported when called

    _check_strategy(strategy, "jacobian", "strategy")
    with grad_mode.enable_grad():
        inputs_were_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
        inputs = _fresh(inputs, create_graph, need_graph=True)
        outputs_were_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function",
                                                "jacobian")
        _check_differentiable(outputs, "outputs", strict)
        if vectorize and strict:
            raise AutogradError("torch.autograd.functional.jacobian: `strict=True` and `vectorized=True` "
                                "are not supported together. Please either set `strict=False` or "
                                "`vectorize=False`.")

        result = []
        for i, out in enumerate(outputs):
            n = out.numel()
            rows = [[] for _ in inputs]   # rows[j][k]: d(out.flatten()[k]) / d(inputs[j])
            for k in range(n):
                # a one-hot grad_output picks output element k. A new one each row: with
                # create_graph the backward graph may save it, so it must not change afterwards.
                pick = None
                if out.requires_grad:
                    pick = zeros(n, dtype=out.dtype, device=out.device)
                    with grad_mode.no_grad():
                        pick[k] = 1
                    pick = pick.reshape(out.shape)
                grads = _grad((out,), inputs, (pick,), create_graph=create_graph, retain_graph=True)
                for j, g in enumerate(grads):
                    if g is None:
                        if strict:
                            raise AutogradError(f"Output {i} of the user-provided function is independent "
                                                f"of input {j}. This is not allowed in strict mode.")
                        g = zeros_like(inputs[j])
                    elif strict and create_graph and not g.requires_grad:
                        raise AutogradError(f"The jacobian of the user-provided function is independent "
                                            f"of input {j}. This is not allowed in strict mode when "
                                            "create_graph=True.")
                    rows[j].append(g)
            per_input = []
            for j, inp in enumerate(inputs):
                shape = tuple(out.shape) + tuple(inp.shape)
                if rows[j]:
                    per_input.append(stack(rows[j], 0).reshape(shape))
                else:  # an output with no elements: an empty Jacobian (PyTorch fails to stack here)
                    per_input.append(zeros(*shape, dtype=inp.dtype, device=inp.device))
            result.append(tuple(per_input))

    result = _detach(tuple(result), create_graph)
    if not inputs_were_tuple:
        result = tuple(r[0] for r in result)
    return _unpack(result, outputs_were_tuple)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False,
            outer_jacobian_strategy="reverse-mode"):
    """The Hessian of a scalar function ``func`` at ``inputs``, as
    ``torch.autograd.functional.hessian``.

    For one input, a tensor of shape ``input.shape + input.shape``; for a tuple of inputs,
    ``result[i][j]`` is d²f/(d input i)(d input j), shaped ``inputs[i].shape + inputs[j].shape``.
    Computed as the Jacobian of the gradient (one backward pass per input element);
    ``vectorize`` is accepted as in :func:`jacobian`, and ``outer_jacobian_strategy`` must be
    ``"reverse-mode"`` (gradient has no forward-mode AD).

    Example::

        >>> x = gradient.tensor([1.0, 2.0], dtype=gradient.float64)
        >>> y = gradient.tensor([3.0], dtype=gradient.float64)
        >>> (hxx, hxy), (hyx, hyy) = hessian(lambda a, b: (a * a * b).sum(), (x, y))
        >>> hxy                         # d2f / dx dy = 2x
        tensor([[2.],
                [4.]], dtype=gradient.float64)
    """
    _check_strategy(outer_jacobian_strategy, "hessian", "outer_jacobian_strategy")
    inputs_were_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    scalar = _scalar_output(func, "hessian", strict)

    def gradient_of(*inp):
        # the inner Jacobian (of a scalar: the gradient), itself a graph for the outer one;
        # squeezed so that each piece has its input's shape, not (1, ...)
        jac = jacobian(lambda *a: scalar(*a).squeeze(), inp, create_graph=True)
        _check_differentiable(jac, "jacobian", strict)
        return jac

    # inputs is a tuple here, so the result is a tuple (over gradient pieces) of tuples (over inputs)
    result = jacobian(gradient_of, inputs, create_graph=create_graph, strict=strict, vectorize=vectorize)
    if not inputs_were_tuple:
        return result[0][0]
    return result


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """The output of the scalar function ``func`` at ``inputs``, and the vector-Hessian product
    ``v^T H`` (two backward passes), as ``torch.autograd.functional.vhp``.

    Returns ``(func_output, vhp)``, ``vhp`` shaped as ``inputs``; ``v`` has the shape of
    ``inputs`` (optional for a single-element input).

    Example::

        >>> x = gradient.tensor([1.0, 2.0], dtype=gradient.float64)
        >>> out, r = vhp(lambda t: (t ** 3).sum(), x, gradient.ones(2, dtype=gradient.float64))
        >>> r                          # diag(6x) @ v
        tensor([6., 12.], dtype=gradient.float64)
    """
    with grad_mode.enable_grad():
        inputs_were_tuple, inputs, v, output, jac = _scalar_gradient(func, inputs, v, create_graph,
                                                                     strict, "vhp")
    grads = _grad(jac, inputs, v, create_graph=create_graph)
    grads = _zeros_where_missing(grads, inputs, strict, create_graph, "double_back")
    return _detach(output, create_graph), _unpack(_detach(grads, create_graph), inputs_were_tuple)


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """The output of the scalar function ``func`` at ``inputs``, and the Hessian-vector product
    ``H v``, as ``torch.autograd.functional.hvp``.

    Returns ``(func_output, hvp)``, ``hvp`` shaped as ``inputs``. For a twice-differentiable
    function H is symmetric and this equals :func:`vhp`; it is computed as PyTorch does, by the
    double-backward trick (three backward passes), so prefer ``vhp`` when they agree.

    Example::

        >>> x = gradient.tensor([1.0, 2.0], dtype=gradient.float64)
        >>> out, r = hvp(lambda t: (t ** 3).sum(), x, gradient.ones(2, dtype=gradient.float64))
        >>> r                          # diag(6x) @ v
        tensor([6., 12.], dtype=gradient.float64)
    """
    from ..ops.creation import zeros_like  # ops sits above autograd: imported when called

    with grad_mode.enable_grad():
        inputs_were_tuple, inputs, v, output, jac = _scalar_gradient(func, inputs, v, create_graph,
                                                                     strict, "hvp")
        u = tuple(zeros_like(t, requires_grad=True) for t in inputs)
        h_u = _grad(jac, inputs, u, create_graph=True)                 # H^T u, a graph in u
    grads = _grad(h_u, u, v, create_graph=create_graph)                # d(v . H^T u)/du = H v
    grads = _zeros_where_missing(grads, inputs, strict, create_graph, "double_back_trick")
    return _detach(output, create_graph), _unpack(_detach(grads, create_graph), inputs_were_tuple)
