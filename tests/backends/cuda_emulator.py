"""A CPU emulator of CUDA kernels for the tests: runs ``kernels/*.cu`` on a machine without a GPU.

Each kernel file is built by the host C++ compiler together with a shim of the device API the
kernels use (``threadIdx``/``blockIdx``/``blockDim``/``gridDim`` in x, y and z, ``__syncthreads``,
warp shuffles, atomics, static ``__shared__`` arrays, ``float4``, bit casts and funnel shifts,
float16/bfloat16 with the device's rounding). Every CUDA thread of a block is a coroutine of the
calling host thread, so a launch is deterministic. It checks the kernels' arithmetic, block and
warp reductions and launch arguments; it does not model the memory system (races between threads
and out-of-bounds accesses go unseen), so the ``gpu`` tests remain the judge.

Example (``check_args(stem, name, args)`` checks the arguments' types, or does nothing)::

    runner = EmulatorRunner(host_cxx(), tmp_dir, lambda stem, name, args: None)
    x = runner.to_device(np.ones((4, 64), np.float32))
    runner.launch("softmax", "softmax_forward_f32", (4,), (64,), (x, x, np.int64(4), np.int64(64)))
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import threading

import numpy as np

from gradient.backends.cuda.compile import kernel_signatures, kernel_sources

SOURCES = kernel_sources()

#: the NumPy type each C scalar parameter must be passed as (CuPy passes a scalar by its own
#: size: a wrong type is garbage)
C_SCALARS = {"long long": np.int64, "int": np.int32, "float": np.float32, "double": np.float64}
#: the array dtypes each C pointee accepts
C_POINTEES = {"float": ("float32",), "__half": ("float16",), "__nv_bfloat16": ("bfloat16",),
              "long long": ("int64",), "int": ("int32",), "double": ("float64",),
              "unsigned char": ("uint8",), "signed char": ("int8",)}
_SIGNATURES: dict = {}


def check_launch_args(stem: str, name: str, args: tuple, *, pointees=C_POINTEES,
                      nullable: bool = False) -> None:
    """Assert that every launch argument of kernel ``name`` (of ``kernels/<stem>.cu``) has the
    exact type of its C parameter and that arrays are contiguous. ``pointees`` may accept more
    dtypes for a pointee; ``nullable``: a None pointer is allowed (an optional array)."""
    if stem not in _SIGNATURES:
        _SIGNATURES[stem] = kernel_signatures(SOURCES[stem])
    assert name in _SIGNATURES[stem], f"{stem}.cu has no kernel {name}"
    params = _SIGNATURES[stem][name]
    assert len(args) == len(params), f"{name}: {len(args)} arguments for {len(params)} parameters"
    for (kind, pname), arg in zip(params, args):
        if kind.endswith("*"):
            if arg is None and nullable:
                continue
            pointee = kind[:-1].replace("const ", "").strip()
            assert str(arg.dtype) in pointees[pointee], (
                f"{name}({pname}): {kind} needs {' or '.join(pointees[pointee])} data, got "
                f"{arg.dtype}")
            assert arg.flags.c_contiguous, f"{name}({pname}): not contiguous"
        else:
            assert type(arg) is C_SCALARS[kind], (
                f"{name}({pname}): {kind} needs {C_SCALARS[kind].__name__}, got {type(arg)}")


# The emulator's CUDA: enough of the device API for the kernels of kernels/*.cu.
# Every CUDA thread of a block is a coroutine (ucontext) of the calling host thread; a thread
# runs until it reaches a barrier (__syncthreads, or a warp shuffle's exchange) and the
# scheduler resumes the waiting threads once all the threads the barrier is for are there:
# deterministic, and no OS context switches. A barrier that can never be met (a __syncthreads
# or a shuffle that some threads skip) is reported as a failed launch. Blocks and grids have
# x, y and z; a block's threads are numbered x fastest, then y, then z, and each 32 consecutive
# numbers are a warp, as on the device.
_SHIM = r'''
#include <cmath>
#include <cstdint>
#include <cstring>
#include <math.h>
#include <memory>
#include <ucontext.h>
#include <vector>

// ---- declaration specifiers: no meaning on the host. A __shared__ variable is a static, one
// per kernel (or per template instance), which is right because blocks run one after the other.
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

// ---- launch geometry: threadIdx and blockIdx are set by the scheduler before it resumes a thread
struct emu_dim3 { unsigned int x, y, z; };
static emu_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0};
static emu_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};

// ---- the coroutines and their scheduler's state
enum { EMU_RUNNABLE, EMU_AT_SYNCTHREADS, EMU_AT_SHUFFLE, EMU_DONE };
struct emu_fiber {
    ucontext_t context;
    int state;
    unsigned shuffles;  // shuffles done so far: picks the exchange buffer of the next one
    emu_dim3 index;     // the thread's threadIdx
};
static std::vector<emu_fiber> emu_fibers;
static ucontext_t emu_scheduler;
static unsigned emu_current;  // linear index of the running thread in its block
static void (*emu_call)(void**);
static void** emu_args;

static void emu_wait(int state) {
    emu_fibers[emu_current].state = state;
    swapcontext(&emu_fibers[emu_current].context, &emu_scheduler);
}
static void emu_entry() {
    emu_call(emu_args);
    emu_fibers[emu_current].state = EMU_DONE;  // returns to uc_link: the scheduler
}

// ---- barriers: __syncthreads waits for the whole block
static inline void __syncthreads() { emu_wait(EMU_AT_SYNCTHREADS); }

// ---- warp shuffles (the mask is not checked: every thread of the warp must take part). Each
// lane writes its value, waits until the whole warp has written, then reads its source lane's.
// Two exchange buffers, used in turn: a lane that goes on to its next shuffle cannot overwrite
// a value that a slower lane has yet to read from this one.
static unsigned long long emu_exchange[2][1024];
template <typename V>
static inline V emu_shuffle(V v, unsigned src_lane) {
    static_assert(sizeof(V) <= sizeof(unsigned long long), "shuffle of a value over 8 bytes");
    unsigned long long* buffer = emu_exchange[emu_fibers[emu_current].shuffles++ & 1];
    std::memcpy(&buffer[emu_current], &v, sizeof(V));
    emu_wait(EMU_AT_SHUFFLE);  // every lane of the warp has written
    V r;
    std::memcpy(&r, &buffer[(emu_current & ~31u) | (src_lane & 31u)], sizeof(V));
    return r;
}
static inline unsigned emu_lane() { return emu_current & 31u; }
// lane ^ lane_mask; within segments of `width` lanes, a source past the lane's segment gives the
// lane its own value
template <typename V>
static inline V __shfl_xor_sync(unsigned, V v, int lane_mask, int width = 32) {
    const unsigned lane = emu_lane(), src = lane ^ (unsigned)lane_mask;
    return emu_shuffle(v, src >= ((lane & ~(unsigned)(width - 1)) + width) ? lane : src);
}
// the value of lane src_lane % width of the lane's segment of `width` lanes
template <typename V>
static inline V __shfl_sync(unsigned, V v, int src_lane, int width = 32) {
    const unsigned w = (unsigned)width;
    return emu_shuffle(v, (emu_lane() & ~(w - 1)) | ((unsigned)src_lane & (w - 1)));
}

// ---- atomics: threads never run at the same time, so a plain read-modify-write is atomic
static inline float atomicAdd(float* p, float v) { const float old = *p; *p = old + v; return old; }

// ---- integer and float helpers: min / max overloads, bit casts, funnel shift
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
static inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
// the low 32 bits of the 64-bit hi:lo shifted right by shift % 32
static inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned shift) {
    return (unsigned)((((unsigned long long)hi << 32) | lo) >> (shift & 31));
}

// ---- float32 arithmetic with explicit rounding (the host rounds to nearest already)
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }

// ---- vector types, with the device's size and alignment
struct float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

// ---- float16 and bfloat16 storage, converted in software with round-to-nearest-even
struct __half { uint16_t bits; };
struct __nv_bfloat16 { uint16_t bits; };
static inline __half __ushort_as_half(unsigned short bits) { __half h; h.bits = bits; return h; }
static inline unsigned short __half_as_ushort(__half h) { return h.bits; }
static inline float __half2float(__half h) {
    const uint32_t sign = (uint32_t)(h.bits & 0x8000) << 16, exp = (h.bits >> 10) & 0x1f,
                   mant = h.bits & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        const float f = ldexpf((float)mant, -24);
        std::memcpy(&u, &f, 4);
    } else if (exp == 31) {
        u = 0x7f800000u | (mant << 13);
    } else {
        u = ((exp + 112) << 23) | (mant << 13);
    }
    u |= sign;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
static inline __half __float2half_rn(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint16_t sign = (x >> 16) & 0x8000;
    const uint32_t a = x & 0x7fffffffu;
    __half h;
    if (a > 0x7f800000u) { h.bits = sign | 0x7e00; return h; }     // NaN
    if (a >= 0x477ff000u) { h.bits = sign | 0x7c00; return h; }    // >= 65520: inf
    if (a < 0x38800000u) {                                          // below 2^-14: subnormal
        float af;
        std::memcpy(&af, &a, 4);
        h.bits = sign | (uint16_t)nearbyintf(af * 16777216.0f);
        return h;
    }
    uint32_t r = (((a >> 23) - 112) << 10) | ((a >> 13) & 0x3ff);
    const uint32_t rest = a & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) ++r;
    h.bits = sign | (uint16_t)r;
    return h;
}
static inline float __bfloat162float(__nv_bfloat16 b) {
    const uint32_t u = (uint32_t)b.bits << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
static inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    __nv_bfloat16 b;
    b.bits = (u & 0x7fffffffu) > 0x7f800000u ? 0x7fc0
                                              : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
    return b;
}

// ---- the launch: runs the blocks of a grid one after the other (x fastest, then y, then z);
// returns 0, or 1 when a barrier deadlocked.
extern "C" int emu_launch(void (*call)(void**), void** args, unsigned gx, unsigned gy,
                          unsigned gz, unsigned bx, unsigned by, unsigned bz) {
    const size_t stack = 256 * 1024;
    const unsigned n = bx * by * bz, n_warps = (n + 31) / 32;
    std::unique_ptr<char[]> stacks(new char[stack * n]);
    emu_call = call;
    emu_args = args;
    blockDim = {bx, by, bz};
    gridDim = {gx, gy, gz};
    emu_fibers.assign(n, emu_fiber());
    for (unsigned t = 0; t < n; ++t) emu_fibers[t].index = {t % bx, t / bx % by, t / (bx * by)};
    for (unsigned z = 0; z < gz; ++z)
    for (unsigned y = 0; y < gy; ++y)
    for (unsigned x = 0; x < gx; ++x) {
        blockIdx = {x, y, z};
        for (unsigned t = 0; t < n; ++t) {
            emu_fiber& f = emu_fibers[t];
            getcontext(&f.context);
            f.context.uc_stack.ss_sp = stacks.get() + stack * t;
            f.context.uc_stack.ss_size = stack;
            f.context.uc_link = &emu_scheduler;
            makecontext(&f.context, emu_entry, 0);
            f.state = EMU_RUNNABLE;
            f.shuffles = 0;
        }
        for (;;) {
            for (unsigned t = 0; t < n; ++t) {  // run everyone to its next barrier or end
                if (emu_fibers[t].state != EMU_RUNNABLE) continue;
                emu_current = t;
                threadIdx = emu_fibers[t].index;
                swapcontext(&emu_scheduler, &emu_fibers[t].context);
            }
            unsigned done = 0, at_sync = 0;
            bool released = false;
            for (unsigned w = 0; w < n_warps; ++w) {  // a shuffle waits for its whole warp
                const unsigned first = 32 * w, end = first + 32 < n ? first + 32 : n;
                unsigned at_shuffle = 0;
                for (unsigned t = first; t < end; ++t)
                    at_shuffle += emu_fibers[t].state == EMU_AT_SHUFFLE;
                if (at_shuffle == end - first) {
                    for (unsigned t = first; t < end; ++t) emu_fibers[t].state = EMU_RUNNABLE;
                    released = true;
                }
            }
            for (unsigned t = 0; t < n; ++t) {
                done += emu_fibers[t].state == EMU_DONE;
                at_sync += emu_fibers[t].state == EMU_AT_SYNCTHREADS;
            }
            if (done == n) break;
            if (!released && at_sync + done == n) {  // __syncthreads waits for the block
                for (unsigned t = 0; t < n; ++t)
                    if (emu_fibers[t].state == EMU_AT_SYNCTHREADS)
                        emu_fibers[t].state = EMU_RUNNABLE;
                released = true;
            }
            if (!released) return 1;  // threads wait at barriers that cannot complete
        }
    }
    return 0;
}
'''


def host_cxx() -> str | None:
    """The host C++ compiler that builds the emulator, or None."""
    for name in (os.environ.get("CXX"), "g++", "clang++", "c++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class EmulatorRunner:
    """Runs kernels on the CPU: each .cu file built with the host C++ compiler and the shim
    above, each CUDA thread a coroutine, the blocks of a grid one after the other. "Device"
    arrays are NumPy arrays (``to_device`` / ``to_host`` copy); ``check_args(stem, name, args)``
    is called on every launch's arguments before they are passed by their C types."""

    name = "emulator"

    def __init__(self, cxx: str, tmp_dir, check_args, sources: dict | None = None):
        self.cxx, self.tmp_dir, self.check_args = cxx, str(tmp_dir), check_args
        self.sources = SOURCES if sources is None else sources  # {stem: CUDA source}
        self._libs: dict = {}
        self._signatures: dict = {}
        self._lock = threading.Lock()

    def signatures(self, stem: str) -> dict:
        """``kernel_signatures`` of kernels/<stem>.cu, parsed once."""
        if stem not in self._signatures:
            self._signatures[stem] = kernel_signatures(self.sources[stem])
        return self._signatures[stem]

    def source(self, stem: str) -> str:
        """The shim, the kernel file without its CUDA includes, and one ``emu_call_<name>``
        per kernel that unpacks an array of argument pointers into the typed call."""
        code = re.sub(r"#\s*include\s*<cuda_(fp16|bf16)\.h>", "", self.sources[stem])
        calls = []
        for name, params in self.signatures(stem).items():
            unpacked = ", ".join(f"*({kind}*)a[{i}]" for i, (kind, _) in enumerate(params))
            calls.append(f'extern "C" void emu_call_{name}(void** a) {{ {name}({unpacked}); }}')
        return _SHIM + "\n#line 1 \"" + stem + ".cu\"\n" + code + "\n" + "\n".join(calls) + "\n"

    def build(self, stem: str):
        """The emulator library of kernels/<stem>.cu, built on first use (thread-safe)."""
        with self._lock:
            if stem in self._libs:
                return self._libs[stem]
        src = os.path.join(self.tmp_dir, f"emu_{stem}_{threading.get_ident()}.cpp")
        lib = src[:-4] + ".so"
        with open(src, "w") as f:
            f.write(self.source(stem))
        # -ffp-contract=off: no fused multiply-adds the CUDA source did not ask for;
        # -fno-strict-aliasing: kernels read byte buffers through word pointers, as CUDA allows
        done = subprocess.run([self.cxx, "-std=c++17", "-O1", "-shared", "-fPIC",
                               "-ffp-contract=off", "-fno-strict-aliasing",
                               "-Wno-unknown-pragmas", "-o", lib, src],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"emulator build of {stem}.cu failed:\n{done.stderr}"
        library = ctypes.CDLL(lib)
        library.emu_launch.restype = ctypes.c_int
        library.emu_launch.argtypes = [ctypes.c_void_p, ctypes.c_void_p] + [ctypes.c_uint] * 6
        with self._lock:
            return self._libs.setdefault(stem, library)

    def to_device(self, a):
        """A C-contiguous copy of ``a`` at a 256-byte aligned address, as cudaMalloc gives (so
        that a kernel's aligned vector loads take the same path as on the device)."""
        a = np.asarray(a)
        raw = np.empty(a.nbytes + 256, np.uint8)
        start = -raw.ctypes.data % 256
        out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
        out[...] = a
        return out

    def to_host(self, a):
        return np.array(a, copy=True)

    def launch(self, stem, name, grid, block, args, shared_mem=0):
        """Runs kernel ``name`` of kernels/<stem>.cu on ``grid`` blocks of ``block`` threads,
        each a 1-, 2- or 3-tuple (x[, y[, z]]) of positive ints, with the limits of the device:
        at most 1024 threads a block, block z <= 64, grid x < 2**31, grid y and z <= 65535."""
        self.check_args(stem, name, args)
        for what, dims in (("grid", grid), ("block", block)):
            assert 1 <= len(tuple(dims)) <= 3 and all(int(d) >= 1 for d in dims), (
                f"{name}: {what} {dims} is not 1 to 3 positive sizes")
        grid = tuple(int(d) for d in grid) + (1,) * (3 - len(tuple(grid)))
        block = tuple(int(d) for d in block) + (1,) * (3 - len(tuple(block)))
        assert block[0] * block[1] * block[2] <= 1024 and block[2] <= 64, (
            f"{name}: block {block} (at most 1024 threads, z at most 64)")
        assert grid[0] < 2 ** 31 and grid[1] <= 65535 and grid[2] <= 65535, f"{name}: grid {grid}"
        assert shared_mem == 0, "the emulator has no dynamic shared memory"
        library = self.build(stem)
        values = []
        for (kind, _), arg in zip(self.signatures(stem)[name], args):
            if kind.endswith("*"):
                values.append(ctypes.c_void_p(None if arg is None else arg.ctypes.data))
            else:
                ctype = {"long long": ctypes.c_longlong, "int": ctypes.c_int,
                         "float": ctypes.c_float, "double": ctypes.c_double}[kind]
                values.append(ctype(arg.item()))
        argv = (ctypes.c_void_p * max(1, len(values)))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        call = ctypes.cast(getattr(library, f"emu_call_{name}"), ctypes.c_void_p)
        failed = library.emu_launch(call, argv, *grid, *block)
        assert not failed, f"{name}: deadlock (a __syncthreads or shuffle not reached by all)"


def build_emulator(tmp_dir, check_args, stems) -> EmulatorRunner:
    """An :class:`EmulatorRunner` with the kernel files ``stems`` built (two at a time: most of
    the emulator's cost is the C++ compiler), for a pytest fixture; skips the test on a machine
    that cannot build one (not Linux, or no host C++ compiler)."""
    import sys

    import pytest
    if not sys.platform.startswith("linux"):
        pytest.skip("the kernel emulator needs Linux (ucontext coroutines)")
    cxx = host_cxx()
    if cxx is None:
        pytest.skip("no host C++ compiler (g++, clang++) to build the kernel emulator")
    runner = EmulatorRunner(cxx, tmp_dir, check_args)
    stems = sorted(stems)
    for i in range(0, len(stems), 2):
        threads = [threading.Thread(target=runner.build, args=(stem,)) for stem in stems[i:i + 2]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return runner
