"""No device-to-host synchronisation inside a forward pass on an accelerator.

On a GPU, anything that brings a device value to the host -- ``int(a)``, ``float(a)``,
``bool(a)`` (``if (ids < 0).any():``), ``a.item()``, ``a.tolist()``, ``cupy.asnumpy(a)``,
``Tensor.numpy()`` -- waits for every queued kernel: the pipeline stalls once per such read.
Generation must bring back only the chosen token ids, once per step.

There is no GPU here, so the tests run on a *sync-detecting device*: an
:class:`~gradient.backends.numpy_backend.ArrayBackend` registered under another name whose arrays
are :class:`DeviceArray`, a NumPy ndarray subclass that lives in host memory but refuses to be
read by the host: its ``__bool__``, ``__int__``, ``__float__``, ``__index__``, ``item``,
``tolist``, ``tobytes``, ``repr`` ... raise :class:`HostSyncError`. NumPy functions and ufuncs
keep returning DeviceArrays (0-d ones instead of NumPy scalars, which would escape the check), as
CuPy returns 0-d device arrays. The backend's ``to_numpy`` (what ``Tensor.numpy()``, ``.item()``
and ``.tolist()`` use: the device-to-host copy) is the only way out; it records each transfer,
so a test counts them per generation step. Also refused: a DeviceArray mixed with a host
ndarray in a ufunc (CuPy raises TypeError), outputs sized by the values (boolean-mask indexing,
``nonzero``, ``unique``), and a device tensor holding a host ndarray. Not seen: a NumPy function
that converts its argument with ``np.asarray`` (which drops the subclass without asking it); on
CuPy that is a TypeError, so such code fails loudly on a GPU anyway.

Two such devices: ``sync_plain`` has no fused kernels (every op composes the primitives), and
``sync_kernels`` has the fused kernels a CUDA backend offers (norms, GELU, SwiGLU, rotary,
softmax, attention, decode attention, GGML quantized products and rows), emulated by NumPy (or
the CPU's numba kernels) on the raw arrays, as opaque device kernels.

What is checked, for GPT-2, LLaMA with grouped-query attention, Qwen3 with a sliding window and
a GGUF-style quantized LLaMA (Q8_0 blocks: QuantizedLinear projections, QuantizedEmbedding tied
to the head):

* greedy generation gives the CPU's tokens;
* each step -- the prefill (the first step) included -- reads nothing on the host and makes
  exactly one device-to-host transfer: the ``(batch,)`` int64 ids chosen on the device;
* the same with a left-padded batch (attention mask and position ids on the device);
* a plain forward (no cache) makes no transfer at all;
* sampling (or a logits processor) brings back one (batch, vocab) array of logits per step;
* the tests fail when a sync is put back (a range check of the ids in F.embedding).
"""

from __future__ import annotations

import contextlib
import functools
import traceback

import numpy as np
import pytest

import gradient
from gradient.backends import register_backend
from gradient.backends.numpy_backend import ArrayBackend
from gradient.kernels import lookup, register
from gradient.models import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM


# ============================================================================ the device
class HostSyncError(AssertionError):
    """A device value was read by the host outside the backend's ``to_numpy``."""


_ALLOWED = [0]   # > 0: inside to_numpy or an emulated kernel, where reading is the point


@contextlib.contextmanager
def host_access():
    """Reads of DeviceArrays are allowed inside (the device-to-host copy, emulated kernels)."""
    _ALLOWED[0] += 1
    try:
        yield
    finally:
        _ALLOWED[0] -= 1


def _refuse(what: str):
    if not _ALLOWED[0]:
        raise HostSyncError(f"{what} on a device array brings its value to the host (a device "
                            f"synchronisation); keep the value on the device")


def _device(value):
    """A NumPy result as a DeviceArray: arrays viewed as one, scalars as 0-d arrays (CuPy
    returns 0-d device arrays where NumPy returns scalars)."""
    if isinstance(value, DeviceArray):
        return value
    if isinstance(value, np.ndarray):
        return value.view(DeviceArray)
    if isinstance(value, np.generic):
        return np.asarray(value).view(DeviceArray)
    if isinstance(value, tuple):
        return tuple(_device(v) for v in value)
    if isinstance(value, list):
        return [_device(v) for v in value]
    return value


def _host_arrays(values):
    return [v for v in values if type(v) is np.ndarray]


_VALUE_READERS = frozenset({np.array_equal, np.array_equiv, np.allclose})
# functions whose output size depends on the values: the host waits for them to size it
_SIZE_READERS = frozenset({np.nonzero, np.flatnonzero, np.argwhere, np.unique, np.compress,
                           np.extract})


class DeviceArray(np.ndarray):
    """An ndarray that the host may not read (see the module docstring)."""

    def __array_finalize__(self, obj):
        pass

    def __array_wrap__(self, array, context=None, return_scalar=False):
        return _device(array)        # 0-d results stay device arrays

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        host = _host_arrays(inputs) + _host_arrays(kwargs.get("out", ()) or ())
        if host and not _ALLOWED[0]:
            raise HostSyncError(f"{ufunc.__name__}: a host ndarray {host[0].shape} mixed with a "
                                "device array (CuPy raises TypeError: implicit conversion)")
        inputs = tuple(v.view(np.ndarray) if isinstance(v, DeviceArray) else v for v in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(v.view(np.ndarray) if isinstance(v, DeviceArray) else v
                                  for v in kwargs["out"])
        out = getattr(ufunc, method)(*inputs, **kwargs)
        return None if method == "at" else _device(out)

    def __array_function__(self, func, types, args, kwargs):
        if func in _VALUE_READERS:   # NumPy answers a Python bool: CuPy a 0-d device array
            _refuse(f"numpy.{func.__name__}")
        if func in _SIZE_READERS:
            _refuse(f"numpy.{func.__name__} (an output sized by the values)")
        return _device(super().__array_function__(func, types, args, kwargs))

    def __getitem__(self, index):
        for part in index if isinstance(index, tuple) else (index,):
            if isinstance(part, DeviceArray) and part.dtype == bool and part.ndim:
                _refuse("boolean-mask indexing (an output sized by the values)")
        return _device(super().__getitem__(index))

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    # -- every way the host reads values
    def __bool__(self):
        _refuse("bool()")
        return bool(self.view(np.ndarray))

    def __int__(self):
        _refuse("int()")
        return int(self.view(np.ndarray))

    def __float__(self):
        _refuse("float()")
        return float(self.view(np.ndarray))

    def __complex__(self):
        _refuse("complex()")
        return complex(self.view(np.ndarray))

    def __index__(self):
        _refuse("__index__ (as an index, a size or a range bound)")
        return self.view(np.ndarray).__index__()

    def __contains__(self, value):
        _refuse("'in'")
        return value in self.view(np.ndarray)

    def item(self, *args):
        _refuse(".item()")
        return self.view(np.ndarray).item(*args)

    def tolist(self):
        _refuse(".tolist()")
        return self.view(np.ndarray).tolist()

    def tobytes(self, order="C"):
        _refuse(".tobytes()")
        return self.view(np.ndarray).tobytes(order)

    def __repr__(self):
        _refuse("repr()")
        return "DeviceArray(" + repr(self.view(np.ndarray)) + ")"

    def __str__(self):
        _refuse("str()")
        return str(self.view(np.ndarray))

    def __format__(self, spec):
        _refuse("format()")
        return format(self.view(np.ndarray), spec)


# methods of ndarray that return NumPy scalars for whole-array reductions
for _name in ("argmax", "argmin", "max", "min", "sum", "prod", "mean", "all", "any", "std",
              "var", "dot", "trace"):
    def _method(self, *args, _f=getattr(np.ndarray, _name), **kwargs):
        return _device(_f(self, *args, **kwargs))
    setattr(DeviceArray, _name, _method)


class _DeviceNumpy:
    """The device's array module: NumPy, with creation and conversion returning DeviceArrays."""

    ndarray = DeviceArray

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def asarray(a, dtype=None, order=None):
        return _device(np.asarray(a, dtype=dtype, order=order))

    @staticmethod
    def ascontiguousarray(a, dtype=None):
        return _device(np.ascontiguousarray(a, dtype=dtype))

    @staticmethod
    def array(a, dtype=None, copy=True, order="K"):
        return _device(np.array(a, dtype=dtype, copy=copy, order=order))

    empty = staticmethod(lambda *a, **k: _device(np.empty(*a, **k)))
    zeros = staticmethod(lambda *a, **k: _device(np.zeros(*a, **k)))
    ones = staticmethod(lambda *a, **k: _device(np.ones(*a, **k)))
    full = staticmethod(lambda *a, **k: _device(np.full(*a, **k)))
    arange = staticmethod(lambda *a, **k: _device(np.arange(*a, **k)))

    class lib:
        class stride_tricks:
            @staticmethod
            def as_strided(x, *args, **kwargs):
                return _device(np.lib.stride_tricks.as_strided(x, *args, **kwargs))


class SyncDetectingBackend(ArrayBackend):
    """A device whose arrays are DeviceArrays; ``to_numpy`` is the one way to the host and is
    recorded (with the stack that asked) in :attr:`transfers`. ``kernels``: fused kernel name ->
    function on host ndarrays, registered as this device's kernel (float32 inputs, but for the
    quantized ones) and run as an opaque device kernel."""

    def __init__(self, name: str, kernels: dict):
        super().__init__(_DeviceNumpy(), name)
        self.transfers: list[tuple] = []
        self.launched: set[str] = set()   # the fused kernels used
        for op, kernel in kernels.items():
            register(op, name, "emulated",
                     None if hasattr(kernel, "types") else (np.float32,))(self._launcher(op, kernel))

    def from_numpy(self, array):
        return _device(np.array(array, copy=True))   # a copy, as an upload is

    def to_numpy(self, x):
        if type(x) is not DeviceArray:
            raise HostSyncError(f"a {type(x).__name__} in a tensor of device {self.name}")
        with host_access():
            out = np.array(x, copy=True).view(np.ndarray)
        self.transfers.append((out.shape, out.dtype, "".join(traceback.format_stack(limit=8))))
        return out

    def _launcher(self, name, kernel):
        @functools.wraps(kernel)
        def launch(*args):
            self.launched.add(name)
            with host_access():
                host = [a.view(np.ndarray) if isinstance(a, DeviceArray) else a for a in args]
                return _device(kernel(*host))
        return launch     # (wraps copies the GGML types a quantized kernel reads, ``types``)


# ---------------------------------------------------------------------- emulated kernels
def _kernels() -> dict:
    """The fused kernels of a CUDA backend that inference uses, on host arrays (the CPU's numba
    kernels where the CPU has the same one)."""
    from gradient.quant.ggml import GGMLType
    from gradient.quant.matmul import dequantize_rows, quantized_matmul

    def softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return (e / e.sum(-1, keepdims=True)).astype(x.dtype)

    def swiglu(gate, up):
        return (gate / (1 + np.exp(-gate)) * up).astype(gate.dtype)

    def rotary_embedding(x, cos, sin, backward):
        half = x.shape[-1] // 2
        if backward:
            return x * cos + np.roll(x * sin, half, -1)
        return x * cos + np.roll(x, half, -1) * sin

    def decode_attention(q, k, v, scale):
        if q.shape[2] != 1:   # a one-row kernel, as CUDA's: prompts take attention_forward
            return None
        group = q.shape[1] // k.shape[1]
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        return softmax(q @ k.swapaxes(-1, -2) * np.float32(scale)) @ v

    def quant_matmul(x, blocks, qtype, out_features, in_features):
        return quantized_matmul(x.astype(np.float32), blocks, GGMLType[qtype], out_features,
                                in_features)

    def quant_rows(blocks, ids, qtype, num_embeddings, embedding_dim):
        table = dequantize_rows(blocks, GGMLType[qtype], num_embeddings, embedding_dim)
        inside = (ids >= 0) & (ids < num_embeddings)   # a NaN row out of range, as the kernel
        rows = table[np.where(inside, ids, 0)]
        rows[~inside] = np.nan
        return rows

    quant_matmul.types = quant_rows.types = frozenset({"Q8_0", "Q4_0"})
    kernels = {name: lookup(name, "cpu").fn
               for name in ("gelu", "layer_norm", "rms_norm", "attention_forward")}
    kernels.update(softmax=softmax, swiglu=swiglu, rotary_embedding=rotary_embedding,
                   decode_attention=decode_attention, quant_matmul=quant_matmul,
                   quant_rows=quant_rows)
    return kernels


DEVICES = {"sync_plain": SyncDetectingBackend("sync_plain", {}),
           "sync_kernels": SyncDetectingBackend("sync_kernels", _kernels())}
_BACKENDS = tuple(DEVICES.values())
for _name, _backend in DEVICES.items():
    register_backend(_name, _backend)

#: kernels a decode on the kernel device must use (else it tests the composition twice)
KERNELS_USED = {"gpt2": {"layer_norm", "gelu", "attention_forward", "decode_attention"},
                "llama-gqa": {"swiglu", "rotary_embedding", "decode_attention"},
                "llama-q8_0": {"swiglu", "rotary_embedding", "decode_attention", "quant_matmul",
                               "quant_rows"},
                "qwen3-window": {"swiglu", "rotary_embedding", "decode_attention"}}


# ============================================================================ the models
def _gpt2():
    return GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=2,
                                      n_head=4, eos_token_id=None))


def _llama():
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        eos_token_id=None))


def _qwen3_window():
    """Qwen3 (query/key norms) with a sliding window on its second layer, shorter than the
    generated text: the windowed mask is built on the device."""
    return LlamaForCausalLM(LlamaConfig(
        model_type="qwen3", vocab_size=97, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
        max_position_embeddings=64, use_sliding_window=True, sliding_window=4,
        max_window_layers=1, eos_token_id=None))


def _quantized_llama():
    """A LLaMA as load_gguf makes one from a Q8_0 file: every projection a QuantizedLinear,
    the token embedding a QuantizedEmbedding and the head its tied QuantizedLinear (products
    with float32 activations, as the GPU kernel's, so that the CPU's tokens are comparable)."""
    from gradient.quant import QuantizedEmbedding, QuantizedLinear, quantize
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=True, eos_token_id=None))
    for layer in model.model.layers:
        for parent, names in ((layer.self_attn, ("q_proj", "k_proj", "v_proj", "o_proj")),
                              (layer.mlp, ("gate_proj", "up_proj", "down_proj"))):
            for name in names:
                setattr(parent, name, QuantizedLinear.from_linear(getattr(parent, name), "Q8_0",
                                                                  activations="float32"))
    table = model.model.embed_tokens.weight.detach().numpy()
    embedding = QuantizedEmbedding.from_blocks(quantize(table, "Q8_0"), "Q8_0", *table.shape)
    model.model.embed_tokens = embedding
    model.lm_head = embedding.as_linear("float32")
    return model


MODELS = {"gpt2": _gpt2, "llama-gqa": _llama, "llama-q8_0": _quantized_llama,
          "qwen3-window": _qwen3_window}
CASES = [("gpt2", "sync_plain"), ("gpt2", "sync_kernels"), ("llama-gqa", "sync_plain"),
         ("llama-gqa", "sync_kernels"), ("llama-q8_0", "sync_kernels"),
         ("qwen3-window", "sync_kernels")]
PROMPT = [[1, 5, 7, 9, 11], [3, 2, 8, 4, 6]]
PADDED = [[0, 0, 7, 9, 11], [3, 2, 8, 4, 6]]        # the first row left-padded
MASK = [[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]]
STEPS = 6


@pytest.fixture(autouse=True)
def _device_tensors_hold_device_arrays(monkeypatch):
    """Every tensor of the sync-detecting devices holds a DeviceArray: a host ndarray there
    would escape the checks (and on CUDA, be refused by CuPy)."""
    init = gradient.Tensor._init

    def checked(self, data, requires_grad, backend):
        if backend in _BACKENDS and type(data) is not DeviceArray:
            raise HostSyncError(f"a tensor of device {backend.name} made of a "
                                f"{type(data).__name__}, not a device array")
        init(self, data, requires_grad, backend)
    monkeypatch.setattr(gradient.Tensor, "_init", checked)


@pytest.fixture(scope="module")
def models():
    """name -> (model on the CPU, the same weights on each device)."""
    built = {}
    for name, make in MODELS.items():
        gradient.manual_seed(0)
        cpu = make().eval()
        on_device = {}
        for device in DEVICES:
            if (name, device) not in CASES:
                continue
            gradient.manual_seed(0)
            on_device[device] = make().eval().to(device)
        built[name] = (cpu, on_device)
    return built


def _step_transfers(model, backend, prompt, **kwargs):
    """Run greedy generation step by step; per step the transfers it made. The prompt goes in
    as host lists (its upload is not a transfer to the host)."""
    stream = gradient.generation.generate_tokens(model, prompt, STEPS, **kwargs)
    per_step, tokens = [], []
    while True:
        backend.transfers.clear()
        try:
            step = next(stream)
        except StopIteration:
            break
        per_step.append(list(backend.transfers))
        tokens.append(step)
    return tokens, per_step


def _assert_one_transfer_per_step(per_step, batch):
    assert len(per_step) == STEPS
    for i, transfers in enumerate(per_step):
        what = "prefill" if i == 0 else f"decode step {i}"
        stacks = "\n\n".join(t[2] for t in transfers)
        assert len(transfers) == 1, (f"{what}: {len(transfers)} device-to-host transfers, "
                                     f"expected 1 (the chosen ids); made by:\n{stacks}")
        shape, dtype, _ = transfers[0]
        assert shape == (batch,) and dtype == np.int64, (shape, dtype, stacks)


# ============================================================================ the tests
def test_the_device_detects_host_reads():
    """The harness itself: each way of reading a device value raises, to_numpy is counted,
    and NumPy keeps the arrays on the device (0-d results included)."""
    backend = DEVICES["sync_plain"]
    ids = gradient.tensor([[1, 5, 98]], device="sync_plain")
    a = ids._data
    assert type(a) is DeviceArray
    reads = [lambda: bool((a < 0).any()), lambda: int(a.max()), lambda: float(a[0, 0]),
             lambda: a.item(0), lambda: a.tolist(), lambda: range(a[0, 0]), lambda: 5 in a,
             lambda: [int(v) for v in a[0]], lambda: f"{a.sum()}",
             lambda: a + np.ones(3, np.int64), lambda: np.array_equal(a, a),
             lambda: a[a > 1], lambda: np.nonzero(a), lambda: ids[ids > 1]]
    for read in reads:
        with pytest.raises(HostSyncError):
            read()
    assert type(np.sum(a)) is type(a.argmax()) is type(a[0, 0]) is DeviceArray
    assert type(backend.reduce("max", a, None, False)) is DeviceArray
    backend.transfers.clear()
    assert ids.tolist() == [[1, 5, 98]] and ids.max().item() == 98
    assert len(backend.transfers) == 2


@pytest.mark.parametrize("name,device", CASES)
def test_greedy_generation_syncs_once_per_step(models, name, device):
    cpu, on_device = models[name]
    model, backend = on_device[device], DEVICES[device]
    expected = list(gradient.generation.generate_tokens(cpu, PROMPT, STEPS))
    backend.launched.clear()
    tokens, per_step = _step_transfers(model, backend, PROMPT)
    assert tokens == expected
    _assert_one_transfer_per_step(per_step, len(PROMPT))
    if device == "sync_kernels":
        assert KERNELS_USED[name] <= backend.launched


@pytest.mark.parametrize("name,device", CASES)
def test_padded_generation_syncs_once_per_step(models, name, device):
    """A left-padded batch: the attention mask and position ids are on the device too."""
    cpu, on_device = models[name]
    model, backend = on_device[device], DEVICES[device]
    expected = list(gradient.generation.generate_tokens(cpu, PADDED, STEPS, attention_mask=MASK))
    tokens, per_step = _step_transfers(model, backend, PADDED, attention_mask=MASK)
    assert tokens == expected
    _assert_one_transfer_per_step(per_step, len(PADDED))


@pytest.mark.parametrize("name,device", CASES)
def test_a_forward_makes_no_transfer(models, name, device):
    """A forward without a cache (every position's logits) stays on the device."""
    cpu, on_device = models[name]
    model, backend = on_device[device], DEVICES[device]
    ids = gradient.tensor(PROMPT, device=device)
    backend.transfers.clear()
    with gradient.no_grad():
        logits = model(ids).logits
    assert backend.transfers == []
    with gradient.no_grad():
        expected = cpu(gradient.tensor(PROMPT)).logits.numpy()
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(do_sample=True, top_k=5, seed=3),
                                    dict(repetition_penalty=1.3)])
def test_processed_scores_come_back_once_per_step(models, kwargs):
    """Sampling, or greedy with a logits processor, runs on the host: the last position's
    logits (batch, vocab) come back once per step, and nothing else does."""
    cpu, on_device = models["llama-gqa"]
    backend = DEVICES["sync_kernels"]
    expected = list(gradient.generation.generate_tokens(cpu, PROMPT, STEPS, **kwargs))
    tokens, per_step = _step_transfers(on_device["sync_kernels"], backend, PROMPT, **kwargs)
    assert tokens == expected
    assert [[t[:2] for t in step] for step in per_step] == \
        [[((len(PROMPT), 97), np.float32)]] * STEPS


def test_embedding_on_a_device_gives_nan_rows_for_bad_ids():
    """F.embedding does not read the ids back to check them on an accelerator: an id out of
    range gives a row of NaN there (the CPU still raises IndexError); valid ids get their rows
    and the table its gradient, as on the CPU."""
    import gradient.nn.functional as F
    backend = DEVICES["sync_plain"]
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    weight = gradient.tensor(table, device="sync_plain", requires_grad=True)
    backend.transfers.clear()
    rows = F.embedding(gradient.tensor([[1, -1], [4, 3]], device="sync_plain"), weight)
    assert backend.transfers == []
    expected = np.stack([table[1], np.full(3, np.nan), np.full(3, np.nan), table[3]])
    np.testing.assert_array_equal(rows.detach().numpy().reshape(4, 3), expected)
    backend.transfers.clear()
    rows = F.embedding(gradient.tensor([[1, 1], [0, 3]], device="sync_plain"), weight)
    scale = gradient.tensor([[[1.0], [2.0]], [[0.0], [1.0]]], device="sync_plain")
    (rows * scale).sum().backward()
    assert backend.transfers == []
    np.testing.assert_array_equal(rows.detach().numpy(), table[[[1, 1], [0, 3]]])
    grad = np.zeros((4, 3), np.float32)
    grad[1], grad[3] = 3, 1
    np.testing.assert_array_equal(weight.grad.numpy(), grad)
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(gradient.tensor([[1, -1]]), gradient.tensor(table))


def test_rotary_tables_at_device_position_ids_equal_the_cpu_tables():
    """With position ids on an accelerator, LLaMA's cos/sin are computed there (no largest id
    read back to size the table), bit for bit the CPU table's rows."""
    from gradient.models.llama import RotaryEmbedding, rope_inv_freq
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=4)
    positions = [[0, 0, 1, 2, 300], [5, 6, 7, 8, 9]]   # 300: past the table's first 256 rows
    backend = DEVICES["sync_plain"]
    backend.transfers.clear()
    on_device = RotaryEmbedding(rope_inv_freq(config))(
        0, 5, gradient.tensor(positions, device="sync_plain"), gradient.float32, None)
    assert backend.transfers == []
    on_cpu = RotaryEmbedding(rope_inv_freq(config))(0, 5, gradient.tensor(positions),
                                                    gradient.float32, None)
    for device_table, cpu_table in zip(on_device, on_cpu):
        np.testing.assert_array_equal(device_table.numpy(), cpu_table.numpy())


@pytest.mark.parametrize("sync", ["tensor", "array"])
def test_a_sync_put_back_is_caught(models, monkeypatch, sync):
    """The tests can fail: a range check on the ids in F.embedding, the sync these fixes
    removed, either through the tensor (an extra transfer per step) or on its raw array (a
    host read)."""
    import gradient.nn.functional as F
    embedding = F.embedding

    def checked(input, weight, *args, **kwargs):
        if sync == "tensor" and bool((input < 0).any()):
            raise IndexError("negative id")
        if sync == "array" and bool((input._data < 0).any()):
            raise IndexError("negative id")
        return embedding(input, weight, *args, **kwargs)
    monkeypatch.setattr(F, "embedding", checked)
    model, backend = models["gpt2"][1]["sync_kernels"], DEVICES["sync_kernels"]
    if sync == "array":
        with pytest.raises(HostSyncError, match="bool"):
            _step_transfers(model, backend, PROMPT)
        return
    _, per_step = _step_transfers(model, backend, PROMPT)
    with pytest.raises(AssertionError, match="prefill: 3 device-to-host transfers"):
        _assert_one_transfer_per_step(per_step, len(PROMPT))


def test_generate_returns_the_cpu_tokens_on_the_device(models):
    """The public generate() end to end on the sync-detecting device."""
    cpu, on_device = models["llama-gqa"]
    expected = cpu.generate(gradient.tensor(PROMPT), max_new_tokens=STEPS).tolist()
    out = on_device["sync_kernels"].generate(gradient.tensor(PROMPT, device="sync_kernels"),
                                             max_new_tokens=STEPS)
    assert out.device.type == "sync_kernels" and out.tolist() == expected
