"""F.rotary_embedding and F.swiglu: the fused LLaMA blocks, composed on the CPU, one kernel each
way on a GPU (``kernels/rotary.cu``, ``kernels/swiglu.cu`` through ``backends/cuda/fused.py``).

Checked four ways:

1. forward and backward against PyTorch (float32, float64), the rotary sign convention against
   transformers' own ``apply_rotary_pos_emb``; on the CPU the ops give the bits of the
   compositions ``llama.py`` used before them;
2. gradcheck and gradgradcheck in float64, on the CPU (the composition) and on a device whose
   fused kernels are NumPy float64 references of the launchers' contract (the Function path:
   kernel forward, kernel backward, and the differentiable backward that ``create_graph`` uses);
3. the CUDA launchers run by the CPU emulator (``tests/backends/cuda_emulator.py``) on a device
   whose arrays live in host memory: values equal the CPU's and the kernels are called, forward
   and backward, for shared and per-batch (position ids) tables, and a tiny LLaMA gives the
   CPU's logits and gradients;
4. the same on a real GPU (marked ``gpu``; skipped without CuPy and a device).
"""

from __future__ import annotations


import numpy as np
import pytest

import gradient
import gradient.nn.functional as F
from gradient.backends import register_backend
from gradient.backends.numpy_backend import ArrayBackend
from gradient.models.llama import LlamaConfig, LlamaForCausalLM, RotaryEmbedding

from ..backends import test_cuda_kernels
from ..backends.kernel_spy import device_kernels
from ..backends.cuda_emulator import build_emulator
from ..models.test_llama import SMALL

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------------- data
def _tables(positions: np.ndarray, head_dim: int, dtype=np.float32):
    """cos and the folded-sign sin (``-sin`` on the first half) at ``positions`` (any shape),
    with equal halves as every rotary cache has; also the plain sin (transformers' table)."""
    half = head_dim // 2
    inv_freq = 1.0 / (10000 ** (np.arange(half) / half))
    angles = positions[..., None] * inv_freq
    angles = np.concatenate([angles, angles], -1)
    cos, sin = np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)
    folded = sin.copy()
    folded[..., :half] *= -1
    return cos, folded, sin


def _random_tables(rng, shape, dtype=np.float32):
    """cos/sin tables of arbitrary values (halves not equal): the op is defined for any table."""
    return tuple(rng.standard_normal(shape).astype(dtype) for _ in range(2))


def _rotary_torch(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.roll(x, half, -1) * sin


def _grads(module, fn, arrays, upstream, **kw):
    """fn's output and the gradients of every input, in ``module`` (gradient or torch)."""
    leaves = [module.tensor(a, requires_grad=True, **kw) for a in arrays]
    out = fn(*leaves)
    out.backward(module.tensor(upstream, **kw))
    return [out.detach().numpy()] + [t.grad.numpy() for t in leaves]


# ---------------------------------------------------------------------- 1. against PyTorch
# (x shape, table shape): shared tables, per-batch tables from position ids, broadcast both ways
ROTARY_SHAPES = [((2, 3, 5, 8), (5, 8)), ((2, 3, 5, 8), (2, 1, 5, 8)),
                 ((2, 3, 5, 8), (1, 1, 5, 8)), ((3, 4, 6), (4, 6)), ((4, 2), (4, 2))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, table_shape", ROTARY_SHAPES)
def test_rotary_embedding_matches_torch(dtype, x_shape, table_shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    cos, sin = _random_tables(rng, table_shape, dtype)
    upstream = rng.standard_normal(x_shape).astype(dtype)
    ours = _grads(gradient, F.rotary_embedding, (x, cos, sin), upstream)
    ref = _grads(torch, _rotary_torch, (x, cos, sin), upstream)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    for a, b in zip(ours, ref):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_rotary_embedding_is_transformers_rotate_half_with_the_folded_table():
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
    rng = np.random.default_rng(1)
    q = rng.standard_normal((2, 4, 5, 8)).astype(np.float32)
    k = rng.standard_normal((2, 2, 5, 8)).astype(np.float32)
    positions = np.array([[0, 1, 2, 3, 4], [7, 3, 0, 0, 9]])
    cos, folded, sin = _tables(positions, 8)
    ref_q, ref_k = apply_rotary_pos_emb(*(torch.tensor(a) for a in (q, k, cos, sin)))
    for x, ref in ((q, ref_q), (k, ref_k)):
        ours = F.rotary_embedding(gradient.tensor(x), gradient.tensor(cos[:, None]),
                                  gradient.tensor(folded[:, None]))
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 7), (2, 1, 5), (0, 4)])
def test_swiglu_matches_torch(dtype, shape):
    rng = np.random.default_rng(2)
    gate = (rng.standard_normal(shape) * 3).astype(dtype)
    up = rng.standard_normal(shape).astype(dtype)
    upstream = rng.standard_normal(shape).astype(dtype)
    ours = _grads(gradient, F.swiglu, (gate, up), upstream)
    ref = _grads(torch, lambda g, u: torch.nn.functional.silu(g) * u, (gate, up), upstream)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    for a, b in zip(ours, ref):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_on_the_cpu_the_ops_are_the_compositions_bit_for_bit():
    # the LLaMA model's results must not move: these are the expressions llama.py had
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 8)).astype(np.float32)
    cos, sin = _random_tables(rng, (2, 1, 5, 8))
    gate, up = (rng.standard_normal((4, 6)).astype(np.float32) for _ in range(2))
    for fn, composed, arrays in (
            (F.rotary_embedding, lambda a, c, s: a * c + a.roll(4, -1) * s, (x, cos, sin)),
            (F.swiglu, lambda g, u: F.silu(g) * u, (gate, up))):
        upstream = rng.standard_normal(arrays[0].shape).astype(np.float32)
        for a, b in zip(_grads(gradient, fn, arrays, upstream),
                        _grads(gradient, composed, arrays, upstream)):
            np.testing.assert_array_equal(a, b)


def test_rotary_embedding_refuses_an_odd_head_dim_and_tables_that_do_not_broadcast():
    with pytest.raises(gradient.errors.ShapeError, match="even head_dim"):
        F.rotary_embedding(gradient.ones(2, 3), gradient.ones(2, 3), gradient.ones(2, 3))
    for table in ((3, 8), (5, 4), (4, 5, 8)):       # for an input (1, 2, 5, 8)
        with pytest.raises(gradient.errors.ShapeError, match="do not broadcast with the "
                                                             r"input's \(1, 2, 5, 8\)"):
            F.rotary_embedding(gradient.ones(1, 2, 5, 8), gradient.ones(*table),
                               gradient.ones(*table))


def test_swiglu_broadcasts_and_promotes_as_the_composition():
    gate = gradient.tensor([[1.0, -2.0]])
    up = gradient.tensor([[3.0], [4.0]], dtype=gradient.float64)
    out = F.swiglu(gate, up)
    expected = torch.nn.functional.silu(torch.tensor([[1.0, -2.0]])) * torch.tensor(
        [[3.0], [4.0]], dtype=torch.float64)
    assert out.dtype == gradient.float64 and out.shape == (2, 2)
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-7)


# ---------------------------------------------------------------------- 2. gradcheck, float64
def _float64_leaves(rng, *shapes, device="cpu", scale=1.0):
    return tuple(gradient.tensor(rng.standard_normal(s) * scale, dtype=gradient.float64,
                                 device=device, requires_grad=True) for s in shapes)


@pytest.fixture
def reference_device(monkeypatch):
    """A device whose fused kernels are NumPy float64 references of the CUDA launchers'
    contract (formulas from the kernel headers), so gradcheck runs the ops' Function path:
    ``(backend, calls)``."""
    calls = []

    def rotary(x, cos, sin, backward):
        half = x.shape[-1] // 2
        if backward:   # the transpose: dx[p] = g[p] cos[p] + g[p + half] sin[p + half]
            calls.append("rotary_embedding(backward)")
            return np.ascontiguousarray(x * cos + np.roll(x * sin, half, -1))
        return np.ascontiguousarray(x * cos + np.roll(x, half, -1) * sin)

    def swiglu(gate, up):
        return gate / (1 + np.exp(-gate)) * up

    def swiglu_backward(grad, gate, up):
        s = 1 / (1 + np.exp(-gate))
        return grad * up * s * (1 + gate * (1 - s)), grad * gate * s

    kernels = {"rotary_embedding": rotary, "swiglu": swiglu, "swiglu_backward": swiglu_backward}

    backend = ArrayBackend(np, "rotary_swiglu_reference")
    register_backend("rotary_swiglu_reference", backend)
    device_kernels(monkeypatch, "rotary_swiglu_reference",
                   {name: (lambda *a, _k=kernel, _n=name: calls.append(_n) or _k(*a))
                    for name, kernel in kernels.items()}, dtypes=(np.float64,))
    return backend, calls


@pytest.mark.parametrize("device", ["cpu", "reference"])
@pytest.mark.parametrize("table_shape", [(3, 4), (2, 1, 3, 4)])
def test_rotary_embedding_gradcheck_and_gradgradcheck(device, table_shape, request):
    name = "cpu"
    if device == "reference":
        _, calls = request.getfixturevalue("reference_device")
        name = "rotary_swiglu_reference"
    rng = np.random.default_rng(4)
    x, cos, sin = _float64_leaves(rng, (2, 2, 3, 4), table_shape, table_shape, device=name)
    grad_out = _float64_leaves(rng, (2, 2, 3, 4), device=name)
    assert gradient.autograd.gradcheck(F.rotary_embedding, (x, cos, sin))
    assert gradient.autograd.gradgradcheck(F.rotary_embedding, (x, cos, sin), grad_out)
    if device == "reference":   # the Function ran, its kernel backward too
        assert {"rotary_embedding", "rotary_embedding(backward)"} <= set(calls)


@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_swiglu_gradcheck_and_gradgradcheck(device, request):
    name = "cpu"
    if device == "reference":
        _, calls = request.getfixturevalue("reference_device")
        name = "rotary_swiglu_reference"
    rng = np.random.default_rng(5)
    gate, up, grad_out = _float64_leaves(rng, (2, 5), (2, 5), (2, 5), device=name, scale=2.0)
    assert gradient.autograd.gradcheck(F.swiglu, (gate, up))
    assert gradient.autograd.gradgradcheck(F.swiglu, (gate, up), grad_out)
    if device == "reference":
        assert {"swiglu", "swiglu_backward"} <= set(calls)


@pytest.mark.parametrize("op", ["rotary", "swiglu"])
def test_the_graph_building_backward_equals_the_kernel_backward(reference_device, op):
    """gradgradcheck alone would not see a wrong create_graph formula that is consistently
    differentiated: the first derivatives of both backward paths must agree."""
    _, calls = reference_device
    rng = np.random.default_rng(6)
    if op == "rotary":   # unequal halves: the transpose is not just "the forward with -sin"
        inputs = _float64_leaves(rng, (2, 2, 3, 4), (2, 1, 3, 4), (2, 1, 3, 4),
                                 device="rotary_swiglu_reference")
        fn, kernel = F.rotary_embedding, "rotary_embedding(backward)"
    else:
        inputs = _float64_leaves(rng, (3, 4), (3, 4), device="rotary_swiglu_reference", scale=2.0)
        fn, kernel = F.swiglu, "swiglu_backward"
    (upstream,) = _float64_leaves(rng, tuple(inputs[0].shape), device="rotary_swiglu_reference")
    results = []
    for create_graph in (False, True):
        out = fn(*inputs)
        del calls[:]
        grads = gradient.autograd.grad(out, inputs, upstream, create_graph=create_graph)
        assert (kernel in calls) != create_graph
        results.append([g.detach().numpy() for g in grads])
    for kernel_grad, graph_grad in zip(*results):
        np.testing.assert_allclose(graph_grad, kernel_grad, rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------- 3. the emulated GPU
# the CUDA kernel tests' fixtures: the launchers of backends/cuda/fused.py run by the emulator,
# and a device whose arrays live in host memory and whose fused kernels are those launchers
emulated_launchers = test_cuda_kernels.emulated_launchers
emulated_device = test_cuda_kernels.emulated_device


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """The emulator with only the two kernel files run here (the C++ compiler is its cost):
    for the fixtures above it stands in for test_cuda_kernels' fixture of the same name."""
    return build_emulator(tmp_path_factory.mktemp("cuda_emulator_rotary_swiglu"),
                          test_cuda_kernels._check_args, ("rotary", "swiglu"))


KERNELS = ("rotary_embedding", "swiglu", "swiglu_backward")


def _on(device, arrays, requires_grad=True):
    return [gradient.tensor(a, device=device, requires_grad=requires_grad) for a in arrays]


@pytest.mark.parametrize("table_shape", [(5, 8), (2, 1, 5, 8), (1, 1, 5, 8)])
def test_rotary_embedding_on_a_device_uses_the_kernel(emulated_device, table_shape):
    _, calls = emulated_device("emulated_rotary", KERNELS)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 5, 3, 8)).astype(np.float32)   # (B, T, H, D): transposed below
    cos, sin = _random_tables(rng, table_shape)                  # unequal halves
    upstream = rng.standard_normal((2, 3, 5, 8)).astype(np.float32)
    results = []
    for device in ("cpu", "emulated_rotary"):
        xt, ct, st = _on(device, (x, cos, sin))
        out = F.rotary_embedding(xt.transpose(1, 2), ct, st)  # a non-contiguous input, as in LLaMA
        out.backward(gradient.tensor(upstream, device=device))
        results.append([out.detach().numpy(), xt.grad.numpy(), ct.grad.numpy(), st.grad.numpy()])
    assert calls == ["rotary_embedding", "rotary_embedding"]   # forward, backward
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)


def test_rotary_embedding_on_a_device_with_a_graph_and_an_unread_layout(emulated_device):
    _, calls = emulated_device("emulated_rotary_graph", KERNELS)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 5, 8)).astype(np.float32)
    cos, sin = _tables(np.arange(5), 8)[:2]
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for device in ("cpu", "emulated_rotary_graph"):
        leaves = _on(device, (x, cos, sin))
        out = F.rotary_embedding(*leaves)
        first = gradient.autograd.grad(out, leaves, gradient.tensor(upstream, device=device),
                                       create_graph=True)
        # second derivatives: through the graph the backward built (dcos depends on x, dx on
        # the tables)
        second = gradient.autograd.grad(sum((g * g).sum() for g in first), leaves)
        results.append([out.detach().numpy(), *(g.detach().numpy() for g in first + second)])
    assert calls == ["rotary_embedding"]   # a graph was built: the backward composed
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5)
    # tables broadcast along head_dim are not the kernel's layout: it declines, the op composes
    del calls[:]
    xt = gradient.tensor(x, device="emulated_rotary_graph")
    ct = gradient.tensor(cos[:, :1], device="emulated_rotary_graph")
    st = gradient.tensor(sin[:, :1], device="emulated_rotary_graph")
    np.testing.assert_allclose(F.rotary_embedding(xt, ct, st).numpy(),
                               x * cos[:, :1] + np.roll(x, 4, -1) * sin[:, :1], rtol=1e-6)
    assert calls == ["rotary_embedding"]


def test_swiglu_on_a_device_uses_the_kernels(emulated_device):
    _, calls = emulated_device("emulated_swiglu", KERNELS)
    rng = np.random.default_rng(9)
    gate = (rng.standard_normal((3, 70)) * 3).astype(np.float32)
    up = rng.standard_normal((3, 70)).astype(np.float32)
    upstream = rng.standard_normal((3, 70)).astype(np.float32)
    results = []
    for device in ("cpu", "emulated_swiglu"):
        g, u = _on(device, (gate, up))
        out = F.swiglu(g, u)
        grad = gradient.tensor(upstream, device=device)
        graph_grads = gradient.autograd.grad(out, (g, u), grad, create_graph=True,
                                             retain_graph=True)
        out.backward(grad)
        results.append([out.detach().numpy(), g.grad.numpy(), u.grad.numpy(),
                        *(t.detach().numpy() for t in graph_grads)])
    # the backward with create_graph composed; the plain one ran the kernel
    assert calls == ["swiglu", "swiglu_backward"]
    for ours, ref in zip(*results):
        np.testing.assert_allclose(ours, ref, rtol=2e-6, atol=2e-6)


def _tiny_llama(seed=0):
    config = LlamaConfig(**dict(SMALL, num_hidden_layers=1, intermediate_size=48))
    model = LlamaForCausalLM(config)
    rng = np.random.default_rng(seed)
    with gradient.no_grad():   # a larger spread than the init, so every part matters
        for p in model.parameters():
            p.copy_(gradient.tensor((rng.standard_normal(p.shape) * 0.2).astype(np.float32)))
    return model


def _llama_run(model, device, ids, position_ids):
    model.to(device)
    model.zero_grad()
    kwargs = {} if position_ids is None else {
        "position_ids": gradient.tensor(position_ids, device=device)}
    logits = model(gradient.tensor(ids, device=device), **kwargs).logits
    weights = np.random.default_rng(1).standard_normal(logits.shape).astype(np.float32)
    (logits * gradient.tensor(weights, device=device)).sum().backward()
    return logits.detach().numpy(), {n: p.grad.numpy() for n, p in model.named_parameters()}


@pytest.mark.parametrize("positions", ["shared", "per_batch"])
def test_tiny_llama_on_a_device_matches_the_cpu(emulated_device, positions):
    """A LLaMA model on the emulated GPU: rotary and SwiGLU run in the kernels (forward and
    backward), the rest composed; logits and every parameter's gradient equal the CPU's."""
    _, calls = emulated_device("emulated_llama", KERNELS)
    model = _tiny_llama()
    ids = np.random.default_rng(2).integers(0, SMALL["vocab_size"], (2, 5))
    position_ids = None if positions == "shared" else np.array([[0, 1, 2, 3, 4], [3, 0, 1, 2, 7]])
    ref_logits, ref_grads = _llama_run(model, "cpu", ids, position_ids)
    logits, grads = _llama_run(model, "emulated_llama", ids, position_ids)
    # one layer: q and k rotated forward and backward, one MLP
    assert sorted(calls) == sorted(["rotary_embedding"] * 4 + ["swiglu", "swiglu_backward"])
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=2e-5)
    assert grads.keys() == ref_grads.keys()
    for name, grad in grads.items():
        scale = float(np.abs(ref_grads[name]).max())
        np.testing.assert_allclose(grad, ref_grads[name], rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=name)


def test_rotary_tables_of_the_model_on_a_device(emulated_device):
    # RotaryEmbedding's tables reach the kernel as the launcher expects: a (T, D) view of the
    # device table at an offset (start > 0, as in decoding with a cache)
    _, calls = emulated_device("emulated_tables", KERNELS)
    rotary = RotaryEmbedding(1.0 / (10000 ** (np.arange(4, dtype=np.float32) / 4)), length=16)
    x = np.random.default_rng(10).standard_normal((1, 2, 3, 8)).astype(np.float32)
    outs = []
    for device in ("cpu", "emulated_tables"):
        cos, sin = rotary(5, 3, None, gradient.float32, device)
        outs.append(F.rotary_embedding(gradient.tensor(x, device=device), cos, sin).numpy())
    assert calls == ["rotary_embedding"]
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------- 4. a real GPU
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_rotary_and_swiglu_on_a_gpu(dtype):
    """Rotary and SwiGLU, forward and backward, on a real GPU: the CUDA kernels run (counted
    by the kernel registry's trace) and give the CPU's results."""
    if not gradient.cuda.is_available():
        pytest.skip("no CUDA device (or no CuPy)")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 5, 3, 8)).astype(np.float32)
    cos, sin = _random_tables(rng, (2, 1, 5, 8))
    gate, up = (rng.standard_normal((4, 40)).astype(np.float32) for _ in range(2))
    tol = 1e-6 if dtype == "float32" else 4e-3
    with gradient.kernels.trace() as trace:
        for fn, arrays, transpose in ((F.rotary_embedding, (x, cos, sin), True),
                                      (F.swiglu, (gate, up), False)):
            results = []
            for device in ("cpu", "cuda"):
                leaves = [gradient.tensor(a, device=device, dtype=getattr(gradient, dtype),
                                          requires_grad=True) for a in arrays]
                first = leaves[0].transpose(1, 2) if transpose else leaves[0]
                out = fn(first, *leaves[1:])
                out.float().sum().backward()
                results.append([out.float().detach().to("cpu").numpy(),
                                *(t.grad.float().to("cpu").numpy() for t in leaves)])
            for ours, ref in zip(results[1], results[0]):
                np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol)
    for op in ("rotary_embedding", "swiglu", "swiglu_backward"):
        assert trace.calls(op).get("cuda", 0) >= 1, (op, trace)
