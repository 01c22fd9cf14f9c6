"""Indexing semantics beyond the op table: masks, index assignment and its gradients, errors,
nonzero shapes, sorting ties and NaN, multinomial sampling, and where gradient differs from
PyTorch on purpose (negative slice steps)."""

import numpy as np
import pytest

import gradient
from gradient.errors import AutogradError, DTypeError, ShapeError

torch = pytest.importorskip("torch")


def _pair(a, requires_grad=False):
    return (gradient.tensor(a, requires_grad=requires_grad), torch.tensor(a, requires_grad=requires_grad))


def _close(ours, theirs):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    ours = ours.detach().numpy() if isinstance(ours, gradient.Tensor) else np.asarray(ours)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------- reading: x[...]
def test_mask_indexing_values_and_grad():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    g, t = _pair(a, requires_grad=True)
    out_g, out_t = g[g > 0], t[t > 0]
    _close(out_g, out_t)
    (out_g * 2).sum().backward()
    (out_t * 2).sum().backward()
    _close(g.grad, t.grad)


def test_mask_of_wrong_shape_raises_index_error():
    x = gradient.zeros(3, 4)
    with pytest.raises(IndexError, match="shape"):
        x[gradient.tensor([True, False])]


def test_repeated_indices_accumulate_in_backward():
    x = gradient.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[gradient.tensor([0, 0, 2, 0])].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


@pytest.mark.parametrize("make", [
    lambda m, L: (0, slice(None), L([1, 2])),       # int, slice, tensor: torch selects the int first
    lambda m, L: (L([0, 1]), None, L([0, 1])),
    lambda m, L: (None, L([0, 1]), slice(None), 0),
    lambda m, L: (Ellipsis, L([0, 1]), None),
    lambda m, L: (L([[0], [4]]), slice(None), L([1, 2, 3])),
    lambda m, L: (-1, Ellipsis, L([1, 6])),
    lambda m, L: (1, L([[0, 1], [2, 2]]), -1),
    lambda m, L: (slice(None), L([0, 1]), 0),
    lambda m, L: (L([0, 1]), 0, L([0, 1])),
    lambda m, L: (None, 0, slice(None), L([1, 2]), Ellipsis),
    lambda m, L: (range(3), L([0, 5, 1])),                    # Python ranges and lists
    lambda m, L: (slice(1, None), range(2, 5), [0, 6, 6]),
    lambda m, L: ([4, 0], Ellipsis, range(0, 7, 4)),
    lambda m, L: range(0),
])
def test_advanced_index_layout_matches_torch(make):
    a = np.arange(210.0).reshape(5, 6, 7)
    g, t = _pair(a)
    _close(g[make(gradient, gradient.tensor)], t[make(torch, torch.tensor)])


def test_list_of_lists_is_read_as_a_tuple_like_torch():
    a = np.arange(12.0).reshape(3, 4)
    g, t = _pair(a)
    with pytest.warns(UserWarning):
        expected = t[[[0, 1], [1, 2]]]
    _close(g[[[0, 1], [1, 2]]], expected)


def test_zero_d_integer_tensor_index_acts_like_an_int():
    x = gradient.arange(12.0).reshape(3, 4)
    assert x[gradient.tensor(2)].shape == (4,)
    assert x[1, gradient.tensor(3, dtype=gradient.int32)].item() == 7.0


def test_uint8_index_tensor_is_a_mask_like_torch():
    a = np.arange(12.0).reshape(3, 4)
    g, t = _pair(a)
    mask = [1, 0, 1]
    with pytest.warns(UserWarning, match="uint8"):
        ours = g[gradient.tensor(mask, dtype=gradient.uint8)]
    with pytest.warns(UserWarning):
        theirs = t[torch.tensor(mask, dtype=torch.uint8)]
    _close(ours, theirs)


def test_basic_index_is_a_view_sharing_storage():
    x = gradient.zeros(3, 4)
    row = x[1]
    row.fill_(5.0)
    assert x[1].tolist() == [5.0] * 4
    elem = gradient.zeros(3)[1]  # a 0-d view, not a copy
    assert elem.ndim == 0 and elem._base is not None


def test_advanced_index_is_a_copy():
    x = gradient.zeros(3)
    y = x[gradient.tensor([0, 1])]
    y.fill_(1.0)
    assert x.tolist() == [0.0, 0.0, 0.0]


def test_negative_step_slicing_allowed_unlike_torch():
    # gradient follows NumPy here; PyTorch refuses negative steps
    a = np.arange(12.0).reshape(3, 4)
    x = gradient.tensor(a, requires_grad=True)
    y = x[::-1, -1:0:-2]
    np.testing.assert_array_equal(y.detach().numpy(), a[::-1, -1:0:-2])
    (y * gradient.tensor(np.arange(6.0).reshape(3, 2))).sum().backward()
    expected = np.zeros((3, 4))
    expected[::-1, -1:0:-2] = np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    with pytest.raises(ValueError, match="step"):
        torch.tensor(a)[::-1]


@pytest.mark.parametrize("index,match", [
    ((3,), "out of bounds"),
    ((0, -5), "out of bounds"),
    ((gradient.tensor([0, 3]),), "out of bounds"),
    ((0, 0, 0), "too many indices"),
    ((Ellipsis, 0, Ellipsis), "single ellipsis"),
    ((gradient.tensor([0.0]),), "integer or bool"),
    (([0.5],), "ints or bools"),
    ((7, gradient.tensor([1])), "index 7 is out of bounds for dimension 0"),
])
def test_getitem_out_of_range_raises_index_error(index, match):
    x = gradient.zeros(3, 4)
    with pytest.raises(IndexError, match=match):
        x[index if len(index) > 1 else index[0]]


@pytest.mark.parametrize("call,error,match", [
    (lambda: gradient.tensor(1.0).select(0, 0), IndexError, "0-d"),
    (lambda: gradient.tensor(1.0).index_select(0, gradient.tensor([0, 0])), IndexError,
     "0-d.*exactly one"),
])
def test_zero_d_select_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_select_out_of_range():
    with pytest.raises(IndexError, match="out of range"):
        gradient.zeros(2, 3).select(1, 3)


# ---------------------------------------------------------------------- writing: x[...] = v
_SETITEM_CASES = [
    (lambda m: 0, (5, 3)),
    (lambda m: 0, ()),
    (lambda m: (slice(1, 3), 2), (2, 3)),
    (lambda m: (0, slice(None), m.tensor([1, 2])), (5, 2)),
    (lambda m: (m.tensor([0, 2]), slice(None), 1), (2, 5)),
    (lambda m: (Ellipsis, m.tensor([0, 2])), (1, 2)),
    (lambda m: (m.tensor([[0], [3]]), m.tensor([1, 2, 4])), (2, 3, 3)),
    (lambda m: m.tensor(np.arange(20).reshape(4, 5) % 3 == 0), (3,)),
    (lambda m: m.tensor(np.arange(20).reshape(4, 5) % 3 == 0), ()),
    (lambda m: (slice(None), None, 1), (1, 1, 1, 3)),
    (lambda m: (-1, m.tensor([1, 2]), -1), (2,)),
    (lambda m: (None, 0, slice(None), m.tensor([1, 2])), (5, 2)),
    # Python ranges and lists, as scripts write them: x[range(n), y] = v, x[[0, 2]] ...
    (lambda m: (range(4), m.tensor([0, 4, 1, 2])), (4, 3)),
    (lambda m: ([0, 2],), (2, 5, 3)),
    (lambda m: ([0, 2], slice(1, None)), (2, 4, 3)),
    (lambda m: (range(2), slice(None), [0, 2]), (2, 5)),
    (lambda m: [True, False, True, True], (3, 5, 3)),
    (lambda m: (slice(None), range(1, 4)), (4, 3, 3)),
]


@pytest.mark.parametrize("make_index,value_shape", _SETITEM_CASES)
def test_setitem_on_non_leaf_matches_torch(make_index, value_shape):
    a = np.random.default_rng(1).standard_normal((4, 5, 3))
    v = np.linspace(-1.0, 1.0, int(np.prod(value_shape))).reshape(value_shape)
    results = []
    for m in (gradient, torch):
        x = m.tensor(a, requires_grad=True)
        val = m.tensor(v, requires_grad=True)
        y = x * 1
        y[make_index(m)] = val
        w = m.tensor(np.arange(60.0).reshape(4, 5, 3))
        (y * w).sum().backward()
        results.append((y, x.grad, val.grad))
    for ours, theirs in zip(*results):
        _close(ours, theirs)


def test_setitem_grad_is_zero_at_overwritten_positions():
    x = gradient.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    v = gradient.tensor([10.0, 20.0], requires_grad=True)
    y = x * 1
    y[0] = v
    (y * 3).sum().backward()
    assert x.grad.tolist() == [[0.0, 0.0], [3.0, 3.0]]
    assert v.grad.tolist() == [3.0, 3.0]


def test_setitem_value_requiring_grad_into_plain_tensor():
    v = gradient.tensor(2.0, requires_grad=True)
    out = gradient.zeros(2, 3)
    out[:, 1] = v * v
    assert out.requires_grad and not out.is_leaf
    out.sum().backward()
    assert v.grad.item() == 8.0  # two positions, each d(v*v)/dv = 4


@pytest.mark.parametrize("make_index,value_shape", _SETITEM_CASES)
def test_setitem_without_autograd_matches_torch(make_index, value_shape):
    a = np.random.default_rng(2).standard_normal((4, 5, 3))
    v = np.linspace(-1.0, 1.0, int(np.prod(value_shape))).reshape(value_shape)
    g, t = _pair(a)
    g[make_index(gradient)] = gradient.tensor(v)
    t[make_index(torch)] = torch.tensor(v)
    _close(g, t)


def test_setitem_scalar_list_and_dtype_cast():
    g, t = _pair(np.zeros((2, 3), dtype=np.int64))
    for x in (g, t):
        x[0] = 2.7                      # cast to the tensor's dtype (truncates, like torch)
        x[1, [0, 2]] = 5
        x[x == 0] = -1
    _close(g, t)
    assert g.dtype is gradient.int64


def test_setitem_bumps_version_and_saved_tensor_check():
    x = gradient.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y * y                           # saves y
    y[0] = 5.0
    with pytest.raises(AutogradError, match="modified by an in-place operation"):
        z.sum().backward()


def test_setitem_on_leaf_requiring_grad_refused_but_allowed_under_no_grad():
    x = gradient.zeros(3, requires_grad=True)
    with pytest.raises(AutogradError, match="leaf"):
        x[0] = 1.0
    with gradient.no_grad():
        x[0] = 1.0
    assert x.tolist() == [1.0, 0.0, 0.0] and x.is_leaf


def test_setitem_into_view_of_plain_tensor_with_grad_value_reaches_the_base():
    """``out[0][1] = v`` writes through the view ``out[0]``: the base follows it into the
    graph, as in PyTorch, as ``out[0, 1] = v`` does."""
    def run(m):
        v = m.tensor(1.5, requires_grad=True)
        out = m.zeros(2, 3)
        out[0][1] = v
        (out * m.arange(6.0).reshape(2, 3)).sum().backward()
        return out.requires_grad, v.grad.item()

    assert run(gradient) == run(torch) == (True, 1.0)


def test_inplace_op_on_view_of_plain_tensor_with_grad_value_reaches_the_base():
    for write in (lambda view, v: view.copy_(v), lambda view, v: view.add_(v),
                  lambda view, v: view.mul_(v)):
        def run(m):
            v = m.tensor([1.0, -2.0, 3.0], requires_grad=True)
            out = m.ones(2, 3)
            write(out[0], v * v)
            (out * m.arange(6.0).reshape(2, 3)).sum().backward()
            return out.detach().tolist(), v.grad.tolist()

        assert run(gradient) == run(torch)
    v = gradient.ones(3, requires_grad=True)
    d = gradient.zeros(3).detach()          # a detached alias is not a differentiable view
    d.mul_(v)
    assert d.requires_grad


def test_inplace_ops_on_a_0_d_non_leaf():
    # the snapshot an in-place op computes from must stay 0-d (np.ascontiguousarray made it 1-d)
    for m in (gradient, torch):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        v = m.tensor(3.0, requires_grad=True)
        loss = (x * x).sum()
        loss /= 4
        loss.mul_(v)
        assert loss.shape == ()
        loss.backward()
        assert x.grad.tolist() == [1.5, 3.0] and v.grad.item() == 1.25
        y = x.sum()
        y[...] = v * 2
        y.backward()
        assert v.grad.item() == 3.25


def test_copy_of_a_leaf_routes_the_gradient_to_the_leaf():
    # copy_ of a leaf of the same shape and dtype used to make the destination that leaf's
    # twin (a leaf itself), so the gradient stopped there
    for m in (gradient, torch):
        v = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
        y = m.zeros(3)
        y.copy_(v)
        assert not y.is_leaf
        (y * m.tensor([1.0, 10.0, 100.0])).sum().backward()
        assert v.grad.tolist() == [1.0, 10.0, 100.0]


@pytest.mark.parametrize("name,make", [
    ("kthvalue", lambda x: x.kthvalue(2).values),
    ("int-outside-advanced", lambda x: x[0, :, gradient.tensor([1, 2])]),
    ("take", lambda x: x.take(gradient.tensor([[1, 2]]))),
    ("roll-flat", lambda x: x.roll(1)),
    ("diagonal-copy", lambda x: x.diagonal(0, 0, 2)),
    ("gather-0-d", lambda x: x.reshape(-1).gather(0, gradient.tensor(3))),
    ("index_select-0-d", lambda x: x[0, 0, 0].index_select(0, gradient.tensor([0]))),
    ("sort-0-d", lambda x: x[0, 0, 0].sort().values),
])
def test_results_built_from_private_temporaries_are_not_views(name, make):
    # these ops reshape a fresh result of their own; it is not a view of anything the caller
    # holds, so in-place ops on it are ordinary ones (as in PyTorch), not refused view writes
    x = gradient.arange(24.0).reshape(2, 3, 4).requires_grad_()
    out = make(x)
    assert out._base is None, name
    expected = out.detach().numpy() * 2
    out.mul_(2)
    out.sum().backward()
    np.testing.assert_array_equal(out.detach().numpy(), expected)
    assert x.grad is not None and float(x.grad.sum()) == 2 * out.numel()


def test_view_taken_before_recorded_write_to_its_base_is_refused_not_wrong():
    # PyTorch regenerates y's graph after b[0] = v; gradient refuses to use the stale view
    # rather than send its gradient to b's old value
    a = gradient.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = gradient.tensor(10.0, requires_grad=True)
    b = a * 1
    y = b[0]
    b[0] = v
    assert y.item() == 10.0  # the value is shared, as in PyTorch
    with pytest.raises(gradient.AutogradError, match="stale"):
        y * 1
    with gradient.no_grad():
        assert (y * 1).item() == 10.0  # no graph needed: fine
    fresh = b[0]
    (fresh * 1).backward()
    assert v.grad.item() == 1.0 and a.grad.tolist() == [0.0, 0.0, 0.0]


def test_setitem_shape_mismatch_raises_shape_error():
    x = gradient.zeros(5)
    with pytest.raises(ShapeError, match=r"cannot assign values of shape \(3,\)"):
        x[:] = gradient.ones(3)
    with pytest.raises(ShapeError, match="cannot assign"):
        x[:] = gradient.ones(2, 5)


def test_setitem_into_expanded_view_writes_only_regions_whose_elements_do_not_share():
    base = gradient.zeros(1, 3)
    x = base.expand(2, 3)
    x[0, 0] = 1.0                         # one element: as torch, it writes the one under it
    gradient.setitem_(x, (1, 2), 2.0)     # the function too
    assert base.tolist() == [[1.0, 0.0, 2.0]]
    with pytest.raises(ShapeError, match="clone"):
        x[:, 0] = 1.0                     # two elements of one place: refused, as torch
    with pytest.raises(ShapeError, match="index assignment: .*clone"):
        gradient.setitem_(x, (slice(None), 1), 1.0)
    assert base.tolist() == [[1.0, 0.0, 2.0]]


def test_setitem_out_of_range():
    x = gradient.zeros(2, 3)
    with pytest.raises(IndexError, match="out of bounds"):
        x[gradient.tensor([0, 2])] = 1.0


def test_index_put_accumulate_adds_repeats():
    x = gradient.zeros(3, requires_grad=True)
    v = gradient.tensor([1.0, 2.0, 4.0], requires_grad=True)
    out = x.index_put((gradient.tensor([0, 0, 2]),), v, accumulate=True)
    assert out.tolist() == [3.0, 0.0, 4.0]
    (out * gradient.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert v.grad.tolist() == [1.0, 1.0, 100.0] and x.grad.tolist() == [1.0, 10.0, 100.0]


# ---------------------------------------------------------------------- gather / scatter family
@pytest.mark.parametrize("call,match", [
    (lambda x: x.gather(1, gradient.tensor([[0, 4], [0, 0], [1, 1]])), "index 4 is out of range"),
    (lambda x: x.gather(0, gradient.tensor([[-1, 0, 0, 0]])), "index -1 is out of range"),
    (lambda x: x.scatter(1, gradient.tensor([[5]]), 1.0), "out of range"),
    (lambda x: x.scatter(0, gradient.tensor([[-1]]), gradient.ones(1, 1)), "out of range"),
    (lambda x: x.scatter_add(0, gradient.tensor([[3, 0]]), gradient.ones(1, 2)), "out of range"),
    (lambda x: x.index_select(0, gradient.tensor([3])), "index 3 is out of range"),
    (lambda x: x.index_select(0, gradient.tensor([-1])), "out of range"),
    (lambda x: x.index_add(1, gradient.tensor([4]), gradient.ones(3, 1)), "out of range"),
    (lambda x: x.index_fill(1, gradient.tensor([-5]), 0.0), "out of range"),
    (lambda x: x.take(gradient.tensor([12])), "out of range"),
    (lambda x: x.take(gradient.tensor([-13])), "out of range"),
    (lambda x: x.take_along_dim(gradient.tensor([[4]]), 1), "out of range"),
    (lambda x: x.take_along_dim(gradient.tensor([-1])), "out of range"),
    (lambda x: x.topk(5), "k=5 is out of range"),
    (lambda x: x.kthvalue(0), "k=0 is out of range"),
    (lambda x: x.gather(2, gradient.tensor([[0]])), "dimension 2 is out of range"),
])
def test_out_of_range_raises_index_error(call, match):
    x = gradient.zeros(3, 4)
    with pytest.raises(IndexError, match=match):
        call(x)


@pytest.mark.parametrize("call,error,match", [
    (lambda x: x.gather(0, gradient.tensor([[0.0]])), DTypeError, "integer"),
    (lambda x: x.gather(0, gradient.tensor([0])), ShapeError, "as many dimensions"),
    (lambda x: x.gather(0, gradient.zeros(2, 5, dtype=gradient.int64)), ShapeError, "larger"),
    (lambda x: x.scatter(0, gradient.tensor([[0]]), gradient.ones(1, 1, dtype=gradient.float64)),
     DTypeError, "dtype"),
    (lambda x: x.scatter(0, gradient.tensor([[0, 1]]), gradient.ones(1, 1)), ShapeError, "src"),
    (lambda x: x.index_add(0, gradient.tensor([0]), gradient.ones(2, 4)), ShapeError, r"\(1, 4\)"),
    (lambda x: x.index_select(0, gradient.tensor([[0]])), ShapeError, "0-d or 1-d"),
    (lambda x: x.masked_select(gradient.ones(3, 4)), DTypeError, "bool mask"),
    (lambda x: x.masked_select(gradient.ones(2, dtype=gradient.bool)), ShapeError, "broadcast"),
    (lambda x: x.take_along_dim(gradient.tensor([0]), 0), ShapeError, "same number"),
])
def test_bad_arguments_raise_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call(gradient.zeros(3, 4))


def test_index_arguments_given_as_lists_or_scalars_keep_integer_dtype():
    # Tensor() makes float32 tensors, like torch.Tensor; plain indices must stay integers
    x = gradient.arange(6.0).reshape(2, 3)
    assert x.gather(1, [[0], [2]]).tolist() == [[0.0], [5.0]]
    assert x.index_select(1, [2, 0]).tolist() == [[2.0, 0.0], [5.0, 3.0]]
    seq = gradient.tensor([1, 3, 2 ** 40 + 1])
    assert gradient.searchsorted(seq, 2 ** 40 + 1).item() == 2   # not rounded through float32
    assert gradient.searchsorted(seq, 2 ** 40 + 1, right=True).item() == 3


def test_scatter_with_src_larger_than_index_grads():
    # torch's own backward is wrong here (a grad of the index's shape), so compare with
    # torch on the used part of src and expect zeros elsewhere
    rng = np.random.default_rng(3)
    a, s = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    index = np.array([[0, 3, 1], [2, 0, 3]])
    w = rng.standard_normal((4, 3))
    for name in ("scatter", "scatter_add"):
        xg, xt = _pair(a, True)
        sg, st = _pair(s, True)
        out_g = getattr(xg, name)(0, gradient.tensor(index), sg)
        out_t = getattr(xt, name)(0, torch.tensor(index), st[:2, :3])
        _close(out_g, out_t)
        (out_g * gradient.tensor(w)).sum().backward()
        (out_t * torch.tensor(w)).sum().backward()
        _close(xg.grad, xt.grad)
        expected = np.zeros_like(s)
        expected[:2, :3] = st.grad.numpy()[:2, :3]
        np.testing.assert_allclose(sg.grad.numpy(), expected)


def test_scatter_grad_of_input_is_zero_at_scattered_positions():
    x = gradient.ones(2, 3, requires_grad=True)
    x.scatter(1, gradient.tensor([[2], [0]]), 0.0).sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]


def test_gather_double_backward_through_scatter_add():
    x = gradient.tensor([1.0, 2.0, 3.0], requires_grad=True)
    idx = gradient.tensor([2, 2, 0])
    y = (x.gather(0, idx) ** 2).sum()
    (g,) = gradient.autograd.grad(y, x, create_graph=True)
    assert g.tolist() == [2.0, 0.0, 12.0]  # 2 * x[0] once, 2 * x[2] twice
    (h,) = gradient.autograd.grad(g.sum(), x)
    assert h.tolist() == [2.0, 0.0, 4.0]


def test_integer_inputs_get_no_grad_and_indices_have_no_grad_fn():
    x = gradient.tensor([3.0, 1.0, 2.0], requires_grad=True)
    values, indices = x.sort()
    assert values.requires_grad and not indices.requires_grad and indices.grad_fn is None
    assert indices.dtype is gradient.int64
    out = gradient.tensor([5, 6, 7]).gather(0, gradient.tensor([1]))
    assert out.dtype is gradient.int64 and not out.requires_grad


# ---------------------------------------------------------------------- nonzero
@pytest.mark.parametrize("a", [
    np.array(0.0), np.array(2.0), np.zeros((0, 3)), np.array([0, 1, 0, 2]),
    np.array([[0, 1], [1, 1], [0, 0]]), np.arange(24).reshape(2, 3, 4) % 5 == 0, np.zeros((2, 2)),
])
@pytest.mark.parametrize("as_tuple", [False, True])
def test_nonzero_shapes_match_torch(a, as_tuple):
    g, t = _pair(a)
    ours, theirs = gradient.nonzero(g, as_tuple=as_tuple), torch.nonzero(t, as_tuple=as_tuple)
    if as_tuple:
        assert len(ours) == len(theirs)
        for o, th in zip(ours, theirs):
            _close(o, th)
            assert o.dtype is gradient.int64
    else:
        _close(ours, theirs)
        _close(gradient.argwhere(g), torch.argwhere(t))


def test_nonzero_as_tuple_indexes_back():
    x = gradient.tensor([[0.0, 1.5], [2.0, 0.0]])
    assert x[x.nonzero(as_tuple=True)].tolist() == [1.5, 2.0]


# ---------------------------------------------------------------------- sort, topk, kthvalue
def test_sort_ties_are_stable_like_torch_stable_sort():
    a = np.array([[2.0, 1.0, 2.0, 1.0, 3.0, 2.0]])
    g, t = _pair(a)
    for descending in (False, True):
        _close(g.sort(descending=descending).indices,
               torch.sort(t, descending=descending, stable=True).indices)
        _close(g.argsort(descending=descending),
               torch.sort(t, descending=descending, stable=True).indices)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_nan_ranks_above_everything(descending):
    a = np.array([1.0, np.nan, 3.0, np.inf, -np.inf, np.nan, 2.0])
    g, t = _pair(a)
    (gv, gi), (tv, ti) = g.sort(descending=descending), torch.sort(t, descending=descending, stable=True)
    np.testing.assert_array_equal(gv.numpy(), tv.numpy())
    _close(gi, ti)


def test_topk_nan_is_largest():
    g, t = _pair(np.array([1.0, np.nan, 3.0]))
    _close(g.topk(2).indices, t.topk(2).indices)


def test_topk_returns_named_fields_and_unpacks():
    x = gradient.tensor([[1.0, 5.0, 3.0]])
    res = x.topk(2)
    values, indices = res
    assert res.values is values and res.indices is indices
    assert values.tolist() == [[5.0, 3.0]] and indices.tolist() == [[1, 2]]
    kth = x.kthvalue(2)
    assert kth.values.tolist() == [3.0] and kth.indices.tolist() == [2]


def test_topk_grad_goes_to_source_positions():
    x = gradient.tensor([0.5, 3.0, -1.0, 2.0], requires_grad=True)
    x.topk(2).values.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.0, 1.0]


def test_sort_integer_and_bool_inputs():
    for a in (np.array([3, -1, 2, -1]), np.array([True, False, True])):
        g, t = _pair(a)
        for descending in (False, True):
            gv, gi = g.sort(descending=descending)
            tv, ti = torch.sort(t, descending=descending, stable=True)
            _close(gv, tv)
            _close(gi, ti)
            assert gv.dtype.name == str(tv.dtype).removeprefix("torch.")


# ---------------------------------------------------------------------- searchsorted
def test_searchsorted_options():
    seq = gradient.tensor([1.0, 3.0, 3.0, 7.0])
    tseq = torch.tensor([1.0, 3.0, 3.0, 7.0])
    out = gradient.searchsorted(seq, 3.0)
    assert out.ndim == 0 and out.item() == torch.searchsorted(tseq, 3.0).item()
    assert gradient.searchsorted(seq, gradient.tensor([3.0]), out_int32=True).dtype is gradient.int32
    assert gradient.searchsorted(seq, gradient.tensor([3.0]), side="right").tolist() == [3]
    unsorted = gradient.tensor([7.0, 1.0, 3.0])
    sorter = gradient.tensor([1, 2, 0])
    assert gradient.searchsorted(unsorted, gradient.tensor([2.0, 8.0]), sorter=sorter).tolist() == \
        torch.searchsorted(torch.tensor([7.0, 1.0, 3.0]), torch.tensor([2.0, 8.0]),
                           sorter=torch.tensor([1, 2, 0])).tolist()
    assert gradient.bucketize(gradient.tensor([0, 3, 9]), gradient.tensor([1, 3, 5])).tolist() == \
        torch.bucketize(torch.tensor([0, 3, 9]), torch.tensor([1, 3, 5])).tolist()
    with pytest.raises(ValueError, match="contradicts"):
        gradient.searchsorted(seq, seq, right=True, side="left")
    with pytest.raises(ShapeError, match="leading dimensions"):
        gradient.searchsorted(gradient.zeros(2, 3), gradient.zeros(3, 1))


@pytest.mark.parametrize("seq,values", [
    ([1.0, 3.0, float("inf")], [2.0, float("nan"), 3.0, float("inf"), -float("inf")]),
    ([[1.0, 5.0], [1.0, 2.0]], [[float("nan")], [2.0]]),               # NaN goes last
    ([-2 ** 63, -2 ** 63 + 1, 0, 1], [0, 1, -2 ** 63 + 1, -2 ** 63]),     # no negation overflow
    ([0, 200, 255], [200, 0, 255]),                                     # uint8
    ([-0.0, 0.0, 1.0], [0.0, -0.0]),
    ([], [1.0, 2.0]),
    ([[], []], [[1.0], [2.0]]),
])
@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_edge_values_like_torch(seq, values, right):
    dtype = "uint8" if seq == [0, 200, 255] else None
    g = gradient.searchsorted(gradient.tensor(seq, dtype=dtype and gradient.uint8),
                              gradient.tensor(values, dtype=dtype and gradient.uint8), right=right)
    t = torch.searchsorted(torch.tensor(seq, dtype=dtype and torch.uint8),
                           torch.tensor(values, dtype=dtype and torch.uint8), right=right)
    assert g.tolist() == t.tolist()


# ---------------------------------------------------------------------- multinomial
def test_multinomial_with_replacement_frequencies():
    gradient.manual_seed(0)
    p = gradient.tensor([0.1, 0.0, 0.2, 0.7])
    n = 40000
    draws = gradient.multinomial(p, n, replacement=True)
    assert draws.shape == (n,) and draws.dtype is gradient.int64
    counts = np.bincount(draws.numpy(), minlength=4) / n
    assert counts[1] == 0.0  # a zero weight is never drawn
    np.testing.assert_allclose(counts, [0.1, 0.0, 0.2, 0.7], atol=0.01)


def test_multinomial_unnormalised_2d_rows():
    gradient.manual_seed(1)
    w = gradient.tensor([[1.0, 3.0], [9.0, 1.0]])   # weights need not sum to 1
    draws = w.multinomial(20000, replacement=True)
    assert draws.shape == (2, 20000)
    np.testing.assert_allclose(draws.numpy().mean(axis=1), [0.75, 0.1], atol=0.015)


def test_multinomial_without_replacement_unique_and_sequential_law():
    gradient.manual_seed(2)
    p = np.array([0.5, 0.3, 0.2])
    rows = 30000
    draws = gradient.multinomial(gradient.tensor(np.tile(p, (rows, 1))), 2).numpy()
    assert draws.shape == (rows, 2)
    assert np.all(draws[:, 0] != draws[:, 1])
    first = np.bincount(draws[:, 0], minlength=3) / rows
    np.testing.assert_allclose(first, p, atol=0.012)
    # the second draw given the first: P(second = j) = sum_i p_i * p_j / (1 - p_i)
    second_law = [sum(p[i] * p[j] / (1 - p[i]) for i in range(3) if i != j) for j in range(3)]
    np.testing.assert_allclose(np.bincount(draws[:, 1], minlength=3) / rows, second_law, atol=0.012)


def test_multinomial_without_replacement_draws_every_category_once():
    gradient.manual_seed(3)
    draws = gradient.multinomial(gradient.rand(5, 6) + 0.1, 6)
    assert all(sorted(row) == list(range(6)) for row in draws.tolist())


def test_multinomial_zero_weights_come_last_without_replacement():
    gradient.manual_seed(4)
    for _ in range(20):
        d = gradient.multinomial(gradient.tensor([0.0, 1.0, 0.0, 2.0]), 4).tolist()
        assert sorted(d[:2]) == [1, 3] and sorted(d[2:]) == [0, 2]


def test_multinomial_deterministic_under_manual_seed_and_generator():
    p = gradient.tensor([0.2, 0.3, 0.5])
    gradient.manual_seed(123)
    a = gradient.multinomial(p, 50, replacement=True)
    b = gradient.multinomial(p, 3)
    gradient.manual_seed(123)
    assert gradient.multinomial(p, 50, replacement=True).tolist() == a.tolist()
    assert gradient.multinomial(p, 3).tolist() == b.tolist()
    g1, g2 = gradient.Generator().manual_seed(7), gradient.Generator().manual_seed(7)
    assert p.multinomial(30, True, generator=g1).tolist() == p.multinomial(30, True, generator=g2).tolist()


@pytest.mark.parametrize("weights,n,kwargs,error,match", [
    ([1.0, -0.5], 1, {}, ValueError, "negative"),
    ([1.0, float("nan")], 1, {}, ValueError, "nan"),
    ([0.0, 0.0], 1, {}, ValueError, "sums to 0"),
    ([1.0, 1.0], 3, {}, ValueError, "without replacement"),
    ([1.0, 1.0], 0, {"replacement": True}, ValueError, "positive"),
    ([[[1.0]]], 1, {}, ShapeError, "1-d or 2-d"),
])
def test_multinomial_errors(weights, n, kwargs, error, match):
    with pytest.raises(error, match=match):
        gradient.multinomial(gradient.tensor(weights), n, **kwargs)
    with pytest.raises(DTypeError, match="floating"):
        gradient.multinomial(gradient.tensor([1, 2]), 1)


def test_view_of_a_plain_tensor_is_stale_after_a_recorded_write_into_its_base():
    out = gradient.zeros(3)
    head = out[:2]
    out[0] = gradient.tensor(2.0, requires_grad=True)  # out now has a graph; head's has none
    with pytest.raises(gradient.AutogradError, match="stale"):
        head.sum()
    detached = out.detach()
    assert (detached * 2).tolist() == [4.0, 0.0, 0.0]  # a detached alias has no graph to go stale


# ---------------------------------------------------------------------- scatter_reduce
@pytest.mark.parametrize("reduce", ["amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_splits_the_gradient_evenly_among_ties_like_torch(reduce, include_self):
    # position 1 gets 5 from self and twice from src: a three-way tie; without self, a two-way
    # tie of the src values (self holds 7 there: see the next test for why it is not 5)
    sign = 1.0 if reduce == "amax" else -1.0
    x = [1.0, (5.0 if include_self else 7.0) * sign, 2.0, -5.0 * sign]
    v = 5.0 * sign
    src = [v, v, 3.0, 3.0]
    index = [1, 1, 0, 0]
    grads = []
    for lib in (gradient, torch):
        a = lib.tensor(x, dtype=lib.float64, requires_grad=True)
        s = lib.tensor(src, dtype=lib.float64, requires_grad=True)
        out = a.scatter_reduce(0, lib.tensor(index), s, reduce, include_self=include_self)
        (out * lib.tensor([1.0, 2.0, 3.0, 4.0], dtype=lib.float64)).sum().backward()
        grads.append((out, a.grad, s.grad))
    for ours, theirs in zip(*grads):
        _close(ours, theirs)


def test_scatter_reduce_tie_with_an_excluded_self_value_keeps_the_whole_gradient():
    # With include_self=False, self's value takes no part even if it equals the result; PyTorch
    # (2.13) still counts it among the ties and so loses a third of the gradient here
    # (src.grad [2/3, 2/3]); gradient gives the two src values half each.
    a = gradient.tensor([1.0, 5.0], dtype=gradient.float64, requires_grad=True)
    s = gradient.tensor([5.0, 5.0], dtype=gradient.float64, requires_grad=True)
    out = a.scatter_reduce(0, gradient.tensor([1, 1]), s, "amax", include_self=False)
    (out * gradient.tensor([1.0, 2.0], dtype=gradient.float64)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 0.0])
    np.testing.assert_array_equal(s.grad.numpy(), [1.0, 1.0])


def test_scatter_reduce_prod_gradient_is_exact_with_several_zeros():
    for include_self in (True, False):
        grads = []
        for lib in (gradient, torch):
            a = lib.tensor([0.0, 2.0], dtype=lib.float64, requires_grad=True)
            s = lib.tensor([0.0, 3.0, 0.0, 4.0], dtype=lib.float64, requires_grad=True)
            out = a.scatter_reduce(0, lib.tensor([0, 0, 1, 1]), s, "prod", include_self=include_self)
            out.sum().backward()
            grads.append((out, a.grad, s.grad))
        for ours, theirs in zip(*grads):
            _close(ours, theirs)


def test_scatter_reduce_mean_of_integers_rounds_down_like_torch():
    for include_self in (True, False):
        g, t = _pair([[5, -5, 5]])
        i = [[0, 0, 1, 1]]
        src = [[1, 2, -3, 4]]
        _close(g.scatter_reduce(1, gradient.tensor(i), gradient.tensor(src), "mean",
                                include_self=include_self),
               t.scatter_reduce(1, torch.tensor(i), torch.tensor(src), "mean",
                                include_self=include_self))


@pytest.mark.parametrize("call,error,match", [
    (lambda x, i, s: x.scatter_reduce(0, i, s, "max"), ValueError, "reduce must be one of"),
    (lambda x, i, s: x.scatter_reduce(0, i, s.double(), "sum"), DTypeError, "dtype of the input"),
    (lambda x, i, s: x.scatter_reduce(0, i + 3, s, "amax"), IndexError, "out of range"),
    (lambda x, i, s: x.scatter_reduce(0, i.float(), s, "sum"), DTypeError, "integer"),
    (lambda x, i, s: x.scatter_reduce(0, i, s[:1], "sum"), ShapeError, "larger than src"),
    (lambda x, i, s: x.scatter_reduce(0, i, 1.0, "sum"), TypeError, "src to be a tensor"),
    (lambda x, i, s: x.scatter(0, i, s, reduce="mean"), ValueError, "'add' or 'multiply'"),
])
def test_scatter_reduce_errors(call, error, match):
    x, i, s = gradient.zeros(3, 2), gradient.tensor([[0, 1], [2, 2]]), gradient.ones(2, 2)
    with pytest.raises(error, match=match):
        call(x, i, s)


def test_scatter_with_reduce_and_a_value_like_torch():
    for reduce in ("add", "multiply"):
        g, t = _pair([[2.0, 3.0, 4.0]])
        _close(g.scatter(1, gradient.tensor([[0, 0, 2]]), 1.5, reduce=reduce),
               t.scatter(1, torch.tensor([[0, 0, 2]]), 1.5, reduce=reduce))


# ---------------------------------------------------------------------- index_copy, masked_scatter, put
def test_index_copy_masked_scatter_and_put_errors():
    x = gradient.zeros(3, 2)
    with pytest.raises(ShapeError, match=r"index_copy: source must have shape \(2, 2\)"):
        x.index_copy(0, gradient.tensor([0, 1]), gradient.ones(3, 2))
    with pytest.raises(DTypeError, match="source to have the dtype"):
        x.index_copy(0, gradient.tensor([0]), gradient.ones(1, 2, dtype=gradient.float64))
    with pytest.raises(ShapeError, match="has 6 True entries but source has only 5"):
        x.masked_scatter(gradient.ones(3, 2, dtype=gradient.bool), gradient.ones(5))
    with pytest.raises(DTypeError, match="bool mask"):
        x.masked_scatter(gradient.ones(3, 2), gradient.ones(6))
    with pytest.raises(IndexError, match="index 6 is out of range"):
        x.put(gradient.tensor([6]), gradient.ones(1))
    with pytest.raises(ShapeError, match="as many elements as index"):
        x.put(gradient.tensor([0, 1]), gradient.ones(3))


def test_fill_diagonal_errors():
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        gradient.zeros(3).fill_diagonal_(1.0)
    with pytest.raises(ShapeError, match="equal length"):
        gradient.zeros(2, 2, 3).fill_diagonal_(1.0)


# ---------------------------------------------------------------------- unique, bincount, isin
def test_unique_matches_torch_on_random_data():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(30, 3))
    g, t = _pair(a)
    for kwargs in ({}, {"return_inverse": True, "return_counts": True},
                   {"dim": 0, "return_inverse": True, "return_counts": True},
                   {"dim": 1, "return_counts": True}):
        ours, theirs = g.unique(**kwargs), t.unique(**kwargs)
        for o, th in zip(ours if isinstance(ours, tuple) else (ours,),
                         theirs if isinstance(theirs, tuple) else (theirs,)):
            _close(o, th)
    values, inverse = g.unique(return_inverse=True)
    np.testing.assert_array_equal(values[inverse].numpy(), a)  # the inverse rebuilds the input


def test_unique_is_not_differentiable_and_refuses_dim_on_0_d():
    values = gradient.tensor([1.0, 1.0, 2.0], requires_grad=True).unique()
    assert not values.requires_grad and values.grad_fn is None
    with pytest.raises(IndexError, match="0-d"):
        gradient.tensor(1).unique(dim=0)
    with pytest.raises(IndexError, match="out of range"):
        gradient.zeros(2, 2).unique(dim=2)


@pytest.mark.parametrize("input,kwargs,error,match", [
    (gradient.tensor([-1, 2]), {}, ValueError, "non-negative values, got -1"),
    (gradient.tensor([[1, 2]]), {}, ShapeError, r"1-d tensor .* got shape \(1, 2\)"),
    (gradient.tensor([1.0, 2.0]), {}, DTypeError, "non-negative integers, got gradient.float32"),
    (gradient.tensor([1, 2]), {"minlength": -1}, ValueError, "minlength must be non-negative"),
    (gradient.tensor([1, 2]), {"weights": gradient.ones(3)}, ShapeError, "weights must have"),
])
def test_bincount_errors(input, kwargs, error, match):
    with pytest.raises(error, match=match):
        gradient.bincount(input, **kwargs)


def test_bincount_weights_are_not_differentiable():
    w = gradient.ones(3, requires_grad=True)
    out = gradient.bincount(gradient.tensor([0, 0, 2]), w)
    assert not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), [2.0, 0.0, 1.0])


def test_isin_needs_a_tensor_and_agrees_with_numpy_on_random_data():
    with pytest.raises(TypeError, match="to be a tensor"):
        gradient.isin(1, 2)
    rng = np.random.default_rng(1)
    a, b = rng.integers(-20, 20, size=(7, 9)), rng.integers(-20, 20, size=25)
    np.testing.assert_array_equal(gradient.isin(gradient.tensor(a), gradient.tensor(b)).numpy(),
                                  np.isin(a, b))
    np.testing.assert_array_equal(
        gradient.isin(gradient.tensor(a), gradient.tensor(b), invert=True).numpy(), ~np.isin(a, b))
