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
    scaler = lib.cuda.amp.GradScaler(enabled=False)
    assert not scaler.is_enabled()
    model = lib.nn.Linear(3, 2)
    x = lib.randn(4, 3)
    if lib is gradient:           # no compiler: the same module back, run eagerly
        assert lib.compile(model) is model
        assert lib.compile(mode="max-autotune")(len) is len
    assert lib.compile(model)(x).shape == (4, 2)
    with lib.autocast(device_type="cpu", dtype=lib.bfloat16):
        assert model(x).dtype == lib.bfloat16
    assert not lib.backends.cudnn.is_available() or lib is torch
