"""gradient.save / gradient.load and the safetensors reader/writer.

Round trips are checked bit for bit; interop against safetensors.torch (the reference writer and
reader); atomicity by SIGKILLing a child process mid-save; robustness with truncated and fuzzed files.
"""

import io
import json
import math
import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import time
from collections import OrderedDict

import numpy as np
import pytest
import torch
from safetensors.torch import load_file as torch_load_file
from safetensors.torch import save_file as torch_save_file

import gradient
from gradient.errors import FileFormatError
from gradient.io import atomic, load, load_safetensors, safetensors_metadata, save, save_safetensors
from gradient.io.atomic import temp_file_prefix
from gradient.dtypes import ALL_DTYPES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TORCH_DTYPES = {"bool": torch.bool, "uint8": torch.uint8, "int8": torch.int8, "int16": torch.int16,
                "int32": torch.int32, "int64": torch.int64, "float16": torch.float16,
                "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


def sample(dtype, shape=(3, 5), seed=0) -> np.ndarray:
    """Random values covering the dtype's bit patterns (for floats: incl. NaN, inf, -0.0, subnormals)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    if dtype.name == "bool":
        return rng.integers(0, 2, n).astype(bool).reshape(shape)
    raw = rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype.numpy).reshape(shape)


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and \
        np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def to_torch(t: gradient.Tensor) -> torch.Tensor:
    arr = t.detach().numpy()
    if t.dtype is gradient.bfloat16:
        return torch.from_numpy(arr.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(arr.copy())


def torch_bytes(t: torch.Tensor) -> bytes:
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def from_torch(t: torch.Tensor) -> gradient.Tensor:
    if t.dtype == torch.bfloat16:
        return gradient.from_numpy(t.view(torch.int16).numpy().view(gradient.bfloat16.numpy).copy())
    return gradient.from_numpy(t.numpy().copy())


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: d.name)
def test_every_dtype_round_trips_bit_exactly(tmp_path, dtype):
    arr = sample(dtype, (4, 6))
    obj = {"x": gradient.from_numpy(arr),
           "scalar": gradient.from_numpy(sample(dtype, ())),
           "empty": gradient.from_numpy(sample(dtype, (0, 3))),
           "strided": gradient.from_numpy(arr)[::2, 1::2].T,  # non-contiguous view
           "np": sample(dtype, (2, 2), seed=1)}
    assert not obj["strided"].is_contiguous()
    save(obj, tmp_path / "c.safetensors")
    out = load(tmp_path / "c.safetensors")
    assert list(out) == list(obj)
    for key in ("x", "scalar", "empty", "strided"):
        assert isinstance(out[key], gradient.Tensor) and out[key].dtype is dtype
        assert same_bits(out[key].numpy(), obj[key].numpy()), key
    assert isinstance(out["np"], np.ndarray) and same_bits(out["np"], obj["np"])


def test_nested_structure_keeps_types_keys_and_order(tmp_path):
    t = gradient.randn(2, 3)
    obj = OrderedDict([
        ("state", {0: {"step": gradient.tensor(3.0), "exp_avg": t}, 1: {}, -7: None}),
        ("param_groups", [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "foreach": None,
                           "amsgrad": False, "eps": 1e-8}]),
        ("keys", {"1": "str one", 1: "int one", 1.5: "float", None: "none"}),
        ("bool_keys", {True: "yes", False: "no"}),
        ("values", [1, 1.0, True, -0.0, float("inf"), 2**80, "ünïcode ✓", "", [], (), {}, ((1,),)]),
        ("dtype", gradient.bfloat16),
        ("np_scalar", np.float32(2.5)),
    ])
    path = tmp_path / "c.safetensors"
    save(obj, path)
    out = load(path)
    assert type(out) is OrderedDict and list(out) == list(obj)
    assert list(out["state"]) == [0, 1, -7] and all(type(k) is int for k in out["state"])
    assert list(out["keys"]) == ["1", 1, 1.5, None]
    assert [type(k) for k in out["keys"]] == [str, int, float, type(None)]
    assert [type(k) for k in out["bool_keys"]] == [bool, bool]
    assert out["bool_keys"] == {True: "yes", False: "no"}
    assert out["keys"][1] == "int one" and out["keys"]["1"] == "str one"
    assert out["param_groups"] == obj["param_groups"]
    assert type(out["param_groups"][0]["betas"]) is tuple
    vals = out["values"]
    assert vals == obj["values"] and [type(v) for v in vals] == [type(v) for v in obj["values"]]
    assert math.copysign(1, vals[3]) == -1  # -0.0 kept
    assert out["dtype"] is gradient.bfloat16
    assert type(out["np_scalar"]) is np.float32 and out["np_scalar"] == 2.5
    assert out["state"][0]["step"].item() == 3.0 and same_bits(out["state"][0]["exp_avg"], t)


def test_nan_values_and_top_level_tensor(tmp_path):
    save({"lr": float("nan")}, tmp_path / "a")
    assert math.isnan(load(tmp_path / "a")["lr"])
    t = gradient.arange(5)
    save(t, tmp_path / "b")
    assert same_bits(load(tmp_path / "b"), t)
    save([t, 3], tmp_path / "c")
    out = load(tmp_path / "c")
    assert type(out) is list and same_bits(out[0], t) and out[1] == 3


def test_tied_tensors_are_stored_once_and_share_memory_after_load(tmp_path):
    w = gradient.randn(4, 3)
    sd = OrderedDict([("wte.weight", w.detach()), ("lm_head.weight", w.detach()),
                      ("row", w[1]), ("other", gradient.randn(2))])
    path = tmp_path / "c.safetensors"
    save(sd, path)
    # the file holds the tied pair once; the partially overlapping slice is its own copy
    assert sorted(torch_load_file(path)) == ["other", "row", "wte.weight"]
    out = load(path)
    a, b = out["wte.weight"], out["lm_head.weight"]
    assert a is not b and same_bits(a, w) and same_bits(b, w)
    a.add_(1.0)  # in-place through one name shows through the other, as with torch.load
    assert same_bits(b, a)
    assert same_bits(out["row"], w[1])  # ... but the slice was a copy
    out["row"].zero_()
    assert not np.array_equal(a.numpy()[1], 0)


def test_requires_grad_is_kept_and_grad_is_not(tmp_path):
    p = gradient.randn(3, requires_grad=True)
    (p * 2).sum().backward()
    save({"p": p, "q": p.detach()}, tmp_path / "c")
    out = load(tmp_path / "c")
    assert out["p"].requires_grad and out["p"].is_leaf and out["p"].grad is None
    assert not out["q"].requires_grad
    with pytest.raises(ValueError, match=r"obj\['loss'\] is a non-leaf.*detach\(\)"):
        save({"loss": (p * 2).sum()}, tmp_path / "c")


def test_parameters_come_back_as_parameters(tmp_path):
    Parameter = gradient.nn.Parameter
    p = Parameter(gradient.randn(2, 2))
    frozen = Parameter(gradient.randn(2), requires_grad=False)
    save([p, frozen], tmp_path / "c")
    a, b = load(tmp_path / "c")
    assert isinstance(a, Parameter) and a.requires_grad and same_bits(a, p)
    assert isinstance(b, Parameter) and not b.requires_grad


def test_unsupported_values_are_refused_before_writing(tmp_path):
    path = tmp_path / "c.safetensors"
    save({"ok": 1}, path)
    for bad, match in [({"f": lambda x: x}, r"obj\['f'\].*function"),
                       ({"s": {1, 2}}, r"obj\['s'\].*set"),
                       ({(1, 2): 3}, "key \\(1, 2\\)"),
                       ({"c": 1j}, "complex"),
                       ({"u": np.zeros(2, np.uint32)}, "uint32")]:
        with pytest.raises(TypeError, match=match):
            save(bad, path)
    cyclic = {"a": []}
    cyclic["a"].append(cyclic)
    with pytest.raises(ValueError, match="contains itself"):
        save(cyclic, path)
    assert load(path) == {"ok": 1}  # the earlier checkpoint is untouched
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


def test_file_objects(tmp_path):
    buf = io.BytesIO()
    save({"w": gradient.ones(2, 2), "n": 5}, buf)
    buf.seek(0)
    out = load(buf)
    assert out["n"] == 5 and same_bits(out["w"], gradient.ones(2, 2))
    with open(tmp_path / "c", "wb") as f:
        save([gradient.zeros(3)], f)
    with open(tmp_path / "c", "rb") as f:
        assert same_bits(load(f)[0], gradient.zeros(3))


def test_map_location_and_weights_only(tmp_path):
    save({"w": gradient.ones(2)}, tmp_path / "c")
    for kwargs in ({}, {"map_location": "cpu"}, {"map_location": gradient.device("cpu")},
                   {"weights_only": False}):
        out = load(tmp_path / "c", **kwargs)
        assert out["w"].device == gradient.device("cpu") and same_bits(out["w"], gradient.ones(2))
    # torch's dict and function forms, asked where a CPU tensor goes
    elsewhere = gradient.device("plugin:reference")
    for where, expected in (({"cuda:0": "cpu"}, "cpu"), ({"cpu": "plugin:reference"}, elsewhere),
                            (lambda storage, loc: storage, "cpu"),
                            (lambda storage, loc: None, "cpu"),
                            (lambda storage, loc: storage.to("plugin:reference"), elsewhere),
                            (lambda storage, loc: storage.cpu(), "cpu")):
        out = load(tmp_path / "c", map_location=where)
        assert out["w"].device == gradient.device(expected)
        assert out["w"].tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="map_location"):
        load(tmp_path / "c", map_location=3.5)
    with pytest.raises(gradient.DeviceError):
        load(tmp_path / "c", map_location="nonesuch")


def test_mmap_loading_is_lazy_and_copy_on_write(tmp_path):
    path = tmp_path / "w.safetensors"
    w = {"a": gradient.randn(64, 32), "b": gradient.arange(10), "e": gradient.zeros(0, 4),
         "h": gradient.randn(3).to(gradient.float16)}
    save_safetensors(w, path)
    before = path.read_bytes()
    out = load_safetensors(path, mmap=True)
    for k in w:
        assert same_bits(out[k], w[k])
    out["a"].mul_(0.0)  # a private copy of the page: the file does not change
    assert path.read_bytes() == before
    assert same_bits(load(path, mmap=True)["a"], w["a"])
    ckpt = tmp_path / "c"
    save({"x": [w["a"]]}, ckpt)
    assert same_bits(load(ckpt, mmap=True)["x"][0], w["a"])


def test_released_pages_read_back_from_the_file(tmp_path):
    from gradient.io.safetensors import SafetensorsReader
    path = tmp_path / "w.safetensors"
    w = {"a": gradient.randn(4096, 8), "b": gradient.randn(3)}
    save_safetensors(w, path)
    with SafetensorsReader(path, mmap=True) as reader:
        a = reader.read("a")
        copied = a.copy()
        reader.release("a")      # a loader copied it: the pages may go
        reader.release("b")      # smaller than a page: kept
        np.testing.assert_array_equal(a, copied)
        np.testing.assert_array_equal(reader.read("b"), w["b"].numpy())
    with SafetensorsReader(path) as reader:
        reader.release("a")      # nothing mapped: nothing to do


def test_save_safetensors_layout_and_metadata(tmp_path):
    path = tmp_path / "w.safetensors"
    tensors = {"b": gradient.ones(3, dtype=gradient.uint8), "a": gradient.ones(5, dtype=gradient.float64),
               "c": gradient.ones(7, dtype=gradient.float16)}
    save_safetensors(tensors, path)
    assert safetensors_metadata(path) == {"format": "pt"}  # what transformers expects
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    assert (8 + n) % 8 == 0
    for name, t in tensors.items():  # every tensor starts aligned to its element size
        assert header[name]["data_offsets"][0] % t.element_size() == 0
    save_safetensors(tensors, path, metadata={"step": "7"})
    assert safetensors_metadata(path) == {"step": "7"}
    with pytest.raises(TypeError, match="metadata"):
        save_safetensors(tensors, path, metadata={"step": 7})
    with pytest.raises(TypeError, match="names must be str"):
        save_safetensors({0: gradient.ones(1)}, path)
    with pytest.raises(TypeError, match="gradient.save"):
        save_safetensors({"x": [gradient.ones(1)]}, path)


# ---------------------------------------------------------------------------- interop with torch
def test_our_safetensors_files_load_in_torch(tmp_path):
    ours = {d.name: gradient.from_numpy(sample(d, (3, 4), seed=i)) for i, d in enumerate(ALL_DTYPES)}
    ours["strided"] = gradient.randn(4, 6)[:, ::3]
    ours["scalar"] = gradient.tensor(2.5)
    ours["empty"] = gradient.zeros(2, 0, 3)
    path = tmp_path / "ours.safetensors"
    save_safetensors(ours, path)
    theirs = torch_load_file(path)
    assert sorted(theirs) == sorted(ours)
    for k, t in ours.items():
        expected = to_torch(t)
        assert theirs[k].dtype == expected.dtype and theirs[k].shape == expected.shape, k
        assert torch_bytes(theirs[k]) == torch_bytes(expected), k


def test_torch_safetensors_files_load_in_gradient(tmp_path):
    g = torch.Generator().manual_seed(0)
    theirs = {name: (torch.randn(3, 4, generator=g) * 100).to(dt) for name, dt in TORCH_DTYPES.items()}
    theirs["scalar"] = torch.tensor(1.5)
    theirs["empty"] = torch.zeros(0, 5, dtype=torch.bfloat16)
    path = tmp_path / "theirs.safetensors"
    torch_save_file(theirs, path, metadata={"format": "pt"})
    for loaded in (load_safetensors(path), load_safetensors(path, mmap=True), load(path)):
        assert sorted(loaded) == sorted(theirs)
        for k, t in theirs.items():
            assert loaded[k].dtype.name == str(t.dtype).removeprefix("torch.")
            assert torch.equal(to_torch(loaded[k]), t), k


def test_a_torch_optimizer_state_round_trips_through_a_gradient_checkpoint(tmp_path):
    """The typical checkpoint: model + optimizer state (int-keyed) + step, restored into torch."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(2):
        model(torch.randn(5, 3)).pow(2).sum().backward()
        opt.step()
    convert = lambda x: (from_torch(x) if isinstance(x, torch.Tensor) else  # noqa: E731
                         {k: convert(v) for k, v in x.items()} if isinstance(x, dict) else
                         [convert(v) for v in x] if isinstance(x, list) else x)
    ckpt = {"model": convert(model.state_dict()), "optimizer": convert(opt.state_dict()), "step": 2}
    save(ckpt, tmp_path / "c.safetensors")
    out = load(tmp_path / "c.safetensors")
    assert out["step"] == 2 and list(out["optimizer"]["state"]) == [0, 1, 2, 3]
    back = lambda x: (to_torch(x) if isinstance(x, gradient.Tensor) else  # noqa: E731
                      {k: back(v) for k, v in x.items()} if isinstance(x, dict) else
                      [back(v) for v in x] if isinstance(x, list) else x)
    opt2 = torch.optim.AdamW(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)).parameters())
    opt2.load_state_dict(back(out["optimizer"]))
    for i, state in opt.state_dict()["state"].items():
        restored = opt2.state_dict()["state"][i]
        assert set(restored) == set(state)
        assert all(torch.equal(restored[k], state[k]) for k in state)
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


def test_training_resumes_identically_from_a_checkpoint(tmp_path):
    """gradient's own Module + optimizer: save mid-training, restore into fresh objects, continue."""
    nn = gradient.nn

    def make():
        gradient.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
        return model, gradient.optim.AdamW(model.parameters(), lr=1e-2)

    def step(model, opt, i):
        gen = gradient.Generator().manual_seed(i)
        x, y = gradient.randn(4, 3, generator=gen), gradient.randn(4, 2, generator=gen)
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss.item()

    model, opt = make()
    for i in range(3):
        step(model, opt, i)
    save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 3}, tmp_path / "c")
    expected = [step(model, opt, i) for i in range(3, 6)]

    model2, opt2 = make()
    step(model2, opt2, 100)  # different state, to be overwritten
    ckpt = load(tmp_path / "c")
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    assert [step(model2, opt2, i) for i in range(ckpt["step"], 6)] == expected


def test_plain_safetensors_files_load_as_flat_dicts(tmp_path):
    torch_save_file({"w": torch.ones(2)}, tmp_path / "w")
    out = load(tmp_path / "w")
    assert list(out) == ["w"] and same_bits(out["w"], gradient.ones(2))


# ---------------------------------------------------------------------------- atomicity
CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    import gradient
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "die-mid-write":  # SIGKILL ourselves after writing part of the tensor data
        import gradient.io.safetensors as st
        real, calls = st._little_endian_bytes, []
        def dying(src):
            calls.append(1)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(src)
        st._little_endian_bytes = dying
    version = 0
    while True:
        version += 1
        # 4 x 2 MiB tensors whose values all equal the version: a torn file would show mixed values
        w = [gradient.full((512, 1024), float(version)) for _ in range(4)]
        ids = {{i: gradient.full((1000,), version, dtype=gradient.int64) for i in range(3)}}
        gradient.io.save({{"version": version, "w": w, "ids": ids}}, path)
        print(version, flush=True)
""")


def check_complete(path) -> int:
    ckpt = load(path)
    v = ckpt["version"]
    assert len(ckpt["w"]) == 4 and list(ckpt["ids"]) == [0, 1, 2]
    for t in ckpt["w"]:
        assert t.shape == (512, 1024) and (t.numpy() == v).all()
    for t in ckpt["ids"].values():
        assert (t.numpy() == v).all()
    return v


def start_child(tmp_path, path, mode="loop"):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(repo=REPO))
    return subprocess.Popen([sys.executable, str(script), str(path), mode], stdout=subprocess.PIPE, text=True)


def test_a_process_killed_mid_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    save({"version": 0, "w": [gradient.zeros(512, 1024)] * 4,
          "ids": {i: gradient.zeros(1000, dtype=gradient.int64) for i in range(3)}}, path)
    child = start_child(tmp_path, path, "die-mid-write")
    assert child.wait(timeout=60) == -signal.SIGKILL
    temps = [n for n in os.listdir(tmp_path) if n.startswith(temp_file_prefix(path))]
    assert len(temps) == 1 and temps[0].startswith(f".ckpt.safetensors.tmp-{child.pid}-")
    assert 0 < os.path.getsize(tmp_path / temps[0]) < os.path.getsize(path)  # it died half-way
    assert check_complete(path) == 0  # the old checkpoint, whole
    # the stale temp file breaks nothing, and is removed by a later save once it is old enough
    save({"version": 1, "w": [gradient.ones(512, 1024)] * 4,
          "ids": {i: gradient.ones(1000, dtype=gradient.int64) for i in range(3)}}, path)
    assert check_complete(path) == 1 and (tmp_path / temps[0]).exists()
    monkeypatch.setattr(atomic, "STALE_AFTER_S", 0.0)
    save({"version": 2, "w": [gradient.full((512, 1024), 2.0)] * 4,
          "ids": {i: gradient.full((1000,), 2, dtype=gradient.int64) for i in range(3)}}, path)
    assert check_complete(path) == 2
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []


def test_random_sigkills_during_repeated_saves_never_corrupt_the_checkpoint(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    rng = random.Random(1234)
    last = 0
    for attempt in range(4):
        child = start_child(tmp_path, path)
        first = child.stdout.readline()  # one full save done: from now on a checkpoint exists
        assert first.strip() == "1", first
        if attempt == 0:  # meanwhile a reader only ever sees complete checkpoints
            deadline = time.time() + 0.5
            while time.time() < deadline:
                check_complete(path)
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        rest = child.stdout.read().split()
        child.stdout.close()
        last = int(rest[-1]) if rest else 1
        v = check_complete(path)
        assert v in (last, last + 1)  # the last reported save, or one finished but not yet printed
    # stale temp files from the killed children do not disturb later saves or loads
    save({"version": 99, "w": [gradient.full((512, 1024), 99.0)] * 4,
          "ids": {i: gradient.full((1000,), 99, dtype=gradient.int64) for i in range(3)}}, path)
    assert check_complete(path) == 99


def test_an_error_during_save_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    import gradient.io.safetensors as st
    path = tmp_path / "c"
    save({"v": 1, "w": gradient.ones(3)}, path)
    calls = []

    def failing(src):
        calls.append(src)
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(st, "_little_endian_bytes", failing)
    with pytest.raises(OSError, match="disk full"):
        save({"v": 2, "w": gradient.zeros(3)}, path)
    assert calls and load(path)["v"] == 1
    assert os.listdir(tmp_path) == ["c"]


def test_saved_file_gets_the_usual_permissions(tmp_path):
    save({"a": 1}, tmp_path / "c")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(tmp_path / "c").st_mode & 0o777 == 0o666 & ~umask


# ---------------------------------------------------------------------------- bad files
def header_file(path, header: dict, data: bytes = b"", raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + data)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("name, content, match", [
    ("empty", b"", "shorter than the 8-byte"),
    ("short", b"\x05\x00", "shorter than the 8-byte"),
    ("huge header length", struct.pack("<Q", 2**63) + b"{}", "header length says"),
    ("header past the end", struct.pack("<Q", 100) + b'{"a": 1}', "only 16 bytes long"),
    ("not json", struct.pack("<Q", 8) + b"{nojson}", "corrupt safetensors header"),
    ("not utf-8", struct.pack("<Q", 8) + b"{\xff\xfe\xfd   }", "corrupt safetensors header"),
    ("json list", struct.pack("<Q", 8) + b"[1,2,3] ", "corrupt safetensors header"),
    ("pickle", b"\x80\x04\x95" + b"\x00" * 20, "pickle"),
])
def test_not_safetensors(tmp_path, name, content, match):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=match) as e:
        load(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("zipped", [True, False])
def test_a_torch_pickle_checkpoint_is_refused_in_one_line_with_advice(tmp_path, zipped):
    """torch.save's files (the zip, and the older bare pickle): one line that says what the
    file is, that gradient never unpickles, and how to convert it."""
    torch.save({"w": torch.ones(2)}, tmp_path / "model.pt",
               _use_new_zipfile_serialization=zipped)
    with pytest.raises(FileFormatError) as e:
        load(tmp_path / "model.pt")
    message = str(e.value)
    assert "\n" not in message and "header length" not in message
    assert message.startswith(f"{tmp_path / 'model.pt'}: a P")
    assert "never unpickles" in message
    assert "safetensors.torch.save_file(torch.load(path, weights_only=True)" in message


@pytest.mark.parametrize("entry, data, match", [
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, b"\0" * 4, "truncated"),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 12]}, b"\0" * 12, "needs 8 bytes"),
    ({"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}, b"\0" * 8, "shape"),
    ({"dtype": "F32", "shape": [0, 2**62], "data_offsets": [0, 0]}, b"", "shape"),
    ({"dtype": "F32", "shape": [1] * 65, "data_offsets": [0, 4]}, b"\0" * 4, "at most 64"),
    ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, b"\0" * 4, "non-negative"),
    ({"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}, b"\0" * 4, "non-negative"),
    ({"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}, b"\0" * 4, "non-negative"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}, b"\0" * 4, "begin <= end"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}, b"\0" * 8, "hole"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, b"\0" * 8, "follow the last"),
    ({"dtype": "U32", "shape": [1], "data_offsets": [0, 4]}, b"\0" * 4, "U32, which gradient does not"),
    ({"dtype": "float", "shape": [1], "data_offsets": [0, 4]}, b"\0" * 4, "unknown dtype"),
    ({"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}, b"\0" * 4, "unknown dtype"),
    ({"dtype": {"F32": 1}, "shape": [1], "data_offsets": [0, 4]}, b"\0" * 4, "unknown dtype"),
    ({"dtype": "F32", "shape": [1]}, b"\0" * 4, "exactly the fields"),
    ({"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}, b"\x01\x07", "bool tensor"),
])
def test_bad_header_entries(tmp_path, entry, data, match):
    path = header_file(tmp_path / "bad.safetensors", {"t": entry}, data)
    for loader in (load, load_safetensors):
        with pytest.raises(FileFormatError, match=match) as e:
            loader(path)
        assert str(path) in str(e.value) and ("'t'" in str(e.value) or "truncated" in str(e.value)
                                               or "follow" in str(e.value))


def test_overlapping_tensors_and_bad_metadata(tmp_path):
    path = header_file(tmp_path / "a", {"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
                                        "b": {"dtype": "U8", "shape": [2], "data_offsets": [2, 4]}},
                       b"\0" * 4)
    with pytest.raises(FileFormatError, match="overlaps"):
        load(path)
    path = header_file(tmp_path / "b", {"__metadata__": {"step": 3}})
    with pytest.raises(FileFormatError, match="strings to strings"):
        load(path)
    path = header_file(tmp_path / "c", None, raw=b'{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},'
                                                   b'"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}')
    with pytest.raises(FileFormatError, match="appears twice"):
        load(path)


def checkpoint_with_structure(path, structure, tensors=None):
    tensors = {"w": np.zeros(2, np.float32)} if tensors is None else tensors
    from gradient.io.safetensors import write_safetensors
    meta = {"format": "gradient.checkpoint",
            "gradient.checkpoint": structure if isinstance(structure, str) else json.dumps(structure)}
    write_safetensors(path, tensors, meta)
    return path


@pytest.mark.parametrize("structure, match", [
    ("{not json", "corrupt checkpoint structure"),
    ([1, 2], "expected an object with 'root'"),
    ({"version": 2, "root": {"tensor": "w"}}, "version 2"),
    ({"version": 1, "root": {"tensor": "missing"}}, "does not hold"),
    ({"version": 1, "root": {"list": []}}, "never mentions.*'w'"),
    ({"version": 1, "root": {"list": [{"tensor": "w"}, {"pickle": "x"}]}}, r"obj\[1\].*unknown node"),
    ({"version": 1, "root": {"dict": [["a", {"tensor": "w"}], ["b"]]}}, "key, value"),
    ({"version": 1, "root": {"dict": [[["k"], {"tensor": "w"}]]}}, "plain keys"),
    ({"version": 1, "root": {"tuple": {"tensor": "w"}}}, "JSON array"),
    ({"version": 1, "root": {"tensor": "w", "requires_grad": "yes"}}, "true or false"),
    ({"version": 1, "root": {"tensor": "w", "extra": 1}}, "unknown node"),
    ({"version": 1, "root": {"ndarray": "w", "scalar": True}}, "0-d"),
    ({"version": 1, "root": [{"tensor": "w"}, {"dtype": "float128"}]}, "expected a value or a tagged object"),
    ({"version": 1, "root": {"list": [{"tensor": "w"}, {"dtype": "float128"}]}}, "unknown dtype"),
    ({"version": 1, "root": {"list": [{"tensor": "w"}, {}]}}, "tagged object"),
    ("{\"version\": 1, \"root\": " + "{\"list\": [" * 100000 + "]}" * 100000 + "}", "corrupt checkpoint"),
    ("{\"version\": 1, \"root\": " + "{\"list\": [" * 400 + "{\"tensor\": \"w\"}" + "]}" * 400 + "}", None),
], ids=lambda v: v[:30] if isinstance(v, str) else None)
def test_structure_that_does_not_match_the_tensors(tmp_path, structure, match):
    path = checkpoint_with_structure(tmp_path / "c", structure)
    if match is None:  # deep but reasonable nesting loads
        out = load(path)
        for _ in range(400):
            out = out[0]
        assert same_bits(out, gradient.zeros(2))
        return
    with pytest.raises(FileFormatError, match=match) as e:
        load(path)
    assert str(path) in str(e.value)


def test_requires_grad_on_an_integer_tensor_is_refused(tmp_path):
    structure = {"version": 1, "root": {"tensor": "i", "requires_grad": True}}
    path = checkpoint_with_structure(tmp_path / "c", structure, {"i": np.zeros(2, np.int64)})
    with pytest.raises(FileFormatError, match="cannot require grad"):
        load(path)


def good_checkpoint(path):
    model = OrderedDict([("w", gradient.randn(8, 4)), ("b", gradient.zeros(4, dtype=gradient.bfloat16))])
    save({"model": model,
          "opt": {"state": {0: {"step": gradient.tensor(1.0)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
          "step": 7}, path)
    return path.read_bytes()


def test_every_truncation_is_a_clear_error(tmp_path):
    raw = good_checkpoint(tmp_path / "good")
    cut = tmp_path / "cut.safetensors"
    for n in sorted(set(range(0, 40)) | set(range(40, len(raw), 7)) | {len(raw) - 1}):
        cut.write_bytes(raw[:n])
        with pytest.raises(FileFormatError) as e:
            load(cut)
        assert str(cut) in str(e.value)


def test_fuzzed_headers_load_or_raise_file_format_error(tmp_path):
    raw = good_checkpoint(tmp_path / "good")
    n = struct.unpack("<Q", raw[:8])[0]
    rng = random.Random(0)
    path = tmp_path / "fuzz.safetensors"
    outcomes = {"loaded": 0, "error": 0}
    for trial in range(600):
        data = bytearray(raw)
        for _ in range(rng.choice([1, 1, 2, 5])):
            i = rng.randrange(8 + n) if rng.random() < 0.9 else rng.randrange(8)
            data[i] = rng.randrange(256) if rng.random() < 0.5 else data[i] ^ (1 << rng.randrange(8))
        path.write_bytes(bytes(data))
        try:
            load(path)
            outcomes["loaded"] += 1  # e.g. a flip inside a float value or padding
        except FileFormatError as e:
            assert str(path) in str(e)
            outcomes["error"] += 1
    assert outcomes["error"] > 300  # most flips break something, and every break is reported cleanly


def _random_json(rng, depth=0):
    """A JSON value of any kind, nested a little."""
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind == 6:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    if kind == 7:
        return {str(rng.randrange(9)): _random_json(rng, depth + 1) for _ in range(rng.randrange(3))}
    return [None, True, rng.randrange(-2**40, 2**40), rng.random() * 1e3, "F32",
            "".join(rng.choice("abc_.0") for _ in range(rng.randrange(6)))][kind]


def test_headers_with_values_of_other_kinds_load_or_raise_file_format_error(tmp_path):
    """The fuzzing that found a JSON list as a dtype escaping as TypeError, in the suite:
    header values (dtype, shape, offsets, metadata, the tree) swapped for JSON of any kind,
    400 seeded cases. Each loads or raises gradient's FileFormatError naming the file."""
    raw = good_checkpoint(tmp_path / "good")
    n = struct.unpack("<Q", raw[:8])[0]
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    paths = [(name, field) for name, entry in header.items() if isinstance(entry, dict)
             for field in entry]
    rng = random.Random(1)
    refused = 0
    for trial in range(400):
        mutated = json.loads(json.dumps(header))
        for _ in range(rng.choice([1, 1, 2])):
            name, field = rng.choice(paths)
            if field == "__metadata__" or name == "__metadata__":
                mutated["__metadata__"][field] = _random_json(rng)
            else:
                mutated[name][field] = _random_json(rng)
        path = header_file(tmp_path / f"fuzz{trial % 4}.safetensors", mutated, data)
        try:
            load(path)
        except FileFormatError as e:
            assert str(path) in str(e)
            refused += 1
    assert refused > 300
