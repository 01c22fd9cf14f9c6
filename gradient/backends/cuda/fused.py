"""The CUDA backend's fused fast paths: launchers of the kernels in ``kernels/*.cu``.

Each function has the signature of the CPU kernel of the same name in
:mod:`gradient.backends.cpu_kernels` (raw arrays in, raw arrays out, None to decline), so
``gradient.ops`` uses either without knowing the device. They decline float64 (the kernels
exist for float32, float16 and bfloat16 storage): the op then composes CuPy primitives.

Launch shapes follow the kernel files' headers: a block per row (up to 1024 threads) for row
kernels, a grid-stride loop of 256-thread blocks for elementwise ones.

Example (on a GPU)::

    >>> from gradient.backends.cuda import fused
    >>> y = fused.gelu(cupy.ones(8, cupy.float32), "tanh")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ...kernels.registry import register
from ..kv_layout import cache_buffer
from .compile import get_kernel

#: The storage dtypes the kernels of kernels/*.cu exist for (their math is in float32).
_STORAGE = (np.float32, np.float16)


def _on_its_device(fn):
    """``fn`` run with the GPU of its first GPU array argument as CuPy's current device, switched
    only when it is another (on a machine with several GPUs a launcher's outputs must be
    allocated on its inputs' GPU)."""
    @functools.wraps(fn)
    def on_its_device(*args, **kwargs):
        for a in args:
            index = getattr(getattr(a, "device", None), "id", None)
            if index is not None:
                if _cupy().cuda.runtime.getDevice() != index:
                    with _cupy().cuda.Device(index):
                        return fn(*args, **kwargs)
                break
        return fn(*args, **kwargs)
    return on_its_device


def _register(op: str, dtypes=None):
    """Register a launcher as ``op``'s kernel for the backend kind ``"cuda"``, on its arrays'
    GPU (:func:`_on_its_device`)."""
    return lambda fn: register(op, "cuda", "cuda", dtypes)(_on_its_device(fn))


_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float16): "f16"}


def _suffix(*arrays):
    """The kernel suffix of the arrays' one storage dtype, or None when a kernel does not take it."""
    dtype = arrays[0].dtype
    if any(a.dtype != dtype for a in arrays):
        return None
    return _SUFFIX.get(dtype)


def _cupy():
    import cupy
    return cupy


def _rows_cols(x):
    """``x`` as (rows, cols) over its last dimension: the sizes a row kernel takes."""
    cols = x.shape[-1]
    return (x.size // cols if cols else 0), cols


def _rows_launch(rows: int, cols: int):
    block = min(1024, max(32, -(-cols // 32) * 32))
    return (max(1, min(rows, 2 ** 31 - 1)),), (block,)


def _elementwise_launch(n: int):
    return (max(1, min(-(-n // 256), 65536)),), (256,)


def _c(a):
    # C-contiguous; unlike cupy.ascontiguousarray, a 0-d array stays 0-d
    return a if a.flags.c_contiguous else a.copy(order="C")


# ---------------------------------------------------------------------- GELU
@_register("gelu", _STORAGE)
def gelu(x, approximate: str):
    sfx = _suffix(x)
    if sfx is None:
        return None
    x = _c(x)
    y = _cupy().empty_like(x)
    grid, block = _elementwise_launch(x.size)
    get_kernel("gelu", f"gelu_forward_{sfx}")(
        grid, block, (x, y, np.int64(x.size), np.int32(approximate == "tanh")))
    return y


@_register("gelu_backward", _STORAGE)
def gelu_backward(grad, x, approximate: str):
    sfx = _suffix(grad, x)
    if sfx is None or grad.shape != x.shape:
        return None
    grad, x = _c(grad), _c(x)
    dx = _cupy().empty_like(x)
    grid, block = _elementwise_launch(x.size)
    get_kernel("gelu", f"gelu_backward_{sfx}")(
        grid, block, (grad, x, dx, np.int64(x.size), np.int32(approximate == "tanh")))
    return dx


# ---------------------------------------------------------------------- float16 linear
_ONE, _ZERO = np.ones(1, np.float32), np.zeros(1, np.float32)   # GEMM scalars, on the host


@functools.lru_cache(maxsize=1)
def _cublas():
    """CuPy's CUDA runtime and cuBLAS bindings (imported once, on first use)."""
    from cupy_backends.cuda.api import runtime
    from cupy_backends.cuda.libs import cublas
    return runtime, cublas


@_register("low_precision_linear")
def low_precision_linear(x, weight, bias=None):
    """``x @ weight.T (+ bias)`` as float32 for float16 ``x`` (rows, in) and ``weight`` (out, in):
    one cuBLAS GEMM on the tensor cores with float16 operands and a float32 result
    (``cublasGemmEx``, float32 accumulation), the bias added in float32 by the GEMM itself
    (``C`` starts as the bias, ``beta = 1``). The caller rounds once, as PyTorch's addmm does,
    and the weight is read where it is, not widened into a float32 copy on every call.
    ``weight`` may be row-major or the transpose of a row-major (in, out) array; None for what
    this does not take (other dtypes or layouts)."""
    if (x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]
            or x.dtype != np.float16 or weight.dtype != np.float16
            or (bias is not None and bias.shape != (weight.shape[0],))):
        return None
    if weight.flags.c_contiguous:        # (out, in) row-major: column-major (in, out), transposed
        transpose, lead = True, weight.shape[1]
    elif weight.T.flags.c_contiguous:    # (in, out) row-major: column-major (out, in) as it is
        transpose, lead = False, weight.shape[0]
    else:
        return None
    cp = _cupy()
    rows, k, n_out = x.shape[0], x.shape[1], weight.shape[0]
    y = cp.empty((rows, n_out), cp.float32)
    if bias is not None:
        y[...] = bias
    elif k == 0:
        y.fill(0)          # an empty sum
    if y.size == 0 or k == 0:
        return y
    x = _c(x)
    runtime, cublas = _cublas()
    # row-major Y (rows, out) is column-major Y^T (out, rows) = op(W) (out, k) @ X^T (k, rows)
    handle = cp.cuda.device.get_cublas_handle()
    cublas.setStream(handle, cp.cuda.get_current_stream().ptr)
    mode = cublas.getPointerMode(handle)
    if mode != cublas.CUBLAS_POINTER_MODE_HOST:   # alpha and beta are on the host
        cublas.setPointerMode(handle, cublas.CUBLAS_POINTER_MODE_HOST)
    try:
        cublas.gemmEx(handle, cublas.CUBLAS_OP_T if transpose else cublas.CUBLAS_OP_N,
                      cublas.CUBLAS_OP_N, n_out, rows, k, _ONE.ctypes.data,
                      weight.data.ptr, runtime.CUDA_R_16F, lead, x.data.ptr, runtime.CUDA_R_16F, k,
                      (_ZERO if bias is None else _ONE).ctypes.data, y.data.ptr,
                      runtime.CUDA_R_32F, n_out, cublas.CUBLAS_COMPUTE_32F,
                      cublas.CUBLAS_GEMM_DEFAULT)
    finally:
        if mode != cublas.CUBLAS_POINTER_MODE_HOST:
            cublas.setPointerMode(handle, mode)
    return y


# ---------------------------------------------------------------------- rotary embedding, SwiGLU
def _rotary_layout(x_shape, table_shape):
    """``(batch, heads, cs_batch_stride)`` of rotary.cu for x (..., seq, head_dim) and cos/sin
    tables broadcast over x's leading dimensions, or None when the kernel cannot read them.

    The tables may vary along a prefix of x's leading dimensions (the batch, for per-batch
    tables made from position ids) and be broadcast (size 1) along the rest (the heads):
    (seq, D), (1, 1, seq, D), (B, 1, seq, D) for x (B, H, seq, D)."""
    if len(x_shape) < 2 or x_shape[-1] % 2 or len(table_shape) > len(x_shape):
        return None
    table = (1,) * (len(x_shape) - len(table_shape)) + tuple(table_shape)
    if table[-2:] != tuple(x_shape[-2:]):
        return None
    lead, table_lead = tuple(x_shape[:-2]), table[:-2]
    varying = max((i + 1 for i, n in enumerate(table_lead) if n != 1), default=0)
    if table_lead[:varying] != lead[:varying]:
        return None
    seq, dim = x_shape[-2:]
    return (math.prod(lead[:varying]), math.prod(lead[varying:]),
            seq * dim if varying else 0)


@_register("rotary_embedding", _STORAGE)
def rotary_embedding(x, cos, sin, backward: bool):
    """``x * cos + roll(x, half, -1) * sin`` over the last dimension (Hugging Face's rotate_half
    layout with gradient's folded-sign sine table), or with ``backward`` its transpose applied
    to the gradient ``x``: ``x * cos + roll(x * sin, half, -1)``. cos and sin have one shape,
    broadcast over x's leading dimensions as :func:`_rotary_layout` says; the result is x's
    shape, contiguous."""
    sfx = _suffix(x, cos, sin)
    layout = _rotary_layout(x.shape, cos.shape) if cos.shape == sin.shape else None
    if sfx is None or layout is None:
        return None
    batch, heads, stride = layout
    seq, dim = x.shape[-2:]
    x = _c(x)
    out = _cupy().empty_like(x)
    if x.size:
        grid, block = _elementwise_launch(x.size // 2)   # one thread per pair (d, d + half)
        get_kernel("rotary", f"rotary_embedding_{sfx}")(
            grid, block, (x, _c(cos), _c(sin), out, np.int64(batch), np.int64(heads),
                          np.int64(seq), np.int64(dim), np.int64(stride), np.int32(1),
                          np.int32(bool(backward))))
    return out


@_register("swiglu", _STORAGE)
def swiglu(gate, up):
    """``silu(gate) * up`` for gate and up of one shape."""
    sfx = _suffix(gate, up)
    if sfx is None or gate.shape != up.shape:
        return None
    gate, up = _c(gate), _c(up)
    out = _cupy().empty_like(gate)
    if gate.size:
        grid, block = _elementwise_launch(gate.size)
        get_kernel("swiglu", f"swiglu_forward_{sfx}")(grid, block, (gate, up, out,
                                                                    np.int64(gate.size)))
    return out


@_register("swiglu_backward", _STORAGE)
def swiglu_backward(grad, gate, up):
    """``(dgate, dup)`` of :func:`swiglu` for the incoming gradient ``grad``."""
    sfx = _suffix(grad, gate, up)
    if sfx is None or not grad.shape == gate.shape == up.shape:
        return None
    cp = _cupy()
    grad, gate, up = _c(grad), _c(gate), _c(up)
    dgate, dup = cp.empty_like(gate), cp.empty_like(up)
    if gate.size:
        grid, block = _elementwise_launch(gate.size)
        get_kernel("swiglu", f"swiglu_backward_{sfx}")(
            grid, block, (grad, gate, up, dgate, dup, np.int64(gate.size)))
    return dgate, dup


# ---------------------------------------------------------------------- softmax, log-softmax
def _rows_op(stem: str, name: str, *arrays):
    """A row kernel of ``(inputs..., out, rows, cols)`` over the last dimension."""
    sfx = _suffix(*arrays)
    if sfx is None or arrays[0].ndim == 0 or len({a.shape for a in arrays}) != 1:
        return None
    arrays = tuple(_c(a) for a in arrays)
    out = _cupy().empty_like(arrays[0])
    rows, cols = _rows_cols(arrays[0])
    if rows:
        grid, block = _rows_launch(rows, cols)
        get_kernel(stem, f"{name}_{sfx}")(grid, block, (*arrays, out, np.int64(rows),
                                                         np.int64(cols)))
    return out


@_register("softmax", _STORAGE)
def softmax(x):
    return _rows_op("softmax", "softmax_forward", x)


@_register("softmax_backward", _STORAGE)
def softmax_backward(grad, y):
    return _rows_op("softmax", "softmax_backward", grad, y)


@_register("log_softmax", _STORAGE)
def log_softmax(x):
    return _rows_op("softmax", "log_softmax_forward", x)


@_register("log_softmax_backward", _STORAGE)
def log_softmax_backward(grad, y):
    return _rows_op("softmax", "log_softmax_backward", grad, y)


# ---------------------------------------------------------------------- cross-entropy
@_register("cross_entropy", _STORAGE)
def cross_entropy(x, target, ignore_index: int):
    """Per-row cross entropy of logits x (rows, classes) against int64 class indices (rows,),
    all in range or ``ignore_index`` (the caller checks): ``(loss, lse)``, float32 (rows,);
    an ignored row has loss 0."""
    sfx = _suffix(x)
    if sfx is None or x.ndim != 2 or target.shape != x.shape[:1]:
        return None
    cp = _cupy()
    rows, classes = x.shape
    loss = cp.empty(rows, cp.float32)
    lse = cp.empty(rows, cp.float32)
    if rows:
        grid, block = _rows_launch(rows, classes)
        get_kernel("cross_entropy", f"cross_entropy_forward_{sfx}")(
            grid, block, (_c(x), _c(target.astype(np.int64, copy=False)), loss, lse,
                          np.int64(rows), np.int64(classes), np.int64(ignore_index),
                          np.float32(0.0)))
    return loss, lse


@_register("cross_entropy_backward", _STORAGE)
def cross_entropy_backward(x, target, lse, scale):
    """``scale[r] * (softmax(x[r]) - one_hot(target[r]))`` from the forward's log-sum-exp."""
    sfx = _suffix(x)
    if sfx is None or x.ndim != 2 or target.shape != x.shape[:1]:
        return None
    cp = _cupy()
    rows, classes = x.shape
    dx = cp.empty_like(_c(x))
    if rows:
        grid, block = _rows_launch(rows, classes)
        get_kernel("cross_entropy", f"cross_entropy_backward_{sfx}")(
            grid, block, (_c(x), _c(target.astype(np.int64, copy=False)),
                          _c(lse.astype(np.float32, copy=False)),
                          _c(scale.astype(np.float32, copy=False)), dx, np.int64(rows),
                          np.int64(classes), np.int64(-1), np.float32(0.0)))
    return dx


# ---------------------------------------------------------------------- layer norm, RMS norm
@_register("layer_norm", _STORAGE)
def layer_norm(x, weight, bias, eps: float):
    present = [a for a in (weight, bias) if a is not None]
    sfx = _suffix(x, *present)
    if sfx is None or x.ndim == 0:
        return None
    cp = _cupy()
    rows, cols = _rows_cols(x)
    x = _c(x)
    y = cp.empty_like(x)
    mean = cp.empty(x.shape[:-1], cp.float32)
    rstd = cp.empty(x.shape[:-1], cp.float32)
    grid, block = _rows_launch(rows, cols)
    get_kernel("norms", f"layer_norm_forward_{sfx}")(
        grid, block, (x, None if weight is None else _c(weight), None if bias is None else _c(bias),
                      y, mean, rstd, np.int64(rows), np.int64(cols), np.float32(eps)))
    return y, mean, rstd


@_register("layer_norm_backward", _STORAGE)
def layer_norm_backward(grad, x, mean, rstd, weight):
    sfx = _suffix(grad, x, *([] if weight is None else [weight]))
    if sfx is None or grad.shape != x.shape:
        return None
    cp = _cupy()
    rows, cols = _rows_cols(x)
    grad, x = _c(grad), _c(x)
    dx = cp.empty_like(x)
    dw = cp.zeros(cols, cp.float32)
    db = cp.zeros(cols, cp.float32)
    grid, block = _rows_launch(rows, cols)
    get_kernel("norms", f"layer_norm_backward_{sfx}")(
        grid, block, (grad, x, None if weight is None else _c(weight), _c(mean), _c(rstd), dx,
                      dw, db, np.int64(rows), np.int64(cols)))
    return dx, dw.astype(x.dtype), db.astype(x.dtype)


@_register("rms_norm", _STORAGE)
def rms_norm(x, weight, eps: float):
    sfx = _suffix(x, *([] if weight is None else [weight]))
    if sfx is None or x.ndim == 0:
        return None
    cp = _cupy()
    rows, cols = _rows_cols(x)
    x = _c(x)
    y = cp.empty_like(x)
    rstd = cp.empty(x.shape[:-1], cp.float32)
    grid, block = _rows_launch(rows, cols)
    get_kernel("norms", f"rms_norm_forward_{sfx}")(
        grid, block, (x, None if weight is None else _c(weight), y, rstd, np.int64(rows),
                      np.int64(cols), np.float32(eps)))
    return y, rstd


@_register("rms_norm_backward", _STORAGE)
def rms_norm_backward(grad, x, rstd, weight):
    sfx = _suffix(grad, x, *([] if weight is None else [weight]))
    if sfx is None or grad.shape != x.shape:
        return None
    cp = _cupy()
    rows, cols = _rows_cols(x)
    grad, x = _c(grad), _c(x)
    dx = cp.empty_like(x)
    dw = None if weight is None else cp.zeros(cols, cp.float32)
    grid, block = _rows_launch(rows, cols)
    get_kernel("norms", f"rms_norm_backward_{sfx}")(
        grid, block, (grad, x, None if weight is None else _c(weight), _c(rstd), dx, dw,
                      np.int64(rows), np.int64(cols)))
    return dx, None if dw is None else dw.astype(x.dtype)


# ---------------------------------------------------------------------- attention
@_register("attention_forward", _STORAGE)
def attention_forward(q, k, v, scale: float, causal: bool):
    """FlashAttention (``flash.py``: the (L, S) scores stay on chip) where it applies (head dims
    up to 128), else cuBLAS products around the softmax kernel. The second result is what
    :func:`attention_backward` needs, tagged with the path that made it."""
    from . import flash
    result = flash.attention_forward(q, k, v, scale, causal)
    if result is not None:
        return result[0], ("flash", result[1])
    result = _scores_attention_forward(q, k, v, scale, causal)
    return None if result is None else (result[0], ("scores", result[1]))


@_register("attention_backward", _STORAGE)
def attention_backward(grad, q, k, v, out, saved, scale: float, causal: bool):
    from . import flash
    kind, value = saved
    if kind == "flash":
        return flash.attention_backward(grad, q, k, v, out, value, scale, causal)
    return _scores_attention_backward(grad, q, k, v, out, value, scale, causal)


def _scores_attention_forward(q, k, v, scale: float, causal: bool):
    """Attention with the (L, S) scores in memory: cuBLAS products and the softmax kernel."""
    sfx = _suffix(q, k, v)
    if sfx is None or q.shape[:-2] != k.shape[:-2] or k.shape[-2] == 0:
        return None
    cp = _cupy()
    scores = cp.matmul(q, k.swapaxes(-1, -2))
    scores *= scores.dtype.type(scale)
    L, S = scores.shape[-2:]
    if causal:
        hidden = cp.arange(S)[None, :] > cp.arange(L)[:, None]
        scores[..., hidden] = -cp.inf
    rows = scores.size // S
    grid, block = _rows_launch(rows, S)
    get_kernel("softmax", f"softmax_forward_{sfx}")(grid, block, (scores, scores, np.int64(rows),
                                                                  np.int64(S)))
    return cp.matmul(scores, v), scores


def _scores_attention_backward(grad, q, k, v, out, probs, scale: float, causal: bool):
    sfx = _suffix(grad, q, k, v, out, probs)
    if sfx is None or grad.shape != out.shape:
        return None
    cp = _cupy()
    row_dot = (grad.astype(cp.float32) * out.astype(cp.float32)).sum(-1, keepdims=True)
    dv = cp.matmul(probs.swapaxes(-1, -2), grad)
    ds = cp.matmul(grad, v.swapaxes(-1, -2))
    ds = (probs.astype(cp.float32) * (ds.astype(cp.float32) - row_dot) * scale).astype(q.dtype)
    return cp.matmul(ds, k), cp.matmul(ds.swapaxes(-1, -2), q), dv


@_register("decode_attention", _STORAGE)
def decode_attention(q, k, v, scale: float):
    """One query row per (batch, head) against keys/values that are views of a KV cache, with
    grouped heads: q (B, Hq, 1, D), k and v (B, Hk, S, D); (B, Hq, 1, D), or None."""
    sfx = _suffix(q, k, v)
    if sfx is None or q.ndim != 4 or q.shape[2] != 1 or k.shape != v.shape:
        return None
    batch, heads, _, dim = q.shape
    kv_heads, length = k.shape[1], k.shape[2]
    if not (0 < dim <= 256 and k.shape[3] == dim and k.shape[0] == batch and heads % kv_heads == 0
            and length > 0):
        return None
    cp = _cupy()
    # the whole cache as the kernel sees it (it reads only the first `length` positions)
    k, v = (cache_buffer(a, cp.lib.stride_tricks.as_strided) for a in (k, v))
    if k is None or v is None or k.shape != v.shape:
        return None
    max_seq = k.shape[2]
    out = cp.empty((batch, heads, 1, dim), q.dtype)
    seq_lens = cp.full((batch,), length, cp.int32)
    get_kernel("decode_attention", f"decode_attention_{sfx}")(
        (heads, batch), (128,), (_c(q), k, v, out, seq_lens, np.int32(heads), np.int32(kv_heads),
                                 np.int32(max_seq), np.int32(dim), np.float32(scale),
                                 np.int32(0)))
    return out


# ---------------------------------------------------------------------- optimizer, embedding
@_register("adam_step")
def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, lr, beta1, beta2, eps,
              weight_decay, decoupled_weight_decay, maximize, step):
    moments = [exp_avg, exp_avg_sq] + ([] if max_exp_avg_sq is None else [max_exp_avg_sq])
    if (_suffix(param, grad) is None or any(m.dtype != np.float32 for m in moments)
            or len({a.shape for a in [param, grad, *moments]}) != 1
            or not all(a.flags.c_contiguous for a in [param, grad, *moments])):
        return None
    grid, block = _elementwise_launch(param.size)
    get_kernel("adamw", f"adamw_step_{_suffix(param)}")(
        grid, block, (param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, np.int64(param.size),
                      np.float64(lr), np.float64(beta1), np.float64(beta2), np.float64(eps),
                      np.float64(weight_decay), np.float64(1 - beta1 ** step),
                      np.float64(1 - beta2 ** step), np.int32(bool(decoupled_weight_decay)),
                      np.int32(bool(maximize))))
    return True


@_register("index_add_rows")
def index_add_rows(out, ids, values) -> bool:
    """``out[ids[i]] += values[i]`` (an embedding's gradient) with atomic adds; float32 tables.

    Negative ids count from the end, as in NumPy's ``add.at``. Ids out of range are skipped
    rather than checked: checking would read them back to the host (a synchronisation) on every
    backward, and the lookup has already turned them into NaN rows (see ``F.embedding``).
    ``ids`` may be an index tuple: one array of row ids is taken, anything else declined."""
    if isinstance(ids, tuple):
        if len(ids) != 1:
            return False
        ids = ids[0]
    if (not hasattr(ids, "dtype") or out.dtype != np.float32 or out.ndim < 1
            or not out.flags.c_contiguous or ids.dtype.kind not in "iu" or values.shape != ids.shape + out.shape[1:]
            or _suffix(values) is None):
        return False
    cp = _cupy()
    dim = math.prod(out.shape[1:])
    n = ids.size
    ids = ids.astype(np.int64, copy=False)
    ids = cp.where(ids < 0, ids + out.shape[0], ids)   # on the device: no sync
    grid, block = _elementwise_launch(n * dim)
    get_kernel("embedding", f"embedding_backward_{_suffix(values)}")(
        grid, block, (_c(ids).reshape(-1),
                      _c(values).reshape(n, dim), out.reshape(out.shape[0], dim), np.int64(n),
                      np.int64(dim), np.int64(out.shape[0]), np.int64(-1)))
    return True


# ---------------------------------------------------------------------- GGML-quantized weights
#: the GGML types quant_matvec.cu reads, and its kernel for each
MATVEC_KERNELS = {"Q8_0": "matvec_q8_0", "Q4_0": "matvec_q4_0", "Q4_1": "matvec_q4_1",
                  "Q5_0": "matvec_q5_0", "Q5_1": "matvec_q5_1", "Q2_K": "matvec_q2_k",
                  "Q3_K": "matvec_q3_k", "Q4_K": "matvec_q4_k", "Q5_K": "matvec_q5_k",
                  "Q6_K": "matvec_q6_k"}
ROWS_PER_BLOCK = 4   # output rows per block: one warp each


@_register("quant_matmul")
def quant_matmul(x, blocks, qtype: str, out_features: int, in_features: int):
    """``x @ W.T`` for x (n, in_features) and W stored as GGML blocks on the device (uint8,
    out_features rows of blocks): (n, out_features) float32, products in float32 (the exact
    weights, unlike the CPU's int8 activations); None for a type without a kernel."""
    name = MATVEC_KERNELS.get(qtype)
    if name is None or x.ndim != 2 or x.shape[1] != in_features:
        return None
    cp = _cupy()
    x32 = cp.ascontiguousarray(x, dtype=cp.float32)
    y = cp.empty((x.shape[0], out_features), cp.float32)
    if x.shape[0] and out_features:
        get_kernel("quant_matvec", name)(
            (-(-out_features // ROWS_PER_BLOCK),), (32, ROWS_PER_BLOCK),
            (blocks, x32, y, np.int32(out_features), np.int32(in_features), np.int32(x.shape[0])))
    return y


quant_matmul.types = frozenset(MATVEC_KERNELS)

#: the GGML types quant_rows.cu reads: (its kernel, values per block, bytes per block)
ROWS_KERNELS = {"Q8_0": ("get_rows_q8_0", 32, 34), "Q4_0": ("get_rows_q4_0", 32, 18),
                "Q4_1": ("get_rows_q4_1", 32, 20), "Q5_0": ("get_rows_q5_0", 32, 22),
                "Q5_1": ("get_rows_q5_1", 32, 24), "Q2_K": ("get_rows_q2_k", 256, 84),
                "Q3_K": ("get_rows_q3_k", 256, 110), "Q4_K": ("get_rows_q4_k", 256, 144),
                "Q5_K": ("get_rows_q5_k", 256, 176), "Q6_K": ("get_rows_q6_k", 256, 210)}


@_register("quant_rows")
def quant_rows(blocks, ids, qtype: str, num_embeddings: int, embedding_dim: int):
    """Rows ``ids`` (any integer array) of a (num_embeddings, embedding_dim) table stored as GGML
    blocks on the device (uint8, a row of blocks per table row): float32 of shape
    ``ids.shape + (embedding_dim,)``, bit-exact with ``gguf.quants.dequantize``. The ids stay on
    the device: one out of range is not read and gets a row of NaN (no host sync to raise).
    None for a type without a kernel, float ids, or blocks that do not hold the table."""
    kernel = ROWS_KERNELS.get(qtype)
    if kernel is None or ids.dtype.kind not in "iu":
        return None
    name, per_block, block_bytes = kernel
    if (embedding_dim % per_block or not 0 <= num_embeddings < 2 ** 31
            or not 0 <= embedding_dim < 2 ** 31
            or blocks.size != num_embeddings * (embedding_dim // per_block) * block_bytes):
        return None
    cp = _cupy()
    flat = cp.ascontiguousarray(ids.reshape(-1), dtype=cp.int64)
    out = cp.empty((flat.size, embedding_dim), cp.float32)
    if flat.size and embedding_dim:
        grid, block = _rows_launch(flat.size, embedding_dim)
        get_kernel("quant_rows", name)(
            grid, block, (_c(blocks), flat, out, np.int64(flat.size), np.int32(num_embeddings),
                          np.int32(embedding_dim)))
    return out.reshape(ids.shape + (embedding_dim,))


quant_rows.types = frozenset(ROWS_KERNELS)


# ---------------------------------------------------------------------- grouped quantized weights
#: rows of x up to which grouped_matmul multiplies straight from the codes (one pass over the
#: weight per 8 rows); more rows dequantize the weight once and multiply it with cuBLAS
GROUPED_MATVEC_ROWS = 8
#: int4 weights of at least this many rows, multiplied with several rows of x, take the _x4
#: kernels (4 output rows a warp, x read once for the 4); other products one row a warp, for
#: more warps in flight. On an H100, 8 rows of x: 49152 x 576 54 against 87 us, 11008 x 4096
#: 76 against 109 us, but 2048 x 5632 52 against 33 us; one row of x is faster one row a warp
#: on every shape measured.
GROUPED_INT4_WIDE_ROWS = 4096


@_register("grouped_matmul")
def grouped_matmul(x, codes, scales, zeros, bits: int, group_size: int, input_order):
    """``x @ W.T`` for x (n, in_features) and W a weight-only quantized matrix on the device
    (gradient.quant.PackedWeight's layout, see kernels/grouped_matvec.cu): (n, out_features)
    float32, products in float32 from the exact weights. ``zeros`` (uint8) or None for int4;
    ``input_order`` (int64) or None: the codes hold x's columns in that order. None for what
    the kernels do not take (scales neither float16 nor float32, shapes that do not agree)."""
    sfx = _SUFFIX.get(scales.dtype)
    rows, cols = scales.shape[0], x.shape[-1]
    if (sfx is None or x.ndim != 2 or bits not in (4, 8) or group_size <= 0 or cols % group_size
            or scales.shape != (rows, cols // group_size) or not 0 < rows < 2 ** 31
            or not 0 < cols < 2 ** 31
            or codes.shape != ((rows, cols // 2) if bits == 4 else (rows, cols))
            or (bits == 4 and group_size % 32) or (bits == 8 and zeros is not None)
            or (zeros is not None and zeros.shape != scales.shape)):
        return None
    cp = _cupy()
    if input_order is not None:
        x = cp.take(x, input_order, axis=1)
    x32 = cp.ascontiguousarray(x, dtype=cp.float32)
    kind = "int8" if bits == 8 else ("int4_zp" if zeros is not None else "int4")
    weight = (codes, scales) if zeros is None else (codes, scales, zeros)
    n = x.shape[0]
    if n > GROUPED_MATVEC_ROWS:    # many rows: the weight dequantized once, then cuBLAS
        w = cp.empty((rows, cols), cp.float32)
        grid, block = _elementwise_launch(codes.size)
        get_kernel("grouped_matvec", f"gdq_{kind}_{sfx}")(
            grid, block, (*weight, w, np.int32(rows), np.int32(cols), np.int32(group_size)))
        return cp.matmul(x32, w.T)
    y = cp.empty((n, rows), cp.float32)
    wide = bits == 4 and n > 1 and rows >= GROUPED_INT4_WIDE_ROWS    # 4 output rows a warp
    if n:
        get_kernel("grouped_matvec", f"gmv_{kind}{'_x4' if wide else ''}_{sfx}")(
            (-(-rows // ((4 if wide else 1) * ROWS_PER_BLOCK)),), (32, ROWS_PER_BLOCK),
            (*weight, x32, y, np.int32(rows), np.int32(cols), np.int32(group_size), np.int32(n)))
    return y
