"""Several devices of one type: ``"cuda:N"`` is GPU N, ``"cuda"`` the current one.

What needs no GPU runs everywhere: device strings, the errors of a machine without CUDA, and
the multi-device logic itself on devices whose arrays live in host memory: a registered type
``hostgpu`` with three devices (``ArrayBackend`` on NumPy, one per index), and the real
:class:`MultiDeviceCupyBackend` over a fake CuPy (NumPy arrays that remember the "GPU" that was
current when they were made, and refuse to be computed on while another one is current, as
CuPy does without peer access). The real multi-GPU behaviour is marked ``gpu`` and runs only
where ``gradient.cuda.device_count() >= 2``.
"""

import gc
import threading

import numpy as np
import pytest

import gradient
from gradient.backends import (ArrayBackend, Backend, current_index, get_backend, register_backend,
                               set_current_index)
from gradient.errors import DeviceError
from gradient.kernels import lookup

GPU = gradient.cuda.is_available()
GPUS = gradient.cuda.device_count()
HOST_DEVICES = 3


class HostGpu(ArrayBackend):
    """A device whose arrays live in host memory, but memory of its own: an upload copies."""

    def from_numpy(self, array):
        return np.array(array, copy=True)


@pytest.fixture(autouse=True)
def _host_devices():
    """Type ``hostgpu``: three devices whose arrays live in host memory; current index 0."""
    register_backend("hostgpu", lambda i: HostGpu(np, f"hostgpu:{i}"), device_count=HOST_DEVICES)
    yield
    set_current_index("hostgpu", 0)


def host(data, index, **kwargs):
    return gradient.tensor(np.asarray(data, np.float32), device=f"hostgpu:{index}", **kwargs)


# ---------------------------------------------------------------------- device strings
def test_device_strings_parse_print_and_compare():
    d = gradient.device("cuda:1")
    assert (d.type, d.index, str(d), repr(d)) == ("cuda", 1, "cuda:1", "device(type='cuda', index=1)")
    assert gradient.device("cuda", 1) == d == "cuda:1" == gradient.device(1) == gradient.device(d)
    assert gradient.device("cuda") == "cuda:0" and gradient.device("cuda") != "cuda:1"
    assert gradient.device("cuda:1") != "cpu" and gradient.device("cpu") == "cpu"
    assert str(gradient.device("cuda")) == "cuda" and gradient.device("cuda").index is None
    assert len({gradient.device("cuda"), gradient.device("cuda:0"), gradient.device("cuda:1")}) == 2
    assert gradient.device("cuda:1") != "not a device:x"


@pytest.mark.parametrize("bad", ["cuda:", ":1", "cuda:-1", "cuda:x", "cuda:1.0", 1.5, None])
def test_bad_device_strings_raise_a_clear_error(bad):
    with pytest.raises(DeviceError, match="device"):
        gradient.device(bad)


def test_an_index_given_twice_or_negative_is_refused():
    with pytest.raises(DeviceError, match="pass the index once"):
        gradient.device("cuda:1", 2)
    with pytest.raises(DeviceError, match="non-negative"):
        gradient.device("cuda", -1)
    assert gradient.device("cuda:1", 1).index == 1


def test_one_device_types_take_index_0_only():
    assert get_backend("cpu:0") is get_backend("cpu") is get_backend(gradient.device("cpu", 0))
    assert gradient.ones(2).to("cpu:0").device == "cpu"
    with pytest.raises(DeviceError, match="'cpu:1' does not exist: there is one cpu device"):
        gradient.ones(2).to("cpu:1")


# ---------------------------------------------------------------------- without a GPU
@pytest.mark.skipif(GPU, reason="checks the errors of a machine without a GPU")
@pytest.mark.parametrize("use", [
    lambda x: x.to("cuda:1"), lambda x: x.cuda(1), lambda x: gradient.zeros(2, device="cuda:1"),
    lambda x: gradient.Tensor([1.0], device="cuda:1"), lambda x: gradient.nn.Linear(2, 2).to("cuda:1"),
    lambda x: gradient.cuda.memory_allocated(1), lambda x: gradient.cuda.set_device(1),
    lambda x: gradient.cuda.device(1).__enter__(), lambda x: gradient.cuda.synchronize("cuda:1"),
    lambda x: gradient.cuda.current_device(), lambda x: gradient.cuda.get_device_name(1),
], ids=["to", "cuda(1)", "zeros", "Tensor", "Module.to", "memory_allocated", "set_device",
        "device()", "synchronize", "current_device", "get_device_name"])
def test_an_indexed_cuda_device_without_a_gpu_says_there_is_none(use):
    x = gradient.ones(3)
    with pytest.raises(DeviceError, match="device 'cuda' is not available: .*(no CUDA device|CuPy is "
                                          "not installed).*Use device='cpu'"):
        use(x)
    assert x.device == "cpu" and x.sum().item() == 3.0 and gradient.cuda.device_count() == 0


# ---------------------------------------------------------------------- several host devices
def test_each_index_has_a_backend_of_its_own_named_by_its_device():
    backends = [get_backend(f"hostgpu:{i}") for i in range(HOST_DEVICES)]
    assert [b.name for b in backends] == ["hostgpu:0", "hostgpu:1", "hostgpu:2"]
    assert len({id(b) for b in backends}) == HOST_DEVICES
    assert get_backend("hostgpu:1") is backends[1] is get_backend(gradient.device("hostgpu", 1))
    assert get_backend("hostgpu") is backends[0]  # no index: the current device
    assert gradient.backends.device_count("hostgpu") == HOST_DEVICES
    assert gradient.backends.device_count("cpu") == 1


def test_an_index_past_the_devices_says_how_many_there_are():
    for use in (lambda: gradient.zeros(2, device="hostgpu:3"), lambda: host([1.0], 0).to("hostgpu:7"),
                lambda: gradient.device("hostgpu", 3) and get_backend(gradient.device("hostgpu", 3)),
                lambda: set_current_index("hostgpu", 3)):
        with pytest.raises(DeviceError, match=r"'hostgpu:\d' does not exist: there are 3 hostgpu "
                                              r"devices \(hostgpu:0 to hostgpu:2\)"):
            use()
    with pytest.raises(DeviceError, match="unknown device type 'nogpu'"):
        gradient.zeros(1, device="nogpu:1")


def test_a_loader_must_name_its_backend_by_the_device():
    register_backend("misnamed", lambda i: ArrayBackend(np, "misnamed"), device_count=2)
    with pytest.raises(DeviceError, match="named 'misnamed' for device 'misnamed:1'"):
        get_backend("misnamed:1")
    with pytest.raises(DeviceError, match="no index"):
        register_backend("bad:1", ArrayBackend(np, "bad"))


@pytest.mark.parametrize("make", [
    lambda d: gradient.zeros(2, 3, device=d), lambda d: gradient.ones(2, device=d),
    lambda d: gradient.full((2,), 7.0, device=d), lambda d: gradient.arange(5, device=d),
    lambda d: gradient.randn(4, device=d), lambda d: gradient.tensor([[1, 2]], device=d),
    lambda d: gradient.Tensor([1.0, 2.0], device=d), lambda d: gradient.empty(3, device=d),
    lambda d: gradient.zeros(1).new_zeros(2, device=d), lambda d: gradient.eye(2, device=d),
    lambda d: gradient.zeros(1, device=gradient.device(d)),
], ids=["zeros", "ones", "full", "arange", "randn", "tensor", "Tensor", "empty", "new_zeros", "eye",
        "device object"])
def test_factories_put_tensors_on_the_index_asked_for(make):
    for i in range(HOST_DEVICES):
        t = make(f"hostgpu:{i}")
        assert t._backend is get_backend(f"hostgpu:{i}")
        assert t.device == gradient.device("hostgpu", i) and str(t.device) == f"hostgpu:{i}"
        assert t.device.index == i and t.device.type == "hostgpu"
        assert (t * 2).device == t.device  # results stay there


def test_a_tensor_prints_its_device_with_the_index():
    assert "device='hostgpu:2'" in repr(host([1.0, 2.0], 2))


def test_no_index_means_the_current_device_per_thread():
    assert current_index("hostgpu") == 0
    assert gradient.zeros(1, device="hostgpu").device == "hostgpu:0"
    set_current_index("hostgpu", 2)
    t = gradient.zeros(1, device="hostgpu")
    assert t.device == "hostgpu:2" and t.device.index == 2  # reports the index it got
    assert gradient.ones(1).to("hostgpu").device == "hostgpu:2"
    assert gradient.zeros(1, device="hostgpu:1").device == "hostgpu:1"  # an index is an index
    seen = []
    thread = threading.Thread(target=lambda: seen.append(gradient.zeros(1, device="hostgpu").device))
    thread.start()
    thread.join()
    assert seen == [gradient.device("hostgpu:0")]  # another thread: its own current device
    set_current_index("hostgpu", 0)
    assert t.device == "hostgpu:2" and gradient.zeros(1, device="hostgpu").device == "hostgpu:0"


def test_to_another_index_copies():
    x = host([1.0, 2.0, 3.0], 0)
    y = x.to("hostgpu:1")
    assert y is not x and y.device == "hostgpu:1" and y._data is not x._data
    assert not np.shares_memory(x._data, y._data)
    x.add_(10)  # the copy does not follow
    np.testing.assert_array_equal(y.numpy(), [1.0, 2.0, 3.0])
    z = y.to(gradient.device("hostgpu", 2), dtype=gradient.float64)
    assert z.device == "hostgpu:2" and z.dtype == gradient.float64
    assert y.to("hostgpu:1") is y and y.to(gradient.device("hostgpu:1")) is y and y.to(y) is y
    assert x.to("hostgpu") is x  # no index: the current device, where x is
    back = z.cpu()
    assert back.device == "cpu" and back.tolist() == [1.0, 2.0, 3.0]


def test_copy_from_another_index_copies_as_in_pytorch():
    a = host([1.0, 2.0], 0, requires_grad=True)
    b = gradient.zeros(2, device="hostgpu:1")
    b.copy_(a * 3)
    assert b.device == "hostgpu:1" and b.tolist() == [3.0, 6.0]
    b.sum().backward()  # and the gradient goes back to a's device
    assert a.grad.device == "hostgpu:0" and a.grad.tolist() == [3.0, 3.0]


@pytest.mark.parametrize("op", [
    lambda a, b: a + b, lambda a, b: a @ b, lambda a, b: gradient.cat([a, b]),
    lambda a, b: gradient.where(a > 0, a, b), lambda a, b: a.add_(b),
    lambda a, b: gradient.stack([a, b]), lambda a, b: gradient.maximum(a, b),
    lambda a, b: a.mul_(b), lambda a, b: a.sub_(b, alpha=2), lambda a, b: a.lerp_(b, 0.5),
    lambda a, b: a.addcmul_(b, b, value=0.5),
], ids=["add", "matmul", "cat", "where", "add_", "stack", "maximum", "mul_", "sub_",
        "lerp_", "addcmul_"])
def test_ops_mixing_two_indices_raise(op):
    a, b = host([1.0, 2.0], 0), host([3.0, 4.0], 1)
    with pytest.raises(DeviceError, match="same device, got hostgpu:[01] and hostgpu:[01]"):
        op(a, b)
    np.testing.assert_array_equal(a.numpy(), [1.0, 2.0])  # nothing was written


@pytest.mark.parametrize("write", [
    lambda a, b: a.add_(b), lambda a, b: a.mul_(b), lambda a, b: a.lerp_(b, 0.25),
    lambda a, b: a.addcdiv_(b, b),
], ids=["add_", "mul_", "lerp_", "addcdiv_"])
def test_in_place_writes_into_a_cpu_tensor_refuse_another_device(write):
    """The direct in-place writes of CPU tensors take CPU operands only: a device's array
    (here NumPy's too) is refused as the op refuses it, under no_grad as well."""
    a, b = gradient.tensor([1.0, 2.0]), host([3.0, 4.0], 1)
    with gradient.no_grad(), pytest.raises(DeviceError, match="same device"):
        write(a, b)
    np.testing.assert_array_equal(a.numpy(), [1.0, 2.0])


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad", "Adamax"])
def test_an_optimizer_refuses_a_gradient_on_another_device(name):
    p = gradient.nn.Parameter(gradient.tensor([1.0, 2.0]))
    p.grad = host([3.0, 4.0], 0)
    with pytest.raises(DeviceError):
        getattr(gradient.optim, name)([p], lr=0.1).step()
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, 2.0])


@pytest.mark.parametrize("op", [
    lambda a, b: gradient.nn.functional.embedding(gradient.tensor([0, 1], device=b.device),
                                                  a.reshape(2, 1)),
    lambda a, b: gradient.nn.functional.rms_norm(a.reshape(1, 2), (2,), b),
    lambda a, b: gradient.nn.functional.scaled_dot_product_attention(
        a.reshape(1, 1, 1, 2), b.reshape(1, 1, 1, 2), b.reshape(1, 1, 1, 2)),
    lambda a, b: gradient.nn.functional.scaled_dot_product_attention(
        a.reshape(1, 1, 2, 1), b.reshape(1, 1, 2, 1), b.reshape(1, 1, 2, 1), is_causal=True),
], ids=["embedding", "rms_norm", "decode_attention", "attention"])
def test_fast_paths_without_a_graph_refuse_two_indices_too(op):
    """Inference paths that run on raw arrays (not through Function.apply) check devices too."""
    a, b = host([1.0, 2.0], 0), host([3.0, 4.0], 1)
    with gradient.no_grad(), pytest.raises(DeviceError, match="same device, got hostgpu:[01] "
                                                             "and hostgpu:[01]"):
        op(a, b)


def test_module_to_an_index_moves_parameters_and_buffers():
    gradient.manual_seed(0)
    model = gradient.nn.Sequential(gradient.nn.Linear(4, 3), gradient.nn.BatchNorm1d(3))
    x = gradient.randn(5, 4)
    expected = model(x)
    assert model.to("hostgpu:1") is not None
    tensors = list(model.parameters()) + list(model.buffers())
    assert len(list(model.buffers())) == 3  # running mean and var, and the integer step count
    assert all(t.device == "hostgpu:1" for t in tensors)
    out = model(x.to("hostgpu:1"))
    assert out.device == "hostgpu:1"
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-6)
    with pytest.raises(DeviceError, match="same device"):
        model(x.to("hostgpu:2"))
    model.to("hostgpu:2")
    assert all(t.device == "hostgpu:2" for t in model.parameters())


def test_autograd_on_index_1_and_through_a_move_between_indices():
    rng = np.random.default_rng(0)
    a, w = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((4, 2)).astype(np.float32)
    grads = []
    for devices in (("cpu", "cpu"), ("hostgpu:0", "hostgpu:1"), ("hostgpu:1", "hostgpu:1")):
        x = gradient.tensor(a, device=devices[0], requires_grad=True)
        v = gradient.tensor(w, device=devices[1], requires_grad=True)
        y = (x.to(devices[1]) @ v).tanh()
        loss = gradient.nn.functional.cross_entropy(y, gradient.tensor([0, 1, 1], device=devices[1]))
        assert loss.device == devices[1]
        loss.backward()
        assert x.grad.device == devices[0] and v.grad.device == devices[1]
        grads.append((x.grad.numpy(), v.grad.numpy()))
    for ours in grads[1:]:
        for g, ref in zip(ours, grads[0]):
            np.testing.assert_allclose(g, ref, rtol=1e-6, atol=1e-7)


def test_an_optimizer_step_stays_on_the_parameters_index():
    layer = gradient.nn.Linear(3, 2).to("hostgpu:2")
    opt = gradient.optim.AdamW(layer.parameters(), lr=0.1)
    layer(gradient.ones(4, 3, device="hostgpu:2")).sum().backward()
    opt.step()
    assert all(p.device == "hostgpu:2" and p.grad.device == "hostgpu:2" for p in layer.parameters())


# ---------------------------------------------------------------------- MultiDeviceCupyBackend
class _FakeCuda:
    """The device state of a fake CuPy: which "GPU" is current, and how often it was switched."""

    def __init__(self, count):
        self.count, self.current, self.switches = count, 0, 0

    def getDevice(self):
        return self.current

    def setDevice(self, index):
        assert 0 <= index < self.count
        self.current, self.switches = index, self.switches + 1


FAKE = _FakeCuda(2)


def _check(values):
    """Refuse arrays of another GPU than the current one, as CuPy does without peer access."""
    for v in values:
        if isinstance(v, (list, tuple)):
            _check(v)
        elif isinstance(v, GpuArray) and v.gpu != FAKE.current:
            raise AssertionError(f"an array of GPU {v.gpu} used while GPU {FAKE.current} is current")


def _plain(v):
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(u) for u in v)
    return v.view(np.ndarray) if isinstance(v, GpuArray) else v


def _here(result):
    """A result, made on the current GPU."""
    if isinstance(result, tuple):
        return tuple(_here(r) for r in result)
    if type(result) is np.ndarray:
        out = result.view(GpuArray)
        out.gpu = FAKE.current
        return out
    return result


class GpuArray(np.ndarray):
    """A NumPy array that remembers its GPU; views keep it, new arrays are made on the current
    one (``copy`` too, as in CuPy)."""

    gpu = 0

    def __array_finalize__(self, obj):
        self.gpu = getattr(obj, "gpu", FAKE.current)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        _check(inputs + tuple(kwargs.get("out", ())))
        kwargs = {k: _plain(v) for k, v in kwargs.items()}
        return _here(getattr(ufunc, method)(*_plain(inputs), **kwargs))

    def __array_function__(self, func, types, args, kwargs):
        _check(args + tuple(kwargs.values()))
        return _here(func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()}))

    def copy(self, order="C"):
        return _here(np.array(self.view(np.ndarray), order=order, copy=True))

    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        _check((self,))
        plain = self.view(np.ndarray)
        out = plain.astype(dtype, order=order, casting=casting, copy=copy)
        return self if out is plain else _here(out)


class _FakeCupy:
    """NumPy posing as CuPy on a machine with ``FAKE.count`` GPUs."""

    ndarray = GpuArray

    def __init__(self):
        self.cuda = type("cuda", (), {"runtime": FAKE, "set_allocator": staticmethod(lambda f: None)})

    def get_default_memory_pool(self):
        return None  # no memory statistics here

    def asnumpy(self, x):
        _check((x,))
        return np.array(_plain(x))

    def __getattr__(self, name):
        attr = getattr(np, name)
        if isinstance(attr, np.ufunc) or not callable(attr):
            return attr  # ufuncs check their arguments themselves (GpuArray.__array_ufunc__)

        def on_current_gpu(*args, **kwargs):
            _check(args + tuple(kwargs.values()))
            return _here(attr(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()}))
        return on_current_gpu


@pytest.fixture
def fake_gpus():
    """Type ``fakecuda`` with two devices: the real MultiDeviceCupyBackend over the fake CuPy
    (without fused kernels: theirs are CUDA launchers)."""
    from gradient.backends.cuda.backend import MultiDeviceCupyBackend

    cupy = _FakeCupy()

    def load(index):
        backend = MultiDeviceCupyBackend(cupy, index)
        backend.name = f"fakecuda:{index}"
        return backend
    FAKE.current = FAKE.switches = 0
    register_backend("fakecuda", load, device_count=FAKE.count)
    return FAKE


def test_every_primitive_of_a_multi_gpu_backend_is_guarded():
    from gradient.backends.cuda.backend import _OWN_DEVICE, CupyBackend, MultiDeviceCupyBackend
    contract = {n for n in dir(Backend) if not n.startswith("_") and callable(getattr(Backend, n))}
    guarded = {n for n in dir(MultiDeviceCupyBackend) if getattr(
        getattr(MultiDeviceCupyBackend, n), "__wrapped__", None) is getattr(CupyBackend, n)}
    assert contract - _OWN_DEVICE <= guarded and "from_numpy" in guarded
    assert not guarded & _OWN_DEVICE


def test_cuda_launchers_run_on_the_gpu_of_their_first_array(monkeypatch):
    """The registered CUDA kernels are called outside the backend's guarded methods, so each
    launcher makes its arrays' GPU current itself (and switches only when it differs)."""
    from gradient.backends.cuda import fused

    class Runtime:
        current, switches = 0, 0

        @staticmethod
        def getDevice():
            return Runtime.current

    class Device:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            self.before, Runtime.current = Runtime.current, self.index
            Runtime.switches += 1

        def __exit__(self, *exc):
            Runtime.current = self.before

    cupy = type("cupy", (), {"cuda": type("cuda", (), {"runtime": Runtime, "Device": Device})})
    monkeypatch.setattr(fused, "_cupy", lambda: cupy)
    on_gpu = lambda i: type("array", (), {"device": type("device", (), {"id": i})})()  # noqa: E731
    launcher = fused._on_its_device(lambda *args: Runtime.current)
    assert launcher(on_gpu(1), 3) == 1 and Runtime.current == 0 and Runtime.switches == 1
    assert launcher(on_gpu(0)) == 0 and Runtime.switches == 1        # already current: no switch
    assert launcher(2.0, on_gpu(1), on_gpu(0)) == 1        # the first GPU array decides
    assert lookup("softmax", "cuda").fn is fused.softmax   # the registered kernel is wrapped


def test_a_multi_gpu_backend_switches_the_current_gpu_only_when_it_differs(fake_gpus):
    gpu0, gpu1 = get_backend("fakecuda:0"), get_backend("fakecuda:1")
    f32 = gradient.float32
    a = gpu1.from_numpy(np.ones((2, 3), np.float32))
    assert (a.gpu, fake_gpus.current, fake_gpus.switches) == (1, 1, 1)
    b = gpu1.binary("add", gpu1.unary("exp", a), gpu1.full((2, 3), 2.0, f32))
    c = gpu1.reduce("sum", gpu1.matmul(b, gpu1.permute(b, (1, 0))), None, False)
    assert fake_gpus.switches == 1 and {b.gpu, c.gpu} == {1}  # already current: no switch
    z = gpu0.empty((4,), f32)
    assert (z.gpu, fake_gpus.current, fake_gpus.switches) == (0, 0, 2)
    np.testing.assert_allclose(gpu1.to_numpy(c), 4 * (np.e + 2) ** 2 * 3, rtol=1e-6)
    assert fake_gpus.current == 1  # left current: the op's raw array work that follows lands there
    with pytest.raises(AssertionError, match="GPU 0 used while GPU 1 is current"):
        gpu1.binary("add", a, z)  # the fake refuses what CuPy without peer access refuses


def test_ops_and_autograd_run_on_the_gpu_of_their_tensors(fake_gpus):
    """A small network on fakecuda:1, interleaved with work on fakecuda:0: every array is made
    and computed on the GPU of its tensor (the fake raises otherwise), and the numbers are the
    CPU's."""
    gradient.manual_seed(0)
    model = gradient.nn.Sequential(gradient.nn.Linear(6, 8), gradient.nn.GELU(approximate="tanh"),
                                   gradient.nn.LayerNorm(8), gradient.nn.Linear(8, 3))
    x = gradient.randn(5, 6)
    target = gradient.tensor([0, 2, 1, 1, 0])
    results = {}
    for device in ("cpu", "fakecuda:1"):
        model.zero_grad()
        model.to(device)
        other = gradient.ones(3, device="fakecuda:0")
        inputs = x.to(device)
        h = model[1](model[0](inputs))
        other = other * 2  # work on the other GPU between two ops of this one
        loss = gradient.nn.functional.cross_entropy(model[3](model[2](h)), target.to(device))
        other = other.exp()
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        assert all(g.device == device for g in grads) and loss.device == device
        assert all(t._data.gpu == 1 for t in grads + [loss] if device != "cpu")
        assert other._data.gpu == 0
        results[device] = [loss.item()] + [g.numpy() for g in grads]
    assert fake_gpus.switches >= 4
    for ours, ref in zip(results["fakecuda:1"], results["cpu"]):
        np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)


def test_moving_between_gpus_copies_onto_the_target(fake_gpus):
    x = gradient.tensor([1.0, 2.0], device="fakecuda:0", requires_grad=True)
    y = x.to("fakecuda:1")
    assert (x._data.gpu, y._data.gpu, y.device) == (0, 1, gradient.device("fakecuda:1"))
    (y * y).sum().backward()
    assert x.grad._data.gpu == 0 and x.grad.tolist() == [2.0, 4.0]


def test_an_op_that_starts_with_a_copy_copies_on_its_gpu(fake_gpus):
    """Copies go through Backend.copy, a primitive: made on the tensor's GPU whichever GPU the
    last op left current (a raw ``x.copy()`` would land on the current one)."""
    a = gradient.ones(3, device="fakecuda:1")
    gradient.ones(3, device="fakecuda:0").exp()  # GPU 0 is current now
    assert a.clone()._data.gpu == 1


# ---------------------------------------------------------------------- on GPUs
needs_gpu = pytest.mark.skipif(not GPU, reason="no CUDA device (or no CuPy)")
needs_two_gpus = pytest.mark.skipif(GPUS < 2, reason="needs two CUDA devices")


@pytest.mark.gpu
@needs_gpu
def test_cuda_reports_the_index_it_resolved_to_and_an_index_past_the_gpus_is_refused():
    t = gradient.ones(2, device="cuda")
    assert t.device == gradient.device("cuda", gradient.cuda.current_device())
    assert t.device.index == gradient.cuda.current_device() and str(t.device).startswith("cuda:")
    assert "device='cuda:" in repr(t)
    with pytest.raises(DeviceError, match=f"'cuda:{GPUS}' does not exist: there (is|are) {GPUS} cuda"):
        t.to(f"cuda:{GPUS}")


@pytest.mark.gpu
@needs_two_gpus
def test_tensors_on_cuda_1_live_and_compute_on_gpu_1():
    x = gradient.randn(64, 64, device="cuda:1")
    assert x.device == "cuda:1" and x._data.device.id == 1
    y = (x @ x).relu().softmax(-1) + gradient.nn.functional.gelu(x).clone()  # fused kernels too
    assert y.device == "cuda:1" and y._data.device.id == 1
    z = gradient.zeros(3, device="cuda:0") + 1  # between, work on GPU 0
    w = gradient.nn.functional.layer_norm(y, (64,)).sum(-1)
    assert w._data.device.id == 1 and z._data.device.id == 0
    np.testing.assert_allclose(w.cpu().numpy(), np.zeros(64), atol=1e-3)


@pytest.mark.gpu
@needs_two_gpus
def test_cuda_means_the_current_gpu():
    assert gradient.cuda.current_device() == 0
    with gradient.cuda.device(1):
        assert gradient.cuda.current_device() == 1
        t = gradient.zeros(2, device="cuda")
        assert t.device == "cuda:1" and t._data.device.id == 1
    assert gradient.cuda.current_device() == 0 and gradient.zeros(1, device="cuda").device == "cuda:0"
    gradient.cuda.set_device(1)
    try:
        assert gradient.ones(1).cuda().device == "cuda:1"
    finally:
        gradient.cuda.set_device(0)


@pytest.mark.gpu
@needs_two_gpus
def test_moving_between_gpus_copies_and_gradients_come_back():
    x = gradient.randn(8, 8, device="cuda:0", requires_grad=True)
    y = x.to("cuda:1")
    assert y._data.device.id == 1 and y._data.data.ptr != x._data.data.ptr
    (y * y).sum().backward()
    assert x.grad.device == "cuda:0" and x.grad._data.device.id == 0
    np.testing.assert_allclose(x.grad.cpu().numpy(), 2 * x.detach().cpu().numpy(), rtol=1e-6)
    with pytest.raises(DeviceError, match="same device, got cuda:[01] and cuda:[01]"):
        x + y


@pytest.mark.gpu
@needs_two_gpus
def test_a_model_trains_on_cuda_1_as_on_the_cpu():
    gradient.manual_seed(0)
    model = gradient.nn.Sequential(gradient.nn.Linear(16, 32), gradient.nn.GELU(),
                                   gradient.nn.LayerNorm(32), gradient.nn.Linear(32, 4))
    x, target = gradient.randn(8, 16), gradient.tensor([0, 1, 2, 3] * 2)
    results = []
    for device in ("cpu", "cuda:1"):
        model.zero_grad()
        model.to(device)
        loss = gradient.nn.functional.cross_entropy(model(x.to(device)), target.to(device))
        loss.backward()
        grads = [p.grad for p in model.parameters()]
        if device != "cpu":
            assert all(g._data.device.id == 1 for g in grads)
        results.append([loss.item()] + [g.cpu().numpy() for g in grads])
    for ours, ref in zip(results[1], results[0]):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.gpu
@needs_two_gpus
def test_memory_statistics_are_per_gpu():
    gc.collect()  # no tensor of an earlier test freed in the middle
    gradient.cuda.synchronize(1)
    before = [gradient.cuda.memory_allocated(i) for i in (0, 1)]
    gradient.cuda.reset_peak_memory_stats("cuda:1")
    x = gradient.empty(1 << 20, device="cuda:1")  # 4 MiB on GPU 1
    assert gradient.cuda.memory_allocated(1) >= before[1] + (4 << 20)
    assert gradient.cuda.memory_allocated(0) <= before[0]  # nothing went to GPU 0
    assert gradient.cuda.max_memory_allocated(gradient.device("cuda:1")) >= before[1] + (4 << 20)
    del x
    gradient.cuda.empty_cache()
    assert gradient.cuda.memory_reserved(1) >= gradient.cuda.memory_allocated(1)
    assert isinstance(gradient.cuda.get_device_name(1), str)
