"""Kernels loaded from numba's disk cache without reading their code for linking first.

numba caches a compiled function as its machine code and, beside it, the function's LLVM
bitcode: the form that other functions compiled later link in (and inline). Loading a kernel
parses that bitcode at once and walks it for the names it defines, though nothing links
against a kernel that Python calls. For SmolLM2's float GEMM that was 10.5 of the 14 ms its
load took (7.5 ms parsing, 3 ms naming); a first prompt's ten to thirteen kernels, 65-75 ms.

:func:`install` defers both to the first need: a library's bitcode is parsed when a new
compilation links it in, and the names it defines are registered when numba asks for a name
that no loaded library has registered yet. The two names the loading asks for at once, the
function's and its Python wrapper's (which the cached function defines: numba compiles both
into every library it caches), are registered up front. The machine code, and so every
result, is numba's own.

It reaches into numba's code generation (``CPUCodeLibrary``, ``JitEngine``,
``CompileResult``), so it installs only where those are as this module expects (numba 0.59
and later, checked by their signatures); elsewhere numba loads kernels as it always has.

Example::

    >>> lazy_linking.install()      # done once by gradient.backends.cpu_compile
    True
"""

from __future__ import annotations

import inspect
import threading

__all__ = ["install", "installed"]

_loading = threading.local()     # the names the function being loaded defines
_installed = False


def installed() -> bool:
    """Whether :func:`install` changed numba's loading (see the module docstring)."""
    return _installed


def install() -> bool:
    """Defers the parsing of cached kernels' bitcode (see the module docstring): True where it
    is in place, False where numba is not as this module expects."""
    global _installed
    if _installed:
        return True
    try:
        import llvmlite.binding as ll
        from numba.core import codegen, compiler
        library, engine = codegen.CPUCodeLibrary, codegen.JitEngine
        unserialize = library._unserialize.__func__
        for_linking = library._get_module_for_linking
        is_defined = engine.is_symbol_defined
        load_symbols = engine._load_defined_symbols
        rebuild = compiler.CompileResult._rebuild.__func__
        expected = ["cls", "target_context", "libdata", "fndesc", "env", "signature",
                    "objectmode", "lifted", "typeann", "reload_init", "referenced_envs"]
        if (list(inspect.signature(rebuild).parameters) != expected
                or list(inspect.signature(unserialize).parameters) != ["cls", "codegen", "state"]
                or not callable(load_symbols)):
            return False
    except (ImportError, AttributeError, TypeError, ValueError):
        return False

    def lazy_unserialize(cls, codegen_, state):
        name, kind, data = state
        names, _loading.names = getattr(_loading, "names", None), None    # (once)
        if kind != "object" or not names:
            return unserialize(cls, codegen_, state)
        object_code, bitcode = data
        self = codegen_.create_library(name)
        self.enable_object_caching()
        self._set_compiled_object(object_code)
        self._finalize_final_module()       # the machine code, as numba loads it
        self._bitcode_to_parse = bitcode
        codegen_._engine.__dict__.setdefault("_libraries_to_name", []).append(self)
        codegen_._engine._defined_symbols |= names
        return self

    def parse(lib) -> None:
        bitcode = lib.__dict__.pop("_bitcode_to_parse", None)
        if bitcode is not None:
            lib._shared_module = ll.parse_bitcode(bitcode)
            load_symbols(lib._codegen._engine, lib._shared_module)

    def lazy_for_linking(self):
        parse(self)
        return for_linking(self)

    def lazy_is_defined(self, name):
        if is_defined(self, name):
            return True
        pending = self.__dict__.get("_libraries_to_name")
        if not pending:
            return False
        while pending:
            parse(pending.pop())
        return is_defined(self, name)

    def rebuild_naming(cls, target_context, libdata, fndesc, env, signature, objectmode,
                       lifted, typeann, reload_init, referenced_envs):
        _loading.names = (None if objectmode else
                          {fndesc.llvm_func_name, fndesc.llvm_cpython_wrapper_name})
        try:
            return rebuild(cls, target_context, libdata, fndesc, env, signature, objectmode,
                           lifted, typeann, reload_init, referenced_envs)
        finally:
            _loading.names = None

    library._unserialize = classmethod(lazy_unserialize)
    library._get_module_for_linking = lazy_for_linking
    engine.is_symbol_defined = lazy_is_defined
    compiler.CompileResult._rebuild = classmethod(rebuild_naming)
    _installed = True
    return True
