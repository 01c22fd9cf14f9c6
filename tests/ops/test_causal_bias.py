"""``gradient.nn.attention.bias`` against ``torch.nn.attention.bias``: causal masks as objects
given to ``scaled_dot_product_attention`` as ``attn_mask``, forward and backward, and the
lower-right one running the decode kernels in inference."""

import numpy as np
import pytest
import torch
from torch.nn.attention import bias as torch_bias

import gradient
import gradient.nn.functional as F
from gradient.autograd.gradcheck import gradcheck, gradgradcheck
from gradient.errors import ShapeError
from gradient.nn.attention import SDPBackend, sdpa_kernel
from gradient.nn.attention import bias

from ..devices import DEVICES

SIZES = [(3, 7), (1, 5), (4, 4), (2, 9), (5, 3)]   # (queries, keys); the last: L > S
VARIANTS = ["causal_lower_right", "causal_upper_left"]


def _inputs(L, S, seed=0, heads=(4, 2)):
    rng = np.random.default_rng(seed)
    hq, hk = heads
    return (rng.standard_normal((2, hq, L, 8)), rng.standard_normal((2, hk, S, 8)),
            rng.standard_normal((2, hk, S, 8)))


@pytest.mark.filterwarnings("ignore:Lower right causal bias")
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("L,S", SIZES)
def test_forward_and_backward_match_torch(L, S, variant, device):
    q, k, v = _inputs(L, S)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    expected = torch.nn.functional.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=getattr(torch_bias, variant)(L, S), enable_gqa=True)
    gq, gk, gv = (gradient.tensor(a, requires_grad=True, device=device) for a in (q, k, v))
    out = F.scaled_dot_product_attention(gq, gk, gv, attn_mask=getattr(bias, variant)(L, S),
                                         enable_gqa=True)
    np.testing.assert_allclose(out.detach().cpu().numpy(), expected.detach().numpy(),
                               rtol=1e-10, atol=1e-12)
    weights = np.random.default_rng(1).standard_normal(expected.shape)
    (expected * torch.tensor(weights)).sum().backward()
    (out * gradient.tensor(weights, device=device)).sum().backward()
    for mine, theirs in ((gq, tq), (gk, tk), (gv, tv)):
        np.testing.assert_allclose(mine.grad.cpu().numpy(), theirs.grad.numpy(), rtol=1e-9,
                                   atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradcheck_and_gradgradcheck(variant):
    q, k, v = (gradient.tensor(a, requires_grad=True) for a in _inputs(2, 5, seed=3))
    mask = getattr(bias, variant)(2, 5)

    def attend(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True)
    assert gradcheck(attend, (q, k, v))
    assert gradgradcheck(attend, (q, k, v))


@pytest.mark.parametrize("L,S", [(3, 7), (8, 40), (2, 3)])
def test_lower_right_in_inference_runs_the_decode_kernel_and_matches_the_mask(L, S):
    """Without autograd, float32 on the CPU: the decode kernel (each row as that position's
    decode step), with the bits of the same attention under the (1, 1, L, S) boolean mask a
    decoder makes."""
    q, k, v = (gradient.tensor(a, dtype=gradient.float32) for a in _inputs(L, S, seed=5))
    allowed = np.arange(S)[None, :] <= (S - L + np.arange(L))[:, None]
    with gradient.no_grad(), gradient.kernels.trace() as t:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.causal_lower_right(L, S),
                                             enable_gqa=True)
        masked = F.scaled_dot_product_attention(       # the mask a decoder makes
            q, k, v, attn_mask=gradient.tensor(allowed[None, None]), enable_gqa=True)
    assert any(name == "decode_attention" for name, _ in t.counts)
    np.testing.assert_array_equal(out.numpy(), masked.numpy())


def test_the_bias_checks_its_use():
    q, k, v = (gradient.tensor(a) for a in _inputs(3, 7, heads=(2, 2)))
    with pytest.raises(ShapeError, match="CausalBias is for 3 queries and 6 keys"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=bias.causal_lower_right(3, 6))
    with pytest.raises(ValueError, match="already causal"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=bias.causal_upper_left(3, 7),
                                       is_causal=True)
    with pytest.raises(ValueError, match="two sizes"):
        bias.causal_lower_right(3)
    assert bias.causal_lower_right((3, 7)).shape == (3, 7)
    assert repr(bias.causal_upper_left(2, 4)) == \
        "CausalBias(variant=UPPER_LEFT, seq_len_q=2, seq_len_kv=4)"


def test_sdpa_kernel_accepts_torch_s_backends():
    q = gradient.randn(1, 2, 4, 8)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]):
        out = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    np.testing.assert_array_equal(out.numpy(),
                                  F.scaled_dot_product_attention(q, q, q, is_causal=True).numpy())
    with pytest.raises(TypeError, match="SDPBackend"):
        with sdpa_kernel("flash"):
            pass


def test_row_prefixes_give_the_bits_of_their_mask_and_its_gradients():
    """gradient's RowPrefixBias (a batch of sequences at different lengths, one new token
    each): the ragged decode kernel in inference, the composition under its mask otherwise."""
    from gradient.ops.causal_bias import RowPrefixBias
    rng = np.random.default_rng(6)
    q = rng.standard_normal((3, 4, 1, 8)).astype(np.float32)
    k, v = (rng.standard_normal((3, 2, 9, 8)).astype(np.float32) for _ in range(2))
    lengths = np.array([9, 2, 5])
    rows = RowPrefixBias(lengths, 9)
    mask = gradient.tensor((np.arange(9)[None, :] < lengths[:, None])[:, None, None])
    args = [gradient.tensor(a) for a in (q, k, v)]
    with gradient.no_grad(), gradient.kernels.trace() as t:
        out = F.scaled_dot_product_attention(*args, attn_mask=rows, enable_gqa=True)
        masked = F.scaled_dot_product_attention(*args, attn_mask=mask, enable_gqa=True)
    assert any(name == "ragged_decode_attention" for name, _ in t.counts)
    np.testing.assert_array_equal(out.numpy(), masked.numpy())
    grads = []
    for m in (rows, mask):
        leaves = [gradient.tensor(a.astype(np.float64), requires_grad=True) for a in (q, k, v)]
        F.scaled_dot_product_attention(*leaves, attn_mask=m, enable_gqa=True).sum().backward()
        grads.append([x.grad.numpy() for x in leaves])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ShapeError, match="RowPrefixBias is for one query in each of 2 rows"):
        F.scaled_dot_product_attention(*args, attn_mask=RowPrefixBias(lengths[:2], 9),
                                       enable_gqa=True)


@pytest.mark.parametrize("L", [2, 4, 16])
def test_a_lower_right_square_runs_as_rows_after_a_cache_with_is_causal_bits(L, monkeypatch):
    """L == S (nothing cached yet): the lower-right bias hides what ``is_causal`` hides, and
    inference runs it as rows after a cache, the call a captured step of L tokens records at
    every position of the cache (a short prompt and a prompt's tail share one plan)."""
    from gradient.ops import attention
    flags, array_path = [], attention.attention_arrays

    def seen(b, q, k, v, scale, k_groups, v_groups, is_causal, lower_right):
        flags.append((is_causal, lower_right))
        return array_path(b, q, k, v, scale, k_groups, v_groups, is_causal, lower_right)
    q, k, v = (gradient.tensor(a, dtype=gradient.float32) for a in _inputs(L, L, seed=6))
    with gradient.no_grad():
        causal = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        monkeypatch.setattr(attention, "attention_arrays", seen)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.causal_lower_right(L, L),
                                             enable_gqa=True)
    assert flags == [(False, True)]
    np.testing.assert_array_equal(out.numpy(), causal.numpy())
