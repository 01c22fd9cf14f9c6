"""gradient.accelerator against torch.accelerator (on this machine neither has one), and what it
answers where gradient.cuda has a GPU; gradient.onnx importable, without an exporter."""

import pytest

import gradient
from gradient import accelerator

torch = pytest.importorskip("torch")


def test_without_an_accelerator_it_answers_as_torch():
    if torch.accelerator.is_available() or accelerator.is_available():
        pytest.skip("this machine has an accelerator")
    assert accelerator.is_available() is torch.accelerator.is_available() is False
    assert accelerator.current_accelerator() is torch.accelerator.current_accelerator() is None
    assert accelerator.current_accelerator(check_available=True) is None
    assert accelerator.device_count() == torch.accelerator.device_count() == 0
    for name in ("current_device_index", "synchronize", "empty_cache", "memory_allocated"):
        with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is "
                                               "available"):
            getattr(accelerator, name)()
        with pytest.raises(RuntimeError):
            getattr(torch.accelerator, name)()
    with pytest.raises(gradient.errors.DeviceError):
        accelerator.set_device_index(0)
    with accelerator.device_index(None), torch.accelerator.device_index(None):
        pass


def test_with_a_gpu_the_accelerator_is_cuda(monkeypatch):
    calls = []
    monkeypatch.setattr(gradient.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gradient.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(gradient.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(gradient.cuda, "set_device", lambda d: calls.append(("set", d)))
    monkeypatch.setattr(gradient.cuda, "synchronize", lambda d=None: calls.append(("sync", d)))
    assert accelerator.current_accelerator() == gradient.device("cuda")
    assert (accelerator.device_count(), accelerator.current_device_index()) == (2, 1)
    accelerator.set_device_index(0)
    accelerator.synchronize()
    assert calls == [("set", 0), ("sync", None)]
    assert accelerator.current_device_idx is accelerator.current_device_index


def test_onnx_imports_and_says_it_has_no_exporter():
    import gradient.onnx
    assert gradient.onnx.is_in_onnx_export() is torch.onnx.is_in_onnx_export() is False
    with pytest.raises(RuntimeError, match="gradient has no ONNX exporter.*gradient.save"):
        gradient.onnx.export(gradient.nn.Linear(2, 2), (gradient.ones(1, 2),), "model.onnx")
    assert isinstance(gradient.onnx.OnnxExporterError("x"), gradient.errors.GradientError)
