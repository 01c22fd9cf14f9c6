"""Calls from one compiled function to a kernel's machine code by its address, not its code.

A numba function that calls another links the callee's compiled code into its own and runs
LLVM's optimizer and code generator over all of it again: a compiled decode step
(:mod:`gradient.capture.compiled`) that calls the product and attention kernels spent some 7
of its 11 seconds of compiling re-optimizing kernels that were already compiled and cached,
and did it again for every step of another model, batch size or dtype.

:func:`call` calls the callee's own compiled function instead, through a symbol of the
process (``gradient_kernel_<hash>``, the kernel and its argument types) that the callee's
address is given to: the caller's machine code holds only the call. numba's disk cache keeps
such a caller as it does any other: the symbol's name is in its machine code, and loading it
in another process first compiles or loads each callee for its types and names its address
(numba's ``reload_init``, run before a cached library is loaded). The callee runs as it runs
when called from Python (its own threads for a parallel kernel); LLVM no longer inlines it, so
calls meant for inlining (a small vector helper inside a kernel's loop) stay direct calls.

Example (a decode step's loop)::

    @numba.njit(cache=True)
    def loop(n, x, w):
        for l in range(n):
            x = call(rms_norm, call(product, w, x), 1e-5)
        return x
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import sys
import threading

import llvmlite.binding as llvm
from numba.core import cgutils, errors, types
from numba.extending import intrinsic

__all__ = ["call", "symbol_of", "name_address"]

_named: dict = {}         # symbol -> the compile result whose address it holds
_lock = threading.Lock()


def symbol_of(module: str, qualname: str, argtypes: tuple) -> str:
    """The process-wide name of the kernel ``module.qualname`` compiled for ``argtypes``."""
    key = f"{module}.{qualname}{tuple(str(t) for t in argtypes)}"
    return "gradient_kernel_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def name_address(module: str, qualname: str, argtypes: tuple, symbol: str, restype=None):
    """Compile (or load from the cache) the kernel for ``argtypes`` and give ``symbol`` the
    address of its compiled function; returns numba's compile result. Called when a caller is
    compiled, and before a cached caller is loaded (with the ``restype`` it was compiled
    against: a callee edited since returns another, and the caller's cached code must not
    run)."""
    with _lock:
        found = _named.get(symbol)
    if found is None:
        found = _compile(module, qualname, argtypes, symbol)
    if restype is not None and found.signature.return_type != restype:
        raise errors.TypingError(
            f"{module}.{qualname}{argtypes} now returns {found.signature.return_type}; a "
            f"caller compiled when it returned {restype} was loaded from numba's cache: edit "
            f"the caller's file (or clear its __pycache__) to compile it again")
    return found


def _compile(module: str, qualname: str, argtypes: tuple, symbol: str):
    """The kernel compiled (or loaded) for ``argtypes``, its address given to ``symbol``."""
    dispatcher = getattr(importlib.import_module(module), qualname)
    if argtypes not in dispatcher.overloads:
        dispatcher.compile(argtypes)
    result = dispatcher.overloads[argtypes]
    address = result.library.get_pointer_to_function(result.fndesc.llvm_func_name)
    if not address:
        raise errors.NumbaError(f"numba gave no address for {module}.{qualname}{argtypes}")
    with _lock:
        llvm.add_symbol(symbol, address)
        _named[symbol] = result     # (keeps the code alive as long as the name points at it)
    return result


@intrinsic
def call(typingctx, fn, *args):
    """``fn(*args)`` through ``fn``'s compiled function's address (see the module's doc):
    ``fn`` a numba function at the top of a module, given every argument by position."""
    if not isinstance(fn, types.Dispatcher):
        return None
    dispatcher = fn.dispatcher
    py = dispatcher.py_func
    if getattr(sys.modules.get(py.__module__), py.__qualname__, None) is not dispatcher:
        raise errors.TypingError(f"call: {py.__qualname__} is not a numba function at the top "
                                 f"of its module (a cached caller finds it by that name)")
    given = tuple(args[0]) if len(args) == 1 and isinstance(args[0], types.StarArgTuple) \
        else tuple(args)
    argtypes = tuple(types.unliteral(t) for t in given)
    where = (py.__module__, py.__qualname__, argtypes)
    symbol = symbol_of(*where)
    result = name_address(*where, symbol)
    restype = result.signature.return_type
    reload = _reload_of(*where, symbol, restype)

    def codegen(context, builder, signature, llargs):
        # a cached caller names the address before numba loads its machine code
        context.active_code_library._reload_init.add(reload)
        values = [context.cast(builder, value, given_type, plain) for value, given_type, plain
                  in zip(cgutils.unpack_tuple(builder, llargs[1], len(given)), given, argtypes)]
        callee = cgutils.get_or_insert_function(
            builder.module, context.call_conv.get_function_type(restype, argtypes), symbol)
        status, out = context.call_conv.call_function(builder, callee, restype, argtypes, values)
        with cgutils.if_unlikely(builder, status.is_error):
            context.call_conv.return_status_propagate(builder, status)
        return out
    return restype(fn, types.StarArgTuple(given)), codegen


@functools.lru_cache(maxsize=None)
def _reload_of(module: str, qualname: str, argtypes: tuple, symbol: str, restype):
    """One picklable callable per symbol (numba keeps a library's in a set)."""
    return functools.partial(name_address, module, qualname, argtypes, symbol, restype)
