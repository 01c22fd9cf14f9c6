"""The plugin backend: the protocol's frames, the reference plugin as a device, the host
fallback, and every way a plugin can fail (crash, hang, garbage, wrong version), each raising
PluginError while the parent process keeps working. The op conformance table runs over the
plugin too (``GRADIENT_TEST_PLUGINS=reference``, a pass of its own in ``.ci/run``)."""

from __future__ import annotations

import io
import os
import stat
import sys
import textwrap
import warnings

import numpy as np
import pytest

import gradient
import gradient.nn.functional as F
from gradient.backends import get_backend
from gradient.backends.plugin.frames import (FrameError, FrameReader, encode_frame, final_header,
                                             read_frame, spin_seconds)
from gradient.errors import DeviceError, PluginError

REF = "plugin:reference"


def _frame_bytes(header, payload=b""):
    return b"".join(bytes(p) for p in encode_frame(header, payload))


# ---------------------------------------------------------------------- frames
def test_frames_round_trip():
    stream = io.BytesIO(_frame_bytes({"op": "x", "v": [1, 2.5, None]}, b"abc")
                        + _frame_bytes({"op": "y"}))
    assert read_frame(stream) == ({"op": "x", "v": [1, 2.5, None]}, bytearray(b"abc"))
    assert read_frame(stream) == ({"op": "y"}, bytearray())
    assert read_frame(stream) is None


@pytest.mark.parametrize("data", [b"XXXX" + bytes(12), _frame_bytes({"op": "x"})[:10],
                                  b"GRD1" + (3).to_bytes(4, "little") + bytes(8) + b"{x}"])
def test_frames_refuse_what_is_not_a_frame(data):
    with pytest.raises(FrameError):
        read_frame(io.BytesIO(data))


@pytest.mark.parametrize("spin", [0.0, 1e-3])
def test_frame_reader_reads_small_and_large_frames_from_a_pipe(spin):
    large = np.arange(200_000, dtype=np.uint8).tobytes()      # read into a buffer of its own
    data = (_frame_bytes({"op": "x"}, b"abc") + _frame_bytes({"op": "y"}, large)
            + _frame_bytes({"op": "z"}))
    r, w = os.pipe()
    writer = __import__("threading").Thread(target=lambda: (os.write(w, data), os.close(w)))
    writer.start()
    frames = FrameReader(r)
    got = [frames.read(spin=spin) for _ in range(4)]
    writer.join()
    os.close(r)
    assert got[0] == ({"op": "x"}, bytearray(b"abc"))
    assert got[1][0] == {"op": "y"} and bytes(got[1][1]) == large
    assert got[2] == ({"op": "z"}, bytearray()) and got[3] is None


def test_frame_reader_times_out_and_sees_a_stream_end_inside_a_frame():
    import time
    r, w = os.pipe()
    frames = FrameReader(r)
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        frames.read(deadline=t0 + 0.05, spin=0.01)
    assert 0.04 < time.monotonic() - t0 < 5
    os.write(w, _frame_bytes({"op": "x"}, b"abcdef")[:-2])
    os.close(w)
    with pytest.raises(FrameError, match="ended inside a frame"):
        frames.read()
    os.close(r)


def test_final_header_is_the_header_of_the_frame_a_buffer_ends_with():
    a, b = _frame_bytes({"op": "add"}, b"xyz"), _frame_bytes({"op": "sync"})
    assert final_header(bytearray(a + b)) == {"op": "sync"}
    assert final_header(bytearray(a)) == {"op": "add"}
    assert final_header(bytearray(a + b[:-1])) is None         # b not whole yet
    assert final_header(bytearray(a[:5])) is None
    assert final_header(bytearray(a + b"GRD1" + bytes(12))) is None


def test_the_reference_plugin_sees_a_wait_before_it_runs_the_requests_ahead_of_it():
    import time
    from gradient.backends.plugin.reference import _Requests
    r, w = os.pipe()
    requests = _Requests(r)
    os.write(w, _frame_bytes({"op": "add"}) + _frame_bytes({"op": "mul"}))
    assert requests.read()[0]["op"] == "add" and not requests.client_waits
    os.write(w, _frame_bytes({"op": "add"}) + _frame_bytes({"op": "to_bytes"}))
    time.sleep(0.01)
    assert requests.read()[0]["op"] == "mul"
    assert requests.client_waits        # the client waits behind the two requests still ahead
    assert [requests.read()[0]["op"] for _ in range(2)] == ["add", "to_bytes"]
    os.close(w)
    assert requests.read() is None
    os.close(r)


def test_the_reference_plugin_widens_its_blas_pool_while_the_client_waits():
    from threadpoolctl import threadpool_info, threadpool_limits
    from gradient.backends.plugin.reference import _BlasThreads

    def widths():
        return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
    with threadpool_limits(limits=3, user_api="blas"):
        if widths() != {3}:
            pytest.skip("no BLAS pool that threadpoolctl can size")
        blas = _BlasThreads()
        blas.use_all(False)
        assert widths() == {2}
        blas.use_all(True)
        assert widths() == {3}


def test_spin_seconds_follows_the_environment(monkeypatch):
    monkeypatch.setenv("GRADIENT_PLUGIN_SPIN_US", "250")
    multi = len(os.sched_getaffinity(0)) > 1 if hasattr(os, "sched_getaffinity") else True
    assert spin_seconds() == (250e-6 if multi else 0.0)
    monkeypatch.setenv("GRADIENT_PLUGIN_SPIN_US", "0")
    assert spin_seconds() == 0.0


# ---------------------------------------------------------------------- the reference plugin
def test_a_tensor_moves_to_the_plugin_and_back():
    x = gradient.arange(12, dtype=gradient.float32).reshape(3, 4)
    y = x.to(REF)
    assert str(y.device) == "plugin:reference:0" and y.device == gradient.device(REF)
    np.testing.assert_array_equal(y.cpu().numpy(), x.numpy())
    np.testing.assert_array_equal((y.T @ y).cpu().numpy(), (x.T @ x).numpy())


def test_views_share_storage_in_the_plugin():
    x = gradient.zeros(4, 5, device=REF)
    column = x[:, 1]
    column.fill_(3.0)                    # written through the view ...
    x.view(20)[0] = -1.0                 # ... and through another
    expected = np.zeros((4, 5), np.float32)
    expected[:, 1] = 3.0
    expected[0, 0] = -1.0
    np.testing.assert_array_equal(x.cpu().numpy(), expected)
    assert x.T.stride() == (1, 5) and not x.T.is_contiguous()


def test_ops_are_pipelined_without_round_trips():
    b = get_backend(REF)
    session = b._live()
    host = np.full((8, 8), 0.01, np.float32)
    x = b.from_numpy(host)
    sent = session._next_id
    for _ in range(20):
        x = b.binary("add", b.matmul(x, x), x)
        host = host @ host + host
    assert session._next_id == sent + 40     # 40 requests written, none waiting for a reply,
    assert x.shape == (8, 8)                 # the results' shapes known without asking
    np.testing.assert_allclose(b.to_numpy(x), host, rtol=1e-5)


def test_uploads_alone_send_the_frees_of_what_the_client_dropped():
    b = get_backend(REF)
    session = b._live()
    sent = []
    send = session.send
    session.send = lambda header, payload=b"": (sent.append(header["op"]), send(header, payload))[1]
    try:
        for _ in range(200):          # each upload's proxy dies with the next
            x = b.from_numpy(np.ones(4, np.float32))
    finally:
        del session.send
    assert "free" in sent and len(b._frees) < 100     # the plugin does not keep all 200
    del x


def test_large_arrays_move_through_shared_memory():
    from gradient.backends.plugin.shared import THRESHOLD
    b = get_backend(REF)
    host = np.random.default_rng(0).standard_normal(THRESHOLD // 4 * 3).astype(np.float32)
    x = gradient.from_numpy(host).to(REF)
    assert b._segment._shm is not None            # the session's segment carried it
    np.testing.assert_array_equal((x * 2).cpu().numpy(), host * 2)
    np.testing.assert_array_equal(x[::3].cpu().numpy(), host[::3])   # a small one, inline


def test_a_failed_primitive_raises_at_the_next_synchronisation():
    b = get_backend(REF)
    a = b.from_numpy(np.ones((3, 4), np.float32))
    bad = b.from_numpy(np.ones((3, 2), np.int64))
    out = b._send("matmul", (a, bad), [a.shadow])[0]   # shapes the client would refuse
    with pytest.raises(PluginError, match=r"matmul\(float32 \(3, 4\), int64 \(3, 2\)\)"):
        b.to_numpy(out)
    np.testing.assert_array_equal(b.to_numpy(a), np.ones((3, 4)))   # the plugin goes on


def test_a_plugins_failure_is_named_by_its_built_in_class():
    # the protocol's "type" is a built-in exception's name, which the client raises too:
    # gradient's own classes go as the built-in one they are (a ShapeError was sent as
    # "ShapeError", and the client raised a bare PluginError)
    from gradient.backends.plugin.reference import _builtin_name
    from gradient.errors import ArgumentValueError, DTypeError, ShapeError
    assert _builtin_name(ArgumentValueError("x")) == "ValueError"
    assert _builtin_name(ShapeError("x")) == "ValueError"
    assert _builtin_name(DTypeError("x")) == "TypeError"
    assert _builtin_name(ZeroDivisionError("x")) == "ZeroDivisionError"
    assert _builtin_name(KeyError("x")) == "KeyError"


def test_integer_division_by_zero_is_still_a_zero_division_error():
    x = gradient.tensor([1, 2], device=REF)
    with pytest.raises(ZeroDivisionError):
        (x // gradient.tensor([1, 0], device=REF)).tolist()


def test_a_model_trains_on_the_plugin_as_on_the_cpu():
    gradient.manual_seed(0)
    cpu = gradient.nn.Sequential(gradient.nn.Linear(6, 16), gradient.nn.GELU(),
                                 gradient.nn.LayerNorm(16), gradient.nn.Linear(16, 3))
    plugin = gradient.nn.Sequential(gradient.nn.Linear(6, 16), gradient.nn.GELU(),
                                    gradient.nn.LayerNorm(16), gradient.nn.Linear(16, 3))
    plugin.load_state_dict(cpu.state_dict())
    plugin.to(REF)
    x, y = gradient.randn(32, 6), gradient.randint(0, 3, (32,))
    with gradient.kernels.trace() as trace:
        losses = [_train(model, dev, x, y, gradient.optim.AdamW, 1e-2, 5)
                  for model, dev in ((cpu, "cpu"), (plugin, REF))]
    # the reference plugin's Adam step, bias add and LayerNorm ran there, each one request
    for op in ("adam_step", "add_to_rows", "layer_norm"):
        assert trace.counts[op, "plugin"] >= 5, trace.counts
    assert losses[1] == pytest.approx(losses[0], rel=1e-6, abs=1e-7)
    for p, q in zip(cpu.parameters(), plugin.parameters()):
        np.testing.assert_allclose(q.detach().cpu().numpy(), p.detach().numpy(), rtol=1e-6,
                                   atol=1e-7)


@pytest.mark.parametrize("options", [dict(), dict(amsgrad=True, maximize=True),
                                     dict(weight_decay=0.1), dict(betas=(0.4, 0.9))])
@pytest.mark.parametrize("optimizer", ["Adam", "AdamW"])
def test_the_plugins_adam_step_is_the_cpus(optimizer, options):
    gradient.manual_seed(1)
    cpu = gradient.nn.Linear(5, 4)
    plugin = gradient.nn.Linear(5, 4)
    plugin.load_state_dict(cpu.state_dict())
    plugin.to(REF)
    x, y = gradient.randn(8, 5), gradient.randint(0, 4, (8,))
    make = getattr(gradient.optim, optimizer)
    with gradient.kernels.trace() as trace:
        for model, dev in ((cpu, "cpu"), (plugin, REF)):
            _train(model, dev, x, y, lambda params, lr: make(params, lr=lr, **options), 0.05, 3)
    assert trace.counts["adam_step", "plugin"] == 6          # two parameters, three steps
    for p, q in zip(cpu.parameters(), plugin.parameters()):
        np.testing.assert_allclose(q.detach().cpu().numpy(), p.detach().numpy(), rtol=1e-6,
                                   atol=1e-7)


def _train(model, device, x, y, optimizer, lr, steps) -> float:
    """The loss of the last of ``steps`` steps of cross-entropy training on ``device``."""
    opt = optimizer(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = gradient.nn.functional.cross_entropy(model(x.to(device)), y.to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


def test_plugins_are_listed():
    assert "reference" in gradient.plugins.list()


def test_an_unknown_plugin_is_a_device_error():
    with pytest.raises(DeviceError, match="no plugin named 'nosuch' is installed"):
        gradient.ones(2, device="plugin:nosuch")
    with pytest.raises(DeviceError, match="plugin:NAME"):
        gradient.device("plugin:")


def _fused_ops(device):
    """Softmax, log_softmax, the two norms (affine or not, on a strided view), SiLU and
    SwiGLU of one input on ``device``, on the CPU; and the kernel calls counted."""
    gradient.manual_seed(3)
    x = gradient.randn(4, 6, 10) * 3
    w, bias = gradient.randn(10), gradient.randn(10)

    def ops(x, w, bias):
        view = x.transpose(0, 1)                # strided: the kernel reads any layout
        return [F.softmax(x, -1), F.log_softmax(view, -1), F.rms_norm(view, (10,), w, 1e-5),
                F.rms_norm(x, (10,), None, 1e-6), F.layer_norm(view, (10,), w, bias),
                F.layer_norm(x, (10,), None, None, 1e-3), F.silu(x),
                F.silu(x[..., :5]) * x[..., 5:]]
    with gradient.no_grad(), gradient.kernels.trace() as trace:
        ours = ops(*(t.to(device) for t in (x, w, bias)))
        ours = [o.cpu().numpy() for o in ours]
    with gradient.no_grad():
        expected = [o.numpy() for o in ops(x, w, bias)]
    return ours, expected, trace.counts


def test_fused_kernels_run_in_the_plugin_that_offers_them():
    kinds = {k["name"] for k in get_backend(REF).hello()["kernels"]}
    assert {"softmax", "log_softmax", "rms_norm", "layer_norm", "silu", "swiglu"} <= kinds
    ours, expected, counts = _fused_ops(REF)
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    for op in ("softmax", "log_softmax", "rms_norm", "layer_norm"):
        assert counts[op, "plugin"] >= 1, counts


def test_a_plugin_without_kernels_composes_the_ops(tmp_path, monkeypatch):
    device = _plugin(tmp_path, monkeypatch, "bare", """
        import sys
        from gradient.backends.plugin import reference
        reference.KERNELS.clear()
        sys.exit(reference.main())
    """)
    ours, expected, counts = _fused_ops(device)
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
    assert not any(impl == "plugin" for _, impl in counts), counts
    assert counts["softmax", "composite"] >= 1


def test_a_kernel_of_a_dtype_the_plugin_does_not_list_is_composed():
    x = gradient.randn(3, 5, dtype=gradient.float16).to(REF)
    with gradient.no_grad(), gradient.kernels.trace() as trace:
        y = F.softmax(x.float(), -1).cpu()       # float32: the plugin's kernel
        z = F.softmax(x, -1).cpu()               # float16: composed
    assert trace.counts == {("softmax", "plugin"): 1, ("softmax", "composite"): 1}
    np.testing.assert_allclose(y.numpy(), F.softmax(x.cpu().float(), -1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(z.float().numpy(), F.softmax(x.cpu(), -1).float().numpy(),
                               rtol=1e-3)
    with gradient.no_grad(), gradient.kernels.trace() as trace:
        # an RMS norm of float16 declines the plugin's kernel, then runs its float32 one on
        # the input widened, rounded once as the CPU's does
        n = F.rms_norm(x, (5,), None, 1e-5).cpu()
    assert trace.counts == {("rms_norm", "composite"): 1, ("rms_norm", "plugin"): 1}
    np.testing.assert_allclose(n.float().numpy(),
                               F.rms_norm(x.cpu(), (5,), None, 1e-5).float().numpy(), rtol=1e-3)


# ---------------------------------------------------------------------- plugins that misbehave
def _plugin(tmp_path, monkeypatch, name: str, body: str) -> str:
    """Install an executable plugin ``name`` (a Python script) on GRADIENT_PLUGIN_PATH."""
    path = tmp_path / f"gradient-plugin-{name}"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("GRADIENT_PLUGIN_PATH", str(tmp_path))
    return f"plugin:{name}"


_SERVE_REFERENCE = """
    import os, sys
    from gradient.backends.plugin import reference
    sys.exit(reference.main())
"""


def test_a_partial_plugin_falls_back_to_the_host_with_one_warning(tmp_path, monkeypatch):
    device = _plugin(tmp_path, monkeypatch, "partial", """
        import os, sys
        os.environ["GRADIENT_REFERENCE_PRIMITIVES"] = (
            "reshape,permute,broadcast_to,windows,getitem,setitem,full,empty")
        from gradient.backends.plugin import reference
        sys.exit(reference.main())
    """)
    x = gradient.arange(6, dtype=gradient.float32).reshape(2, 3)

    def compute():
        w = x.to(device)
        w.add_(1.0)                              # in place: on the host, written back
        return (x.to(device) @ x.T.to(device)).cpu(), w.cpu()

    with pytest.warns(UserWarning, match="does not implement 'matmul'"):
        first = compute()
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # the second time: no warning
        second = compute()
    for y, w in (first, second):
        np.testing.assert_array_equal(y.numpy(), (x @ x.T).numpy())
        np.testing.assert_array_equal(w.numpy(), (x + 1).numpy())


def test_a_killed_plugin_raises_and_the_next_tensor_restarts_it(tmp_path, monkeypatch):
    device = _plugin(tmp_path, monkeypatch, "killed", _SERVE_REFERENCE)
    x = gradient.ones(3, device=device)
    get_backend(device).session._process.kill()
    with pytest.raises(PluginError, match="process exited|no longer running"):
        (x * 2).sum().item()
    with pytest.raises(PluginError, match="lost"):
        x.cpu()
    assert gradient.ones(2, device=device).sum().item() == 2.0     # a new process


def test_a_plugin_that_hangs_times_out(tmp_path, monkeypatch):
    device = _plugin(tmp_path, monkeypatch, "hangs", """
        import sys, time
        from gradient.backends.plugin.frames import read_frame, write_frame
        header, _ = read_frame(sys.stdin.buffer)
        write_frame(sys.stdout.buffer, {"id": header["id"], "ok": True, "protocol": 1,
                    "name": "hangs", "devices": [{"name": "x"}],
                    "primitives": ["reshape", "permute", "broadcast_to", "windows", "getitem",
                                   "setitem", "full"]})
        sys.stderr.write("about to hang\\n"); sys.stderr.flush()
        time.sleep(60)
    """)
    x = gradient.ones(3, device=device)
    # the timeout after the handshake: a plugin importing gradient on a loaded machine may
    # take over a second to answer its first frame
    monkeypatch.setenv("GRADIENT_PLUGIN_TIMEOUT", "1")
    with pytest.raises(PluginError, match=r"(?s)did not answer within 1 s.*about to hang"):
        x.cpu()
    assert gradient.ones(2).sum().item() == 2.0     # the parent and the CPU are fine


def test_a_plugin_that_sends_garbage_is_refused(tmp_path, monkeypatch):
    device = _plugin(tmp_path, monkeypatch, "garbage", """
        import sys
        sys.stdout.write("Hello, I am not a plugin\\n" * 4); sys.stdout.flush()
        sys.stdin.read()
    """)
    with pytest.raises(PluginError, match="not a frame"):
        gradient.ones(3, device=device)


def test_a_plugin_of_another_version_is_refused(tmp_path, monkeypatch):
    device = _plugin(tmp_path, monkeypatch, "future", """
        import sys
        from gradient.backends.plugin.frames import read_frame, write_frame
        header, _ = read_frame(sys.stdin.buffer)
        write_frame(sys.stdout.buffer, {"id": header["id"], "ok": False,
                    "error": {"message": "speaks protocol 2"}})
    """)
    with pytest.raises(PluginError, match="speaks protocol 2"):
        gradient.ones(3, device=device)


def test_a_plugin_that_cannot_start_is_a_plugin_error(tmp_path, monkeypatch):
    device = _plugin(tmp_path, monkeypatch, "crashes", """
        import sys
        sys.stderr.write("missing driver libfoo.so\\n")
        sys.exit(3)
    """)
    with pytest.raises(PluginError, match=r"(?s)exit status 3.*missing driver libfoo"):
        gradient.ones(3, device=device)


# ---------------------------------------------------------------------- the C plugin
@pytest.fixture
def c_plugin(tmp_path, monkeypatch):
    from ..devices import build_c_plugin
    if build_c_plugin(str(tmp_path), "ctest") is None:
        pytest.skip("no C compiler (cc, gcc or clang) to build examples/plugin_c/plugin.c")
    monkeypatch.setenv("GRADIENT_PLUGIN_PATH", str(tmp_path))
    return "plugin:ctest"


def test_the_c_plugin_computes_float32_and_leaves_the_rest_to_the_host(c_plugin):
    hello = get_backend(c_plugin).hello()
    assert hello["name"] == "tinyc" and "matmul" in str(hello["primitives"])
    x = gradient.arange(12, dtype=gradient.float32).reshape(3, 4)
    y = x.to(c_plugin)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # float32 math, views and copies: all in the plugin
        out = ((y[:, 1:] * 2 - 1).exp().sum(dim=0) @ y.T[1:]).cpu()
        row = y.T.reshape(12).cpu()
    np.testing.assert_allclose(out.numpy(), ((x[:, 1:] * 2 - 1).exp().sum(dim=0) @ x.T[1:]).numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(row.numpy(), x.T.reshape(12).numpy())
    ids = gradient.tensor([2, 0], device=c_plugin)
    with pytest.warns(UserWarning, match="does not implement 'getitem'"):
        picked = y[ids]                   # integer arrays: on the host, named once
    np.testing.assert_array_equal(picked.cpu().numpy(), x.numpy()[[2, 0]])
    b = get_backend(c_plugin)
    bad = b._send("matmul", (y._data, y._data), [y._data.shadow])[0]   # (3, 4) @ (3, 4)
    with pytest.raises(PluginError, match=r"matmul\(float32 \(3, 4\), float32 \(3, 4\)\).*align"):
        b.to_numpy(bad)                   # the C plugin's error, at the synchronisation
    assert (y * 1).sum().item() == 66.0   # and it went on


# ---------------------------------------------------------------------- the WebGPU plugin
@pytest.fixture(scope="module")
def webgpu():
    if "webgpu" not in gradient.plugins.list():
        pytest.skip("the webgpu plugin needs the wgpu package (pip install 'gradient[webgpu]')")
    try:
        get_backend("plugin:webgpu").hello()
    except DeviceError as e:
        pytest.skip(f"no WebGPU adapter here: {str(e).splitlines()[0]}")
    return "plugin:webgpu"


def test_the_webgpu_plugin_computes_on_the_adapter(webgpu):
    from gradient.backends.plugin import webgpu as plugin
    b = get_backend(webgpu)
    assert b.hello()["name"] == "webgpu" and b.hello()["devices"][0]["name"]
    x = gradient.randn(5, 7)
    y = x.to(webgpu)
    # views are metadata over one GPU buffer; the shaders read any strides
    out = ((y.T[1:] * 2 - 1).tanh().sum(dim=1, keepdim=True) + y.T[1:] @ y[:, :3]).cpu()
    ref = (x.T[1:] * 2 - 1).tanh().sum(dim=1, keepdim=True) + x.T[1:] @ x[:, :3]
    np.testing.assert_allclose(out.numpy(), ref.numpy(), rtol=1e-5, atol=1e-5)
    column = y[:, 2]
    column.fill_(4.0)                     # an in-place write seen through the other view
    assert (y.T[2] == 4.0).all().item()
    assert set(plugin.UNARY) >= {"exp", "tanh", "sigmoid"} and set(plugin.BINARY) >= {"add", "mul"}


def test_the_webgpu_plugins_blocked_matmul_takes_any_shape_and_layout(webgpu):
    rng = np.random.default_rng(7)
    cases = [((37, 50), (50, 19)), ((3, 1, 20, 33), (4, 33, 17)), ((50,), (50, 3)),
             ((5, 16), (16,)), ((1, 1), (1, 1))]
    for a_shape, b_shape in cases:
        a = rng.standard_normal(a_shape).astype(np.float32)
        b = rng.standard_normal(b_shape).astype(np.float32)
        out = (gradient.tensor(a).to(webgpu) @ gradient.tensor(b).to(webgpu)).cpu().numpy()
        np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    a = rng.standard_normal((40, 24)).astype(np.float32)
    t = gradient.tensor(a).to(webgpu)
    np.testing.assert_allclose((t.T @ t[:, 3:]).cpu().numpy(), a.T @ a[:, 3:], rtol=1e-5,
                               atol=1e-4)                       # strided operands


def test_the_webgpu_plugin_writes_in_place_on_the_adapter(webgpu):
    from gradient.backends.plugin import webgpu as plugin
    rng = np.random.default_rng(8)
    host = rng.standard_normal((6, 8)).astype(np.float32)
    row = rng.standard_normal(4).astype(np.float32)
    x = gradient.tensor(host).to(webgpu)
    view = x[1:, ::2]                        # strided: every other column of five rows
    view += gradient.tensor(row).to(webgpu)  # binary_, the row broadcast
    x[0] = 3.0                               # setitem with a basic index
    x[2:4, 1] = x[4:6, 1]                    # from the same storage
    x.T[5] *= 2                              # through a transposed view
    expected = host.copy()
    expected[1:, ::2] += row
    expected[0] = 3.0
    expected[2:4, 1] = expected[4:6, 1]
    expected.T[5] *= 2
    np.testing.assert_array_equal(x.cpu().numpy(), expected)
    # and those writes are shaders: the plugin's class, in this process, never goes to the host
    from gradient.backends.numpy_backend import ArrayBackend
    gpu_plugin = plugin.WebGPUPlugin(ArrayBackend(np, "plugin:webgpu"), [], plugin.GPU())
    gpu_plugin._in_place_through_host = None           # would fail if called
    target = gpu_plugin._upload(host)
    gpu_plugin._compute("binary_", ["add", target, np.tile(row, 2)], {})
    gpu_plugin._compute("setitem", [target, (0,), np.array(3.0, np.float32)], {})
    expected = host + np.tile(row, 2)
    expected[0] = 3.0
    np.testing.assert_array_equal(gpu_plugin._host(target), expected)


class _NoHost:
    """A stand-in for the plugin's NumPy backend that fails when the host path is taken."""

    def __getattr__(self, name):
        raise AssertionError(f"the primitive ran on the host ({name})")


@pytest.fixture(scope="module")
def gpu_plugin(webgpu):
    """The WebGPU plugin's class in this process, with no host path to fall back to."""
    from gradient.backends.plugin import webgpu as plugin
    return plugin.WebGPUPlugin(_NoHost(), [], plugin.GPU())


def test_the_webgpu_plugin_compares_selects_and_casts_on_the_adapter(gpu_plugin):
    from gradient.backends.plugin.wire import WireDType
    p = gpu_plugin
    a = np.array([np.nan, 1.0, np.nan, 2.0, 3.0, -0.0, 2.5], np.float32)
    b = np.array([np.nan, np.nan, 1.0, 2.0, -np.inf, 0.0, -7.5], np.float32)
    x, y = p._upload(a), p._upload(b)
    for op in ("eq", "ne", "lt", "le", "gt", "ge"):
        out, = p._compute("binary", [op, x, y], {})
        np.testing.assert_array_equal(p._host(out), getattr(np, {"eq": "equal", "ne": "not_equal",
            "lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal"}[op])(a, b))
    for op, f in (("maximum", np.maximum), ("minimum", np.minimum)):   # NaN propagates
        np.testing.assert_array_equal(p._host(p._compute("binary", [op, x, y], {})[0]), f(a, b))
    mask, = p._compute("binary", ["lt", x, y], {})
    both, = p._compute("binary", ["logical_or", mask, p._upload(a > 2)], {})
    np.testing.assert_array_equal(p._host(both), (a < b) | (a > 2))
    picked, = p._compute("where", [both, x, y], {})
    np.testing.assert_array_equal(p._host(picked), np.where((a < b) | (a > 2), a, b))
    ints, = p._compute("cast", [p._upload(np.array([2.7, -2.7, 0.0, 1e6], np.float32)),
                                WireDType("int32")], {})
    assert p._host(ints).dtype == np.int32
    np.testing.assert_array_equal(p._host(ints), [2, -2, 0, 1000000])
    back, = p._compute("cast", [ints, WireDType("bool")], {})
    np.testing.assert_array_equal(p._host(back), [True, True, False, True])
    summed, = p._compute("binary", ["add", ints, p._upload(np.array(2**31 - 1, np.int32))], {})
    np.testing.assert_array_equal(p._host(summed), np.array([2, -2, 0, 1000000], np.int32)
                                  + np.int32(2**31 - 1))                  # wraps as NumPy's
    # power with NumPy's special values (WGSL's pow is undefined below 0)
    base = np.array([-2.0, -0.5, 0.0, -0.0, 1.0, -1.0, 3.0, np.nan, -np.inf, np.inf, 7.25],
                    np.float32)
    exponents = np.array([3.0, 2.0, 0.5, -1.0, 0.0, np.nan, -2.0, 1 / 3, np.inf, -np.inf, 2.5],
                         np.float32)
    for e in exponents:              # x ** scalar (NumPy takes x ** 0.5 as a square root)
        got, = p._compute("binary", ["pow", p._upload(base), p._upload(np.array(e))], {})
        with np.errstate(all="ignore"):
            expected = np.power(base, e)
        np.testing.assert_allclose(p._host(got), expected, rtol=2e-6)
        assert (np.signbit(p._host(got)) == np.signbit(expected))[~np.isnan(expected)].all()
    filled, = p._compute("full", [(2, 3), 7, WireDType("int32")], {})
    np.testing.assert_array_equal(p._host(filled), np.full((2, 3), 7, np.int32))


def test_the_webgpu_plugin_computes_float16_in_float32_on_the_adapter(gpu_plugin):
    from gradient.backends.plugin.wire import WireDType
    p = gpu_plugin
    if np.dtype(np.float16) not in p.gpu.dtypes:
        pytest.skip("this adapter has no shader-f16")
    rng = np.random.default_rng(5)
    a = (rng.standard_normal((6, 9)) * 4).astype(np.float16)
    b = rng.standard_normal((9, 5)).astype(np.float16)
    x, y = p._upload(a), p._upload(b)
    assert isinstance(x, type(p._upload(np.ones(1, np.float32))))      # a GPU array
    with np.errstate(all="ignore"):
        for got, expected in (
                (p._compute("unary", ["tanh", x], {})[0], np.tanh(a)),
                (p._compute("binary", ["div", x, p._upload(np.float16(3))], {})[0], a / np.float16(3)),
                (p._compute("matmul", [x, y], {})[0], (a.astype(np.float32) @ b).astype(np.float16)),
                (p._compute("reduce", ["sum", x, 1, False], {})[0],
                 a.astype(np.float32).sum(1).astype(np.float16)),
                (p._compute("reduce", ["max", x, 0, True], {})[0], a.max(0, keepdims=True))):
            assert p._host(got).dtype == np.float16
            np.testing.assert_array_equal(p._host(got), expected)
    # rounding to float16: ties to even, subnormals, past the largest finite value
    edges = np.array([65519, 65520, -7e4, 2049, 2051, 6e-8, 3e-8, np.nan, -np.inf], np.float32)
    halves, = p._compute("cast", [p._upload(edges), WireDType("float16")], {})
    np.testing.assert_array_equal(p._host(halves), edges.astype(np.float16))


def test_the_webgpu_plugin_concatenates_and_pads_on_the_adapter(gpu_plugin):
    p = gpu_plugin
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 4, 5)).astype(np.float32)
    x = p._upload(a)
    xt, = p._compute("permute", [x, (0, 2, 1)], {})          # a strided view
    joined, = p._compute("concatenate", [[xt, p._upload(a[:, :2].transpose(0, 2, 1))], 2], {})
    np.testing.assert_array_equal(p._host(joined),
                                  np.concatenate([a.transpose(0, 2, 1),
                                                  a[:, :2].transpose(0, 2, 1)], 2))
    padded, = p._compute("pad", [xt, ((1, 0), (0, 2), (3, 1)), "constant", -1.5], {})
    np.testing.assert_array_equal(p._host(padded), np.pad(a.transpose(0, 2, 1),
                                  ((1, 0), (0, 2), (3, 1)), constant_values=-1.5))


def test_the_webgpu_plugin_gathers_and_scatters_on_the_adapter(gpu_plugin):
    p = gpu_plugin
    rng = np.random.default_rng(4)
    table = rng.standard_normal((7, 3, 4)).astype(np.float32)
    ids = np.array([[3, -1, 3], [0, 6, 3]])                    # repeats and a negative id
    x = p._upload(table)
    rows, = p._compute("getitem", [x, (ids, Ellipsis)], {"index": [{"array": 0}, "..."]})
    np.testing.assert_array_equal(p._host(rows), table[ids])
    index = rng.integers(-3, 3, (7, 2, 4))
    taken, = p._compute("take_along_axis", [x, index, 1], {})
    np.testing.assert_array_equal(p._host(taken), np.take_along_axis(table, index, 1))

    # index_add with repeats: NumPy's add.at sums, bit for bit (values of very different size)
    values = (rng.standard_normal((2, 3, 3, 4)) * 10.0 ** rng.integers(-4, 5, (2, 3, 3, 4))
              ).astype(np.float32)
    target = p._upload(table)
    p._compute("index_add", [target, (ids,), p._upload(values)], {})
    expected = table.copy()
    np.add.at(expected, ids, values)
    np.testing.assert_array_equal(p._host(target), expected)
    p._compute("setitem", [target, (ids, slice(None)), p._upload(values)], {})   # the last wins
    expected[ids] = values
    np.testing.assert_array_equal(p._host(target), expected)

    src = rng.standard_normal((7, 2, 4)).astype(np.float32)
    target = p._upload(table)
    p._compute("scatter_add", [target, 1, index, p._upload(src)], {})
    expected = table.copy()
    grids = list(np.ogrid[:7, :2, :4])
    grids[1] = index
    np.add.at(expected, tuple(grids), src)
    np.testing.assert_array_equal(p._host(target), expected)
    p._compute("put_along_axis", [target, index, p._upload(src), 1], {})
    expected[tuple(grids)] = src
    np.testing.assert_array_equal(p._host(target), expected)


def test_the_webgpu_plugin_sends_an_index_out_of_range_to_the_host(webgpu):
    x = gradient.zeros(4, 3, device=webgpu)
    with pytest.raises(PluginError, match="out of bounds"):
        x[gradient.tensor([1, 4])].cpu()                  # NumPy's error, from the host path


def test_the_webgpu_plugin_runs_the_fused_kernels_in_shaders(webgpu):
    ours, expected, counts = _fused_ops(webgpu)
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for op in ("softmax", "log_softmax", "rms_norm", "layer_norm", "silu"):
        assert counts[op, "plugin"] >= 1, counts


def test_the_webgpu_plugin_trains_like_the_cpu(webgpu):
    gradient.manual_seed(0)
    cpu = gradient.nn.Sequential(gradient.nn.Linear(6, 16), gradient.nn.Tanh(),
                                 gradient.nn.Linear(16, 3))
    gpu = gradient.nn.Sequential(gradient.nn.Linear(6, 16), gradient.nn.Tanh(),
                                 gradient.nn.Linear(16, 3))
    gpu.load_state_dict(cpu.state_dict())
    gpu.to(webgpu)
    x, y = gradient.randn(32, 6), gradient.randint(0, 3, (32,))
    losses = [_train(model, dev, x, y, gradient.optim.SGD, 0.1, 3)
              for model, dev in ((cpu, "cpu"), (gpu, webgpu))]
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


def test_metal_is_a_clear_error_off_macos():
    if sys.platform == "darwin":
        pytest.skip("on macOS 'metal' is the WebGPU plugin")
    with pytest.raises(DeviceError, match="'metal' is Apple's GPU API.*plugin:webgpu"):
        gradient.ones(2, device="metal")
