"""Recurrent layers (RNN, LSTM, GRU, their cells) and gradient.nn.utils.rnn against torch.

Each layer is built by the same code for both frameworks (``make(nn)``), torch's state dict is
copied into ours, the same float64 inputs go through both, and everything must agree: outputs,
final states, and the gradients of the input, of the initial state and of every parameter
(the loss weights every output and final state with a random tensor, so all of them are
differentiated). Packed sequences go through ``pack_padded_sequence`` in both frameworks, so
their checks also cover the gradient through packing.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.utils.rnn as trnn

import gradient
import gradient.nn as gnn
import gradient.nn.utils.rnn as grnn
from gradient.autograd import gradcheck, gradgradcheck
from gradient.errors import DTypeError, ShapeError

from ..devices import DEVICES
from .test_layers import assert_close, load_from_torch, names_and_shapes

RNG = np.random.default_rng(1234)


def randn(*shape):
    return RNG.standard_normal(shape)


def leaves(value):
    """numpy (or a tuple of them, or None) -> (gradient leaves, torch leaves), requiring grad."""
    if value is None:
        return None, None
    if isinstance(value, tuple):
        pairs = [leaves(v) for v in value]
        return tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    return (gradient.tensor(value, requires_grad=True), torch.tensor(value, requires_grad=True))


def flat(value) -> list:
    """The tensors in a nested output: (output, h_n) or (output, (h_n, c_n)) or a PackedSequence."""
    if isinstance(value, (grnn.PackedSequence, trnn.PackedSequence)):
        return [value.data]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in flat(v)]
    return [value]


def build(make):
    theirs = make(torch.nn).double()
    ours = make(gnn).double()
    load_from_torch(ours, theirs)
    return ours, theirs


def compare_runs(ours, theirs, call, inputs, atol=1e-10, rtol=1e-7):
    """``call(layer, nn_utils, *inputs)`` in both frameworks on the same leaves; compare every
    output tensor, then the gradients of every input leaf and parameter after one backward."""
    pairs = [leaves(x) for x in inputs]
    ins_o, ins_t = [p[0] for p in pairs], [p[1] for p in pairs]
    outs_o = flat(call(ours, grnn, *ins_o))
    outs_t = flat(call(theirs, trnn, *ins_t))
    assert len(outs_o) == len(outs_t)
    loss_o, loss_t = 0, 0
    for i, (o, t) in enumerate(zip(outs_o, outs_t)):
        assert_close(o, t, atol, rtol, f"output {i}")
        w = RNG.standard_normal(tuple(t.shape))
        loss_o = loss_o + (o * gradient.tensor(w)).sum()
        loss_t = loss_t + (t * torch.tensor(w)).sum()
    loss_o.backward()
    loss_t.backward()
    for i, (xo, xt) in enumerate(zip(flat(ins_o), flat(ins_t))):
        assert xo.grad is not None, f"no gradient for input {i}"
        assert_close(xo.grad, xt.grad, atol, rtol, f"grad of input {i}")
    grads_t = {n: p.grad for n, p in theirs.named_parameters()}
    for name, p in ours.named_parameters():
        assert p.grad is not None, f"no gradient for parameter {name}"
        assert_close(p.grad, grads_t[name], atol, rtol, f"grad of {name}")


def layer_call(layer, utils, x, hx=None):
    return layer(x) if hx is None else layer(x, hx)


# ---------------------------------------------------------------------- layers on padded input
T, B, I, H = 5, 3, 4, 3

LAYER_CASES = [
    # (id, make(nn), input, hx or None)
    ("RNN-tanh-hx", lambda nn: nn.RNN(I, H), randn(T, B, I), randn(1, B, H)),
    ("RNN-relu-2layers", lambda nn: nn.RNN(I, H, 2, "relu"), randn(T, B, I), None),
    ("RNN-tanh-bi-2layers-batch_first", lambda nn: nn.RNN(I, H, num_layers=2, batch_first=True,
                                                          bidirectional=True),
     randn(B, T, I), randn(4, B, H)),
    ("RNN-relu-nobias-unbatched", lambda nn: nn.RNN(I, H, nonlinearity="relu", bias=False),
     randn(T, I), randn(1, H)),
    ("RNN-unbatched-batch_first-bi", lambda nn: nn.RNN(I, H, batch_first=True, bidirectional=True),
     randn(T, I), None),
    ("LSTM-hx", lambda nn: nn.LSTM(I, H), randn(T, B, I), (randn(1, B, H), randn(1, B, H))),
    ("LSTM-2layers-bi-hx", lambda nn: nn.LSTM(I, H, num_layers=2, bidirectional=True),
     randn(T, B, I), (randn(4, B, H), randn(4, B, H))),
    ("LSTM-batch_first-nobias", lambda nn: nn.LSTM(I, H, bias=False, batch_first=True),
     randn(B, T, I), None),
    ("LSTM-unbatched-hx", lambda nn: nn.LSTM(I, H, 2), randn(T, I), (randn(2, H), randn(2, H))),
    ("LSTM-proj-2layers-bi", lambda nn: nn.LSTM(I, 4, num_layers=2, bidirectional=True,
                                                proj_size=2),
     randn(T, B, I), (randn(4, B, 2), randn(4, B, 4))),
    ("LSTM-proj-default-hx", lambda nn: nn.LSTM(I, 4, proj_size=3, batch_first=True),
     randn(B, T, I), None),
    ("GRU-hx", lambda nn: nn.GRU(I, H), randn(T, B, I), randn(1, B, H)),
    ("GRU-2layers-bi-batch_first", lambda nn: nn.GRU(I, H, 2, batch_first=True,
                                                     bidirectional=True), randn(B, T, I), None),
    ("GRU-nobias-hx", lambda nn: nn.GRU(I, H, bias=False), randn(T, B, I), randn(1, B, H)),
    ("GRU-unbatched-hx", lambda nn: nn.GRU(I, H, bidirectional=True), randn(T, I), randn(2, H)),
    # dropout is only active in training mode: the models below are compared in eval mode
    ("GRU-dropout-eval", lambda nn: nn.GRU(I, H, 3, dropout=0.5).eval(), randn(T, B, I), None),
    ("LSTM-one-step", lambda nn: nn.LSTM(I, H, bidirectional=True), randn(1, B, I), None),
]


@pytest.mark.parametrize("name,make,x,hx", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layer_matches_torch(name, make, x, hx):
    ours, theirs = build(make)
    compare_runs(ours, theirs, layer_call, [x] if hx is None else [x, hx])


# ---------------------------------------------------------------------- cells
CELL_CASES = [
    ("RNNCell", lambda nn: nn.RNNCell(I, H), randn(B, I), randn(B, H)),
    ("RNNCell-relu-nobias", lambda nn: nn.RNNCell(I, H, bias=False, nonlinearity="relu"),
     randn(B, I), randn(B, H)),
    ("RNNCell-unbatched-default", lambda nn: nn.RNNCell(I, H), randn(I), None),
    ("LSTMCell", lambda nn: nn.LSTMCell(I, H), randn(B, I), (randn(B, H), randn(B, H))),
    ("LSTMCell-unbatched-nobias", lambda nn: nn.LSTMCell(I, H, bias=False), randn(I),
     (randn(H), randn(H))),
    ("LSTMCell-default", lambda nn: nn.LSTMCell(I, H), randn(B, I), None),
    ("GRUCell", lambda nn: nn.GRUCell(I, H), randn(B, I), randn(B, H)),
    ("GRUCell-unbatched-nobias", lambda nn: nn.GRUCell(I, H, False), randn(I), randn(H)),
]


@pytest.mark.parametrize("name,make,x,hx", CELL_CASES, ids=[c[0] for c in CELL_CASES])
def test_cell_matches_torch(name, make, x, hx):
    ours, theirs = build(make)
    compare_runs(ours, theirs, layer_call, [x] if hx is None else [x, hx])


def test_cell_unrolled_equals_layer():
    # the layer is its cell applied step by step (same weights): checks the time loop itself
    layer, cell = gnn.GRU(I, H).double(), gnn.GRUCell(I, H).double()
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = gradient.tensor(randn(T, B, I))
    out, h_n = layer(x)
    h = None
    for t in range(T):
        h = cell(x[t], h)
        assert_close(out[t], h.detach().numpy(), what=f"step {t}")
    assert_close(h_n[0], h.detach().numpy())


# ---------------------------------------------------------------------- packed sequences
def packed_call(lengths, enforce_sorted, batch_first):
    """Pack x in the framework under test, run the layer, and unpack its output."""
    def call(layer, utils, x, hx=None):
        packed = utils.pack_padded_sequence(x, lengths, batch_first=batch_first,
                                            enforce_sorted=enforce_sorted)
        out, state = layer(packed) if hx is None else layer(packed, hx)
        assert isinstance(out, utils.PackedSequence)
        assert out.batch_sizes is packed.batch_sizes
        padded, out_lengths = utils.pad_packed_sequence(out, batch_first=batch_first)
        assert out_lengths.tolist() == list(lengths)
        return out, padded, state
    return call


PACKED_CASES = [
    # (id, make(nn), lengths, batch_first, enforce_sorted, hx shapes)
    ("RNN-unsorted-bi-2layers", lambda nn: nn.RNN(I, H, 2, bidirectional=True), [3, 5, 1, 5], False,
     False, [(4, 4, H)]),
    ("RNN-relu-sorted-batch_first", lambda nn: nn.RNN(I, H, nonlinearity="relu", batch_first=True),
     [5, 4, 2], True, True, None),
    ("LSTM-unsorted-bi-2layers", lambda nn: nn.LSTM(I, H, 2, bidirectional=True), [2, 5, 3, 1],
     False, False, [(4, 4, H), (4, 4, H)]),
    ("LSTM-proj-unsorted-batch_first", lambda nn: nn.LSTM(I, 4, batch_first=True, proj_size=2,
                                                          bidirectional=True),
     [1, 4, 5], True, False, None),
    ("GRU-unsorted-bi-2layers", lambda nn: nn.GRU(I, H, 2, bidirectional=True), [4, 1, 5, 2], False,
     False, [(4, 4, H)]),
    ("GRU-sorted-equal-lengths", lambda nn: nn.GRU(I, H, bidirectional=True), [5, 5, 5], False, True,
     None),
]


@pytest.mark.parametrize("name,make,lengths,batch_first,enforce_sorted,hx_shapes", PACKED_CASES,
                         ids=[c[0] for c in PACKED_CASES])
def test_packed_layer_matches_torch(name, make, lengths, batch_first, enforce_sorted, hx_shapes):
    ours, theirs = build(make)
    n = len(lengths)
    x = randn(n, max(lengths), I) if batch_first else randn(max(lengths), n, I)
    hx = None if hx_shapes is None else tuple(randn(*s) for s in hx_shapes)
    if hx is not None and len(hx) == 1:
        hx = hx[0]
    compare_runs(ours, theirs, packed_call(lengths, enforce_sorted, batch_first),
                 [x] if hx is None else [x, hx])


def test_packed_final_state_is_each_sequences_last_valid_step():
    # h_n of a packed batch = h_n of each sequence run alone, whatever the padding holds
    gru = gnn.GRU(I, H, batch_first=True).double()
    lengths = [2, 5, 3]
    x = randn(3, 5, I)
    x_garbage = x.copy()
    for b, n in enumerate(lengths):
        x_garbage[b, n:] = 1e3
    packed = grnn.pack_padded_sequence(gradient.tensor(x_garbage), lengths, batch_first=True,
                                       enforce_sorted=False)
    _, h_n = gru(packed)
    for b, n in enumerate(lengths):
        _, alone = gru(gradient.tensor(x[b:b + 1, :n]))
        assert_close(h_n[:, b], alone[:, 0].detach().numpy(), what=f"sequence {b}")


# ---------------------------------------------------------------------- pad / pack utilities
def seqs(lengths, *trailing):
    return [randn(n, *trailing) for n in lengths]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, padding_side):
    arrays = seqs([3, 1, 4, 0], 2, 2)
    ours = [gradient.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    po = grnn.pad_sequence(ours, batch_first=batch_first, padding_value=-2.5,
                           padding_side=padding_side)
    pt = trnn.pad_sequence(theirs, batch_first=batch_first, padding_value=-2.5,
                           padding_side=padding_side)
    assert_close(po, pt)
    w = randn(*pt.shape)
    (po * gradient.tensor(w)).sum().backward()
    (pt * torch.tensor(w)).sum().backward()
    for o, t in zip(ours, theirs):
        assert_close(o.grad, t.grad)


def test_pad_sequence_1d_and_integer_sequences():
    ints = [np.array([1, 2, 3]), np.array([4])]
    po = grnn.pad_sequence([gradient.tensor(a) for a in ints], padding_value=7)
    pt = trnn.pad_sequence([torch.tensor(a) for a in ints], padding_value=7)
    assert po.dtype == gradient.int64
    np.testing.assert_array_equal(po.numpy(), pt.numpy())


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("lengths,enforce_sorted", [([4, 4, 2, 1], True), ([2, 4, 1, 4, 3], False)])
def test_pack_and_pad_round_trip_match_torch(batch_first, lengths, enforce_sorted):
    n, steps = len(lengths), max(lengths) + 1   # one padding step beyond the longest
    x = randn(n, steps, 3) if batch_first else randn(steps, n, 3)
    xo, xt = leaves(x)
    po = grnn.pack_padded_sequence(xo, lengths, batch_first, enforce_sorted)
    pt = trnn.pack_padded_sequence(xt, torch.tensor(lengths), batch_first, enforce_sorted)
    assert_close(po.data, pt.data, what="data")
    assert po.batch_sizes.tolist() == pt.batch_sizes.tolist()
    assert po.batch_sizes.dtype == gradient.int64 and po.batch_sizes.device.type == "cpu"
    for field in ("sorted_indices", "unsorted_indices"):
        a, b = getattr(po, field), getattr(pt, field)
        assert (a is None) == (b is None), field
        if a is not None:
            assert a.tolist() == b.tolist(), field
    for total_length in (None, steps + 2):
        (do, lo), (dt, lt) = (grnn.pad_packed_sequence(po, batch_first, -1.0, total_length),
                              trnn.pad_packed_sequence(pt, batch_first, -1.0, total_length))
        assert_close(do, dt, what="padded")
        assert lo.tolist() == lt.tolist() == lengths and lo.dtype == gradient.int64
    w = randn(*dt.shape)
    (do * gradient.tensor(w)).sum().backward()
    (dt * torch.tensor(w)).sum().backward()
    assert_close(xo.grad, xt.grad, what="grad through pack and pad")


def test_pack_sequence_unpack_sequence_and_unpad_match_torch():
    arrays = seqs([2, 5, 3], 2)
    po = grnn.pack_sequence([gradient.tensor(a) for a in arrays], enforce_sorted=False)
    pt = trnn.pack_sequence([torch.tensor(a) for a in arrays], enforce_sorted=False)
    assert_close(po.data, pt.data)
    assert po.batch_sizes.tolist() == pt.batch_sizes.tolist()
    for o, a in zip(grnn.unpack_sequence(po), arrays):
        assert_close(o, a)
    padded = grnn.pad_sequence([gradient.tensor(a) for a in arrays], batch_first=True)
    for o, a in zip(grnn.unpad_sequence(padded, gradient.tensor([2, 5, 3]), batch_first=True),
                    arrays):
        assert_close(o, a)
    # sorted input, a tensor of lengths, and PyTorch's field names and tuple order
    po = grnn.pack_sequence([gradient.tensor(a) for a in sorted(arrays, key=len, reverse=True)])
    assert po.sorted_indices is None and po.unsorted_indices is None
    assert grnn.PackedSequence._fields == trnn.PackedSequence._fields
    data, batch_sizes, sorted_indices, unsorted_indices = po
    assert data is po.data and batch_sizes.tolist() == [3, 3, 2, 1, 1]


def test_packed_sequence_to_and_invert_permutation():
    po = grnn.pack_sequence([gradient.ones(3, 2), gradient.ones(1, 2)], enforce_sorted=False)
    assert po.to(gradient.float32) is po
    p64 = po.double()
    assert p64.data.dtype == gradient.float64 and p64.batch_sizes is po.batch_sizes
    assert grnn.invert_permutation(gradient.tensor([2, 0, 1])).tolist() == [1, 2, 0]
    assert grnn.invert_permutation(None) is None


def test_pack_errors_say_what_to_do():
    x = gradient.randn(3, 2, 4)
    with pytest.raises(ShapeError, match="enforce_sorted=False"):
        grnn.pack_padded_sequence(x, [1, 3])
    with pytest.raises(ShapeError, match="greater than 0"):
        grnn.pack_padded_sequence(x, [3, 0])
    with pytest.raises(ShapeError, match="one length per sequence"):
        grnn.pack_padded_sequence(x, [3, 2, 1])
    with pytest.raises(ShapeError, match="does not fit"):
        grnn.pack_padded_sequence(x, [4, 1])
    with pytest.raises(ValueError, match="total_length"):
        grnn.pad_packed_sequence(grnn.pack_padded_sequence(x, [3, 1]), total_length=2)
    with pytest.raises(ValueError, match="padding_side"):
        grnn.pad_sequence([x], padding_side="middle")
    with pytest.raises(ShapeError, match="trailing shape"):
        grnn.pad_sequence([gradient.ones(2, 3), gradient.ones(2, 4)])
    with pytest.raises(ShapeError, match="empty"):
        grnn.pad_sequence([])


# ---------------------------------------------------------------------- numerical gradients
def module_fn(module):
    """fn(x, h0, *params) -> flat outputs; the params are perturbed in place by gradcheck."""
    def fn(x, h0, *params):
        return tuple(flat(module(x, h0)))
    return fn


def test_gradcheck_gru_bidirectional_two_layers():
    gradient.manual_seed(0)
    gru = gnn.GRU(2, 2, num_layers=2, bidirectional=True).double()
    x = gradient.randn(3, 2, 2, dtype=gradient.float64, requires_grad=True)
    h0 = gradient.randn(4, 2, 2, dtype=gradient.float64, requires_grad=True)
    assert gradcheck(module_fn(gru), (x, h0, *gru.parameters()))


def test_gradcheck_lstm_proj_packed():
    gradient.manual_seed(1)
    lstm = gnn.LSTM(2, 3, proj_size=2, bidirectional=True).double()
    x = gradient.randn(3, 2, 2, dtype=gradient.float64, requires_grad=True)
    state = (gradient.randn(2, 2, 2, dtype=gradient.float64, requires_grad=True),
             gradient.randn(2, 2, 3, dtype=gradient.float64, requires_grad=True))

    def fn(x, h0, c0, *params):
        packed = grnn.pack_padded_sequence(x, [2, 3], enforce_sorted=False)
        out, (h, c) = lstm(packed, (h0, c0))
        return grnn.pad_packed_sequence(out)[0], h, c
    assert gradcheck(fn, (x, *state, *lstm.parameters()))


@pytest.mark.parametrize("cls", ["LSTM", "GRU", "RNN"])
def test_gradgradcheck_tiny(cls):
    gradient.manual_seed(2)
    layer = getattr(gnn, cls)(1, 2).double()
    x = gradient.randn(2, 1, 1, dtype=gradient.float64, requires_grad=True)
    h0 = gradient.randn(1, 1, 2, dtype=gradient.float64, requires_grad=True)
    hx = (h0, gradient.randn(1, 1, 2, dtype=gradient.float64)) if cls == "LSTM" else h0
    fn = lambda x, h0, *params: tuple(flat(layer(x, hx if cls == "LSTM" else h0)))  # noqa: E731
    assert gradgradcheck(fn, (x, h0, *layer.parameters()))


# ---------------------------------------------------------------------- parameters, init, repr
CONFIGS = [
    lambda nn: nn.RNN(3, 5),
    lambda nn: nn.RNN(3, 5, 2, "relu", False, True, 0.0, True),
    lambda nn: nn.LSTM(3, 5, num_layers=3, bidirectional=True),
    lambda nn: nn.LSTM(3, 5, bias=False, proj_size=2, num_layers=2, batch_first=True),
    lambda nn: nn.GRU(3, 5, 2, False, True, 0.25, True),
    lambda nn: nn.RNNCell(3, 5, nonlinearity="relu"),
    lambda nn: nn.LSTMCell(3, 5, bias=False),
    lambda nn: nn.GRUCell(3, 5),
]


@pytest.mark.parametrize("make", CONFIGS, ids=range(len(CONFIGS)))
def test_state_dict_names_shapes_and_repr_match_torch(make):
    ours, theirs = make(gnn), make(torch.nn)
    assert names_and_shapes(ours, "named_parameters") == names_and_shapes(theirs, "named_parameters")
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    if hasattr(theirs, "all_weights"):
        assert [[tuple(p.shape) for p in ws] for ws in ours.all_weights] == \
            [[tuple(p.shape) for p in ws] for ws in theirs.all_weights]


@pytest.mark.parametrize("make", [lambda: gnn.LSTM(4, 16, 2, bidirectional=True, proj_size=3),
                                  lambda: gnn.GRUCell(4, 16)], ids=["LSTM", "GRUCell"])
def test_default_init_is_uniform_in_one_over_sqrt_hidden(make):
    gradient.manual_seed(0)
    layer = make()
    values = np.concatenate([p.detach().numpy().ravel() for p in layer.parameters()])
    assert np.abs(values).max() <= 0.25          # 1 / sqrt(16)
    assert values.min() < -0.24 and values.max() > 0.24 and abs(values.mean()) < 0.02
    for p in layer.parameters():
        assert len(np.unique(p.detach().numpy())) == p.numel(), "every entry drawn"
    gradient.manual_seed(0)   # drawn from gradient's generator: reproducible
    again = make()
    for p, q in zip(layer.parameters(), again.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_dropout_only_in_training():
    gradient.manual_seed(0)
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        gnn.LSTM(3, 4, dropout=0.5)
    lstm = gnn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = gradient.randn(6, 2, 3)
    out1, (h1, _) = lstm(x)
    out2, (h2, _) = lstm(x)
    assert not np.allclose(out1.detach().numpy(), out2.detach().numpy())
    lstm.eval()
    out3, (h3, _) = lstm(x)
    out4, (h4, _) = lstm(x)
    np.testing.assert_array_equal(out3.detach().numpy(), out4.detach().numpy())
    assert not np.allclose(out1.detach().numpy(), out3.detach().numpy())
    # the first layer sees no dropout: its final state is the same in both modes
    np.testing.assert_allclose(h1[0].detach().numpy(), h3[0].detach().numpy(), atol=1e-6)


def test_float32_default_dtype_matches_torch():
    ours, theirs = gnn.LSTM(I, H, 2, batch_first=True), torch.nn.LSTM(I, H, 2, batch_first=True)
    load_from_torch(ours, theirs)
    x = randn(B, T, I).astype(np.float32)
    out_o, (h_o, c_o) = ours(gradient.tensor(x))
    out_t, (h_t, c_t) = theirs(torch.tensor(x))
    assert out_o.dtype == gradient.float32
    for o, t in ((out_o, out_t), (h_o, h_t), (c_o, c_t)):
        assert_close(o, t, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_packed_layers_on_every_device_match_the_cpu(device):
    # the index tensors (sorted_indices, the gathers of pack and pad) and the default states
    # must be made on the data's device; batch_sizes stays on the CPU, as in PyTorch
    lengths = [2, 5, 3]
    x = randn(5, 3, I)
    results = {}
    for where in ("cpu", device):
        gradient.manual_seed(3)
        layers = [gnn.GRU(I, H, 2, bidirectional=True), gnn.LSTM(I, 4, proj_size=2)]
        xs = gradient.tensor(x, device=where, requires_grad=True)
        total = 0
        for layer in layers:
            layer.double().to(where)
            packed = grnn.pack_padded_sequence(xs, lengths, enforce_sorted=False)
            assert packed.batch_sizes.device.type == "cpu"
            assert packed.sorted_indices.device.type == xs.device.type
            out, state = layer(packed)
            padded, _ = grnn.pad_packed_sequence(out, padding_value=0.5)
            total = total + (padded * padded).sum() + sum((s * s).sum() for s in flat(state))
        total.backward()
        results[where] = [total, xs.grad] + [p.grad for layer in layers
                                              for p in layer.parameters()]
    for a, b in zip(results["cpu"], results[device]):
        assert_close(b.cpu(), a.cpu(), atol=1e-9, rtol=1e-9)


# ---------------------------------------------------------------------- errors
def test_wrong_input_size_is_a_clear_error():
    for layer in (gnn.RNN(3, 4), gnn.LSTM(3, 4), gnn.GRU(3, 4, batch_first=True)):
        with pytest.raises(ShapeError, match=re.escape("Expected 3, got 5")) as info:
            layer(gradient.randn(2, 6, 5))
        assert isinstance(info.value, RuntimeError)   # what torch raises
        with pytest.raises(ShapeError, match="2D or 3D"):
            layer(gradient.randn(2, 6, 5, 3))
    with pytest.raises(ShapeError, match="input_size: got 5 expected 3"):
        gnn.GRUCell(3, 4)(gradient.randn(2, 5))
    with pytest.raises(ShapeError, match="1D or 2D"):
        gnn.LSTMCell(3, 4)(gradient.randn(2, 2, 3))
    packed = grnn.pack_sequence([gradient.randn(3, 5)])
    with pytest.raises(ShapeError, match=re.escape("Expected 3, got 5")):
        gnn.GRU(3, 4)(packed)


def test_wrong_hx_is_a_clear_error():
    x = gradient.randn(5, 2, 3)
    with pytest.raises(ShapeError, match=re.escape("expected hx of shape (2, 2, 4)")):
        gnn.GRU(3, 4, bidirectional=True)(x, gradient.zeros(1, 2, 4))
    with pytest.raises(ShapeError, match=re.escape("hx[1] (c_0) of shape (1, 2, 4)")):
        gnn.LSTM(3, 4)(x, (gradient.zeros(1, 2, 4), gradient.zeros(1, 2, 5)))
    with pytest.raises(ShapeError, match=re.escape("proj_size")):
        gnn.LSTM(3, 4, proj_size=2)(x, (gradient.zeros(1, 2, 4), gradient.zeros(1, 2, 4)))
    with pytest.raises(ShapeError, match="should be 2-D"):
        gnn.RNN(3, 4)(gradient.randn(5, 3), gradient.zeros(1, 2, 4))
    with pytest.raises(TypeError, match=re.escape("tuple (h_0, c_0)")):
        gnn.LSTM(3, 4)(x, gradient.zeros(1, 2, 4))
    with pytest.raises(ShapeError, match=re.escape("expected hx of shape (2, 4)")):
        gnn.RNNCell(3, 4)(gradient.randn(2, 3), gradient.zeros(3, 4))
    with pytest.raises(DTypeError, match="does not match weight dtype"):
        gnn.GRU(3, 4)(x.double())


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        gnn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="proj_size has to be smaller"):
        gnn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="dropout"):
        gnn.GRU(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        gnn.GRU(3, 0)
    with pytest.raises(TypeError, match="input_size should be of type int"):
        gnn.LSTM(3.0, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gnn.GRU(3, 4, num_layers=2, dropout=0.1)   # no warning with more than one layer
