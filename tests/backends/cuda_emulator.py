"""A CPU emulator of CUDA kernels for the tests: runs ``kernels/*.cu`` on a machine without a GPU.

Each kernel file is built by the host C++ compiler together with a shim of the device API the
kernels use (``threadIdx``/``blockIdx``/``blockDim`` in x, ``__syncthreads``, warp shuffles,
atomics, float16/bfloat16 with the device's rounding). Every CUDA thread of a block is a
coroutine of the calling host thread, so a launch is deterministic. It checks the kernels'
arithmetic, block reductions and launch arguments; it does not model the memory system (races
between threads and out-of-bounds accesses go unseen), so the ``gpu`` tests remain the judge.
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


# The emulator's CUDA: enough of the device API for kernels that use the x dimension only.
# Every CUDA thread of a block is a coroutine (ucontext) of the calling host thread; a thread
# runs until it reaches a barrier (__syncthreads, or a warp shuffle's exchange) and the
# scheduler resumes the waiting threads once all the threads the barrier is for are there:
# deterministic, and no OS context switches. A barrier that can never be met (a __syncthreads
# or a shuffle that some threads skip) is reported as a failed launch.
_SHIM = r'''
#include <cmath>
#include <cstdint>
#include <cstring>
#include <math.h>
#include <memory>
#include <ucontext.h>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

struct emu_dim3 { unsigned int x, y, z; };
static emu_dim3 threadIdx = {0, 0, 0}, blockIdx = {0, 0, 0};
static emu_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};

enum { EMU_RUNNABLE, EMU_AT_SYNCTHREADS, EMU_AT_SHUFFLE, EMU_DONE };
struct emu_fiber { ucontext_t context; int state; };
static std::vector<emu_fiber> emu_fibers;
static ucontext_t emu_scheduler;
static unsigned emu_current;
static void (*emu_call)(void**);
static void** emu_args;
static unsigned long long emu_exchange[1024];

static void emu_wait(int state) {
    emu_fibers[emu_current].state = state;
    swapcontext(&emu_fibers[emu_current].context, &emu_scheduler);
}
static void emu_entry() {
    emu_call(emu_args);
    emu_fibers[emu_current].state = EMU_DONE;  // returns to uc_link: the scheduler
}

static inline void __syncthreads() { emu_wait(EMU_AT_SYNCTHREADS); }

template <typename V>
static inline V __shfl_xor_sync(unsigned, V v, int lane_mask) {
    const unsigned t = threadIdx.x;
    std::memcpy(&emu_exchange[t], &v, sizeof(V));
    emu_wait(EMU_AT_SHUFFLE);  // every lane of the warp has written
    V r;
    std::memcpy(&r, &emu_exchange[(t & ~31u) | ((t & 31u) ^ (unsigned)lane_mask)], sizeof(V));
    emu_wait(EMU_AT_SHUFFLE);  // every lane has read
    return r;
}

static inline float atomicAdd(float* p, float v) { const float old = *p; *p = old + v; return old; }

static inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
struct float2 { float x, y; };
static inline float2 make_float2(float x, float y) { return float2{x, y}; }

// float16 and bfloat16 storage, converted in software with round-to-nearest-even
struct __half { uint16_t bits; };
struct __nv_bfloat16 { uint16_t bits; };
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

// Runs the blocks of a grid one after the other; returns 0, or 1 when a barrier deadlocked.
extern "C" int emu_launch(void (*call)(void**), void** args, unsigned grid, unsigned block) {
    const size_t stack = 256 * 1024;
    std::unique_ptr<char[]> stacks(new char[stack * block]);
    emu_call = call;
    emu_args = args;
    blockDim = {block, 1, 1};
    gridDim = {grid, 1, 1};
    emu_fibers.assign(block, emu_fiber());
    for (unsigned b = 0; b < grid; ++b) {
        blockIdx = {b, 0, 0};
        for (unsigned t = 0; t < block; ++t) {
            emu_fiber& f = emu_fibers[t];
            getcontext(&f.context);
            f.context.uc_stack.ss_sp = stacks.get() + stack * t;
            f.context.uc_stack.ss_size = stack;
            f.context.uc_link = &emu_scheduler;
            makecontext(&f.context, emu_entry, 0);
            f.state = EMU_RUNNABLE;
        }
        for (;;) {
            for (unsigned t = 0; t < block; ++t) {  // run everyone to its next barrier or end
                if (emu_fibers[t].state != EMU_RUNNABLE) continue;
                emu_current = t;
                threadIdx = {t, 0, 0};
                swapcontext(&emu_scheduler, &emu_fibers[t].context);
            }
            unsigned done = 0, at_sync = 0;
            bool released = false;
            for (unsigned w = 0; w < block / 32; ++w) {  // a shuffle waits for its warp
                unsigned at_shuffle = 0;
                for (unsigned t = 32 * w; t < 32 * w + 32; ++t)
                    at_shuffle += emu_fibers[t].state == EMU_AT_SHUFFLE;
                if (at_shuffle == 32) {
                    for (unsigned t = 32 * w; t < 32 * w + 32; ++t)
                        emu_fibers[t].state = EMU_RUNNABLE;
                    released = true;
                }
            }
            for (unsigned t = 0; t < block; ++t) {
                done += emu_fibers[t].state == EMU_DONE;
                at_sync += emu_fibers[t].state == EMU_AT_SYNCTHREADS;
            }
            if (done == block) break;
            if (!released && at_sync + done == block) {  // __syncthreads waits for the block
                for (unsigned t = 0; t < block; ++t)
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
    above, each CUDA thread a coroutine, the blocks of a grid one after the other."""

    name = "emulator"

    def __init__(self, cxx: str, tmp_dir, check_args):
        self.cxx, self.tmp_dir, self.check_args = cxx, str(tmp_dir), check_args
        self._libs: dict = {}
        self._lock = threading.Lock()

    def source(self, stem: str) -> str:
        """The shim, the kernel file without its CUDA includes, and one ``emu_call_<name>``
        per kernel that unpacks an array of argument pointers into the typed call."""
        code = re.sub(r"#\s*include\s*<cuda_(fp16|bf16)\.h>", "", SOURCES[stem])
        calls = []
        for name, params in kernel_signatures(SOURCES[stem]).items():
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
        # -ffp-contract=off: no fused multiply-adds the CUDA source did not ask for
        done = subprocess.run([self.cxx, "-std=c++17", "-O1", "-shared", "-fPIC",
                               "-ffp-contract=off", "-Wno-unknown-pragmas", "-o", lib, src],
                              capture_output=True, text=True)
        assert done.returncode == 0, f"emulator build of {stem}.cu failed:\n{done.stderr}"
        library = ctypes.CDLL(lib)
        library.emu_launch.restype = ctypes.c_int
        library.emu_launch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint,
                                       ctypes.c_uint]
        with self._lock:
            return self._libs.setdefault(stem, library)

    def to_device(self, a):
        return np.array(a, copy=True, order="C")

    def to_host(self, a):
        return np.array(a, copy=True)

    def launch(self, stem, name, grid, block, args, shared_mem=0):
        self.check_args(stem, name, args)
        grid, block = tuple(grid) + (1, 1), tuple(block) + (1, 1)
        assert grid[1:3] == (1, 1) and block[1:3] == (1, 1), "the emulator has x dimensions only"
        assert block[0] % 32 == 0 and 32 <= block[0] <= 1024, f"block {block[0]}"
        assert shared_mem == 0, "the emulator has no dynamic shared memory"
        library = self.build(stem)
        values = []
        for (kind, _), arg in zip(kernel_signatures(SOURCES[stem])[name], args):
            if kind.endswith("*"):
                values.append(ctypes.c_void_p(None if arg is None else arg.ctypes.data))
            else:
                ctype = {"long long": ctypes.c_longlong, "int": ctypes.c_int,
                         "float": ctypes.c_float, "double": ctypes.c_double}[kind]
                values.append(ctype(arg.item()))
        argv = (ctypes.c_void_p * max(1, len(values)))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        call = ctypes.cast(getattr(library, f"emu_call_{name}"), ctypes.c_void_p)
        failed = library.emu_launch(call, argv, grid[0], block[0])
        assert not failed, f"{name}: deadlock (a __syncthreads or shuffle not reached by all)"
