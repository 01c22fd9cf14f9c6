"""F.multi_head_attention_forward against torch's on the same inputs and weights: outputs,
attention weights and the gradients of every input, over the function's options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import gradient
import gradient.nn as gnn
import gradient.nn.functional as F

from .test_layers import assert_close

E, H, N, L, S = 8, 2, 3, 4, 5
D = E // H
rng = np.random.default_rng(5)


def arr(*shape):
    return rng.standard_normal(shape)


def both(args: dict):
    """The same keyword arguments as gradient and torch tensors (floats require grad)."""
    def convert(to, v):
        if isinstance(v, np.ndarray):
            return to(v, requires_grad=v.dtype.kind == "f")
        return v
    return ({k: convert(gradient.tensor, v) for k, v in args.items()},
            {k: convert(torch.tensor, v) for k, v in args.items()})


def compare(args: dict, aliases=(), **fixed):
    """Call both functions; compare output, weights and every input's gradient.

    ``aliases``: (name, source) pairs whose argument is the very tensor of ``source``
    (self-attention passes one tensor three times)."""
    ours, theirs = both(args)
    for name, source in aliases:
        ours[name], theirs[name] = ours[source], theirs[source]
    out_o, w_o = F.multi_head_attention_forward(**ours, **fixed)
    out_t, w_t = TF.multi_head_attention_forward(**theirs, **fixed)
    assert_close(out_o, out_t, what="output")
    if w_t is None:
        assert w_o is None
    else:
        assert_close(w_o, w_t, what="attention weights")
    upstream = arr(*out_t.shape)
    (out_o * gradient.tensor(upstream)).sum().backward()
    (out_t * torch.tensor(upstream)).sum().backward()
    for name, t in theirs.items():
        if isinstance(t, torch.Tensor) and t.requires_grad:
            if t.grad is None:              # unused: static_k replaces the key's projection
                assert ours[name].grad is None, name
                continue
            assert_close(ours[name].grad, t.grad, what=f"grad of {name}")


def packed(q_len=L, s_len=S, batch=(N,)):
    return {"query": arr(q_len, *batch, E), "key": arr(s_len, *batch, E),
            "value": arr(s_len, *batch, E), "embed_dim_to_check": E, "num_heads": H,
            "in_proj_weight": arr(3 * E, E), "in_proj_bias": arr(3 * E),
            "bias_k": None, "bias_v": None, "add_zero_attn": False, "dropout_p": 0.0,
            "out_proj_weight": arr(E, E), "out_proj_bias": arr(E)}


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("average", [True, False])
def test_packed_projection_with_masks(need_weights, average):
    args = packed()
    args["key_padding_mask"] = np.array([[0.0] * (S - 1) + [-np.inf]] * N)
    args["attn_mask"] = arr(L, S)
    compare(args, need_weights=need_weights, average_attn_weights=average)


def test_self_attention_one_tensor_and_3d_bool_mask():
    args = packed(s_len=L)
    args["attn_mask"] = rng.random((N * H, L, L)) < 0.3
    args["attn_mask"][..., 0] = False                   # every query keeps one key
    compare(args, aliases=(("key", "query"), ("value", "query")))


def test_attention_pooling_as_clip_calls_it():
    """CLIP's AttentionPool2d: one query (the mean token) over all positions, separate
    projection weights, the biases concatenated, need_weights=False."""
    x = arr(S, N, E)
    args = {"query": x[:1].copy(), "key": x, "value": x, "embed_dim_to_check": E,
            "num_heads": H, "q_proj_weight": arr(E, E), "k_proj_weight": arr(E, E),
            "v_proj_weight": arr(E, E), "in_proj_weight": None, "in_proj_bias": arr(3 * E),
            "bias_k": None, "bias_v": None, "add_zero_attn": False, "dropout_p": 0.0,
            "out_proj_weight": arr(E, E), "out_proj_bias": arr(E)}
    compare(args, aliases=(("value", "key"),), use_separate_proj_weight=True,
            need_weights=False, training=False)


def test_separate_weights_with_other_key_and_value_widths():
    args = packed()
    args.update(key=arr(S, N, 3), value=arr(S, N, 6), in_proj_weight=None,
                q_proj_weight=arr(E, E), k_proj_weight=arr(E, 3), v_proj_weight=arr(E, 6))
    compare(args, use_separate_proj_weight=True)


def test_bias_kv_zero_attention_and_padding_mask():
    args = packed()
    args.update(bias_k=arr(1, 1, E), bias_v=arr(1, 1, E), add_zero_attn=True,
                key_padding_mask=np.array([[False] * (S - 2) + [True] * 2] * N),
                attn_mask=np.triu(np.ones((L, S), dtype=bool), 1))
    compare(args)


def test_static_keys_and_values():
    args = packed()
    args.update(static_k=arr(N * H, 7, D), static_v=arr(N * H, 7, D),
                key_padding_mask=np.zeros((N, 7), dtype=bool))
    compare(args)


def test_unbatched_input():
    args = packed(batch=())
    args["key_padding_mask"] = np.array([False] * (S - 1) + [True])
    compare(args)


def test_dropout_only_in_training():
    args = packed()
    ours, _ = both(args)
    ours["dropout_p"] = 0.5
    out1, _ = F.multi_head_attention_forward(**ours, training=False)
    out2, _ = F.multi_head_attention_forward(**{**ours, "dropout_p": 0.0})
    np.testing.assert_array_equal(out1.detach().numpy(), out2.detach().numpy())
    _, w = F.multi_head_attention_forward(**ours, training=True)
    assert (w.detach().numpy() == 0).any()


def test_module_is_the_function_over_its_parameters():
    mha = gnn.MultiheadAttention(E, H, add_bias_kv=True).double()
    q = gradient.tensor(arr(L, N, E))
    out_m, w_m = mha(q, q, q)
    out_f, w_f = F.multi_head_attention_forward(
        q, q, q, E, H, mha.in_proj_weight, mha.in_proj_bias, mha.bias_k, mha.bias_v, False,
        0.0, mha.out_proj.weight, mha.out_proj.bias)
    np.testing.assert_array_equal(out_m.detach().numpy(), out_f.detach().numpy())
    np.testing.assert_array_equal(w_m.detach().numpy(), w_f.detach().numpy())


def test_errors_say_what_was_expected():
    args, _ = both(packed())
    with pytest.raises(ValueError, match="use_separate_proj_weight"):
        F.multi_head_attention_forward(**{**args, "in_proj_weight": None})
    with pytest.raises(ValueError, match="k_proj_weight"):
        F.multi_head_attention_forward(**args, use_separate_proj_weight=True)
    with pytest.raises(ValueError, match="embedding dimension"):
        F.multi_head_attention_forward(**{**args, "embed_dim_to_check": E + 1})
    with pytest.raises(ValueError, match=r"static_k of shape \(6, S, 4\)"):
        F.multi_head_attention_forward(**args, static_k=gradient.zeros(N, 7, D),
                                       static_v=gradient.zeros(N * H, 7, D))
    with pytest.raises(ValueError, match="bias_k and bias_v go together"):
        F.multi_head_attention_forward(**{**args, "bias_k": gradient.zeros(1, 1, E)})
    with pytest.raises(ValueError, match=r"attn_mask is \(4, 4\), but should be \(4, 5\)"):
        F.multi_head_attention_forward(**args, attn_mask=gradient.zeros(L, L))
    with pytest.raises(ValueError, match="key's last dimension is 8"):
        F.multi_head_attention_forward(**{**args, "in_proj_weight": None},
                                       use_separate_proj_weight=True,
                                       q_proj_weight=gradient.zeros(E, E),
                                       k_proj_weight=gradient.zeros(E, 3),
                                       v_proj_weight=gradient.zeros(E, E))
