"""The kernel registry: which fast kernels exist, under which op names, for which backends and
dtypes, and the one way ops reach them.

An op (``gradient.ops``, an optimizer, a quantized layer) that has a fast path asks for it by
name: ``call("layer_norm", backend, x, weight, bias, eps)``. The registry finds the kernel that
``backend`` registered under that name and runs it; when there is none, or the kernel declines
its input (returns None or False), the caller composes the op from the backend's primitives, as
PyTorch's dispatcher falls back to a composite implementation. Every call made inside a
:func:`gradient.kernels.trace` is counted, the fallbacks included, so a test or a benchmark can
tell which path ran.

Each op name is declared once, with its signature (:func:`declare`, in
:mod:`gradient.kernels.declarations`); a backend registers an implementation of a declared op
with the dtypes it takes (:func:`register`). Backends load their kernels lazily: a backend adds
a loader (:func:`add_loader`) that imports its kernel modules the first time one of its kernels
is asked for, so ``import gradient`` does not import numba or CuPy.

Example::

    >>> @register("gelu", "cpu", "numba", dtypes=("float32", "float64"))
    ... def gelu(x, approximate): ...
    >>> call("gelu", cpu_backend, x, "tanh")        # the result, or None: compose it
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass

import numpy as np

from ..errors import KernelRegistryError
from . import trace as _trace


@dataclass(frozen=True)
class Declaration:
    """An op name's contract: ``signature`` is its parameters and results, as
    ``"(x, weight, bias, eps) -> (y, mean, rstd)"``; ``doc`` says what it computes."""
    op: str
    signature: str
    doc: str

    @property
    def parameters(self) -> tuple[str, ...]:
        inside = self.signature[self.signature.index("(") + 1:self.signature.index(")")]
        return tuple(p.strip() for p in inside.split(",") if p.strip())


@dataclass(frozen=True)
class Kernel:
    """A registered implementation of ``op`` on the backend kind ``backend`` (``"cpu"``,
    ``"cuda"``), named ``implementation`` in traces. ``dtypes`` are the NumPy dtypes of its
    first argument that it takes (None: it checks its inputs itself). Calling it runs ``fn``
    and counts the call in any active trace: as this implementation, or as the composite when
    it declines."""
    op: str
    backend: str
    implementation: str
    dtypes: frozenset | None
    fn: object
    prepare: object = None     # its prepared form's maker (see prepares), or None

    def takes(self, dtype) -> bool:
        return self.dtypes is None or np.dtype(dtype) in self.dtypes

    def __call__(self, *args, **kwargs):
        out = self.fn(*args, **kwargs)
        if _trace.active:
            _trace.record(self.op, self.implementation if out is not None and out is not False
                          else _trace.COMPOSITE)
        return out


_DECLARED: dict[str, Declaration] = {}
_KERNELS: dict[tuple[str, str], Kernel] = {}
_LOWERINGS: dict = {}      # (op, backend kind) -> the maker of its compiled form (lowers)
_LOADERS: dict = {}         # backend kind -> (a function importing its kernel modules, the
                            # optional modules without which there are none); run once


def declare(op: str, signature: str, doc: str) -> None:
    """Declare the op name ``op``: the parameters every implementation takes, in order, and
    what it returns."""
    if op in _DECLARED:
        raise KernelRegistryError(f"declare: {op!r} is declared already")
    _DECLARED[op] = Declaration(op, signature, doc)


def register(op: str, backend: str, implementation: str, dtypes=None):
    """Decorator: ``fn`` implements the declared ``op`` on the backend kind ``backend``.

    Its positional parameters must match the declaration's in number (their names may
    differ). ``dtypes``: the NumPy dtypes of its first argument that it takes; :func:`call`
    declines other dtypes for it. None: it checks its inputs itself.
    """
    declaration = _DECLARED.get(op)
    if declaration is None:
        raise KernelRegistryError(f"register: {op!r} is not a declared op; declare it in "
                                  f"gradient/kernels/declarations.py with its signature first")

    def add(fn):
        positional = [p for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if len(positional) != len(declaration.parameters):
            raise KernelRegistryError(
                f"register: {fn.__module__}.{fn.__qualname__} takes {len(positional)} "
                f"parameters, but {op!r} is declared as {declaration.signature}")
        if (op, backend) in _KERNELS:
            raise KernelRegistryError(f"register: {backend} has a kernel for {op!r} already "
                                      f"({_KERNELS[op, backend].fn.__module__})")
        _KERNELS[op, backend] = Kernel(op, backend, implementation,
                                       None if dtypes is None
                                       else frozenset(np.dtype(d) for d in dtypes), fn)
        return fn
    return add


def prepares(op: str, backend: str):
    """Decorator: ``maker`` gives the prepared form of the kernel already registered for ``op``
    on ``backend`` (see :func:`prepare`): ``maker(*args)`` returns a function called as the
    kernel is, for arguments like ``args``, or None.

    Example::

        >>> @prepares("rms_norm", "cpu")
        ... def _prepare_rms_norm(x, weight, eps): ...
    """
    def add(maker):
        kernel = _KERNELS.get((op, backend))
        if kernel is None:
            raise KernelRegistryError(f"prepares: {backend} has no kernel for {op!r} to prepare; "
                                      f"register the kernel first")
        _KERNELS[op, backend] = dataclasses.replace(kernel, prepare=maker)
        return maker
    return add


def add_loader(backend: str, loader, needs: tuple[str, ...] = ()) -> None:
    """``loader()`` imports the kernel modules of the backend kind ``backend``; it runs the
    first time a kernel of that kind is looked up. ``needs``: optional packages (numba) whose
    absence means the backend has no kernels; any other import error propagates."""
    _LOADERS[backend] = (loader, needs)


def _kind(backend) -> str:
    """The backend kind of a backend object or a string: its name before any ``:index``, or
    the object's own ``kernel_kind`` (a plugin's, ``"plugin:NAME"``: each plugin offers its
    own kernels)."""
    if isinstance(backend, str):
        return backend.partition(":")[0]
    return getattr(backend, "kernel_kind", None) or backend.name.partition(":")[0]


def _load(kind: str) -> None:
    loader, needs = _LOADERS.pop(kind, (None, ()))
    if loader is not None:
        try:
            loader()
        except ModuleNotFoundError as error:   # numba missing: the ops compose instead
            if error.name not in needs:
                raise


def lookup(op: str, backend, dtype=None) -> Kernel | None:
    """The kernel registered for ``op`` on ``backend`` (a backend or its name), or None; with
    ``dtype``, None as well when the kernel does not take that dtype."""
    kind = _kind(backend)
    if kind in _LOADERS:
        _load(kind)
    kernel = _KERNELS.get((op, kind))
    if kernel is None or (dtype is not None and not kernel.takes(dtype)):
        return None
    return kernel


def call(op: str, backend, *args, **kwargs):
    """Run ``op``'s kernel for ``backend`` on ``args``: its result, or None when there is no
    kernel, it does not take the first argument's dtype, or it declines (the caller then
    composes the op). Counted in active traces."""
    kernel = lookup(op, backend)
    if kernel is not None and (kernel.dtypes is None or args[0].dtype in kernel.dtypes):
        return kernel(*args, **kwargs)
    if _trace.active:
        _trace.record(op, _trace.COMPOSITE)
    return None


def prepare(op: str, backend, *args):
    """``op``'s kernel for ``backend`` prepared for repeated calls on arguments like ``args``
    (the same shapes, dtypes, layouts and constants: a captured step's calls), or None when
    there is no kernel, it would decline ``args``, or it has no prepared form. The result is
    called as the kernel is (``prepared(*args)``), runs only the compiled work, with the
    checks and decisions made once here, and is counted in active traces as the kernel is;
    given arguments unlike ``args`` it runs the kernel itself.

    A backend offers a kernel's prepared form with :func:`prepares`.

    Example::

        >>> norm = prepare("rms_norm", cpu, x, weight, 1e-5)
        >>> y, rstd = norm(x, weight, 1e-5)         # the same as call("rms_norm", cpu, ...)
    """
    kernel = lookup(op, backend)
    maker = kernel.prepare if kernel is not None else None
    if maker is None or (kernel.dtypes is not None and args[0].dtype not in kernel.dtypes):
        return None
    fast = maker(*args)
    if fast is None:
        return None
    implementation = kernel.implementation

    def prepared(*call_args):
        out = fast(*call_args)
        if out is None:        # arguments unlike the prepared ones: the kernel itself
            return kernel(*call_args)
        if _trace.active:
            _trace.record(op, implementation)
        return out

    prepared.__qualname__ = f"{op} (prepared)"
    return prepared


def specialization(op: str, backend, args: tuple, to_kernel, general, pick=None):
    """What an op or raw-array function returns from its ``specialize`` (see
    :mod:`gradient.capture`) when its work is ``op``'s kernel: a function of the call's
    arguments that runs the kernel prepared for ``args`` (:func:`prepare`) on
    ``to_kernel(*arguments)`` and returns its output (or the output's item ``pick``), or
    ``general(*arguments)`` where the kernel declines; None when there is no prepared kernel.
    Its ``lower`` gives the kernel's compiled form for the same arguments (:func:`lower`).

    Example::

        >>> Rotary.specialize = staticmethod(lambda ctx, x, cos, sin: specialization(
        ...     "rotary_embedding", ctx.backend, (ctx, x, cos, sin),
        ...     lambda ctx, x, cos, sin: (x, cos, sin, False), Rotary.forward))
    """
    kernel = prepare(op, backend, *to_kernel(*args))
    if kernel is None:
        return None

    def run(*arguments):
        out = kernel(*to_kernel(*arguments))
        if out is None:
            return general(*arguments)
        return out if pick is None else out[pick]
    run.lower = lambda *arguments: lower(op, backend, *to_kernel(*arguments), pick=pick)
    return run


def lowers(op: str, backend: str):
    """Decorator: ``maker`` gives the compiled form of the declared ``op`` on ``backend`` for a
    captured step compiled into one loop (:mod:`gradient.kernels.lowering`): ``maker(*args)``,
    with the arguments of the op's kernel, returns a :class:`~gradient.kernels.lowering.
    Lowered` computing what the kernel returns for arguments like these, or None.

    Example::

        >>> @lowers("swiglu", "cpu")
        ... def _lower_swiglu(gate, up): return Lowered(swiglu_compiled, (gate, up, one))
    """
    if op not in _DECLARED:
        raise KernelRegistryError(f"lowers: {op!r} is not a declared op; declare it in "
                                  f"gradient/kernels/declarations.py with its signature first")

    def add(maker):
        _LOWERINGS[op, backend] = maker
        return maker
    return add


def lower(op: str, backend, *args, pick=None):
    """The compiled form of ``op`` on ``backend`` for ``args`` (see :func:`lowers`), or None;
    ``pick``: the item of its results that the call returns. Counted in traces as the
    backend's kernel for ``op``, if it has one."""
    kind = _kind(backend)
    if kind in _LOADERS:
        _load(kind)
    maker = _LOWERINGS.get((op, kind))
    lowered = None if maker is None else maker(*args)
    if lowered is None:
        return None
    kernel = _KERNELS.get((op, kind))
    if kernel is not None:
        lowered.trace = (op, kernel.implementation)
    lowered.pick = pick
    return lowered


def declared() -> dict[str, Declaration]:
    """Every declared op name and its declaration."""
    return dict(_DECLARED)


def registered(op: str | None = None) -> list[Kernel]:
    """The registered kernels (of ``op``), after loading every backend's that can load."""
    for kind in list(_LOADERS):
        _load(kind)
    return [k for k in _KERNELS.values() if op is None or k.op == op]
