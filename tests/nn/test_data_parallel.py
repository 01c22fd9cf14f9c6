"""nn.DataParallel and nn.parallel.data_parallel: on one device (here: none) the module as it is,
with PyTorch's wrapper layout (``.module``, ``module.`` keys); several GPUs, a clear error."""

import numpy as np
import pytest

import gradient
import gradient.nn as gnn
from gradient.backends import cuda as backend_cuda
from gradient.errors import DeviceError

torch = pytest.importorskip("torch")


def _pair():
    ours, theirs = gnn.Linear(3, 2), torch.nn.Linear(3, 2)
    ours.weight.data = gradient.tensor(theirs.weight.detach().numpy())
    ours.bias.data = gradient.tensor(theirs.bias.detach().numpy())
    return ours, theirs


def test_wrapping_runs_the_module_with_torchs_layout():
    ours, theirs = _pair()
    g, t = gnn.DataParallel(ours), torch.nn.DataParallel(theirs)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(g(gradient.tensor(x)).detach().numpy(),
                               t(torch.tensor(x)).detach().numpy(), rtol=1e-6)
    assert g.module is ours and g.device_ids == t.device_ids == []
    assert list(g.state_dict()) == list(t.state_dict()) == ["module.weight", "module.bias"]
    assert not hasattr(g, "output_device") and not hasattr(t, "output_device")
    # (torch's data_parallel needs a GPU: "device type could not be determined" without one)
    out = gnn.parallel.data_parallel(ours, gradient.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-6)


def test_gradients_reach_the_wrapped_module():
    ours, _ = _pair()
    gnn.DataParallel(ours)(gradient.ones(2, 3)).sum().backward()
    assert ours.weight.grad is not None and ours.weight.grad.shape == (2, 3)


def test_several_gpus_are_a_clear_error(monkeypatch):
    monkeypatch.setattr(backend_cuda, "available", lambda: (True, ""))
    monkeypatch.setattr(backend_cuda, "device_count", lambda: 2)
    with pytest.raises(DeviceError, match="DistributedDataParallel with one process per GPU"):
        gnn.DataParallel(gnn.Linear(3, 2))
    one = gnn.DataParallel(gnn.Linear(3, 2), device_ids=[1])
    assert one.device_ids == [1] and one.output_device == 1
