"""The setup lines of PyTorch training scripts (nanoGPT's train.py among them) run unchanged with
``import gradient as torch``, and do what they do in PyTorch where gradient has the machinery."""

import pytest
import torch

import gradient


@pytest.mark.parametrize("lib", [gradient, torch], ids=["gradient", "torch"])
def test_train_script_setup_lines(lib):
    lib.backends.cuda.matmul.allow_tf32 = True      # both allow TF32; gradient never uses it
    lib.backends.cudnn.allow_tf32 = True
    lib.backends.cudnn.benchmark = False
    assert lib.backends.cudnn.allow_tf32 is True
    try:
        lib.set_float32_matmul_precision("medium")
        assert lib.get_float32_matmul_precision() == "medium"
        assert lib.backends.cuda.matmul.allow_tf32
    finally:
        lib.set_float32_matmul_precision("highest")
        lib.backends.cuda.matmul.allow_tf32 = False
    assert lib.get_float32_matmul_precision() == "highest"
    if lib is gradient:           # PyTorch warns and ignores it
        with pytest.raises(ValueError, match="expected one of"):
            lib.set_float32_matmul_precision("fastest")
    with pytest.warns(FutureWarning):         # torch.amp.GradScaler("cuda") is today's name
        scaler = lib.cuda.amp.GradScaler(enabled=False)
    assert not scaler.is_enabled()
    model = lib.nn.Linear(3, 2)
    x = lib.randn(4, 3)
    if lib is gradient:           # no compiler: the same module back, run eagerly
        assert lib.compile(model) is model
        assert lib.compile(mode="max-autotune")(len) is len
    assert lib.compile(model)(x).shape == (4, 2)
    assert model.compile() is None and model(x).shape == (4, 2)    # Module.compile, in place
    with lib.autocast(device_type="cpu", dtype=lib.bfloat16):
        assert model(x).dtype == lib.bfloat16
    assert not lib.backends.cudnn.is_available() or lib is torch


@pytest.mark.parametrize("lib", [gradient, torch], ids=["gradient", "torch"])
def test_the_device_choice_of_current_example_scripts(lib):
    """PyTorch's examples pick "cuda", then "mps", then "cpu"."""
    if lib.cuda.is_available():
        device = "cuda"
    elif lib.backends.mps.is_available():
        device = "mps"
    else:
        device = "cpu"
    assert lib.zeros(2, device=device).device.type == device
    if lib is gradient:
        assert lib.backends.mps.is_available() is lib.backends.mps.is_built() is False


@pytest.mark.parametrize("lib", [gradient, torch], ids=["gradient", "torch"])
def test_scripted_and_traced_modules_compute_what_the_module_computes(lib):
    lib.manual_seed(0)

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = lib.nn.Linear(3, 2)

        @lib.jit.ignore
        def helper(self, x):
            return x * 2

        def forward(self, x):
            if lib.jit.is_scripting():
                return self.fc(x)
            return self.fc(self.helper(x) / 2)

    net, x = Net(), lib.randn(4, 3)
    expected = net(x)
    assert lib.jit.is_tracing() is False
    for made in (lib.jit.script(net), lib.jit.trace(net, (x,)), lib.jit.trace_module(net, {"forward": x})):
        lib.testing.assert_close(made(x), expected)
    assert lib.jit.annotate(list, [1]) == [1]


def test_a_torchscript_archive_is_refused_with_what_to_do_instead(tmp_path):
    from gradient.jit import JitError
    with pytest.raises(JitError, match="state_dict"):
        gradient.jit.save(gradient.jit.script(gradient.nn.Linear(2, 2)), tmp_path / "m.pt")
    with pytest.raises(JitError, match="safetensors"):
        gradient.jit.load(tmp_path / "m.pt")
    assert isinstance(JitError("x"), RuntimeError)
