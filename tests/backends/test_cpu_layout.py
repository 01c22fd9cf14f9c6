"""Gradients laid out like their inputs (gradient.backends.cpu_layout): the pieces of one
projection get the pieces of one gradient buffer, which Split's backward hands on uncopied."""

import numpy as np
import pytest

import gradient
import gradient.nn.functional as F
from gradient.backends import cpu_backend
from gradient.backends.cpu_layout import empty_like_views, heads_inside_tokens, joined

pytest.importorskip("numba")


def _pieces(owner, n=3):
    width = owner.shape[-1] // n
    return tuple(owner[..., i * width:(i + 1) * width] for i in range(n))


def test_pieces_of_one_array_get_pieces_of_one_new_buffer():
    qkv = np.arange(2 * 5 * 12, dtype=np.float32).reshape(2, 5, 12)
    q, k, v = (p.reshape(2, 5, 2, 2).transpose(0, 2, 1, 3) for p in _pieces(qkv))
    dq, dk, dv = empty_like_views(q, k, v)
    assert dq.base is dk.base is dv.base and dq.base is not qkv
    assert all(a.shape == b.shape and a.strides == b.strides for a, b in zip((dq, dk, dv), (q, k, v)))
    assert not np.shares_memory(dq, dk) and not np.shares_memory(dk, dv)
    dq[...], dk[...], dv[...] = q, k, v           # writing each through its view
    np.testing.assert_array_equal(dq.base.reshape(qkv.shape), qkv)   # fills the buffer like qkv


@pytest.mark.parametrize("case", ["same array", "broadcast", "separate", "overlapping", "a part"])
def test_other_inputs_get_arrays_of_their_own(case):
    base = np.ones((4, 6), np.float32)
    arrays = {"same array": (base[:, :3], base[:, :3]),
              "broadcast": (np.broadcast_to(base[:1], (4, 6)),),
              "separate": (np.ones((4, 3), np.float32), np.ones((4, 3), np.float32)),
              "overlapping": (base[:, :4], base[:, 2:]),
              "a part": (base[:, :2], base[:, 2:4])}[case]   # not all of base: no buffer that big
    out = empty_like_views(*arrays)
    assert all(o.base is None and o.shape == a.shape for o, a in zip(out, arrays))
    assert all(not np.shares_memory(a, b) for i, a in enumerate(out) for b in out[i + 1:])


def test_joined_returns_the_buffer_only_when_the_pieces_tile_it_in_order():
    whole = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    halves = (whole[..., :2], whole[..., 2:])
    got = joined(halves, (2, 3, 4), 2, ((0, 2), (2, 2)))
    assert got is not None and np.shares_memory(got, whole)
    np.testing.assert_array_equal(got, whole)
    assert joined(halves[::-1], (2, 3, 4), 2, ((0, 2), (2, 2))) is None          # out of order
    assert joined((whole[..., :1], whole[..., 2:]), (2, 3, 3), 2, ((0, 1), (1, 2))) is None  # a gap
    assert joined((halves[0], np.ones((2, 3, 2), np.float32)), (2, 3, 4), 2,
                  ((0, 2), (2, 2))) is None                                         # two buffers
    assert joined(halves, (2, 3, 4), 1, ((0, 1), (1, 2))) is None                  # another dim


def test_attention_output_merges_heads_without_a_copy():
    out = heads_inside_tokens((2, 3, 5, 4), np.float32)
    assert out.shape == (2, 3, 5, 4) and out.transpose(0, 2, 1, 3).flags.c_contiguous
    q = gradient.randn(2, 3, 5, 4)
    y = F.scaled_dot_product_attention(q, q, q, is_causal=True).transpose(1, 2)
    assert y.is_contiguous()   # so .contiguous() returns it and .view(2, 5, 12) is free


def test_gpt_attention_backward_joins_the_split_without_concatenating(monkeypatch):
    """The projection's gradient comes out of Split's backward as one buffer the attention
    kernel wrote, with the values torch computes for the same block."""
    import torch
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 12)).astype(np.float32)
    w = rng.standard_normal((36, 12)).astype(np.float32) * 0.3

    def block(lib, x, w):
        q, k, v = lib.nn.functional.linear(x, w).split(12, dim=2)
        q, k, v = (t.view(2, 5, 3, 4).transpose(1, 2) for t in (q, k, v))
        y = lib.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return (y.transpose(1, 2).contiguous().view(2, 5, 12) ** 2).sum()

    joins = []
    monkeypatch.setattr(cpu_backend, "concatenate", lambda xs, axis: joins.append(axis) or
                        np.concatenate(xs, axis=axis))
    ours = [gradient.tensor(a, requires_grad=True) for a in (x, w)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w)]
    block(gradient, *ours).backward()
    block(torch, *theirs).backward()
    assert joins == []
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-5, atol=1e-5)
    # with a graph recorded (create_graph) Split's backward concatenates as a differentiable op
    x2 = gradient.tensor(x, requires_grad=True)
    gradient.autograd.grad(block(gradient, x2, gradient.tensor(w)), x2, create_graph=True)
    assert joins == [2]
