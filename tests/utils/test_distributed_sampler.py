"""gradient.utils.data.DistributedSampler against torch.utils.data.DistributedSampler 2.13.

Unshuffled, the indices must be torch's exactly. Shuffled, the permutation is gradient's own, so
torch's sampler is run with ``torch.randperm`` replaced by gradient's permutation: the padding,
dropping and dealing to replicas must then agree.
"""

import itertools

import pytest
import torch
import torch.utils.data as tdata

import gradient
from gradient.utils.data import DataLoader, DistributedSampler, TensorDataset

SETTINGS = [(n, replicas, drop_last) for n in (0, 1, 2, 7, 10, 12, 13)
            for replicas in (1, 2, 3, 4, 5) for drop_last in (False, True)]


@pytest.mark.parametrize("n,replicas,drop_last", SETTINGS)
def test_unshuffled_indices_are_torchs(n, replicas, drop_last):
    for rank in range(replicas):
        ours = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False,
                                  drop_last=drop_last)
        theirs = tdata.DistributedSampler(range(n), num_replicas=replicas, rank=rank,
                                          shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs)
        assert len(ours) == len(theirs)
        assert (ours.num_samples, ours.total_size) == (theirs.num_samples, theirs.total_size)


@pytest.mark.parametrize("n,replicas,drop_last", [(10, 3, False), (10, 3, True), (2, 5, False),
                                                  (13, 4, True), (12, 4, False)])
@pytest.mark.parametrize("seed,epoch", [(0, 0), (5, 3)])
def test_shuffled_partition_is_torchs_given_the_same_permutation(monkeypatch, n, replicas,
                                                                  drop_last, seed, epoch):
    perm = gradient.randperm(n, generator=gradient.Generator().manual_seed(seed + epoch)).tolist()
    monkeypatch.setattr(torch, "randperm", lambda *a, **k: torch.tensor(perm, dtype=torch.int64))
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=True, seed=seed,
                                  drop_last=drop_last)
        theirs = tdata.DistributedSampler(range(n), replicas, rank, shuffle=True, seed=seed,
                                          drop_last=drop_last)
        ours.set_epoch(epoch)
        theirs.set_epoch(epoch)
        assert list(ours) == list(theirs)


def test_shuffling_is_seeded_per_epoch_and_shared_by_replicas():
    def shares(seed, epoch, replicas=3, n=20):
        out = []
        for rank in range(replicas):
            s = DistributedSampler(range(n), replicas, rank, seed=seed)
            s.set_epoch(epoch)
            out.append(list(s))
        return out

    gradient.manual_seed(123)                        # the global seed plays no part
    a = shares(0, 0)
    gradient.manual_seed(456)
    assert shares(0, 0) == a
    assert shares(0, 1) != a and shares(1, 0) != a
    assert shares(1, 0) == shares(0, 1)              # seeded with seed + epoch, as torch
    # the replicas' shares cover the dataset (20 indices padded to 21: one repeated)
    flat = list(itertools.chain(*a))
    assert len(flat) == 21 and set(flat) == set(range(20))
    assert sorted(flat) != list(range(21))           # actually shuffled


def test_defaults_and_errors(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    s = DistributedSampler(range(5))
    assert (s.num_replicas, s.rank, s.shuffle, s.seed, s.drop_last, s.epoch) == (1, 0, True, 0,
                                                                                 False, 0)
    assert sorted(s) == list(range(5))
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    s = DistributedSampler(range(8), shuffle=False)
    assert (s.num_replicas, s.rank, list(s)) == (4, 2, [2, 6])
    for rank in (3, -1):
        with pytest.raises(ValueError, match="Invalid rank"):
            DistributedSampler(range(5), num_replicas=3, rank=rank)
        with pytest.raises(ValueError, match="Invalid rank"):
            tdata.DistributedSampler(range(5), num_replicas=3, rank=rank)


def test_with_a_dataloader():
    x = gradient.arange(10).float()
    sampler = DistributedSampler(TensorDataset(x), num_replicas=2, rank=1, shuffle=False)
    batches = [b[0].tolist() for b in DataLoader(TensorDataset(x), batch_size=2, sampler=sampler)]
    assert batches == [[1.0, 3.0], [5.0, 7.0], [9.0]]
