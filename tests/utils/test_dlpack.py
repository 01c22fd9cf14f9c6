"""DLPack exchange with NumPy and PyTorch: the same memory on both sides, both directions."""

import numpy as np
import pytest
import torch

import gradient
from gradient.errors import DeviceError
from gradient.utils.dlpack import to_dlpack


def test_from_numpy_and_back_share_memory():
    a = np.arange(6.0).reshape(2, 3)
    t = gradient.from_dlpack(a)
    assert t.shape == (2, 3) and t.dtype is gradient.float64
    t[0, 0] = 7.0
    assert a[0, 0] == 7.0
    b = np.from_dlpack(t)
    b[1, 2] = -1.0
    assert t[1, 2].item() == -1.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.float16, torch.uint8])
def test_with_torch_both_ways(dtype):
    theirs = torch.arange(4).to(dtype)
    ours = gradient.from_dlpack(theirs)
    assert ours.tolist() == theirs.tolist() and str(ours.dtype).split(".")[1] == str(dtype).split(".")[1]
    ours.add_(1)                                     # written through to torch's memory
    assert theirs.tolist() == ours.tolist()
    again = torch.from_dlpack(ours)
    again.mul_(2)
    assert ours.tolist() == again.tolist() == theirs.tolist()


def test_capsules_of_the_old_api():
    t = gradient.arange(3.0)
    assert gradient.from_dlpack(to_dlpack(t)).tolist() == [0.0, 1.0, 2.0]
    theirs = torch.ones(2)
    assert gradient.from_dlpack(torch.utils.dlpack.to_dlpack(theirs)).tolist() == [1.0, 1.0]
    assert gradient.utils.dlpack.from_dlpack(t) is not t      # a tensor gives its own memory
    assert gradient.from_dlpack(t).data_ptr() == t.data_ptr()


def test_refusals_say_why():
    with pytest.raises(gradient.errors.AutogradError, match="requires grad"):
        np.from_dlpack(gradient.ones(2, requires_grad=True))
    with pytest.raises(TypeError, match="__dlpack__"):
        gradient.from_dlpack([1.0, 2.0])

    class OnAGpu:
        def __dlpack__(self, **kwargs):
            raise AssertionError("not read")

        def __dlpack_device__(self):
            return (2, 0)
    with pytest.raises(DeviceError, match="device type 2"):
        gradient.from_dlpack(OnAGpu())
