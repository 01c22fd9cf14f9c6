"""Sparse COO tensors (gradient.ops.sparse, gradient.sparse) against torch's: construction,
coalescing, conversions, products with dense tensors and their gradients, sums, softmax,
arithmetic, and the errors of what they do not take."""

import numpy as np
import pytest

import gradient
from gradient.autograd import gradcheck, gradgradcheck
from gradient.errors import DTypeError, LayoutError, ShapeError

torch = pytest.importorskip("torch")


def coords(seed=0, shape=(5, 4), nnz=9):
    """Random coordinates with repeats (the first one twice) and values, float64."""
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.integers(0, n, nnz) for n in shape])
    idx[:, -1] = idx[:, 0]
    return idx, rng.standard_normal(nnz)


def pair(idx, values, shape, **kw):
    """The same sparse tensor in gradient and in torch."""
    return (gradient.sparse_coo_tensor(idx, gradient.tensor(values), shape, **kw),
            torch.sparse_coo_tensor(torch.tensor(idx), torch.tensor(values), shape, **kw))


def same(g, t, exact=False):
    t = t.detach().numpy()
    g = g.detach().numpy()
    assert g.shape == t.shape
    if exact:
        np.testing.assert_array_equal(g, t)
    else:
        np.testing.assert_allclose(g, t, rtol=1e-12, atol=1e-14)


def test_to_dense_adds_repeated_coordinates_as_torch():
    idx, v = coords()
    g, t = pair(idx, v, (5, 4))
    same(g.to_dense(), t.to_dense())
    assert g.shape == (5, 4) and g._nnz() == 9 and g.sparse_dim() == 2 and g.dense_dim() == 0
    assert g.is_sparse and g.layout is gradient.sparse_coo and not g.is_coalesced()


def test_size_is_inferred_and_dense_dimensions_are_kept():
    idx, _ = coords(1, (3, 6), 7)
    values = np.random.default_rng(2).standard_normal((7, 2))
    g = gradient.sparse_coo_tensor(idx, gradient.tensor(values))
    t = torch.sparse_coo_tensor(torch.tensor(idx), torch.tensor(values))
    assert tuple(g.shape) == tuple(t.shape)
    assert g.dense_dim() == 1
    same(g.to_dense(), t.to_dense())


def test_coalesce_sorts_and_sums_as_torch():
    idx, v = coords(3, (4, 4, 3), 12)
    g, t = pair(idx, v, (4, 4, 3))
    gc, tc = g.coalesce(), t.coalesce()
    same(gc.indices(), tc.indices(), exact=True)
    same(gc.values(), tc.values())
    assert gc.is_coalesced() and gc._nnz() == tc._nnz()
    with pytest.raises(LayoutError, match="coalesce"):
        g.values()


def test_mm_and_its_gradients_match_torch():
    idx, v = coords(4, (6, 5), 11)
    dense = np.random.default_rng(5).standard_normal((5, 3))
    g = gradient.sparse_coo_tensor(idx, gradient.tensor(v), (6, 5), requires_grad=True)
    t = torch.sparse_coo_tensor(torch.tensor(idx), torch.tensor(v), (6, 5), requires_grad=True)
    gd = gradient.tensor(dense, requires_grad=True)
    td = torch.tensor(dense, requires_grad=True)
    weights = np.random.default_rng(6).standard_normal((6, 3))
    gy, ty = gradient.sparse.mm(g, gd), torch.sparse.mm(t, td)
    same(gy, ty)
    (gy * gradient.tensor(weights)).sum().backward()
    (ty * torch.tensor(weights)).sum().backward()
    same(gd.grad, td.grad)
    assert g.grad.is_sparse
    same(g.grad.to_dense(), t.grad.to_dense())


def test_every_product_spelling_gives_the_same():
    idx, v = coords(7, (4, 4), 6)
    g, t = pair(idx, v, (4, 4))
    x = np.random.default_rng(8).standard_normal((4, 2))
    gx, tx = gradient.tensor(x), torch.tensor(x)
    want = (t @ tx)
    for got in (gradient.mm(g, gx), g @ gx, gradient.matmul(g, gx), gradient.spmm(g, gx),
                g.mm(gx), gradient.sparse.addmm(gradient.zeros(4, 2, dtype=gradient.float64),
                                                g, gx)):
        same(got, want)
    same(gradient.mv(g, gx[:, 0]), torch.mv(t, tx[:, 0]))
    same(gradient.addmm(gx, g, gx, beta=0.5, alpha=2), torch.addmm(tx, t, tx, beta=0.5, alpha=2))
    same(gx.t() @ g, tx.t() @ t)                     # dense times sparse
    same(gradient.mm(gx.t(), g), torch.mm(tx.t(), t))
    same(gx[:, 0] @ g, tx[:, 0] @ t)


def test_gradcheck_and_gradgradcheck_in_float64():
    idx, v = coords(9, (5, 4), 8)
    values = gradient.tensor(v, requires_grad=True)
    dense = gradient.randn(4, 3, dtype=gradient.float64, requires_grad=True)

    def product(values, dense):
        return gradient.sparse.mm(gradient.sparse_coo_tensor(idx, values, (5, 4)), dense)

    def normalised(values):
        s = gradient.sparse_coo_tensor(idx, values, (5, 4))
        return gradient.sparse.log_softmax(s, 1).to_dense() + s.coalesce().to_dense()

    def summed(values):
        return gradient.sparse.sum(gradient.sparse_coo_tensor(idx, values, (5, 4)), 0).to_dense()

    for f, inputs in ((product, (values, dense)), (normalised, (values,)), (summed, (values,))):
        assert gradcheck(f, inputs)
        assert gradgradcheck(f, inputs)


def test_sums_match_torch():
    idx, _ = coords(10, (4, 5), 9)
    values = np.random.default_rng(11).standard_normal((9, 3))
    g, t = pair(idx, values, (4, 5, 3))
    same(g.sum(), torch.sparse.sum(t))
    for dim in (0, 1, 2, (0, 2), (0, 1)):
        got, want = gradient.sparse.sum(g, dim), torch.sparse.sum(t, dim)
        assert got.is_sparse == want.is_sparse
        same(got.to_dense() if got.is_sparse else got, want.to_dense() if want.is_sparse else
             want)
    same(g.sum(1), t.sum(1).to_dense())


def test_softmax_over_the_elements_present_matches_torch():
    idx, v = coords(12, (4, 6), 10)
    g, t = pair(idx, v, (4, 6))
    for dim in (0, 1, -1):
        same(gradient.sparse.softmax(g, dim).to_dense(), torch.sparse.softmax(t, dim).to_dense())
        same(gradient.sparse.log_softmax(g, dim).to_dense(),
             torch.sparse.log_softmax(t, dim).to_dense())


def test_to_sparse_from_dense_matches_torch():
    x = np.random.default_rng(13).standard_normal((4, 3, 2))
    x[x < 0.3] = 0
    x[1] = 0
    for sparse_dim in (None, 1, 2):
        g = gradient.tensor(x).to_sparse(sparse_dim)
        t = torch.tensor(x).to_sparse(sparse_dim) if sparse_dim else torch.tensor(x).to_sparse()
        same(g.indices(), t.indices(), exact=True)
        same(g.values(), t.values(), exact=True)
        same(g.to_dense(), t.to_dense(), exact=True)
    # differentiable: the gradient reaches the dense tensor's nonzero elements
    d = gradient.tensor(x, requires_grad=True)
    (d.to_sparse() * 3.0).to_dense().sum().backward()
    np.testing.assert_array_equal(d.grad.numpy(), 3.0 * (x != 0))


def test_arithmetic_matches_torch():
    idx, v = coords(14, (3, 4), 7)
    g, t = pair(idx, v, (3, 4))
    idx2, v2 = coords(15, (3, 4), 5)
    g2, t2 = pair(idx2, v2, (3, 4))
    x = np.random.default_rng(16).standard_normal((3, 4))
    gx, tx = gradient.tensor(x), torch.tensor(x)
    for got, want in ((g * 2.5, t * 2.5), (2.5 * g, 2.5 * t), (g / 4, t / 4), (-g, -t),
                      (g + g2, t + t2), (g - g2, t - t2), (g * g2, t * t2), (g * gx, t * tx),
                      (gx * g, tx * t), (g.t(), t.t()), (g.transpose(0, 1), t.transpose(0, 1))):
        assert got.is_sparse
        same(got.to_dense(), want.to_dense())
    same(gx + g, tx + t)
    same(gx - g, tx - t)


def test_conversions_and_legacy_constructors():
    idx, v = coords(17)
    g, _ = pair(idx, v, (5, 4))
    assert g.float().dtype is gradient.float32 and g.to(gradient.float32).dtype is gradient.float32
    assert g.to("cpu").device.type == "cpu" and g.cpu()._nnz() == 9
    legacy = gradient.sparse.FloatTensor(gradient.tensor(idx), gradient.tensor(v), (5, 4))
    assert legacy.dtype is gradient.float32
    same(legacy.to_dense(), torch.sparse.FloatTensor(torch.tensor(idx), torch.tensor(v).float(),
                                                     torch.Size((5, 4))).to_dense())
    empty = gradient.sparse.FloatTensor(3, 2)
    assert empty._nnz() == 0 and tuple(empty.to_dense().shape) == (3, 2)
    assert gradient.randn(2).layout is gradient.strided


def test_gcn_training_matches_torch():
    """A two-layer graph convolution (Kipf and Welling's, as pygcn writes it: the normalised
    adjacency a sparse tensor, ``spmm`` in each layer) trained with Adam: the same losses."""
    rng = np.random.default_rng(18)
    n, f, h, c = 30, 8, 16, 3
    edges = rng.integers(0, n, (2, 80))
    adj = np.zeros((n, n))
    adj[edges[0], edges[1]] = adj[edges[1], edges[0]] = 1
    adj += np.eye(n)
    adj /= adj.sum(1, keepdims=True)
    rows, cols = np.nonzero(adj)
    feats, labels = rng.standard_normal((n, f)), rng.integers(0, c, n)
    w1, w2 = rng.standard_normal((f, h)) * 0.3, rng.standard_normal((h, c)) * 0.3

    def train(lib, sparse):
        A = sparse(lib.tensor(np.stack([rows, cols])), lib.tensor(adj[rows, cols]), (n, n))
        p1, p2 = lib.tensor(w1, requires_grad=True), lib.tensor(w2, requires_grad=True)
        x, y = lib.tensor(feats), lib.tensor(labels)
        opt = lib.optim.Adam([p1, p2], lr=0.05)
        losses = []
        for _ in range(15):
            opt.zero_grad()
            hidden = lib.relu(lib.spmm(A, x @ p1))
            out = lib.spmm(A, hidden @ p2)
            loss = lib.nn.functional.cross_entropy(out, y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    got = train(gradient, gradient.sparse_coo_tensor)
    want = train(torch, torch.sparse_coo_tensor)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert want[-1] < want[0] * 0.7


def test_bad_input_gets_errors_that_say_what_to_do():
    idx, v = coords(19)
    with pytest.raises(IndexError, match="out of bounds"):
        gradient.sparse_coo_tensor(idx, v, (2, 4))
    with pytest.raises(IndexError, match="negative"):
        gradient.sparse_coo_tensor([[-1]], [1.0], (2,))
    with pytest.raises(DTypeError, match="integers"):
        gradient.sparse_coo_tensor([[0.5]], [1.0])
    with pytest.raises(ShapeError, match="coordinates"):
        gradient.sparse_coo_tensor(idx, v[:3], (5, 4))
    with pytest.raises(ShapeError, match="does not fit"):
        gradient.sparse_coo_tensor(idx, v, (5, 4, 2))
    g = gradient.sparse_coo_tensor(idx, v, (5, 4))
    with pytest.raises(ShapeError, match="do not align"):
        g @ gradient.randn(3, 2, dtype=gradient.float64)
    with pytest.raises(DTypeError, match="convert"):
        g @ gradient.randn(4, 2)
    with pytest.raises(LayoutError, match="to_dense"):
        gradient.relu(g)
    with pytest.raises(LayoutError, match="to_dense"):
        gradient.where(gradient.ones(5, 4, dtype=gradient.bool), g, 0.0)
    with pytest.raises(LayoutError, match="to_dense"):
        g[0]
    with pytest.raises(AttributeError, match="to_dense"):
        g.relu()
    with pytest.raises(LayoutError, match="two sparse"):
        g @ g.t()


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (2, 0, 3)])
def test_a_tensor_without_values_to_sparse_with_dense_dimensions(shape):
    ours = gradient.zeros(*shape).to_sparse(1)
    theirs = torch.zeros(*shape).to_sparse(1)
    assert tuple(ours.shape) == tuple(theirs.shape) and ours._nnz() == theirs._nnz() == 0
    assert tuple(ours.to_dense().shape) == shape
