"""The CUDA kernels of ``kernels/*.cu``: their sources, their names, and two ways to compile them.

* :func:`compile_ptx` turns a source into PTX with NVRTC called through ``ctypes``. It needs no
  GPU, no driver and no CuPy (only ``libnvrtc``, from the ``nvidia-cuda-nvrtc-cu12`` wheel), so
  the tests check on any machine that every kernel file compiles for the architectures we ship.
* :func:`load_module` / :func:`get_kernel` compile a file for the current GPU with CuPy and hand
  back launchable kernels; the CUDA backend's fused fast paths use them.

Every kernel is ``extern "C"`` (no C++ name mangling), so its name in the PTX is its name in
the source, one per storage dtype: ``softmax_forward_f32``, ``softmax_forward_f16``,
``softmax_forward_bf16``. The files generate these with a macro; :func:`kernel_names` expands
such macros to list the names a file defines.

Nothing here imports CuPy at module level: ``import gradient`` must work without it.

Example::

    >>> from gradient.backends.cuda import compile as cuda_compile
    >>> src = cuda_compile.kernel_sources()["softmax"]
    >>> "softmax_forward_f32" in cuda_compile.kernel_names(src)
    True
    >>> ".entry softmax_forward_f32" in cuda_compile.compile_ptx(src, "sm_80")
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re
import threading
from pathlib import Path

from ...errors import DeviceError

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
"""The folder of the kernel sources (``gradient/backends/cuda/kernels``)."""

_NVRTC_WHEEL = "nvidia-cuda-nvrtc-cu12"
_RUNTIME_WHEEL = "nvidia-cuda-runtime-cu12"


# ----------------------------------------------------------------------------- sources
def kernel_sources() -> dict[str, str]:
    """Every ``kernels/*.cu`` file, as ``{file stem: source text}``, sorted by stem.

    >>> sorted(kernel_sources())[:2]
    ['adamw', 'cross_entropy']
    """
    return {path.stem: path.read_text(encoding="utf-8")
            for path in sorted(KERNEL_DIR.glob("*.cu"))}


# ----------------------------------------------------------------------------- kernel names
# A small C preprocessor, just enough to find the names of the kernels a file defines: comments
# removed, line continuations joined, #define'd macros (object-like, function-like, variadic,
# with # and ##) expanded. Conditionals (#if) are ignored: every branch counts.
_TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|[A-Za-z_]\w*|##|#|\s+|.',
                    re.S)
_DEFINE = re.compile(r"[ \t]*#[ \t]*define[ \t]+([A-Za-z_]\w*)(\([^)]*\))?(.*)", re.S)
_MAX_DEPTH = 32


def _strip_comments(source: str) -> str:
    # comments become one space (as in C), strings and characters stay whole
    pattern = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|//[^\n]*|/\*.*?\*/', re.S)
    return pattern.sub(lambda m: " " if m.group(0)[0] == "/" else m.group(0), source)


def _split_args(text: str, start: int) -> tuple[list[str], int] | None:
    """The comma-separated arguments of the call whose ``(`` is at ``text[start]``, and the
    index after its ``)``; None when the parentheses do not close."""
    depth, args, current, i = 0, [], [], start
    for m in _TOKEN.finditer(text, start):
        tok = m.group(0)
        i = m.end()
        if tok == "(":
            depth += 1
            if depth == 1:
                continue
        elif tok == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current))
                return [a.strip() for a in args], i
        elif tok == "," and depth == 1:
            args.append("".join(current))
            current = []
            continue
        current.append(tok)
    return None


def _substitute(body: str, params: list[str], args: list[str]) -> str:
    if params and params[-1] == "...":
        fixed = len(params) - 1
        values = dict(zip(params[:fixed], args[:fixed]))
        values["__VA_ARGS__"] = ", ".join(args[fixed:])
    else:
        values = dict(zip(params, args))
    tokens = _TOKEN.findall(body)
    out = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "#" and i + 1 < len(tokens):  # stringize: #param
            j = i + 1
            while j < len(tokens) and tokens[j].isspace():
                j += 1
            if j < len(tokens) and tokens[j] in values:
                out.append('"' + values[tokens[j]].replace('"', '\\"') + '"')
                i = j + 1
                continue
        out.append(values.get(tok, tok))
        i += 1
    return re.sub(r"\s*##\s*", "", "".join(out))  # token pasting


def _expand(text: str, macros: dict, active: frozenset = frozenset(), depth: int = 0) -> str:
    if depth > _MAX_DEPTH:
        return text
    out = []
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() < pos:
            continue  # inside the arguments of a macro call already consumed
        tok = m.group(0)
        macro = macros.get(tok) if tok not in active else None
        if macro is None:
            out.append(tok)
            pos = m.end()
            continue
        params, body = macro
        if params is None:  # object-like
            out.append(_expand(body, macros, active | {tok}, depth + 1))
            pos = m.end()
            continue
        rest = m.end()
        while rest < len(text) and text[rest].isspace():
            rest += 1
        call = _split_args(text, rest) if rest < len(text) and text[rest] == "(" else None
        if call is None:  # a function-like macro's name without a call is just a name
            out.append(tok)
            pos = m.end()
            continue
        args, pos = call
        if args == [""] and not params:
            args = []
        out.append(" " + _expand(_substitute(body, params, args), macros, active | {tok},
                                 depth + 1) + " ")
    return "".join(out)


def _preprocess(source: str) -> str:
    text = _strip_comments(source).replace("\\\r\n", "").replace("\\\n", "")
    macros: dict = {}
    code = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        if not stripped.startswith("#"):
            code.append(line)
            continue
        m = _DEFINE.match(line)
        if m:
            name, params, body = m.groups()
            if params is not None:
                params = [p.strip() for p in params[1:-1].split(",") if p.strip()]
            macros[name] = (params, body.strip())
        code.append("")  # directives are not code
    return _expand("\n".join(code), macros)


_EXTERN_C = re.compile(r'extern\s*"C"\s*(\{)?')
_GLOBAL = re.compile(r"\b__global__\b")
_BOUNDS = re.compile(r"\b__launch_bounds__\s*\((?:[^()]|\([^()]*\))*\)")
_HEAD = re.compile(r"[^(;{}]*?([A-Za-z_]\w*)\s*\(", re.S)


def _extern_c_blocks(text: str) -> list[tuple[int, int]]:
    """Spans of the ``extern "C" { ... }`` blocks of preprocessed text."""
    spans = []
    for m in _EXTERN_C.finditer(text):
        if not m.group(1):
            continue
        depth = 0
        for i in range(m.end() - 1, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    spans.append((m.end(), i))
                    break
    return spans


def kernel_signatures(source: str) -> dict[str, list[tuple[str, str]]]:
    """The ``extern "C" __global__`` functions a CUDA source defines, with their parameters.

    ``{kernel name: [(C type, parameter name), ...]}`` in order of appearance, parsed from the
    text after expanding its ``#define`` macros (so kernels stamped out per dtype by a macro
    are found, with their types filled in). A ``__global__`` function without C linkage (a
    template, a mangled C++ name) is not listed. Launchers use it to check argument types.

    >>> kernel_signatures('extern "C" __global__ void scale(float* x, long long n, float k) {}')
    {'scale': [('float*', 'x'), ('long long', 'n'), ('float', 'k')]}
    """
    text = _BOUNDS.sub(lambda b: " " * len(b.group(0)), _preprocess(source))
    blocks = _extern_c_blocks(text)
    kernels: dict[str, list[tuple[str, str]]] = {}
    for m in _GLOBAL.finditer(text):
        # the declaration starts after the previous ; { or } (an extern "C" { opens a block)
        start = max(text.rfind(c, 0, m.start()) for c in ";{}") + 1
        linkage_c = bool(_EXTERN_C.search(text, start, m.start())) or any(
            a <= m.start() < b for a, b in blocks)
        if not linkage_c or "template" in text[start:m.start()]:
            continue
        # the name is the identifier before the parameters' '(' (__launch_bounds__ removed)
        head = _HEAD.match(text, m.end())
        if head is None or head.group(1) in kernels:
            continue
        params = _split_args(text, head.end() - 1)
        if params is None:
            continue
        kernels[head.group(1)] = [_parameter(p) for p in params[0] if p not in ("", "void")]
    return kernels


def _parameter(declaration: str) -> tuple[str, str]:
    """``"const T *x"`` -> ``("const T*", "x")``; a parameter without a name gets ``""``."""
    declaration = re.sub(r"\b__restrict__\b|\b__restrict\b", " ", declaration)
    declaration = re.sub(r"\s*\*\s*", "* ", declaration).strip()
    m = re.fullmatch(r"(.*?[\s*])([A-Za-z_]\w*)", declaration, re.S)
    kind, name = (m.group(1), m.group(2)) if m else (declaration, "")
    if not kind.strip() or kind.strip() in ("const", "unsigned", "signed"):  # a type alone
        kind, name = declaration, ""
    kind = " ".join(kind.replace("*", " * ").split()).replace(" *", "*")
    return kind, name


def kernel_names(source: str) -> list[str]:
    """The names of the ``extern "C" __global__`` functions that a CUDA source defines.

    Parsed from the text after expanding its ``#define`` macros (so kernels stamped out per
    dtype by a macro are found), in order of appearance, without duplicates. A ``__global__``
    function without C linkage (a template, a mangled C++ name) is not listed.

    >>> kernel_names('#define K(S) extern "C" __global__ void f_##S() {}\\nK(f32) K(f16)')
    ['f_f32', 'f_f16']
    """
    return list(kernel_signatures(source))


# ----------------------------------------------------------------------------- NVRTC
def _wheel_dir(package: str, sub: str) -> Path | None:
    """``<site-packages>/nvidia/<package>/<sub>`` of an NVIDIA wheel, when installed."""
    try:
        module = __import__(f"nvidia.{package}", fromlist=["_"])
    except ImportError:
        return None
    for root in getattr(module, "__path__", []):
        path = Path(root) / sub
        if path.is_dir():
            return path
    return None


def cuda_include_dir() -> Path | None:
    """The CUDA headers of the ``nvidia-cuda-runtime-cu12`` wheel (``cuda_fp16.h``...), or None.

    >>> (cuda_include_dir() / "cuda_fp16.h").exists()   # with the wheel installed
    True
    """
    path = _wheel_dir("cuda_runtime", "include")
    return path if path is not None and (path / "cuda_fp16.h").exists() else None


_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def nvrtc_library() -> ctypes.CDLL:
    """``libnvrtc`` loaded with ctypes: the ``nvidia-cuda-nvrtc-cu12`` wheel's copy first, then
    the system's. Raises :class:`~gradient.errors.DeviceError` naming the wheel when neither
    exists.

    >>> nvrtc_library().nvrtcVersion   # doctest: +ELLIPSIS
    <_FuncPtr object at ...>
    """
    candidates = []
    lib = _wheel_dir("cuda_nvrtc", "lib")
    if lib is not None:
        candidates += sorted(str(p) for p in lib.glob("libnvrtc.so*") if ".alt." not in p.name)
        candidates += sorted(str(p) for p in lib.glob("nvrtc64*.dll"))
    found = ctypes.util.find_library("nvrtc")
    if found:
        candidates.append(found)
    candidates.append("libnvrtc.so.12")
    errors = []
    for candidate in candidates:
        try:
            nvrtc = ctypes.CDLL(candidate)
        except OSError as exc:
            errors.append(f"{candidate}: {exc}")
            continue
        _declare(nvrtc)
        return nvrtc
    raise DeviceError(
        "NVRTC (the CUDA runtime compiler, libnvrtc) was not found, so CUDA kernels cannot be "
        f"compiled. Install it with: pip install {_NVRTC_WHEEL} {_RUNTIME_WHEEL}"
        + (f" (tried: {'; '.join(errors)})" if errors else ""))


def _declare(nvrtc: ctypes.CDLL) -> None:
    prog, prog_p, size_p = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(
        ctypes.c_size_t)
    strings = ctypes.POINTER(ctypes.c_char_p)
    signatures = {
        "nvrtcCreateProgram": [prog_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, strings,
                               strings],
        "nvrtcCompileProgram": [prog, ctypes.c_int, strings],
        "nvrtcGetPTXSize": [prog, size_p],
        "nvrtcGetPTX": [prog, ctypes.c_char_p],
        "nvrtcGetProgramLogSize": [prog, size_p],
        "nvrtcGetProgramLog": [prog, ctypes.c_char_p],
        "nvrtcDestroyProgram": [prog_p],
    }
    for name, argtypes in signatures.items():
        fn = getattr(nvrtc, name)
        fn.argtypes = argtypes
        fn.restype = ctypes.c_int
    nvrtc.nvrtcGetErrorString.argtypes = [ctypes.c_int]
    nvrtc.nvrtcGetErrorString.restype = ctypes.c_char_p
    nvrtc.nvrtcVersion.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
    nvrtc.nvrtcVersion.restype = ctypes.c_int


def _compute_arch(arch) -> str:
    """``"sm_80"``, ``"compute_80"``, ``"80"`` or ``80`` -> ``"compute_80"``."""
    m = re.fullmatch(r"(?:sm_|compute_)?(\d{2,3}[a-z]?)", str(arch).strip())
    if m is None:
        raise DeviceError(f"compile_ptx: expected a CUDA architecture such as 'sm_80' or "
                          f"'compute_90', got {arch!r}")
    return f"compute_{m.group(1)}"


def compile_ptx(source: str, arch: str = "sm_80", name: str = "kernel.cu") -> str:
    """Compile CUDA C ``source`` to PTX text for ``arch`` with NVRTC; no GPU needed.

    Options: ``--gpu-architecture=compute_XX --std=c++17`` and ``-I`` the CUDA headers of the
    ``nvidia-cuda-runtime-cu12`` wheel when it is installed. ``name`` is the file name the
    compiler's messages mention. A compile error raises :class:`~gradient.errors.DeviceError`
    with the compiler's log.

    >>> ptx = compile_ptx('extern "C" __global__ void fill(float* x) { x[0] = 1.0f; }', "sm_90")
    >>> ".entry fill" in ptx
    True
    """
    options = [f"--gpu-architecture={_compute_arch(arch)}", "--std=c++17"]
    nvrtc = nvrtc_library()
    include = cuda_include_dir()
    if include is not None:
        options.append(f"-I{include}")

    def check(result: int, what: str) -> None:
        if result != 0:
            message = nvrtc.nvrtcGetErrorString(result).decode(errors="replace")
            raise DeviceError(f"NVRTC {what} failed for {name}: {message} ({result})")

    program = ctypes.c_void_p()
    with _lock:  # one NVRTC call sequence at a time (libnvrtc is thread-safe; keep logs simple)
        check(nvrtc.nvrtcCreateProgram(ctypes.byref(program), source.encode(), name.encode(),
                                       0, None, None), "nvrtcCreateProgram")
        try:
            opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
            result = nvrtc.nvrtcCompileProgram(program, len(options), opts)
            size = ctypes.c_size_t()
            check(nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size)),
                  "nvrtcGetProgramLogSize")
            log = ctypes.create_string_buffer(size.value)
            check(nvrtc.nvrtcGetProgramLog(program, log), "nvrtcGetProgramLog")
            log_text = log.value.decode(errors="replace").strip()
            if result != 0:
                status = nvrtc.nvrtcGetErrorString(result).decode(errors="replace")
                raise DeviceError(
                    f"CUDA kernel {name} does not compile for {_compute_arch(arch)} ({status}); "
                    f"fix the source. Compiler log:\n{log_text}")
            check(nvrtc.nvrtcGetPTXSize(program, ctypes.byref(size)), "nvrtcGetPTXSize")
            ptx = ctypes.create_string_buffer(size.value)
            check(nvrtc.nvrtcGetPTX(program, ptx), "nvrtcGetPTX")
        finally:
            nvrtc.nvrtcDestroyProgram(ctypes.byref(program))
    return ptx.value.decode()


# ----------------------------------------------------------------------------- CuPy modules
_modules: dict = {}


def load_module(stem: str):
    """The ``cupy.RawModule`` of ``kernels/<stem>.cu``, compiled on first use and cached.

    Needs CuPy and a GPU (CuPy compiles with NVRTC for the current device, and caches the
    binary on disk). Raises :class:`~gradient.errors.DeviceError` for an unknown file or
    without CuPy. On a GPU machine:

    >>> module = load_module("softmax")  # doctest: +SKIP
    >>> softmax = module.get_function("softmax_forward_f32")  # doctest: +SKIP
    """
    module = _modules.get(stem)
    if module is not None:
        return module
    path = KERNEL_DIR / f"{stem}.cu"
    if not path.is_file():
        raise DeviceError(f"no CUDA kernel file kernels/{stem}.cu; the files are: "
                          f"{', '.join(kernel_sources()) or 'none'}")
    try:
        import cupy
    except ImportError as exc:
        raise DeviceError("CUDA kernels need CuPy: pip install cupy-cuda12x") from exc
    options = ("--std=c++17",)
    include = cuda_include_dir()
    if include is not None:  # cuda_fp16.h / cuda_bf16.h where CuPy does not bring them
        options += (f"-I{include}",)
    module = cupy.RawModule(code=path.read_text(encoding="utf-8"), options=options)
    _modules[stem] = module
    return module


def get_kernel(stem: str, name: str):
    """The kernel ``name`` of ``kernels/<stem>.cu`` as a ``cupy.RawKernel`` (compiled on first
    use). A compile error or an unknown name raises :class:`~gradient.errors.DeviceError`.
    On a GPU machine, with ``x`` and ``y`` float32 CuPy arrays of one size:

    >>> kernel = get_kernel("gelu", "gelu_forward_f32")  # doctest: +SKIP
    >>> grid = ((x.size + 255) // 256,)  # doctest: +SKIP
    >>> kernel(grid, (256,), (x, y, np.int64(x.size), np.int32(0)))  # doctest: +SKIP
    """
    module = load_module(stem)
    try:
        return module.get_function(name)
    except Exception as exc:  # CuPy's CompileException, or CUDA_ERROR_NOT_FOUND for the name
        known = kernel_names((KERNEL_DIR / f"{stem}.cu").read_text(encoding="utf-8"))
        if name not in known:
            raise DeviceError(f"kernels/{stem}.cu has no kernel {name!r}; it defines: "
                              f"{', '.join(known)}") from exc
        raise DeviceError(f"CUDA kernel file kernels/{stem}.cu failed to load: {exc}") from exc
