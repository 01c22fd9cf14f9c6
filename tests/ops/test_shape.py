"""Shape and movement ops: view/copy semantics, dtype promotion, error messages, edge cases.

Values and gradients of every op are checked against PyTorch by the op table
(tests/ops/table_shape.py); this file checks what the table cannot see.
"""

import numpy as np
import pytest

import gradient
from gradient import ShapeError

torch = pytest.importorskip("torch")


def _base():
    return gradient.arange(24.0).reshape(2, 3, 4).clone()  # a tensor that is not itself a view


# ---------------------------------------------------------------------- views share storage
VIEWS = {
    "reshape": lambda x: x.reshape(6, 4),
    "view": lambda x: x.view(-1),
    "view_as": lambda x: x.view_as(gradient.zeros(4, 6)),
    "flatten": lambda x: x.flatten(1),
    "unflatten": lambda x: x.unflatten(2, (2, 2)),
    "squeeze": lambda x: x[:, :1].squeeze(1),
    "unsqueeze": lambda x: x.unsqueeze(0),
    "permute": lambda x: x.permute(2, 0, 1),
    "transpose": lambda x: x.transpose(0, 2),
    "swapaxes": lambda x: x.swapaxes(1, 2),
    "movedim": lambda x: x.movedim(0, -1),
    "T": lambda x: x.T,
    "mT": lambda x: x.mT,
    "narrow": lambda x: x.narrow(2, 1, 2),
    "split": lambda x: x.split(2, dim=2)[1],
    "split-sizes": lambda x: x.split([1, 2], dim=1)[1],
    "chunk": lambda x: x.chunk(3, dim=1)[2],
    "tensor_split": lambda x: x.tensor_split([1, 3], dim=2)[1],
    "unbind": lambda x: x.unbind(1)[1],
    "unbind-to-0-d": lambda x: x.reshape(-1).unbind(0)[5],
    "diagonal": lambda x: x.diagonal(dim1=1, dim2=2),
    "diagonal-transposed": lambda x: x.mT.diagonal(offset=1, dim1=1, dim2=2),
    "view-of-view": lambda x: x.transpose(0, 1).unsqueeze(1).narrow(3, 1, 2),
}


@pytest.mark.parametrize("name", list(VIEWS))
def test_view_shares_storage_and_version(name):
    x = _base()
    v = VIEWS[name](x)
    before = x._version.value
    with gradient.no_grad():
        v.fill_(-1.0)
    assert np.all(v.numpy() == -1.0)
    assert (x.numpy() == -1.0).sum() == v.numel(), f"{name}: writing to the view did not reach the base"
    assert x._version.value == before + 1, f"{name}: the view does not share the version counter"
    assert v._version is x._version
    assert v._base is x


@pytest.mark.parametrize("name", ["reshape", "transpose", "narrow", "split"])
def test_writing_base_shows_in_view(name):
    x = _base()
    v = VIEWS[name](x)
    x[...] = 7.0
    assert np.all(v.numpy() == 7.0)


COPIES = {
    "reshape-of-transposed": lambda x: x.transpose(0, 1).reshape(-1),
    "flatten-of-permuted": lambda x: x.permute(2, 0, 1).flatten(),
    "flip": lambda x: x.flip(0),
    "flip-0-d": lambda x: x[0, 0, 0].flip(0),
    "roll": lambda x: x.roll(1, 2),
    "roll-by-0": lambda x: x.roll(0),
    "repeat-ones": lambda x: x.repeat(1, 1, 1),
    "repeat-size-1-dim": lambda x: x[:1].repeat(3, 1, 1),
    "tile": lambda x: x.tile((1,)),
    "repeat_interleave-1": lambda x: x.repeat_interleave(1, dim=0),
    "cat-single": lambda x: gradient.cat([x]),
    "stack": lambda x: gradient.stack([x]),
    "tril": lambda x: x.tril(5),
    "clone": lambda x: x.clone(),
    "diagonal-noncontiguous": lambda x: x.diagonal(dim1=0, dim2=2),
}


@pytest.mark.parametrize("name", list(COPIES))
def test_copy_has_its_own_storage(name):
    x = _base()
    c = COPIES[name](x)
    before = c.numpy().copy()
    x[...] = 0.0
    np.testing.assert_array_equal(c.numpy(), before)
    assert c._version is not x._version


def test_view_of_transposed_raises_while_reshape_works():
    x = gradient.arange(6.0).reshape(2, 3)
    with pytest.raises(ShapeError, match=r"view: shape \(6,\).*strides.*\(3, 2\).*reshape"):
        x.T.view(6)
    with pytest.raises(ValueError):  # ShapeError is a ValueError
        x.T.view(-1)
    np.testing.assert_array_equal(x.T.reshape(6).numpy(),
                                  torch.arange(6.0).reshape(2, 3).T.reshape(6).numpy())


def test_view_follows_torch_stride_rule():
    # splitting a dimension, or merging dimensions that stay adjacent in memory, is a view
    for make, shape in [(lambda m: m.arange(24.0).reshape(2, 3, 4).transpose(0, 1), (3, 2, 2, 2)),
                        (lambda m: m.arange(24.0).reshape(2, 3, 4).permute(1, 2, 0), (12, 2)),
                        (lambda m: m.arange(24.0).reshape(2, 3, 4)[:, 1:], (4, 4)),
                        (lambda m: m.arange(24.0).reshape(4, 6)[:, ::2], (2, 2, 3)),
                        (lambda m: m.arange(3.0).reshape(3, 1).expand(3, 4), (3, 2, 2)),
                        (lambda m: m.arange(3.0).reshape(3, 1).expand(3, 4), (12,))]:
        try:
            expected = make(torch).view(shape).numpy()
        except RuntimeError:
            with pytest.raises(ShapeError):
                make(gradient).view(shape)
            continue
        np.testing.assert_array_equal(make(gradient).view(shape).numpy(), expected)


def test_expanded_view_shares_storage():
    x = gradient.arange(3.0).reshape(3, 1).clone()
    e = x.expand(3, 4)
    assert e._base is x and e._version is x._version
    x[1, 0] = 10.0
    assert np.all(e.numpy()[1] == 10.0)


# ---------------------------------------------------------------------- error messages
def test_reshape_to_wrong_numel_names_both():
    x = gradient.zeros(2, 3)
    with pytest.raises(ShapeError, match=r"reshape: shape \(4, 2\) \(8 elements\) is invalid for a "
                                         r"tensor of shape \(2, 3\) \(6 elements\)"):
        x.reshape(4, 2)
    with pytest.raises(ShapeError, match=r"\(4, -1\).*\(2, 3\).*6 elements"):
        x.view(4, -1)
    with pytest.raises(ShapeError, match="only one dimension can be -1"):
        x.reshape(-1, -1)
    with pytest.raises(ShapeError, match="invalid negative size"):
        x.reshape(-2, -3)


def test_cat_errors():
    with pytest.raises(ShapeError, match="non-empty"):
        gradient.cat([])
    with pytest.raises(ShapeError, match=r"zero-dimensional tensor \(at position 1\)"):
        gradient.cat([gradient.zeros(2), gradient.tensor(1.0)])
    with pytest.raises(ShapeError, match=r"except in dimension 0: tensor 0 has shape \(2, 3\), "
                                         r"tensor 2 has shape \(1, 4\)"):
        gradient.cat([gradient.zeros(2, 3), gradient.zeros(1, 3), gradient.zeros(1, 4)])
    with pytest.raises(ShapeError, match="same number of dimensions"):
        gradient.cat([gradient.zeros(2, 3), gradient.zeros(2, 3, 1)])
    with pytest.raises(IndexError, match="out of range"):
        gradient.cat([gradient.zeros(2, 3)], dim=2)
    with pytest.raises(TypeError, match=r"must hold Tensors, not list \(at index 1\)"):
        gradient.cat([gradient.zeros(2), [1.0, 2.0]])


def test_stack_split_narrow_errors():
    with pytest.raises(ShapeError, match=r"equal size.*\(2, 3\) at entry 0 and \(2, 4\) at entry 1"):
        gradient.stack([gradient.zeros(2, 3), gradient.zeros(2, 4)])
    with pytest.raises(ShapeError, match=r"sizes \[2, 2\] must .* sum exactly to 5"):
        gradient.zeros(5).split([2, 2])
    with pytest.raises(ShapeError, match="split_size"):
        gradient.zeros(5).split(0)
    with pytest.raises(ShapeError, match="chunks must be at least 1"):
        gradient.zeros(5).chunk(0)
    with pytest.raises(IndexError, match="start 6 is out of range"):
        gradient.zeros(5).narrow(0, 6, 0)
    with pytest.raises(ShapeError, match=r"start \(3\) \+ length \(3\) exceeds"):
        gradient.zeros(5).narrow(0, 3, 3)
    with pytest.raises(ShapeError, match="divide|equal parts"):
        gradient.hsplit(gradient.zeros(2, 5), 2)


def test_shape_errors():
    x = gradient.zeros(2, 3)
    with pytest.raises(IndexError, match="dimension 3 is out of range"):
        x.unsqueeze(3)
    with pytest.raises(IndexError):
        x.squeeze(2)
    with pytest.raises(ShapeError, match="start_dim"):
        gradient.zeros(2, 3, 4).flatten(2, 1)
    with pytest.raises(ShapeError, match=r"must match 4 or be 1"):
        x.expand(2, 4)
    with pytest.raises(ShapeError, match="number of repeats"):
        x.repeat(2)
    with pytest.raises(ShapeError, match="lists a dimension more than once"):
        x.flip((0, -2))
    with pytest.raises(ShapeError, match="same length"):
        x.roll((1, 2), 0)
    with pytest.raises(ShapeError, match="at least 2 dimensions"):
        gradient.zeros(3).tril()
    with pytest.raises(ShapeError, match="cannot be broadcast together"):
        gradient.broadcast_tensors(gradient.zeros(2, 3), gradient.zeros(4))
    with pytest.raises(ShapeError, match="dim1 and dim2"):
        gradient.zeros(3, 3).diagonal(0, 1, -1)
    with pytest.raises(ShapeError, match="<= 2 dimensions"):
        gradient.zeros(2, 2, 2).t()
    with pytest.raises(ShapeError, match="unflatten"):
        gradient.zeros(2, 6).unflatten(1, (4, -1))


def test_zero_d_and_dtype_argument_errors():
    with pytest.raises(IndexError, match="0-d"):
        gradient.tensor(1.0).roll(1, 0)
    assert gradient.tensor(1.0).roll(1).item() == 1.0      # no dims: allowed, as in PyTorch
    with pytest.raises(ShapeError, match="1-d"):
        gradient.repeat_interleave(gradient.tensor(3))


DTYPE_VIEWS = [("float32", "int32", (2, 4)), ("float32", "float16", (2, 4)), ("float32", "float64", (3, 4)),
         ("float16", "bfloat16", (5,)), ("uint8", "float32", (2, 8)), ("int64", "uint8", (3,)),
         ("bool", "uint8", (4,)), ("float64", "int16", (1, 2, 3)), ("float32", "float32", (2,))]


ITEMSIZE = {"bool": 1, "uint8": 1, "int16": 2, "float16": 2, "bfloat16": 2, "int32": 4,
            "float32": 4, "int64": 8, "float64": 8}


@pytest.mark.parametrize("a,b,shape", DTYPE_VIEWS)
def test_view_dtype_reads_the_bits_as_torch(a, b, shape):
    bits = np.random.default_rng(0).integers(0, 256, int(np.prod(shape)) * ITEMSIZE[a],
                                             dtype=np.uint8)
    if a == "bool":
        bits %= 2
    theirs = torch.from_numpy(bits.copy()).view(getattr(torch, a)).reshape(shape)
    ours = gradient.from_numpy(bits.copy()).view(getattr(gradient, a)).reshape(shape)
    viewed, expected = ours.view(getattr(gradient, b)), theirs.view(getattr(torch, b))
    assert tuple(viewed.shape) == tuple(expected.shape) and viewed.dtype.name == b
    # the same bytes, read back as bytes by each library
    np.testing.assert_array_equal(viewed.view(gradient.uint8).numpy(),
                                  expected.view(torch.uint8).numpy())
    assert not viewed.requires_grad


def test_view_dtype_shares_memory_and_refuses_what_torch_refuses():
    a = gradient.zeros(2)
    b = a.view(gradient.int32)
    b[0] = 1065353216                      # the bits of 1.0f
    assert a.tolist() == [1.0, 0.0]
    a.mul_(2)
    assert b[0].item() == 1073741824       # 2.0f
    assert not gradient.ones(2, requires_grad=True).view(gradient.int32).requires_grad
    with pytest.raises(ShapeError, match="stride"):
        gradient.ones(2, 3).t().view(gradient.float16)
    with pytest.raises(ShapeError, match="whole number"):
        gradient.ones(3).view(gradient.float64)
    with pytest.raises(ShapeError, match="0-d"):
        gradient.tensor(1.0).view(gradient.int16)
    with pytest.raises(gradient.DeviceError, match="CPU tensors"):
        gradient.ones(2, device="plugin:reference").view(gradient.int32)


# ---------------------------------------------------------------------- dtypes
PAIRS = [("int32", "float16"), ("uint8", "int8"), ("bool", "int64"), ("bool", "bool"),
         ("bfloat16", "float16"), ("int16", "float64"), ("uint8", "bool"), ("float32", "float32")]


@pytest.mark.parametrize("a,b", PAIRS)
def test_cat_promotes_dtypes_like_torch(a, b):
    ga = gradient.ones(2, 2, dtype=getattr(gradient, a if a != "bool" else "bool_"))
    gb = gradient.zeros(1, 2, dtype=getattr(gradient, b if b != "bool" else "bool_"))
    ta, tb = torch.ones(2, 2, dtype=getattr(torch, a)), torch.zeros(1, 2, dtype=getattr(torch, b))
    for ours, theirs in [(gradient.cat([ga, gb]), torch.cat([ta, tb])),
                         (gradient.cat([gb, ga]), torch.cat([tb, ta])),
                         (gradient.stack([ga[:1], gb]), torch.stack([ta[:1], tb]))]:
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
        np.testing.assert_array_equal(ours.float().numpy(), theirs.float().numpy())


def test_cat_skips_legacy_empty_but_promotes_with_it():
    empty64 = gradient.tensor([], dtype=gradient.float64)
    out = gradient.cat([empty64, gradient.ones(2, 3), empty64], dim=1)
    ref = torch.cat([torch.tensor([], dtype=torch.float64), torch.ones(2, 3),
                     torch.tensor([], dtype=torch.float64)], dim=1)
    assert tuple(out.shape) == tuple(ref.shape) == (2, 3)
    assert out.dtype is gradient.float64 and ref.dtype == torch.float64
    assert gradient.cat([gradient.tensor([])]).shape == (0,)


def test_cat_of_integer_tensors_has_no_grad_and_leaves_get_grad():
    i = gradient.ones(2, dtype=gradient.int64)
    assert not gradient.cat([i, i]).requires_grad
    a = gradient.ones(2, requires_grad=True)
    b = gradient.ones(3)
    out = gradient.cat([a, i, b])
    assert out.dtype is gradient.float32 and out.requires_grad
    (out * gradient.arange(7.0)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [0.0, 1.0])
    assert b.grad is None


def test_cat_grad_of_legacy_empty_input():
    e = gradient.tensor([], requires_grad=True)
    a = gradient.ones(2, 2, requires_grad=True)
    gradient.cat([e, a], dim=1).sum().backward()
    assert tuple(e.grad.shape) == (0,)
    np.testing.assert_array_equal(a.grad.numpy(), np.ones((2, 2)))


@pytest.mark.parametrize("dtype", ["int64", "bool", "float16", "bfloat16"])
def test_movement_keeps_dtype(dtype):
    g_dtype = getattr(gradient, dtype if dtype != "bool" else "bool_")
    x = gradient.ones(2, 3, dtype=g_dtype)
    for out in [x.tril(), x.triu(1), x.flip(0), x.roll(1), x.repeat(2, 1), x.split(1)[0],
                x.diagonal(), gradient.diag_embed(x), x.T.reshape(-1), x.repeat_interleave(2)]:
        assert out.dtype is g_dtype


# ---------------------------------------------------------------------- semantics against torch
SQUEEZE_CASES = [((1, 3, 1, 2), None), ((1, 3, 1, 2), 0), ((1, 3, 1, 2), 1), ((1, 3, 1, 2), -2),
                 ((1, 3, 1, 2), (0, 2)), ((1, 3, 1, 2), (1, 3)), ((1, 1), (0, 1)), ((), None),
                 ((), 0), ((), -1), ((1,), None), ((0, 1), None), ((0, 1), 0), ((3,), (0,))]


@pytest.mark.parametrize("shape,dim", SQUEEZE_CASES)
def test_squeeze_like_torch(shape, dim):
    x, t = gradient.zeros(shape), torch.zeros(shape)
    ours = x.squeeze() if dim is None else x.squeeze(dim)
    theirs = t.squeeze() if dim is None else t.squeeze(dim)
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert tuple(gradient.squeeze(x, dim).shape) == tuple(theirs.shape)


@pytest.mark.parametrize("shape,dim", [((), 0), ((), -1), ((2, 3), 2), ((2, 3), -3), ((2, 3), -1)])
def test_unsqueeze_like_torch(shape, dim):
    assert tuple(gradient.zeros(shape).unsqueeze(dim).shape) == \
        tuple(torch.zeros(shape).unsqueeze(dim).shape)


@pytest.mark.parametrize("n,chunks", [(5, 3), (6, 4), (0, 3), (1, 5), (7, 7), (7, 2)])
def test_chunk_and_split_sizes_like_torch(n, chunks):
    x, t = gradient.zeros(n, 2), torch.zeros(n, 2)
    assert [p.shape[0] for p in x.chunk(chunks)] == [p.shape[0] for p in t.chunk(chunks)]
    assert [p.shape[0] for p in x.split(chunks)] == [p.shape[0] for p in t.split(chunks)]
    assert [p.shape[0] for p in x.tensor_split(chunks)] == [p.shape[0] for p in t.tensor_split(chunks)]


def test_repeat_is_not_numpy_repeat():
    x = gradient.tensor([1, 2, 3])
    assert x.repeat(2).tolist() == [1, 2, 3, 1, 2, 3]
    assert x.repeat_interleave(2).tolist() == [1, 1, 2, 2, 3, 3]
    assert gradient.repeat_interleave(gradient.tensor([2, 0, 1])).tolist() == [0, 0, 2]


def test_roll_and_flip_like_torch():
    x, t = gradient.arange(12).reshape(3, 4), torch.arange(12).reshape(3, 4)
    assert x.roll(5).tolist() == t.roll(5).tolist()
    assert x.roll((1, -1), (0, 1)).tolist() == t.roll((1, -1), (0, 1)).tolist()
    assert x.roll(2, 0).roll(2, 0).tolist() == t.roll(4, 0).tolist()
    assert x.flip((0, 1)).tolist() == t.flip((0, 1)).tolist()


def test_tril_triu_like_torch_for_int_and_bool():
    for dtype in ("int64", "bool"):
        x = gradient.ones(2, 3, 4, dtype=gradient.bool_ if dtype == "bool" else gradient.int64)
        t = torch.ones(2, 3, 4, dtype=getattr(torch, dtype))
        for k in (-4, -1, 0, 2, 9):
            assert x.tril(k).tolist() == t.tril(k).tolist()
            assert x.triu(k).tolist() == t.triu(k).tolist()


def test_split_unused_outputs_get_zero_grad():
    x = gradient.arange(6.0, requires_grad=True)
    a, b, c = x.split([2, 3, 1])
    (b * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 2, 2, 2, 0])


def test_double_backward_through_cat_and_split():
    x = gradient.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = gradient.cat([x[:1] ** 3, x[1:]], 0).split(2)[0].sum()
    (g,) = gradient.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [3.0, 1.0, 0.0])
    (gg,) = gradient.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(gg.numpy(), [6.0, 0.0, 0.0])


def test_no_op_reshape_and_permute_return_the_input():
    x = gradient.zeros(2, 3)
    assert x.reshape(2, 3) is x and x.permute(0, 1) is x and x.squeeze() is x


def test_broadcast_shapes_like_torch():
    for shapes in [((2, 1), (3,)), ((1,), (0, 1)), ((), (2, 2)), ((5, 1, 4), (3, 1))]:
        assert tuple(gradient.broadcast_shapes(*shapes)) == tuple(torch.broadcast_shapes(*shapes))


# ---------------------------------------------------------------------- unfold, meshgrid, cartesian_prod
def test_unfold_is_a_view_sharing_the_version_counter():
    x = gradient.arange(10.0)
    windows = x.unfold(0, 4, 3)
    assert windows._base is x and windows._version is x._version
    x.mul_(2)  # the view sees the change, as in PyTorch
    np.testing.assert_array_equal(windows.numpy(), [[0, 2, 4, 6], [6, 8, 10, 12], [12, 14, 16, 18]])


def test_unfold_overlapping_windows_add_their_gradients_like_torch():
    grads = []
    for lib in (gradient, torch):
        x = lib.arange(6.0, requires_grad=True)
        (x.unfold(0, 3, 1) * lib.arange(12.0).reshape(4, 3)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_array_equal(*grads)


@pytest.mark.parametrize("args,error,match", [
    ((0, 5, 1), ShapeError, r"size 5 does not fit dimension 0 of size 4"),
    ((0, 2, 0), ValueError, "step must be positive"),
    ((2, 1, 1), IndexError, "out of range"),
])
def test_unfold_errors(args, error, match):
    with pytest.raises(error, match=match):
        gradient.zeros(4, 3).unfold(*args)


def test_meshgrid_outputs_are_views_and_errors_are_clear():
    a, b = gradient.arange(2.0), gradient.arange(3.0)
    ys, xs = gradient.meshgrid(a, b, indexing="ij")
    assert ys._base is a and xs._base is b
    with pytest.raises(ValueError, match="'ij' or 'xy'"):
        gradient.meshgrid(a, b, indexing="yx")
    with pytest.raises(ShapeError, match=r"0-d or 1-d tensors, got shape \(2, 3\)"):
        gradient.meshgrid(a, gradient.zeros(2, 3))
    with pytest.raises(ShapeError, match="same dtype"):
        gradient.meshgrid(a, gradient.arange(3))
    with pytest.raises(ShapeError, match="at least one"):
        gradient.meshgrid()


def test_cartesian_prod_needs_1_d_tensors():
    with pytest.raises(ShapeError, match=r"1-d tensors, got \(2, 2\) at position 1"):
        gradient.cartesian_prod(gradient.zeros(2), gradient.zeros(2, 2))


def test_numel_is_floating_point_and_is_complex_as_functions():
    x = gradient.zeros(2, 3, dtype=gradient.float16)
    assert gradient.numel(x) == 6 and gradient.numel(gradient.tensor(1)) == 1
    assert gradient.is_floating_point(x) and not gradient.is_floating_point(gradient.arange(3))
    assert gradient.is_floating_point(x.bfloat16())
    assert not gradient.is_complex(x) and not x.is_complex()
    for fn in (gradient.numel, gradient.is_floating_point, gradient.is_complex):
        with pytest.raises(TypeError, match="expected a Tensor"):
            fn([1.0])


def test_a_diagonal_past_the_matrix_keeps_or_clears_all_of_it():
    # (an int64 constant cannot hold 10**20: NumPy's OverflowError from inside before)
    x = gradient.ones(3, 4)
    assert gradient.tril(x, 10 ** 20).sum().item() == 12
    assert gradient.triu(x, 10 ** 20).sum().item() == 0
    assert gradient.triu(x, -10 ** 20).sum().item() == 12
    assert gradient.tril(x, -10 ** 20).sum().item() == 0
