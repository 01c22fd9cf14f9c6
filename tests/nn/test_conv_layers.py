"""Conv1d/2d/3d and ConvTranspose1d/2d/3d layers against torch.nn (float64, same weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn

from .test_layers import assert_close, build, names_and_shapes, randn, run_both

CASES = [
    ("Conv1d", lambda nn: nn.Conv1d(3, 4, 3, stride=2, padding=1), [randn(2, 3, 9)]),
    ("Conv1d-unbatched", lambda nn: nn.Conv1d(3, 4, 2, dilation=2, bias=False), [randn(3, 8)]),
    ("Conv2d", lambda nn: nn.Conv2d(3, 4, 3), [randn(2, 3, 6, 5)]),
    ("Conv2d-mixed", lambda nn: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0),
                                          dilation=(1, 2), groups=2), [randn(2, 4, 7, 6)]),
    ("Conv2d-depthwise", lambda nn: nn.Conv2d(4, 8, 3, padding=1, groups=4, bias=False),
     [randn(1, 4, 5, 5)]),
    ("Conv2d-valid", lambda nn: nn.Conv2d(2, 3, 3, padding="valid"), [randn(1, 2, 5, 5)]),
    ("Conv2d-same", lambda nn: nn.Conv2d(2, 3, (4, 3), padding="same", dilation=(1, 2)),
     [randn(1, 2, 6, 7)]),
    ("Conv2d-unbatched", lambda nn: nn.Conv2d(2, 3, 2), [randn(2, 4, 4)]),
    *[(f"Conv2d-{mode}", (lambda mode: lambda nn: nn.Conv2d(2, 3, 3, padding=(2, 1),
                                                            padding_mode=mode))(mode),
       [randn(2, 2, 5, 6)]) for mode in ("zeros", "reflect", "replicate", "circular")],
    *[(f"Conv2d-same-{mode}", (lambda mode: lambda nn: nn.Conv2d(2, 3, 4, padding="same",
                                                                 padding_mode=mode))(mode),
       [randn(1, 2, 6, 6)]) for mode in ("reflect", "circular")],
    ("Conv1d-reflect", lambda nn: nn.Conv1d(2, 2, 3, padding=2, padding_mode="reflect"),
     [randn(2, 2, 6)]),
    ("Conv3d", lambda nn: nn.Conv3d(2, 3, (2, 3, 2), stride=(1, 2, 1), padding=1),
     [randn(1, 2, 4, 5, 4)]),
    ("ConvTranspose1d", lambda nn: nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1,
                                                      output_padding=1), [randn(2, 3, 5)]),
    ("ConvTranspose2d", lambda nn: nn.ConvTranspose2d(3, 4, 3), [randn(2, 3, 4, 5)]),
    ("ConvTranspose2d-mixed", lambda nn: nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3),
                                                            padding=(1, 0), output_padding=(1, 2),
                                                            groups=2, dilation=(1, 1)),
     [randn(2, 4, 3, 4)]),
    ("ConvTranspose2d-dilated-nobias", lambda nn: nn.ConvTranspose2d(2, 2, 3, dilation=2,
                                                                     bias=False),
     [randn(1, 2, 3, 3)]),
    ("ConvTranspose3d", lambda nn: nn.ConvTranspose3d(2, 3, 2, stride=2), [randn(1, 2, 2, 3, 2)]),
]
CASE_IDS = [c[0] for c in CASES]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")  # torch's own note
@pytest.mark.parametrize("name,make,inputs", CASES, ids=CASE_IDS)
def test_conv_layers_match_torch(name, make, inputs):
    ours, theirs = build(make)
    run_both(ours, theirs, inputs)


@pytest.mark.parametrize("name,make,inputs", CASES, ids=CASE_IDS)
def test_conv_parameters_and_repr_match_torch(name, make, inputs):
    ours, theirs = make(gnn), make(torch.nn)
    assert names_and_shapes(ours, "named_parameters") == names_and_shapes(theirs, "named_parameters")
    assert repr(ours) == repr(theirs)
    for attr in ("kernel_size", "stride", "padding", "dilation", "output_padding", "groups",
                 "padding_mode", "_reversed_padding_repeated_twice"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr


def test_conv_transpose_output_size():
    ours, theirs = build(lambda nn: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1))
    x = randn(1, 3, 4, 4)
    for size in [(7, 7), (8, 8), (7, 8), [1, 2, 8, 7]]:
        run_both(ours, theirs, [x], forward=lambda layer, t: layer(t, output_size=size))
        assert ours(gradient.tensor(x), output_size=size).shape[-2:] == tuple(size[-2:])
    with pytest.raises(ValueError, match="valid sizes"):
        ours(gradient.tensor(x), output_size=(10, 10))


@pytest.mark.parametrize("kwargs,match", [
    ({"groups": 0}, "groups"),
    ({"groups": 2}, "in_channels"),           # 3 input channels
    ({"padding": "full"}, "padding string"),
    ({"padding": "same", "stride": 2}, "strided"),
    ({"padding_mode": "mirror"}, "padding_mode"),
])
def test_conv_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gnn.Conv2d(3, 4, 3, **kwargs)
    with pytest.raises(ValueError):                # torch refuses them too
        torch.nn.Conv2d(3, 4, 3, **kwargs)


def test_conv_transpose_argument_errors():
    with pytest.raises(ValueError, match="zeros"):
        gnn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="out_channels"):
        gnn.ConvTranspose2d(2, 3, 3, groups=2)


def test_conv_float32_close_to_torch():
    theirs = torch.nn.Conv2d(3, 8, 3, padding=1)
    ours = gnn.Conv2d(3, 8, 3, padding=1)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(3).standard_normal((2, 3, 8, 8)).astype(np.float32)
    out = ours(gradient.tensor(x))
    assert out.dtype is gradient.float32
    assert_close(out, theirs(torch.tensor(x)), atol=1e-5, rtol=1e-5)
