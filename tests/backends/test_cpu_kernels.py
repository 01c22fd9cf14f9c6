"""The NumPy backend's fused numba kernels against the compositions they replace.

Each op that has a fused fast path is run twice, once with the kernels and once with
``Backend.fused`` returning None (the composition of primitives), and the two must agree:
to rounding for activations and norms, bit for bit for the optimizer update.
"""

import ml_dtypes
import numpy as np
import pytest

import gradient
import gradient.nn.functional as F
from gradient.backends import cpu_backend

from .kernel_spy import record_kernel_calls, record_kernel_results, without_kernels

pytest.importorskip("numba")


@pytest.fixture
def composed(monkeypatch):
    """Run the block with the fused kernels switched off."""
    return lambda: without_kernels(monkeypatch)


def _run(fn, *arrays):
    """Outputs and input gradients of ``fn`` on fresh leaves made from ``arrays``."""
    leaves = [gradient.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*leaves)
    rng = np.random.default_rng(1)
    out.backward(gradient.tensor(rng.standard_normal(out.shape).astype(arrays[0].dtype)))
    return [out.detach().numpy()] + [t.grad.numpy() for t in leaves]


def _both(fn, composed, *arrays):
    fused = _run(fn, *arrays)
    composed()
    return fused, _run(fn, *arrays)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", ["tanh", "none"])
@pytest.mark.parametrize("size", [(3, 5), (600, 700)])  # serial and parallel builds
def test_gelu_fused_matches_composition(composed, dtype, approximate, size):
    x = np.random.default_rng(0).standard_normal(size).astype(dtype) * 3
    fused, reference = _both(lambda t: F.gelu(t, approximate=approximate), composed, x)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    for a, b in zip(fused, reference):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_gelu_kernel_is_used_and_takes_non_contiguous_input():
    from gradient.backends import cpu_kernels
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_allclose(cpu_kernels.gelu(x.T, "tanh"), cpu_kernels.gelu(x, "tanh").T)
    assert cpu_kernels.gelu(x.astype(np.float16), "tanh") is None  # declined: the op composes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_silu_fused_is_bit_identical_to_the_composition(composed, dtype):
    """The kernels round each step as the primitives do: the same bits, special values too
    (a model's decode path and its module graph may take either)."""
    x = np.random.default_rng(0).standard_normal((40, 300)).astype(dtype) * 8
    x[0, :6] = [0.0, -0.0, 90.0, -90.0, 1e-30, -1e-30]
    fused, reference = _both(F.silu, composed, x)
    for a, b in zip(fused, reference):
        np.testing.assert_array_equal(a, b)
    with np.errstate(invalid="ignore"):        # -inf * 0: NaN, as in the composition
        special = np.array([np.inf, -np.inf, np.nan], dtype)
        np.testing.assert_array_equal(_run(F.silu, special)[0], [np.inf, np.nan, np.nan])


def test_silu_kernels_are_used_and_take_non_contiguous_input(monkeypatch):
    from gradient.backends import cpu_kernels
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    np.testing.assert_array_equal(cpu_kernels.silu(x.T), cpu_kernels.silu(x).T)
    assert cpu_kernels.silu(x.astype(np.float16)) is None  # declined: the op composes
    calls = record_kernel_calls(monkeypatch, "silu", "silu_backward")
    _run(F.silu, x)
    assert calls == ["silu", "silu_backward"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", ["both", "weight", "none"])
@pytest.mark.parametrize("shape", [(4, 7, 16), (512, 640)])
def test_layer_norm_fused_matches_composition(composed, dtype, affine, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    n = shape[-1]
    w = rng.standard_normal(n).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    if affine == "both":
        fn, arrays = (lambda t, w, b: F.layer_norm(t, (n,), w, b)), (x, w, b)
    elif affine == "weight":
        fn, arrays = (lambda t, w: F.layer_norm(t, (n,), w)), (x, w)
    else:
        fn, arrays = (lambda t: F.layer_norm(t, (n,))), (x,)
    fused, reference = _both(fn, composed, *arrays)
    tol = 2e-5 if dtype == np.float32 else 1e-11
    for a, b in zip(fused, reference):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 10)


def test_layer_norm_takes_a_transposed_input_and_second_derivatives():
    rng = np.random.default_rng(0)
    x = gradient.tensor(rng.standard_normal((8, 5)), requires_grad=True)
    w = gradient.tensor(rng.standard_normal(8), requires_grad=True)
    b = gradient.tensor(rng.standard_normal(8), requires_grad=True)
    xt = x.T  # a non-contiguous input
    assert gradient.autograd.gradcheck(lambda x, w, b: F.layer_norm(x.T, (8,), w, b), (x, w, b))
    assert gradient.autograd.gradgradcheck(lambda x, w, b: F.layer_norm(x.T, (8,), w, b), (x, w, b))
    import torch
    ref = torch.nn.functional.layer_norm(torch.tensor(xt.detach().numpy()), (8,),
                                         torch.tensor(w.detach().numpy()), torch.tensor(b.detach().numpy()))
    np.testing.assert_allclose(F.layer_norm(xt, (8,), w, b).detach().numpy(), ref.numpy(), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("options", [
    dict(cls="AdamW"),
    dict(cls="AdamW", amsgrad=True, weight_decay=0.1),
    dict(cls="Adam", weight_decay=0.01, maximize=True),
    dict(cls="Adam", betas=(0.3, 0.9)),  # lerp's other branch: weight 1 - beta1 >= 0.5
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_fused_update_is_bit_identical_to_the_composition(monkeypatch, options, dtype):
    """The fused Adam step against its composition of tensor ops, whose fused multiply-adds
    (lerp_, addcmul_: PyTorch's arithmetic) are the ``fma`` kernel's."""
    options = dict(options)
    cls = getattr(gradient.optim, options.pop("cls"))
    rng = np.random.default_rng(0)
    start = rng.standard_normal((300, 700)).astype(dtype)  # large enough for the parallel build
    grads = [rng.standard_normal(start.shape).astype(dtype) for _ in range(4)]

    def train():
        p = gradient.nn.Parameter(gradient.tensor(start))
        opt = cls([p], lr=1e-2, **options)
        for g in grads:
            p.grad = gradient.tensor(g)
            opt.step()
        state = opt.state[p]
        return [p.detach().numpy()] + [state[k].numpy() for k in sorted(state) if k != "step"]

    fused = train()
    without_kernels(monkeypatch, keep=lambda name: name == "fma")
    reference = train()
    for a, b in zip(fused, reference):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("options", [
    dict(cls="SGD"),
    dict(cls="SGD", momentum=0.9),
    dict(cls="SGD", momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(cls="SGD", momentum=0.8, nesterov=True, weight_decay=0.1, maximize=True),
    dict(cls="SGD", weight_decay=1.0, lr=1.0),    # alphas of 1: a plain add in the composition
    dict(cls="RMSprop"),
    dict(cls="RMSprop", centered=True, momentum=0.9, weight_decay=0.1),
    dict(cls="RMSprop", alpha=0.3, centered=True, maximize=True),   # lerp's other branch
    dict(cls="RMSprop", alpha=0.0, momentum=0.5),  # addcmul's value of 1
    dict(cls="Adagrad"),
    dict(cls="Adagrad", lr_decay=0.1, weight_decay=0.2, maximize=True,
         initial_accumulator_value=0.5),
    dict(cls="Adamax"),
    dict(cls="Adamax", betas=(0.3, 0.5), weight_decay=0.1, maximize=True, eps=1e-3),
])
@pytest.mark.parametrize("size", [(7, 5), (600, 700)])   # the second on threads where split
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_optimizer_steps_are_bit_identical_to_their_compositions(monkeypatch, options,
                                                                       size, dtype):
    """The fused SGD, RMSprop, Adagrad and Adamax steps against their compositions of tensor
    ops (add with alpha, addcmul, lerp: the ``fma`` kernel, PyTorch's arithmetic), parameters
    and state, over four steps."""
    options = dict(options)
    name = options.pop("cls")
    options.setdefault("lr", 0.01)
    rng = np.random.default_rng(0)
    start = rng.standard_normal(size).astype(dtype)
    grads = [rng.standard_normal(size).astype(dtype) for _ in range(4)]

    def train():
        p = gradient.nn.Parameter(gradient.tensor(start))
        opt = getattr(gradient.optim, name)([p], **options)
        for g in grads:
            p.grad = gradient.tensor(g)
            opt.step()
        state = opt.state[p]
        return [p.detach().numpy()] + [state[k].numpy() for k in sorted(state) if k != "step"]

    results = record_kernel_results(monkeypatch, name.lower() + "_step")
    fused = train()
    assert results == [True] * 4
    without_kernels(monkeypatch, keep=lambda name: name == "fma")
    reference = train()
    assert len(fused) == len(reference) > (options.get("momentum", 0) > 0)
    for a, b in zip(fused, reference):
        np.testing.assert_array_equal(a, b)


def test_fused_sgd_bumps_versions_and_declines_what_it_cannot_update_in_place(monkeypatch):
    """An SGD step is an in-place write (autograd's version counters see it); a parameter
    whose gradient is laid out otherwise, or of a 16-bit type, is updated by the
    composition."""
    p = gradient.nn.Parameter(gradient.ones(3, 4))
    opt = gradient.optim.SGD([p], lr=0.5, momentum=0.9)
    p.grad = gradient.ones(3, 4)
    before = p._version.value
    opt.step()
    assert p._version.value > before
    p.grad = gradient.ones(4, 3).T                         # not C-contiguous
    results = record_kernel_results(monkeypatch, "sgd_step")
    opt.step()
    assert results == [None]
    np.testing.assert_array_equal(p.detach().numpy(), np.full((3, 4), 1 - 0.5 - 0.5 * 1.9,
                                                              np.float32))
    h = gradient.nn.Parameter(gradient.ones(4, dtype=gradient.bfloat16))
    h.grad = gradient.ones(4, dtype=gradient.bfloat16)
    gradient.optim.SGD([h], lr=0.25).step()
    assert h.dtype is gradient.bfloat16 and h.detach().float().tolist() == [0.75] * 4


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad", "Adamax"])
def test_fused_optimizer_steps_leave_read_only_parameters_to_the_composition(name):
    """A parameter on read-only memory is not written by a compiled kernel (numba would fail
    to compile the write): the step composes, and refuses it with gradient's error."""
    data = np.ones(4, np.float32)
    data.flags.writeable = False
    p = gradient.nn.Parameter(gradient.from_numpy(data))
    p.grad = gradient.ones(4)
    with pytest.raises(gradient.errors.GradientError, match="read-only"):
        getattr(gradient.optim, name)([p], lr=0.1).step()
    np.testing.assert_array_equal(data, np.ones(4, np.float32))


def test_fused_adam_bumps_the_versions_of_what_it_updates():
    p = gradient.nn.Parameter(gradient.ones(3))
    opt = gradient.optim.AdamW([p])
    p.grad = gradient.ones(3)
    before = p._version.value
    opt.step()
    assert p._version.value > before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("out_shape, ids_shape", [((65, 128), (16, 64)), ((10,), (7,)),
                                                  ((5, 3, 4), (2, 6)), ((4, 2), (0,))])
def test_index_add_rows_equals_numpy_add_at(dtype, out_shape, ids_shape):
    from gradient.backends.cpu_kernels import index_add_rows
    rng = np.random.default_rng(0)
    ids = rng.integers(0, out_shape[0], ids_shape)  # with repeats: they must accumulate
    values = rng.standard_normal(ids_shape + out_shape[1:]).astype(dtype)
    start = rng.standard_normal(out_shape).astype(dtype)
    expected, out = start.copy(), start.copy()
    np.add.at(expected, ids, values)
    assert index_add_rows(out, ids, values)
    np.testing.assert_array_equal(out, expected)  # same additions in the same order


def test_index_add_rows_declines_what_numpy_must_handle():
    from gradient.backends.cpu_kernels import index_add_rows
    out = np.zeros((4, 2), np.float32)
    assert not index_add_rows(out, np.array([-1, 0]), np.ones((2, 2), np.float32))  # wraps
    assert not index_add_rows(out, np.array([4]), np.ones((1, 2), np.float32))      # raises
    assert not index_add_rows(out, (np.array([0]),), np.ones((1, 2), np.float32))   # a tuple
    assert not index_add_rows(out.T, np.array([0]), np.ones((1, 4), np.float32))    # strided
    assert not out.any()
    # the backend primitive still does all of these, through NumPy
    cpu_backend.index_add(out, np.array([-1, -1]), np.ones((2, 2), np.float32))
    assert out[-1].tolist() == [2.0, 2.0]


def test_embedding_gradient_uses_the_kernel_and_equals_the_composition(composed, monkeypatch):
    ids = gradient.tensor(np.random.default_rng(1).integers(0, 9, (4, 6)))
    calls = record_kernel_results(monkeypatch, "index_add_rows")

    def grad():
        w = gradient.randn(9, 5, requires_grad=True, generator=gradient.Generator().manual_seed(0))
        (F.embedding(ids, w) * gradient.arange(5.0)).sum().backward()
        return w.grad.numpy()

    fused = grad()
    assert calls and all(calls)  # the kernel ran and did not decline
    composed()
    np.testing.assert_array_equal(fused, grad())


# ---------------------------------------------------------------------- attention
def _heads(rng, dtype, *shape):
    """(batch, heads, seq, dim) as heads split off a (batch, seq, heads, dim) array: a strided
    view, as in a transformer block."""
    b, h, n, d = shape
    return rng.standard_normal((b, n, h, d)).astype(dtype).transpose(0, 2, 1, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal,L,S", [(True, 6, 6), (True, 4, 7), (True, 7, 3), (False, 5, 4)])
def test_attention_fused_matches_composition_and_torch(composed, dtype, causal, L, S):
    import torch
    rng = np.random.default_rng(0)
    q, k, v = _heads(rng, dtype, 2, 3, L, 4), _heads(rng, dtype, 2, 3, S, 4), _heads(rng, dtype, 2, 3, S, 5)

    def attend(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    fused, reference = _both(attend, composed, q, k, v)
    tq, tk, tv = (torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (q, k, v))
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
    out.backward(torch.tensor(np.random.default_rng(1).standard_normal(out.shape).astype(dtype)))
    theirs = [out.detach().numpy()] + [t.grad.numpy() for t in (tq, tk, tv)]
    tol = 2e-6 if dtype == np.float32 else 1e-12
    for a, b, c in zip(fused, reference, theirs):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
        np.testing.assert_allclose(a, c, rtol=tol, atol=tol)


def test_attention_kernel_is_used_in_training_and_prefill(monkeypatch):
    calls = record_kernel_calls(monkeypatch, "attention_forward", "attention_backward",
                                "decode_attention")
    q = gradient.randn(2, 2, 5, 4, requires_grad=True)
    F.scaled_dot_product_attention(q, q, q, is_causal=True).sum().backward()
    assert calls == ["attention_forward", "attention_backward"]
    with gradient.no_grad():   # a causal prompt and a decode step take the cache kernel
        F.scaled_dot_product_attention(q, q, q, is_causal=True)
        F.scaled_dot_product_attention(q[:, :, :1], q, q)
        F.scaled_dot_product_attention(q, q, q)                          # not causal: fused
    assert calls == ["attention_forward", "attention_backward", "decode_attention",
                     "decode_attention", "attention_forward"]
    # a mask or dropout take the composition
    F.scaled_dot_product_attention(q, q, q, gradient.ones(5, 5, dtype=gradient.bool))
    F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    assert len(calls) == 5
    # grouped heads take the kernels too, each key head broadcast over its group of queries
    F.scaled_dot_product_attention(q, q[:, :1], q[:, :1], enable_gqa=True).sum().backward()
    assert calls[5:] == ["attention_forward", "attention_backward"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal", [True, False])
def test_grouped_heads_through_the_kernels_match_torch(dtype, causal):
    """Grouped-query attention (6 query heads on 2 key/value heads) through the fused kernels:
    output and the three gradients against torch's enable_gqa."""
    import torch
    rng = np.random.default_rng(3)
    arrays = [_heads(rng, dtype, 2, 6, 7, 8), _heads(rng, dtype, 2, 2, 7, 8),
              _heads(rng, dtype, 2, 2, 7, 8)]
    grad = rng.standard_normal((2, 6, 7, 8)).astype(dtype)
    ours = [gradient.tensor(a, requires_grad=True) for a in arrays]
    out = F.scaled_dot_product_attention(*ours, is_causal=causal, enable_gqa=True)
    out.backward(gradient.tensor(grad))
    theirs = [torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in arrays]
    ref = torch.nn.functional.scaled_dot_product_attention(*theirs, is_causal=causal,
                                                           enable_gqa=True)
    ref.backward(torch.tensor(grad))
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=tol, atol=tol)
    for a, b in zip(ours, theirs):
        assert a.grad.shape == tuple(b.grad.shape)
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch,heads,kv_heads,length", [(1, 4, 4, 1), (2, 6, 2, 9), (3, 4, 1, 17)])
def test_decode_attention_reads_the_cache_in_place_and_matches_torch(dtype, batch, heads,
                                                                     kv_heads, length):
    import torch
    from gradient.backends import cpu_attention
    rng = np.random.default_rng(0)
    keys = rng.standard_normal((batch, kv_heads, 24, 8)).astype(dtype)   # cache buffers
    values = rng.standard_normal((batch, kv_heads, 24, 8)).astype(dtype)
    k, v = keys[:, :, :length], values[:, :, :length]                    # what a cache hands out
    q = _heads(rng, dtype, batch, heads, 1, 8)
    out = cpu_attention.decode_attention(q, k, v, 0.3)
    assert out is not None and out.shape == (batch, heads, 1, 8) and out.dtype == dtype
    tq, tk, tv = (torch.tensor(np.ascontiguousarray(a)) for a in (q, k, v))
    theirs = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, scale=0.3,
                                                              enable_gqa=True).numpy()
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, theirs, rtol=tol, atol=tol)
    # through F.scaled_dot_product_attention when nothing is recorded (a decode step)
    with gradient.no_grad():
        ours = F.scaled_dot_product_attention(*(gradient.tensor(a) for a in (q, k, v)), scale=0.3,
                                              enable_gqa=True)
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("length", [70, 100, 127])
def test_a_last_partial_tile_of_keys_gives_the_same_bits_scored_whole_or_key_by_key(dtype,
                                                                                       length):
    """A row's last tile of keys (fewer than 64) is scored with vectors where the cache's
    buffer holds the positions after it, key by key where it ends with the row: the same
    bits either way, for float32 and float16 (bits) caches, one row and paged rows."""
    from gradient.backends import cpu_attention
    rng = np.random.default_rng(5)
    B, Hq, Hk, D = 2, 6, 2, 64
    q = rng.standard_normal((B, Hq, 1, D)).astype(np.float32)
    long_k = rng.standard_normal((B, Hk, 256, D)).astype(dtype)
    long_v = rng.standard_normal((B, Hk, 256, D)).astype(dtype)
    long_k[:, :, length:] = np.nan      # never scored into what is read
    exact_k = np.ascontiguousarray(long_k[:, :, :length])    # a buffer that ends with the row
    exact_v = np.ascontiguousarray(long_v[:, :, :length])
    whole = cpu_attention.decode_attention(q, long_k[:, :, :length], long_v[:, :, :length], 0.2)
    by_key = cpu_attention.decode_attention(q, exact_k, exact_v, 0.2)
    assert np.isfinite(whole).all()
    np.testing.assert_array_equal(whole, by_key)
    # paged: each row in blocks of 64 (its last block partly written), against the row alone
    blocks = -(-length // 64)
    # (each block's keys transposed, as a paged cache keeps them; NaN past the row's length
    # in the last block: scored in the lanes of its last tile, never read)
    pool_k = np.full((B * blocks, Hk, D, 64), np.nan, dtype)
    pool_v = np.zeros((B * blocks, Hk, 64, D), dtype)
    tables = np.arange(B * blocks, dtype=np.int64).reshape(B, blocks)
    for b in range(B):
        for m in range(blocks):
            n = min(64, length - 64 * m)
            pool_k[tables[b, m], :, :, :n] = exact_k[b, :, 64 * m:64 * m + n].swapaxes(1, 2)
            pool_v[tables[b, m], :, :n] = exact_v[b, :, 64 * m:64 * m + n]
    paged = cpu_attention.paged_decode_attention(q, pool_k, pool_v, tables,
                                                 np.full(B, length, np.int64), 64, 0.2)
    np.testing.assert_array_equal(paged, by_key)


def test_a_batchs_paged_attention_splits_short_rows_across_threads_with_the_same_bits():
    """8 rows of SmolLM2's heads at 16 positions are 24 items of a few microseconds: two
    threads take them (1.8 times faster), each row's bits as on one thread."""
    from gradient.backends import cpu_attention
    assert cpu_attention._paged_split(8, 9, 3, 16, 64, 2) == 2
    assert cpu_attention._paged_split(1, 9, 3, 16, 64, 2) == 1      # (too little work)
    rng = np.random.default_rng(3)
    B, Hq, Hk, D = 8, 9, 3, 64
    q = rng.standard_normal((B, Hq, 1, D)).astype(np.float32)
    pool_k = rng.standard_normal((B, Hk, D, 64)).astype(np.float32)      # keys transposed
    pool_v = rng.standard_normal((B, Hk, 64, D)).astype(np.float32)
    tables = np.arange(B, dtype=np.int64)[:, None]
    lengths = np.array([16, 3, 64, 40, 1, 17, 33, 16], np.int64)
    one, two = (cpu_attention.paged_attend(q, pool_k, pool_v, tables, lengths, 64, 0.125,
                                           n_threads=n) for n in (1, 2))
    np.testing.assert_array_equal(one, two)


def test_decode_attention_reads_any_layout_and_declines_other_shapes():
    from gradient.backends import cpu_attention
    decode = cpu_attention.decode_attention
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 4, 1, 8)).astype(np.float32)
    k = rng.standard_normal((1, 2, 12, 8)).astype(np.float32)
    expected = decode(q, k[:, :, ::2].copy(), k[:, :, ::2].copy(), 1.0)
    columns = k.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2)
    np.testing.assert_array_equal(decode(q, columns[:, :, ::2], k[:, :, ::2], 1.0), expected)
    assert decode(q[:, :3], k, k, 1.0) is None                           # 3 heads over 2
    assert decode(q, k[:, :, :0], k[:, :, :0], 1.0) is None               # nothing cached
    assert decode(q.astype(np.float64), k, k, 1.0) is None               # mixed dtypes
    assert decode(np.zeros((1, 4, 13, 8), np.float32), k, k, 1.0) is None   # more rows than keys


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch,heads,kv_heads,keys", [(1, 9, 3, 1), (1, 9, 3, 63), (2, 4, 4, 64),
                                                       (1, 6, 2, 65), (2, 9, 3, 700)])
def test_a_decode_step_on_several_threads_gives_the_serial_kernels_bits(dtype, batch, heads,
                                                                        kv_heads, keys):
    """A decode step's attention over 2 or 3 threads, split by (batch, key head) where there
    are as many items as threads, else by tiles of keys, then by query rows
    (``_decode_parallel``), is the serial kernel's, bit for bit, and so is the last row of
    the prompt it ends, computed by the prefill's tiles of query positions."""
    from gradient.backends import cpu_attention
    for threads in (2, 3):
        assert cpu_attention._by_tiles_of_keys(batch, kv_heads, 1, threads) == (
            batch * kv_heads < threads)
    rng = np.random.default_rng(keys)
    keys_buf = _heads(rng, dtype, batch, kv_heads, keys + 5, 16) * 3   # a cache's buffers
    values_buf = _heads(rng, dtype, batch, kv_heads, keys + 5, 16)
    k, v = keys_buf[:, :, :keys], values_buf[:, :, :keys]
    q = _heads(rng, dtype, batch, heads, keys, 16)
    last = np.ascontiguousarray(q[:, :, -1:])
    serial = cpu_attention.attend(last, k, v, 0.3, n_threads=1)
    for threads in (2, 3):
        np.testing.assert_array_equal(cpu_attention.attend(last, k, v, 0.3, n_threads=threads),
                                      serial)
        compiled = cpu_attention.decode_attention_compiled(last, k, v, dtype(0.3), threads)
        np.testing.assert_array_equal(compiled, serial)
    prompt = cpu_attention.attend(q, k, v, 0.3, n_threads=2)
    np.testing.assert_array_equal(prompt[:, :, -1:], serial)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("heads,kv_heads,rows,keys", [(4, 4, 7, 7), (6, 2, 40, 40), (6, 2, 5, 21),
                                                      (9, 3, 100, 100)])
def test_cache_attention_of_a_prompt_is_its_rows_decoded_one_by_one(dtype, heads, kv_heads,
                                                                     rows, keys):
    """Query rows at the last ``rows`` of ``keys`` positions (a causal prompt when they are
    equal), each seeing the keys up to its own position: torch's bottom-right causal
    attention, and every row bit for bit what the same row decoded alone gives (the
    arithmetic per row does not depend on how many rows there are)."""
    import torch
    from gradient.backends import cpu_attention
    rng = np.random.default_rng(rows)
    q = _heads(rng, dtype, 2, heads, rows, 16)
    k, v = _heads(rng, dtype, 2, kv_heads, keys, 16), _heads(rng, dtype, 2, kv_heads, keys, 16)
    out = cpu_attention.decode_attention(q, k, v, 0.3)
    past = keys - rows
    allowed = torch.arange(keys)[None, :] <= torch.arange(rows)[:, None] + past
    theirs = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(np.ascontiguousarray(a)) for a in (q, k, v)), attn_mask=allowed,
        scale=0.3, enable_gqa=True).numpy()
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, theirs, rtol=tol, atol=tol)
    one_by_one = [cpu_attention.decode_attention(np.ascontiguousarray(q[:, :, i:i + 1]),
                                                 k[:, :, :past + i + 1], v[:, :, :past + i + 1],
                                                 0.3) for i in range(rows)]
    np.testing.assert_array_equal(np.concatenate(one_by_one, 2), out)
    if rows == keys:   # F.scaled_dot_product_attention's causal prompt takes this kernel
        with gradient.no_grad():
            ours = F.scaled_dot_product_attention(*(gradient.tensor(a) for a in (q, k, v)),
                                                  scale=0.3, is_causal=True, enable_gqa=True)
        np.testing.assert_array_equal(ours.numpy(), out)


@pytest.mark.parametrize("causal", [True, False])
def test_attention_second_derivatives_through_the_fused_node(causal):
    """The fused node's backward with create_graph=True is written with differentiable ops:
    its first derivatives must equal the kernel's, and its own derivatives must check out."""
    rng = np.random.default_rng(2)
    q, k, v = (gradient.tensor(rng.standard_normal((1, 2, n, 3)), requires_grad=True)
               for n in (4, 5, 5))
    g = gradient.tensor(rng.standard_normal((1, 2, 4, 3)))

    def attend(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=0.7)
    plain = gradient.autograd.grad(attend(q, k, v), (q, k, v), g)
    graph = gradient.autograd.grad(attend(q, k, v), (q, k, v), g, create_graph=True)
    for a, b in zip(plain, graph):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert gradient.autograd.gradgradcheck(attend, (q, k, v))


# ---------------------------------------------------------------------- SwiGLU, rotary
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16])
def test_swiglu_fused_is_bit_identical_to_the_composition(composed, dtype, monkeypatch):
    """silu rounded, then the product, forward and backward: the composition's bits (a decode
    step replays the kernel where the module graph of a recorded forward composes)."""
    rng = np.random.default_rng(0)
    gate = rng.standard_normal((6, 300)).astype(dtype) * 8
    gate[0, :4] = [0.0, -0.0, 90.0, -90.0]
    up = rng.standard_normal((6, 300)).astype(dtype)
    calls = record_kernel_calls(monkeypatch, "swiglu", "swiglu_backward")
    fused = _run(F.swiglu, gate, up)
    if np.dtype(dtype).itemsize == 2:   # 16-bit: a forward kernel only, taken without a graph
        assert calls == []
        with gradient.no_grad():
            fused = [F.swiglu(gradient.tensor(gate), gradient.tensor(up)).numpy()]
        assert calls == ["swiglu"]
    else:
        assert calls == ["swiglu", "swiglu_backward"]
    composed()
    for a, b in zip(fused, _run(F.swiglu, gate, up)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("tables", ["shared", "per sequence"])
def test_rotary_fused_is_bit_identical_to_the_composition(composed, dtype, tables, monkeypatch):
    """A head split's strided view, tables of (T, D) or (B, 1, T, D): the composition's bits
    forward and backward."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 3, 8)).astype(dtype)          # (B, T, H, D)
    shape = (5, 8) if tables == "shared" else (2, 1, 5, 8)
    cos, sin = (rng.standard_normal(shape).astype(dtype) for _ in range(2))

    def rotate(x, cos, sin):
        return F.rotary_embedding(x.transpose(1, 2), cos, sin)   # (B, H, T, D), not contiguous
    calls = record_kernel_calls(monkeypatch, "rotary_embedding")
    fused = _run(rotate, x, cos, sin)
    assert calls == ["rotary_embedding", "rotary_embedding"]       # forward, backward
    composed()
    for a, b in zip(fused, _run(rotate, x, cos, sin)):
        np.testing.assert_array_equal(a, b)


def test_rotary_kernel_declines_what_it_does_not_read():
    from gradient.backends import cpu_kernels
    x = np.ones((2, 3, 4, 8), np.float32)
    assert cpu_kernels.rotary_embedding(x, np.ones((4, 8)), np.ones((4, 8)), False) is None
    assert cpu_kernels.rotary_embedding(x, np.ones((3, 8), np.float32),
                                        np.ones((3, 8), np.float32), False) is None
    assert cpu_kernels.rotary_embedding(np.ones((1, 2, 3, 4, 8), np.float32),
                                        np.ones((4, 8), np.float32),
                                        np.ones((4, 8), np.float32), False) is None


# ---------------------------------------------------------------------- RMS norm
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
def test_rms_norm_fused_matches_composition(composed, dtype, affine):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((4, 6, 16)).astype(dtype) * 3]
    if affine:
        arrays.append(rng.standard_normal(16).astype(dtype))

    def norm(x, *w):
        assert x.requires_grad
        out = F.rms_norm(x, (16,), *w, eps=1e-6)
        return out
    fused, reference = _both(norm, composed, *arrays)
    tol = 2e-6 if dtype == np.float32 else 1e-12
    for a, b in zip(fused, reference):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_rms_norm_kernel_is_used_in_training_and_second_derivatives_check_out():
    rng = np.random.default_rng(1)
    x = gradient.tensor(rng.standard_normal((3, 5)), requires_grad=True)
    w = gradient.tensor(rng.standard_normal(5), requires_grad=True)
    assert F.rms_norm(x, (5,), w).grad_fn.name() == "RMSNormBackward"
    assert gradient.autograd.gradcheck(lambda x, w: F.rms_norm(x, (5,), w, eps=1e-6), (x, w))
    assert gradient.autograd.gradgradcheck(lambda x, w: F.rms_norm(x, (5,), w, eps=1e-6), (x, w))
    # the differentiable backward (create_graph=True) gives the kernel's first derivatives
    g = gradient.tensor(rng.standard_normal((3, 5)))
    plain = gradient.autograd.grad(F.rms_norm(x, (5,), w), (x, w), g)
    graph = gradient.autograd.grad(F.rms_norm(x, (5,), w), (x, w), g, create_graph=True)
    for a, b in zip(plain, graph):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_bias_kernel_is_bit_identical_to_numpy(composed, monkeypatch, dtype):
    from gradient.backends.cpu_kernels import add_to_rows
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s).astype(dtype) for s in ((2, 5, 4), (6, 4), (6,)))
    calls = record_kernel_calls(monkeypatch, "add_to_rows")
    fused = _run(F.linear, x, w, b)
    assert calls == ["add_to_rows"]
    composed()
    for a, c in zip(fused, _run(F.linear, x, w, b)):
        np.testing.assert_array_equal(a, c)
    y = np.zeros((3, 4), dtype)
    assert not add_to_rows(y.T, np.ones(3, dtype))           # declined: not C-contiguous
    assert not add_to_rows(y, np.ones(4, np.float16))        # declined: another dtype
    assert add_to_rows(y, np.arange(8, dtype=dtype)[::2])    # a strided row is fine
    np.testing.assert_array_equal(y, np.tile(np.arange(0, 8, 2, dtype=dtype), (3, 1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_fused_matches_composition_and_torch(composed, dtype, reduction):
    import torch
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 7)).astype(dtype) * 4
    x[3] = [1e4, -1e4, 0, 0, 0, 0, 1e4]      # huge logits: softmax from the two lse parts
    target = rng.integers(0, 7, 40)
    target[::9] = -100

    def loss(t):
        return F.cross_entropy(t, gradient.tensor(target), reduction=reduction)
    fused, reference = _both(loss, composed, x)
    tx = torch.tensor(x, requires_grad=True)
    out = torch.nn.functional.cross_entropy(tx, torch.tensor(target), reduction=reduction)
    out.backward(torch.tensor(np.random.default_rng(1).standard_normal(out.shape).astype(dtype)))
    tol = 2e-6 if dtype == np.float32 else 1e-12
    for a, b, c in zip(fused, reference, (out.detach().numpy(), tx.grad.numpy())):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
        np.testing.assert_allclose(a, c, rtol=tol, atol=tol)


@pytest.mark.parametrize("rows", [1, 2, 7, 40])
def test_cross_entropy_split_over_threads_gives_the_same_bits(monkeypatch, rows):
    """Large logits have their rows split over threads: the loss, the log-sum-exp parts and
    the gradient are the one-chunk results, bit for bit, whatever the number of rows per
    chunk (fewer rows than threads too)."""
    from gradient.backends import cpu_kernels
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 31)).astype(np.float32) * 5
    target = rng.integers(0, 31, rows)
    target[::3] = -100
    scale = rng.standard_normal(rows).astype(np.float32)

    def run():
        loss, lse = cpu_kernels.cross_entropy(x, target, -100)
        return loss, lse, cpu_kernels.cross_entropy_backward(x, target, lse, scale)
    monkeypatch.setattr(cpu_kernels, "CROSS_ENTROPY_THREADS_FROM", 1 << 62)
    whole = run()
    monkeypatch.setattr(cpu_kernels, "CROSS_ENTROPY_THREADS_FROM", 1)
    monkeypatch.setattr(cpu_kernels.numba, "get_num_threads", lambda: 3)
    assert cpu_kernels._row_chunks(x) == min(rows, 3)
    for a, b in zip(run(), whole):
        np.testing.assert_array_equal(a, b)


def test_cross_entropy_kernels_are_used_and_decline_other_shapes(monkeypatch):
    from gradient.backends import cpu_kernels
    calls = record_kernel_calls(monkeypatch, "cross_entropy", "cross_entropy_backward")
    x = gradient.randn(6, 4, requires_grad=True)
    F.cross_entropy(x, gradient.tensor([0, 1, 2, 3, 0, 1])).backward()
    assert calls == ["cross_entropy", "cross_entropy_backward"]
    logits = np.zeros((3, 4), np.float32)
    assert cpu_kernels.cross_entropy(logits, np.zeros(2, np.int64), -100) is None      # rows differ
    assert cpu_kernels.cross_entropy(logits.astype(np.float16), np.zeros(3, np.int64), -100) is None
    assert cpu_kernels.cross_entropy(np.zeros((3, 0), np.float32), np.zeros(3, np.int64), -1) is None


@pytest.mark.parametrize("module", ["cpu_attention", "cpu_kernels", "cpu_compile"])
def test_each_kernel_module_imports_first(module):
    """Each kernel module imports on its own, before the others (as its docstring example does):
    no import cycle between the kernels and the attention kernels."""
    import subprocess
    import sys
    code = f"from gradient.backends import {module}; print({module}.__name__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_prepared_decode_attention_reads_later_positions_and_keeps_no_cache_alive():
    """The prepared form (what a replayed decode step calls) equals the kernel at every length,
    for the cache it was prepared on and another one, and holds no cache once it is dropped."""
    import gc
    import weakref

    from gradient import kernels
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 4, 1, 8)).astype(np.float32)
    caches = [rng.standard_normal((2, 3, 1, 2, 16, 8)).astype(np.float32) for _ in range(2)]
    attend = kernels.prepare("decode_attention", "cpu", q, caches[0][0, 1][:, :, :3],
                             caches[0][1, 1][:, :, :3], 0.5)
    for cache in caches + caches[:1]:
        for length in (3, 4, 16):
            k, v = cache[0, 1][:, :, :length], cache[1, 1][:, :, :length]
            np.testing.assert_array_equal(attend(q, k, v, 0.5),
                                          kernels.call("decode_attention", "cpu", q, k, v, 0.5))
    dropped = weakref.ref(caches.pop(0))
    del cache, k, v
    gc.collect()
    assert dropped() is None


def test_rounding_to_bfloat16_gives_ml_dtypes_bits():
    """A bfloat16 model's float32 results are rounded by a compiled loop: ml_dtypes' bits on
    ties, NaN, infinities, overflow and subnormals, any layout; small arrays keep astype."""
    from gradient.backends.cpu_kernels import ROUND_MIN_VALUES, round_to_bfloat16
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 129)).astype(np.float32)
    bits = x.view(np.uint32)
    bits[0, :8] = (bits[0, :8] & 0xFFFF0000) | 0x8000                  # ties to even
    bits[1, :8] = rng.integers(0, 2 ** 32, 8, dtype=np.uint32)         # any bit pattern
    x[2, :6] = [np.nan, -np.nan, np.inf, -np.inf, 1e-40, -3e-39]
    x[3, :2] = [np.finfo(np.float32).max, -np.finfo(np.float32).max]   # round to infinity
    for a in (x, x[:, ::2], x.T):
        y = round_to_bfloat16(a)
        assert y.dtype == ml_dtypes.bfloat16 and y.shape == a.shape
        with np.errstate(over="ignore"):
            expected = a.astype(ml_dtypes.bfloat16)
        np.testing.assert_array_equal(y.view(np.int16), expected.view(np.int16))
    assert round_to_bfloat16(np.ones(ROUND_MIN_VALUES - 1, np.float32)) is None
    # a bfloat16 op's result goes through it
    a = gradient.tensor(x[4:]).to(gradient.bfloat16)
    with gradient.kernels.trace() as t:
        out = (a * 3).numpy()
    assert t.calls("round_to_bfloat16") == {"numba": 1}
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(
            out.view(np.int16),
            (a.numpy().astype(np.float32) * 3).astype(ml_dtypes.bfloat16).view(np.int16))
