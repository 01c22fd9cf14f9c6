"""SyncBatchNorm in one process (BatchNorm's numbers, as torch's SyncBatchNorm without a
process group) and convert_sync_batchnorm against torch's. Across ranks:
tests/distributed/test_distributed.py."""

import numpy as np
import torch

import gradient
from gradient import nn


def _model(lib):
    return lib.nn.Sequential(lib.nn.Conv2d(3, 4, 3), lib.nn.BatchNorm2d(4, momentum=0.3),
                             lib.nn.ReLU(), lib.nn.Sequential(lib.nn.Flatten(),
                                                              lib.nn.BatchNorm1d(64, affine=False)))


def test_convert_sync_batchnorm_as_torchs():
    theirs = _model(torch)
    ours = _model(gradient)
    ours.load_state_dict({k: gradient.tensor(v.detach().numpy())
                          for k, v in theirs.state_dict().items()})
    ours[1].eval(), theirs[1].eval()
    ours_sync = nn.SyncBatchNorm.convert_sync_batchnorm(ours)
    theirs_sync = torch.nn.SyncBatchNorm.convert_sync_batchnorm(theirs)
    assert [type(m).__name__ for m in ours_sync.modules()] == \
        [type(m).__name__ for m in theirs_sync.modules()]
    assert list(ours_sync.state_dict()) == list(theirs_sync.state_dict())
    assert ours_sync[1].weight is ours[1].weight                 # the same parameters
    assert not ours_sync[1].training and ours_sync[3][1].training
    assert ours_sync[1].momentum == 0.3 and ours_sync[3][1].weight is None


def test_without_a_process_group_it_is_batchnorm():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5))
    results = []
    for layer in (nn.SyncBatchNorm(3).double(), nn.BatchNorm1d(3).double()):
        xs = gradient.tensor(x, requires_grad=True)
        layer(xs).pow(2).sum().backward()
        results.append((layer(gradient.tensor(x)).detach().numpy(), xs.grad.numpy(),
                        layer.running_var.numpy()))
    for got, expected in zip(*results):
        np.testing.assert_array_equal(got, expected)
