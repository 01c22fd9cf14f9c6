"""Sparse gradients (nn.Embedding / EmbeddingBag with sparse=True) and the optimizers that take
them (SparseAdam, SGD, Adagrad), against torch on the same weights and batches."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn
from gradient.optim import OptimizerError

VOCAB, DIM = 40, 5
rng = np.random.default_rng(7)
TABLE = rng.standard_normal((VOCAB, DIM))
BATCHES = [rng.integers(0, VOCAB, (6, 4)) for _ in range(5)]
HEAD = rng.standard_normal((1, DIM))


def train(lib, optimizer: str, steps=len(BATCHES), padding_idx=2, bag=False, **options):
    """A word-vector model (a sparse embedding and a dense linear head) trained a few steps;
    returns the table, and the gradient of the last step."""
    nn = gnn if lib is gradient else torch.nn
    if bag:
        emb = nn.EmbeddingBag(VOCAB, DIM, mode="mean", sparse=True, padding_idx=padding_idx)
    else:
        emb = nn.Embedding(VOCAB, DIM, sparse=True, padding_idx=padding_idx)
    head = nn.Linear(DIM, 1)
    emb.double(), head.double()
    with lib.no_grad():
        emb.weight.copy_(lib.tensor(TABLE))
        head.weight.copy_(lib.tensor(HEAD))
        head.bias.fill_(0.1)
    sparse_opt = getattr(lib.optim, optimizer)(emb.parameters(), **options)
    dense_opt = lib.optim.SGD(head.parameters(), lr=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")    # torch's note on sparse invariant checks
        for ids in BATCHES[:steps]:
            sparse_opt.zero_grad()
            dense_opt.zero_grad()
            loss = (head(emb(lib.tensor(ids))).tanh() - 0.5).pow(2).mean()
            loss.backward()
            sparse_opt.step()
            dense_opt.step()
    return emb.weight.detach().numpy(), emb.weight.grad


@pytest.mark.parametrize("optimizer,options", [
    ("SparseAdam", dict(lr=0.05)),
    ("SparseAdam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, maximize=True)),
    ("SGD", dict(lr=0.5)),
    ("SGD", dict(lr=0.5, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.5, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.3, lr_decay=0.01)),
])
def test_training_moves_the_table_as_torch(optimizer, options):
    ours, _ = train(gradient, optimizer, **options)
    if optimizer == "SGD" and options.get("weight_decay"):
        # torch refuses sparse.add(dense); gradient uses the dense gradient of the same values:
        # plain SGD on a dense embedding is the reference
        theirs = _dense_sgd_reference(**options)
    else:
        theirs, _ = train(torch, optimizer, **options)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    assert not np.allclose(ours, TABLE)


def _dense_sgd_reference(**options):
    emb = torch.nn.Embedding(VOCAB, DIM, padding_idx=2).double()
    head = torch.nn.Linear(DIM, 1).double()
    with torch.no_grad():
        emb.weight.copy_(torch.tensor(TABLE))
        head.weight.copy_(torch.tensor(HEAD))
        head.bias.fill_(0.1)
    opt, dense_opt = torch.optim.SGD(emb.parameters(), **options), torch.optim.SGD(head.parameters(), lr=0.1)
    for ids in BATCHES:
        opt.zero_grad()
        dense_opt.zero_grad()
        (head(emb(torch.tensor(ids))).tanh() - 0.5).pow(2).mean().backward()
        opt.step()
        dense_opt.step()
    return emb.weight.detach().numpy()


def test_the_gradient_is_sparse_and_holds_only_rows_looked_up():
    _, ours = train(gradient, "SGD", steps=1, lr=0.0)
    _, theirs = train(torch, "SGD", steps=1, lr=0.0)
    assert ours.is_sparse and ours.layout is gradient.sparse_coo and not ours.is_coalesced()
    ids = BATCHES[0].reshape(-1)
    kept = ids[ids != 2]                                 # the padding id gives no entry
    np.testing.assert_array_equal(ours._indices().numpy(), kept[None])
    np.testing.assert_allclose(ours.to_dense().numpy(), theirs.to_dense().numpy(), rtol=1e-12)
    np.testing.assert_array_equal(ours.coalesce().indices().numpy(),
                                  theirs.coalesce().indices().numpy())
    untouched = np.setdiff1d(np.arange(VOCAB), kept)
    assert np.all(ours.to_dense().numpy()[untouched] == 0)


def test_embedding_bag_gradient_and_training():
    ours, ours_grad = train(gradient, "SparseAdam", bag=True, lr=0.05)
    theirs, theirs_grad = train(torch, "SparseAdam", bag=True, lr=0.05)
    assert ours_grad.is_sparse
    np.testing.assert_allclose(ours_grad.to_dense().numpy(), theirs_grad.to_dense().numpy(),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_gradients_accumulate_over_backwards_and_zero_in_place():
    emb = gnn.Embedding(6, 2, sparse=True)
    emb(gradient.tensor([1, 2])).sum().backward()
    emb(gradient.tensor([[1, 5]])).sum().backward()
    grad = emb.weight.grad
    assert grad.is_sparse and grad._nnz() == 4
    np.testing.assert_array_equal(grad.to_dense().numpy()[:, 0], [0, 2, 1, 0, 0, 1])
    emb.zero_grad(set_to_none=False)                 # as torch: nnz 0, still sparse
    assert emb.weight.grad.is_sparse and emb.weight.grad._nnz() == 0
    emb(gradient.tensor([3])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.to_dense().numpy()[:, 0], [0, 0, 0, 1, 0, 0])


def test_a_table_used_densely_too_gets_a_dense_gradient():
    # weight tying: the same table looked up (sparse) and multiplied (dense); as torch, the
    # two gradients add up to a dense one
    grads = []
    for lib, nn in ((gradient, gnn), (torch, torch.nn)):
        emb = nn.Embedding(6, 3, sparse=True).double()
        with lib.no_grad():
            emb.weight.copy_(lib.tensor(TABLE[:6, :3]))
        hidden = emb(lib.tensor([[1, 4, 4]]))
        (hidden @ emb.weight.T).sum().backward()
        grads.append(emb.weight.grad)
    assert not grads[0].is_sparse and not grads[1].is_sparse
    np.testing.assert_allclose(grads[0].numpy(), grads[1].numpy(), rtol=1e-12)


def test_scale_grad_by_freq_divides_each_entry_by_its_ids_count():
    emb = gnn.Embedding(5, 2, sparse=True, scale_grad_by_freq=True)
    dense = gnn.Embedding(5, 2, scale_grad_by_freq=True)
    dense.weight = emb.weight
    ids = gradient.tensor([[1, 3, 1, 1]])
    emb(ids).sum().backward()
    sparse_grad, emb.weight.grad = emb.weight.grad, None
    dense(ids).sum().backward()
    np.testing.assert_allclose(sparse_grad.to_dense().numpy(), emb.weight.grad.numpy())


def test_optimizers_say_what_they_take():
    emb = gnn.Embedding(6, 2, sparse=True)
    emb(gradient.tensor([1, 2])).sum().backward()
    with pytest.raises(OptimizerError, match="Adam does not support sparse gradients.*SparseAdam"):
        gradient.optim.Adam(emb.parameters()).step()
    with pytest.raises(OptimizerError, match="weight_decay is not compatible with sparse"):
        gradient.optim.Adagrad(emb.parameters(), weight_decay=0.1).step()
    dense = gnn.Linear(2, 1)
    dense(gradient.ones(1, 2)).sum().backward()
    with pytest.raises(OptimizerError, match="SparseAdam does not support dense gradients"):
        gradient.optim.SparseAdam(dense.parameters()).step()
    with pytest.raises(ValueError, match="beta"):
        gradient.optim.SparseAdam(emb.parameters(), betas=(1.0, 0.9))


def test_sparse_adam_state_dict_as_torch():
    ours = gradient.optim.SparseAdam(gnn.Embedding(4, 2, sparse=True).parameters())
    theirs = torch.optim.SparseAdam(torch.nn.Embedding(4, 2, sparse=True).parameters())
    assert ours.state_dict()["param_groups"][0].keys() == theirs.state_dict()["param_groups"][0].keys()


def test_a_sparse_gradient_over_more_than_rows_is_refused():
    p = gradient.nn.Parameter(gradient.zeros(3, 3))
    p.grad = gradient.ones(3, 3).to_sparse()             # two sparse dimensions
    with pytest.raises(OptimizerError, match="2 sparse dimensions"):
        gradient.optim.SGD([p], lr=0.1).step()
    p.grad = gradient.ones(3, 3).to_sparse(1)             # rows: taken
    gradient.optim.SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.detach().numpy(), -0.1)
