"""gradient.kernels: declared op names, registered kernels, and the trace of what ran."""

import numpy as np
import pytest

import gradient
import gradient.nn.functional as F
from gradient import kernels
from gradient.errors import KernelRegistryError
from gradient.kernels import registry

pytest.importorskip("numba")


def test_every_declared_op_has_a_kernel_and_every_kernel_its_declared_arity():
    import gradient.quant  # noqa: F401  (its products register when it is imported)
    registered = kernels.registered()
    # (an op that only a compiled step calls has a compiled form and no kernel: a reshape)
    compiled_only = {op for op, _ in registry._LOWERINGS} - {k.op for k in registered}
    assert {k.op for k in registered} | compiled_only == set(kernels.declared())
    assert compiled_only == {"reshape", "permute", "add", "mul", "cast", "linear", "unbind",
                             "kv_write", "paged_kv_write"}
    assert {k.backend for k in registered} >= {"cpu", "cuda"}
    for k in registered:      # register() checked it; this checks that nothing bypassed it
        assert k.op in kernels.declared() and callable(k.fn)


def test_register_refuses_undeclared_names_other_arities_and_a_second_kernel(monkeypatch):
    kernels.lookup("gelu", "cpu")      # the CPU's kernels loaded (first in a process: not yet)
    monkeypatch.setattr(registry, "_KERNELS", dict(registry._KERNELS))   # restored afterwards
    with pytest.raises(KernelRegistryError, match="not a declared op"):
        kernels.register("no_such_op", "cpu", "numba")
    with pytest.raises(KernelRegistryError, match=r"takes 1 parameters.*\(x, approximate\)"):
        kernels.register("gelu", "elsewhere", "numba")(lambda x: x)
    with pytest.raises(KernelRegistryError, match="has a kernel for 'gelu' already"):
        kernels.register("gelu", "cpu", "other")(lambda x, approximate: x)
    with pytest.raises(KernelRegistryError, match="not a declared op"):
        kernels.lowers("no_such_op", "cpu")
    kernels.register("gelu", "elsewhere", "numba")(lambda x, approximate: x)   # a new backend
    assert kernels.lookup("gelu", "elsewhere:3").backend == "elsewhere"        # kind, no index


def test_the_trace_counts_kernels_and_compositions():
    x = gradient.randn(4, 16)
    with kernels.trace() as t:
        F.gelu(x)                                  # the CPU's kernel
        F.gelu(x.to(gradient.float16))             # declined (float16): composed
        F.softmax(x, -1)                           # no CPU kernel: composed
    assert t.counts == {("gelu", "numba"): 1, ("gelu", "composite"): 1,
                        ("softmax", "composite"): 1}
    assert t.calls("gelu") == {"numba": 1, "composite": 1}


def test_traces_nest_and_count_nothing_once_closed():
    x = gradient.randn(4, 16)
    with kernels.trace() as outer:
        F.silu(x)
        with kernels.trace() as inner:
            F.silu(x)
    F.silu(x)
    assert outer.counts == {("silu", "numba"): 2} and inner.counts == {("silu", "numba"): 1}
    assert kernels.trace.__module__ == "gradient.kernels.trace" and not registry._trace.active


def test_a_kernel_that_does_not_take_the_dtype_is_not_called(monkeypatch):
    called = []
    kernel = registry.Kernel("silu", "cpu", "spy", frozenset({np.dtype(np.float64)}),
                             lambda x: called.append(x) or x)
    monkeypatch.setitem(registry._KERNELS, ("silu", "cpu"), kernel)
    with kernels.trace() as t:
        assert kernels.call("silu", "cpu", np.ones(3, np.float32)) is None
        assert kernels.call("silu", "cpu", np.ones(3)) is not None
    assert len(called) == 1 and t.counts == {("silu", "composite"): 1, ("silu", "spy"): 1}
    assert kernels.lookup("silu", "cpu", np.float32) is None
    assert kernels.lookup("silu", "cpu", np.float64) is kernel


def test_decoding_a_gpt2_model_is_seen_in_the_trace():
    from gradient.models import GPT2Config, GPT2LMHeadModel
    model = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=32, n_embd=32, n_layer=2,
                                       n_head=2)).eval()
    with kernels.trace() as t:
        model.generate(gradient.tensor([[1, 2, 3]]), max_new_tokens=4)
    # after the prompt, three one-token steps: two captured, then one replayed
    assert t.calls("captured_step") == {"capture": 2, "replay": 1}
    # per layer: the prompt (a causal square) and the three steps
    assert t.calls("decode_attention") == {"numba": 2 * 4}


def test_a_prepared_kernel_computes_what_the_kernel_does_and_is_counted():
    """kernels.prepare: the kernel with its checks made once, for arguments like the given
    ones (a captured step's); other arguments run the kernel itself."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 1, 24)).astype(np.float32), np.ones(24, np.float32)
    norm = kernels.prepare("rms_norm", "cpu", x, w, 1e-5)
    assert norm is not None and kernels.prepare("gelu", "cpu", x, "tanh") is None  # no form
    with kernels.trace() as t:
        for got, expected in zip(norm(x, w, 1e-5), kernels.call("rms_norm", "cpu", x, w, 1e-5)):
            np.testing.assert_array_equal(got, expected)
        wider = rng.standard_normal((3, 24)).astype(np.float32)      # unlike: the kernel
        np.testing.assert_array_equal(norm(wider, w, 1e-5)[0],
                                      kernels.call("rms_norm", "cpu", wider, w, 1e-5)[0])
    assert t.counts == {("rms_norm", "numba"): 4}
    assert kernels.prepare("rms_norm", "cpu", x.astype(np.int32), None, 1e-5) is None
