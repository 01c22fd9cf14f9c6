"""MultiheadAttention against torch.nn.MultiheadAttention: same state dict, same outputs,
attention weights and gradients, over layouts, masks and the optional features."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn

from .test_layers import assert_close, load_from_torch, names_and_shapes, run_both

E, H, N, L, S = 8, 2, 3, 4, 5
rng = np.random.default_rng(11)


def make_pair(**kwargs):
    theirs = torch.nn.MultiheadAttention(E, H, **kwargs).double()
    with torch.no_grad():   # non-zero biases, so that their gradients are checked meaningfully
        for name, p in theirs.named_parameters():
            if "bias" in name:
                p.uniform_(-0.5, 0.5)
    ours = gnn.MultiheadAttention(E, H, **kwargs).double()
    load_from_torch(ours, theirs)
    return ours, theirs


def seq(length, batch_first=False, batched=True, dim=E):
    if not batched:
        return rng.standard_normal((length, dim))
    return rng.standard_normal((N, length, dim) if batch_first else (length, N, dim))


def compare(ours, theirs, inputs, masks=None, **kw):
    """Run both on (query, key, value) arrays plus masks; compare outputs, weights and grads."""
    masks = masks or {}

    def forward(layer, *xs):
        to = gradient.tensor if layer is ours else torch.tensor
        ms = {k: (None if v is None else to(v)) for k, v in masks.items()}
        if len(xs) == 1:                       # self-attention: the same tensor three times
            xs = xs * 3
        return layer(*xs, **ms, **kw)

    out_o, out_t = run_both(ours, theirs, inputs, forward=forward)
    if out_t[1] is None:
        assert out_o[1] is None
    else:
        assert_close(out_o[1], out_t[1], what="attention weights")
    return out_o, out_t


def causal_bool(length=L, source=S):
    return np.triu(np.ones((length, source), dtype=bool), 1)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_cross_attention(batch_first, bias):
    ours, theirs = make_pair(batch_first=batch_first, bias=bias)
    compare(ours, theirs, [seq(L, batch_first), seq(S, batch_first), seq(S, batch_first)])


@pytest.mark.parametrize("batch_first", [False, True])
def test_self_attention_same_tensor(batch_first):
    ours, theirs = make_pair(batch_first=batch_first)
    compare(ours, theirs, [seq(L, batch_first)], masks={"attn_mask": causal_bool(L, L)})


def test_unbatched():
    ours, theirs = make_pair()
    compare(ours, theirs, [seq(L, batched=False), seq(S, batched=False), seq(S, batched=False)],
            masks={"key_padding_mask": np.array([False, True, False, False, True])})
    compare(ours, theirs, [seq(L, batched=False)] * 3,
            masks={"attn_mask": rng.standard_normal((H, L, L))})


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("mask_kind", ["bool-2d", "float-2d", "bool-3d", "padding-bool",
                                       "padding-float", "both"])
def test_masks(mask_kind, need_weights):
    ours, theirs = make_pair(batch_first=True)
    padding = np.zeros((N, S), dtype=bool)
    padding[0, -2:] = True
    padding[2, 1] = True
    masks = {
        "bool-2d": {"attn_mask": causal_bool()},
        "float-2d": {"attn_mask": rng.standard_normal((L, S))},
        "bool-3d": {"attn_mask": rng.random((N * H, L, S)) < 0.3},
        "padding-bool": {"key_padding_mask": padding},
        "padding-float": {"key_padding_mask": np.where(padding, -np.inf, rng.standard_normal((N, S)))},
        "both": {"attn_mask": causal_bool(), "key_padding_mask": padding},
    }[mask_kind]
    if mask_kind == "bool-3d":
        masks["attn_mask"][..., 0] = False     # keep every row attending to something
    compare(ours, theirs, [seq(L, True), seq(S, True), seq(S, True)], masks=masks,
            need_weights=need_weights)


def test_per_head_weights_and_averaging():
    ours, theirs = make_pair(batch_first=True)
    x = [seq(L, True), seq(S, True), seq(S, True)]
    out_o, _ = compare(ours, theirs, x, average_attn_weights=False)
    assert tuple(out_o[1].shape) == (N, H, L, S)
    np.testing.assert_allclose(out_o[1].detach().numpy().sum(-1), 1.0, rtol=1e-12)
    out_avg, _ = compare(ours, theirs, x)
    np.testing.assert_allclose(out_avg[1].detach().numpy(), out_o[1].detach().numpy().mean(1))


@pytest.mark.parametrize("need_weights", [True, False])
def test_is_causal_hint(need_weights):
    ours, theirs = make_pair(batch_first=True)
    compare(ours, theirs, [seq(L, True)], masks={"attn_mask": causal_bool(L, L)}, is_causal=True,
            need_weights=need_weights)
    with pytest.raises(ValueError, match="attn_mask"):
        ours(*[gradient.tensor(seq(L, True))] * 3, is_causal=True)


def test_kdim_vdim():
    ours, theirs = make_pair(kdim=3, vdim=6)
    assert names_and_shapes(ours, "named_parameters") == names_and_shapes(theirs, "named_parameters")
    assert ours.in_proj_weight is None
    compare(ours, theirs, [seq(L), seq(S, dim=3), seq(S, dim=6)],
            masks={"key_padding_mask": rng.random((N, S)) < 0.3})


@pytest.mark.parametrize("kwargs", [{"add_bias_kv": True}, {"add_zero_attn": True},
                                    {"add_bias_kv": True, "add_zero_attn": True}],
                         ids=["bias_kv", "zero_attn", "both"])
def test_bias_kv_and_zero_attn(kwargs):
    ours, theirs = make_pair(**kwargs)
    assert names_and_shapes(ours, "named_parameters") == names_and_shapes(theirs, "named_parameters")
    padding = np.zeros((N, S), dtype=bool)
    padding[1, 2:] = True
    compare(ours, theirs, [seq(L), seq(S), seq(S)],
            masks={"attn_mask": causal_bool(), "key_padding_mask": padding})


def test_parameters_state_dict_and_repr_match_torch():
    for kwargs in ({}, {"bias": False}, {"kdim": 4, "vdim": 4}, {"add_bias_kv": True}):
        ours, theirs = gnn.MultiheadAttention(E, H, **kwargs), torch.nn.MultiheadAttention(E, H, **kwargs)
        assert names_and_shapes(ours, "named_parameters") == names_and_shapes(theirs, "named_parameters")
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert repr(ours) == repr(theirs)
    # and back: our state dict loads into torch's layer
    ours, theirs = gnn.MultiheadAttention(E, H), torch.nn.MultiheadAttention(E, H)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    x = seq(L).astype(np.float32)
    out_o, _ = ours(*[gradient.tensor(x)] * 3)
    out_t, _ = theirs(*[torch.tensor(x)] * 3)
    assert_close(out_o, out_t, atol=1e-5, rtol=1e-5)


def test_default_initialisation():
    gradient.manual_seed(0)
    torch.manual_seed(0)
    mha = gnn.MultiheadAttention(64, 4)
    w = mha.in_proj_weight.detach().numpy()
    bound = math.sqrt(6 / (64 + 3 * 64))            # xavier_uniform on (3E, E)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound
    assert not np.any(mha.in_proj_bias.detach().numpy())
    assert not np.any(mha.out_proj.bias.detach().numpy())
    out_w = mha.out_proj.weight.detach().numpy()      # Linear's default init
    assert 0.98 / 8 < np.abs(out_w).max() <= 1 / 8
    t = torch.nn.MultiheadAttention(64, 4)             # the same statistics hold for torch
    assert np.abs(t.in_proj_weight.detach().numpy()).max() <= bound
    assert np.abs(t.out_proj.weight.detach().numpy()).max() <= 1 / 8


def test_dropout_only_in_training():
    gradient.manual_seed(0)
    mha = gnn.MultiheadAttention(E, H, dropout=0.5, batch_first=True)
    x = gradient.tensor(seq(L, True).astype(np.float32))
    _, w_train = mha(x, x, x, average_attn_weights=False)
    w = w_train.detach().numpy()
    assert np.any(w == 0) and not np.allclose(w.sum(-1), 1.0)    # dropped and rescaled
    mha.eval()
    out1, w1 = mha(x, x, x)
    out2, _ = mha(x, x, x)
    np.testing.assert_array_equal(out1.detach().numpy(), out2.detach().numpy())
    np.testing.assert_allclose(w1.detach().numpy().sum(-1), 1.0, rtol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="divisible"):
        gnn.MultiheadAttention(10, 3)
    mha = gnn.MultiheadAttention(E, H)
    q = gradient.randn(L, N, E)
    with pytest.raises(ValueError, match="attn_mask"):
        mha(q, q, q, attn_mask=gradient.zeros(L, L + 1, dtype=gradient.bool))
    with pytest.raises(ValueError, match="key_padding_mask"):
        mha(q, q, q, key_padding_mask=gradient.zeros(N, L + 1, dtype=gradient.bool))
    with pytest.raises(ValueError, match="embedding dimension"):
        mha(gradient.randn(L, N, E + 1), q, q)
    with pytest.raises(TypeError, match="bool and floating"):
        mha(q, q, q, attn_mask=gradient.zeros(L, L, dtype=gradient.int64))
