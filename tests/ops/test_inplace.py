"""In-place methods (``x.exp_()``, ``x.scatter_(...)``, ``x.index_add_(...)`` ...): what makes
them in-place rather than what they compute (the op table compares their values and gradients
with PyTorch's): they write into the tensor's own storage and return it, bump the version
counter once (shared with views), refuse a leaf that requires grad, make backward fail when a
tensor saved for it was overwritten, keep the dtype, and cannot grow a tensor by broadcasting;
into a view of a tensor in a graph, they give PyTorch's gradients.
"""

import numpy as np
import pytest

import gradient
from gradient.errors import AutogradError, DTypeError, ShapeError

torch = pytest.importorskip("torch")


def _idx(lib, *values):
    return lib.tensor(list(values))


# one call per in-place method: (name, fn(lib, x) modifying the float (3, 4) tensor x)
CALLS = [
    ("exp_", lambda lib, x: x.exp_()),
    ("log_", lambda lib, x: x.abs_().add_(1).log_()),
    ("neg_", lambda lib, x: x.neg_()),
    ("abs_", lambda lib, x: x.abs_()),
    ("sqrt_", lambda lib, x: x.abs_().sqrt_()),
    ("rsqrt_", lambda lib, x: x.abs_().add_(1).rsqrt_()),
    ("sigmoid_", lambda lib, x: x.sigmoid_()),
    ("tanh_", lambda lib, x: x.tanh_()),
    ("sin_", lambda lib, x: x.sin_()),
    ("cos_", lambda lib, x: x.cos_()),
    ("reciprocal_", lambda lib, x: x.abs_().add_(1).reciprocal_()),
    ("square_", lambda lib, x: x.square_()),
    ("floor_", lambda lib, x: x.floor_()),
    ("ceil_", lambda lib, x: x.ceil_()),
    ("round_", lambda lib, x: x.round_()),
    ("trunc_", lambda lib, x: x.trunc_()),
    ("sign_", lambda lib, x: x.sign_()),
    ("addcmul_", lambda lib, x: x.addcmul_(x.detach() * 0 + 2, lib.ones(4), value=0.5)),
    ("addcdiv_", lambda lib, x: x.addcdiv_(lib.ones(3, 4), lib.full((4,), 4.0), value=2)),
    ("lerp_", lambda lib, x: x.lerp_(lib.ones(3, 4), 0.25)),
    ("scatter_", lambda lib, x: x.scatter_(1, lib.tensor([[0, 2]] * 3), 1.0)),
    ("scatter_add_", lambda lib, x: x.scatter_add_(0, lib.tensor([[0, 1, 1, 2]]), lib.ones(1, 4))),
    ("scatter_reduce_", lambda lib, x: x.scatter_reduce_(0, lib.tensor([[2, 2, 0, 1]]),
                                                         lib.ones(1, 4), "amax")),
    ("index_add_", lambda lib, x: x.index_add_(0, _idx(lib, 0, 0), lib.ones(2, 4))),
    ("index_fill_", lambda lib, x: x.index_fill_(1, _idx(lib, 3, 1), -1.0)),
    ("index_copy_", lambda lib, x: x.index_copy_(0, _idx(lib, 2), lib.ones(1, 4))),
    ("index_put_", lambda lib, x: x.index_put_((_idx(lib, 0, 2), _idx(lib, 1, 1)),
                                               lib.tensor(7.0))),
    ("masked_scatter_", lambda lib, x: x.masked_scatter_(x > 0, lib.arange(12.0))),
    ("put_", lambda lib, x: x.put_(_idx(lib, 0, -1), lib.tensor([5.0, 6.0]))),
    ("fill_diagonal_", lambda lib, x: x.fill_diagonal_(9.0)),
    ("clamp_min_", lambda lib, x: x.clamp_min_(0.0)),
]
NAMES = [name for name, _ in CALLS]


def _start(lib):
    return lib.tensor(np.linspace(-2.0, 2.5, 12).reshape(3, 4), dtype=lib.float32)


@pytest.mark.parametrize("name,call", CALLS, ids=NAMES)
def test_writes_into_its_storage_like_torch(name, call):
    x = _start(gradient)
    ptr, before = x.data_ptr(), x._version.value
    out = call(gradient, x)
    assert out is x and x.data_ptr() == ptr
    assert x._version.value > before
    t = _start(torch)
    call(torch, t)
    np.testing.assert_allclose(x.numpy(), t.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name,call", CALLS, ids=NAMES)
def test_leaf_that_requires_grad_is_refused_but_no_grad_allows_it(name, call):
    x = _start(gradient).requires_grad_()
    with pytest.raises(AutogradError, match="leaf tensor that requires grad"):
        call(gradient, x)
    with gradient.no_grad():
        call(gradient, x)
    assert x.grad_fn is None and x.is_leaf


@pytest.mark.parametrize("name,call", CALLS, ids=NAMES)
def test_overwriting_a_tensor_saved_for_backward_fails_backward(name, call):
    x = _start(gradient).requires_grad_()
    y = x * 1
    z = (y * y).sum()  # saves y
    call(gradient, y)
    with pytest.raises(AutogradError, match=f"modified by an in-place operation.*{name}"):
        z.backward()


def test_version_counter_moves_once_per_call_and_is_shared_with_views():
    base = gradient.zeros(3, 4)
    row = base[1]
    v0 = base._version.value
    row.exp_()
    base[:, 0].index_fill_(0, gradient.tensor([2]), 5.0)
    row.scatter_(0, gradient.tensor([3]), 2.0)
    assert base._version.value == row._version.value == v0 + 3
    np.testing.assert_allclose(base.numpy(), [[0, 0, 0, 0], [1, 1, 1, 2], [5, 0, 0, 0]])


@pytest.mark.parametrize("name,call", CALLS, ids=NAMES)
def test_in_place_on_a_view_of_a_graph_tensor_gives_torchs_gradients(name, call):
    """The view's base moves on to its new contents (gradient.ops.view_write), as PyTorch's
    does: the rows written get their gradient through the in-place op, the others directly."""
    def run(lib):
        a = lib.tensor(np.linspace(-2.0, 2.5, 20).reshape(5, 4), dtype=lib.float32,
                       requires_grad=True)            # (the calls' other tensors are float32)
        big = a * 1.5
        call(lib, big[1:4])
        weights = lib.tensor(np.arange(20.0).reshape(5, 4) / 7, dtype=lib.float32)
        (big * weights).sum().backward()
        return big.detach().numpy(), a.grad.numpy()

    for ours, theirs in zip(run(gradient), run(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_in_place_records_the_graph_and_matches_torch_gradients():
    def run(lib):
        x = lib.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=lib.float64,
                       requires_grad=True)
        src = lib.tensor([[3.0, -2.0, 0.5]], dtype=lib.float64, requires_grad=True)
        y = x * 2
        y.sin_().index_add_(0, lib.tensor([1]), src).scatter_(1, lib.tensor([[2], [0]]), 0.0)
        (y * y).sum().backward()
        return y.detach().numpy(), x.grad.numpy(), src.grad.numpy()

    for ours, theirs in zip(run(gradient), run(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_in_place_into_a_constant_from_a_tensor_that_requires_grad():
    src = gradient.ones(2, 3, requires_grad=True)
    acc = gradient.zeros(4, 3)
    acc.index_add_(0, gradient.tensor([1, 1]), src * 3)
    assert acc.requires_grad and not acc.is_leaf
    acc.sum().backward()
    np.testing.assert_allclose(src.grad.numpy(), np.full((2, 3), 3.0))


def test_a_floating_result_cannot_be_stored_in_an_integer_tensor():
    x = gradient.arange(4)
    for method in ("sqrt_", "exp_", "sigmoid_", "reciprocal_"):
        with pytest.raises(DTypeError, match="cannot be stored in place"):
            getattr(x, method)()
    np.testing.assert_array_equal(x.numpy(), [0, 1, 2, 3])  # untouched
    np.testing.assert_array_equal(gradient.arange(-2, 2).abs_().numpy(), [2, 1, 0, 1])


_DTYPES = ["bool", "uint8", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


@pytest.mark.parametrize("into", _DTYPES)
def test_a_result_of_another_dtype_is_stored_in_place_where_torch_casts_it(into):
    """PyTorch stores an in-place result of another dtype where it is of the same kind or a
    lower one (float64 into float32, int64 into int32, int into float) and refuses a higher
    kind (float into int, int into bool): gradient does the same, with the same values."""
    for other in _DTYPES:
        for method, args in (("add_", ()), ("mul_", ()), ("sub_", ()), ("copy_", ())):
            if method == "sub_" and "bool" in (into, other):
                continue                       # (bool subtraction: refused by both)
            got = {}
            for lib in (torch, gradient):
                x = lib.tensor([1, 0, 3]).to(getattr(lib, into))
                y = lib.tensor([1 / 3, 1, 2.5]).to(getattr(lib, other))
                try:
                    got[lib.__name__] = getattr(x, method)(y, *args)
                except Exception as error:
                    got[lib.__name__] = type(error)
            mine, theirs = got["gradient"], got["torch"]
            if isinstance(theirs, type):
                assert isinstance(mine, type) and issubclass(mine, gradient.errors.GradientError), \
                    (method, into, other, mine)
                continue
            assert not isinstance(mine, type), (method, into, other, mine)
            assert str(mine.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1] == into
            np.testing.assert_array_equal(mine.float().numpy(), theirs.float().numpy(),
                                          err_msg=f"{method} {into} {other}")


def test_an_in_place_op_cannot_grow_its_tensor_by_broadcasting():
    x = gradient.zeros(3)
    with pytest.raises(ShapeError, match=r"addcmul_: the result has shape \(2, 3\).*in place"):
        x.addcmul_(gradient.ones(2, 3), gradient.ones(3))
    with pytest.raises(ShapeError, match="lerp_"):
        x.lerp_(gradient.ones(2, 3), 0.5)
    np.testing.assert_array_equal(x.numpy(), [0, 0, 0])


def test_in_place_methods_as_functions():
    x = gradient.tensor([0.0, 1.0])
    assert gradient.exp_(x) is x
    np.testing.assert_allclose(x.numpy(), [1.0, np.e], rtol=1e-6)
    with pytest.raises(TypeError, match="expected a Tensor"):
        gradient.exp_([1.0])


def test_random_fills_are_in_place_and_refuse_leaves_that_require_grad():
    for fill in (lambda t: t.bernoulli_(0.5), lambda t: t.random_(0, 5),
                 lambda t: t.exponential_()):
        x = gradient.zeros(4, 5)
        v0 = x._version.value
        assert fill(x) is x and x._version.value == v0 + 1
        leaf = gradient.zeros(3, requires_grad=True)
        with pytest.raises(AutogradError, match="leaf"):
            fill(leaf)


def test_random_fill_of_a_non_leaf_passes_a_zero_gradient_like_torch():
    for lib in (gradient, torch):
        x = lib.ones(5, requires_grad=True)
        y = x * 3
        y.bernoulli_(0.5)
        (y * 2).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), np.zeros(5))


@pytest.mark.parametrize("write", [
    lambda x: x.add_(1), lambda x: x.sin_(), lambda x: x.mul_(x), lambda x: x.normal_(),
    lambda x: x.bernoulli_(0.5), lambda x: x.copy_(x.clone()), lambda x: x.clamp_(0, 1),
])
def test_writing_into_an_expanded_tensor_is_refused_as_torch_refuses_it(write):
    # (NumPy's "assignment destination is read-only" ValueError from inside before)
    with pytest.raises(RuntimeError):
        write(torch.ones(1, 3).expand(4, 3))
    x = gradient.ones(1, 3)
    with pytest.raises(gradient.errors.ShapeError, match="share memory.*clone"):
        write(x.expand(4, 3))
    assert x.tolist() == [[1.0, 1.0, 1.0]]


def test_an_expanded_tensor_still_changes_its_shape_in_place():
    for m in (torch, gradient):
        y = m.ones(1, 3).expand(4, 3)
        assert tuple(y.unsqueeze_(0).shape) == (1, 4, 3)


@pytest.mark.parametrize("write", [
    lambda m, x: x.fill_(2.0), lambda m, x: x.zero_(), lambda m, x: x.__setitem__((0, 1), 5.0),
    lambda m, x: x.__setitem__((-1, -1), 5.0), lambda m, x: x.__setitem__(1, 4.0),
    lambda m, x: x.__setitem__(0, m.tensor([7.0, 8.0, 9.0])),
])
def test_an_expanded_tensor_takes_the_writes_torch_lets_through(write):
    """A fill, and a write into a region none of whose elements share memory, go to the
    memory under the expanded tensor, as torch writes them."""
    results = []
    for m in (torch, gradient):
        base = m.arange(3.0).reshape(1, 3)
        write(m, base.expand(4, 3))
        results.append(base.tolist())
    assert results[0] == results[1]


@pytest.mark.parametrize("write", [
    lambda m, x: x.__setitem__(slice(None), 5.0), lambda m, x: x.__setitem__((slice(None), 1), 5.0),
    lambda m, x: x.fill_(m.tensor(2.0)),
])
def test_an_expanded_tensor_refuses_the_writes_torch_refuses(write):
    with pytest.raises(RuntimeError):
        write(torch, torch.ones(1, 3).expand(4, 3))
    x = gradient.ones(1, 3)
    with pytest.raises(gradient.errors.ShapeError, match="share memory.*clone"):
        write(gradient, x.expand(4, 3))
    assert x.tolist() == [[1.0, 1.0, 1.0]]


def test_a_fill_does_not_write_read_only_memory_under_an_expanded_tensor():
    memory = np.frombuffer(bytes(12), dtype=np.float32)      # read-only
    x = gradient.from_numpy(memory)
    with pytest.raises(gradient.errors.ShapeError, match="read-only"):
        x.expand(2, 3).fill_(1.0)
    assert memory.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("op", ["mul", "div"])
def test_a_product_by_a_constant_keeps_nothing_a_later_write_invalidates(op):
    """As PyTorch's, a product or quotient keeps a factor only for the other's gradient: ``y[0]
    = y[-1] * 2`` writes into y after the product read it, and backward still runs (it raised
    "modified by an in-place operation" before); with both factors needing a gradient the
    write is refused, as there."""
    def run(lib, weight_requires_grad):
        x = lib.tensor(np.linspace(-1.0, 2.0, 12).reshape(3, 4), requires_grad=True)
        w = lib.tensor(np.full(4, 2.0), requires_grad=weight_requires_grad)
        y = x * 1.5
        y[0] = getattr(y[-1], op)(w)
        (y * lib.tensor(np.arange(12.0).reshape(3, 4))).sum().backward()
        return x.grad.numpy()

    np.testing.assert_allclose(run(gradient, False), run(torch, False))
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        run(torch, True)
    with pytest.raises(AutogradError, match="modified by an in-place operation"):
        run(gradient, True)


def _in_place_cases(rng, dtype):
    """(x, call) pairs: add_, sub_, mul_, div_, addcmul_, addcdiv_ and lerp_ of every operand
    kind the direct write takes or leaves to the op written back (views, overlaps,
    broadcasts, numbers, alphas, values and weights)."""
    def t(*shape):
        return gradient.tensor(rng.standard_normal(shape).astype(dtype))
    cases = []
    for name in ("add_", "sub_", "mul_", "div_"):
        alphas = [1] if name in ("mul_", "div_") else [1, 2.5, -1e-3, 3]
        for alpha in alphas:
            kw = {} if alpha == 1 else dict(alpha=alpha)
            cases += [
                (t(5, 7), lambda x, n=name, kw=kw: getattr(x, n)(t(5, 7), **kw)),
                (t(5, 7), lambda x, n=name, kw=kw: getattr(x, n)(t(7), **kw)),      # a row
                (t(5, 7), lambda x, n=name, kw=kw: getattr(x, n)(t(5, 1), **kw)),   # a column
                (t(5, 7), lambda x, n=name, kw=kw: getattr(x, n)(t(), **kw)),       # 0-d
                (t(5, 7), lambda x, n=name, kw=kw: getattr(x, n)(x, **kw)),         # itself
                (t(5, 7), lambda x, n=name, kw=kw: getattr(x[1:], n)(x[:-1], **kw)),  # overlap
                (t(5, 7), lambda x, n=name, kw=kw: getattr(x.T, n)(t(7, 5), **kw)),   # a view
                (t(5, 7), lambda x, n=name, kw=kw: getattr(x[:, ::2], n)(t(5, 4), **kw)),
                (t(5, 7), lambda x, n=name, kw=kw: getattr(x, n)(
                    t(5, 7).to(gradient.float64 if dtype == np.float32 else gradient.float32),
                    **kw)),                                                  # another dtype
            ]
        for number in (3, -0.1, 1e-30, 2 ** 40, float("inf"), 1e300, 0):
            cases.append((t(5, 7), lambda x, n=name, v=number: getattr(x, n)(v)))
    operands = [
        lambda x: (t(5, 7), t(5, 7)), lambda x: (t(7), t(5, 1)), lambda x: (t(), t(5, 7)),
        lambda x: (x, t(5, 7)), lambda x: (t(5, 7), x), lambda x: (x, x),
        lambda x: (x.T.contiguous().T, t(7)),                    # a copy: no overlap
    ]
    for value in (1, 0.5, -2, 0.3, 0.75, 1e-3):
        for pick in operands:
            cases += [
                (t(5, 7), lambda x, p=pick, v=value: x.addcmul_(*p(x), value=v)),
                (t(5, 7), lambda x, p=pick, v=value: x.addcdiv_(*p(x), value=v)),
                (t(5, 7), lambda x, p=pick, v=value: x.lerp_(p(x)[0], v)),
            ]
        cases += [
            (t(5, 7), lambda x, v=value: x[1:].addcmul_(x[:-1], t(4, 7), value=v)),  # overlaps
            (t(5, 7), lambda x, v=value: x[1:].lerp_(x[:-1], v)),
            (t(5, 7), lambda x, v=value: x.T.addcmul_(t(7, 5), t(7, 5), value=v)),   # a view
            (t(5, 7), lambda x, v=value: x.lerp_(t(5, 7), gradient.tensor(v).to(x.dtype))),
        ]
    return cases


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_arithmetic_written_straight_into_storage_gives_the_written_back_bits(monkeypatch,
                                                                              dtype):
    """add_, sub_, mul_, div_, addcmul_, addcdiv_ and lerp_ write into the tensor's storage
    directly where nothing is recorded (one pass, no copy back): the same values, to the bit,
    as the out-of-place op written back, for every kind of operand; views of x see them, and
    the version moves once."""
    from gradient.ops import elementwise
    direct, taken = [], []
    for name in ("arithmetic_in_place", "blend_in_place"):
        monkeypatch.setattr(elementwise, name, lambda *a, _f=getattr(elementwise, name), **k:
                            taken.append(_f(*a, **k)) or taken[-1])
    with gradient.no_grad(), np.errstate(all="ignore"):
        for x, call in _in_place_cases(np.random.default_rng(0), dtype):
            alias, version = x.view(-1), x._version.value
            assert call(x) is not None
            assert x._version.value == version + 1
            np.testing.assert_array_equal(alias.numpy(), x.numpy().reshape(-1))
            direct.append(x.numpy().copy())
        monkeypatch.setattr(elementwise, "arithmetic_in_place", lambda *a, **k: False)
        monkeypatch.setattr(elementwise, "blend_in_place", lambda *a, **k: False)
        for (x, call), mine in zip(_in_place_cases(np.random.default_rng(0), dtype), direct):
            call(x)
            np.testing.assert_array_equal(x.numpy(), mine)
    assert 150 < sum(taken) < len(taken)     # both paths met (overlaps and views write back)


@pytest.mark.parametrize("write", [
    lambda v: v.mul_(gradient.full((2,), 3.0)), lambda v: v.add_(gradient.ones(2), alpha=2),
    lambda v: v.lerp_(gradient.zeros(2), 0.25), lambda v: v.addcmul_(v, v, value=0.5),
], ids=["mul_", "add_", "lerp_", "addcmul_"])
def test_a_view_taken_under_no_grad_written_with_grad_on_moves_its_base_in_the_graph(write):
    """The direct in-place write is not taken into a view, taken under no_grad, of a tensor
    in a graph: the base follows the write (PyTorch refuses the write instead), its written
    positions constants to the graph, as without the direct write."""
    leaf = gradient.tensor([1.0, 2.0, 3.0], requires_grad=True)
    base = leaf * 2
    with gradient.no_grad():
        view = base[:2]
        expected = base.detach().clone()
        write(expected[:2])
    write(view)
    assert base.grad_fn.name() == "_WrittenThroughViewBackward"
    np.testing.assert_array_equal(base.detach().numpy(), expected.numpy())
    base.sum().backward()
    np.testing.assert_array_equal(leaf.grad.numpy(), [0.0, 0.0, 2.0])
