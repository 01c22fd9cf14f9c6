"""The per-device spellings ported scripts use: ``torch.cuda.amp`` / ``torch.cpu.amp``'s
deprecated autocast and GradScaler, and ``torch.cpu`` and ``torch.get_device_module`` for
device-agnostic code; each against torch."""

import warnings

import pytest
import torch

import gradient

LIBS = pytest.mark.parametrize("lib", [gradient, torch], ids=["gradient", "torch"])


@LIBS
def test_deprecated_device_amp_spellings(lib):
    model = lib.nn.Linear(3, 2)
    x = lib.randn(4, 3)
    with pytest.warns(FutureWarning, match="deprecated"):
        region = lib.cpu.amp.autocast()
    with region:
        assert model(x).dtype == lib.bfloat16
    with pytest.warns(FutureWarning):
        with lib.cpu.amp.autocast(dtype=lib.float16, enabled=False):
            assert model(x).dtype == lib.float32
    with pytest.warns(FutureWarning):
        scaler = lib.cuda.amp.GradScaler(enabled=False)
    assert isinstance(scaler, lib.amp.GradScaler) and not scaler.is_enabled()
    with pytest.warns(FutureWarning):
        assert isinstance(lib.cpu.amp.GradScaler(enabled=False), lib.amp.GradScaler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with lib.cuda.amp.autocast(enabled=False):      # no GPU needed to say "off"
            assert model(x).dtype == lib.float32
    from importlib import import_module
    module = import_module(lib.__name__ + ".cuda.amp")
    assert module.autocast is lib.cuda.amp.autocast


@LIBS
def test_the_cpu_module_for_device_agnostic_code(lib):
    cpu = lib.cpu
    assert cpu.is_available() and cpu.is_initialized() and cpu.device_count() == 1
    assert cpu.current_device() == "cpu"
    cpu.set_device("cpu")
    cpu.synchronize()
    stream = cpu.current_stream()
    stream.wait_stream(cpu.Stream())
    with cpu.stream(stream):
        assert (lib.ones(2) + 1).tolist() == [2.0, 2.0]
    event = cpu.Event()
    event.record()
    assert event.query()
    assert lib.get_device_module("cpu") is cpu
    assert lib.get_device_module(lib.device("cpu")) is cpu
    assert lib.get_device_module("cuda:0") is lib.cuda
    assert lib.get_device_module() is (lib.cuda if lib.cuda.is_available() else cpu)


def test_get_device_module_refuses_what_has_none():
    with pytest.raises(gradient.DeviceError, match="gradient.cpu and gradient.cuda"):
        gradient.get_device_module("xla")
    with pytest.raises(TypeError):
        gradient.get_device_module(3)
    with pytest.raises(gradient.DeviceError, match="expected the CPU"):
        gradient.cpu.synchronize("cuda")
