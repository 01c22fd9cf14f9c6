"""gradient.utils.data against torch.utils.data: batches, collation, splits, samplers, errors.

Where the result is deterministic (sequential order, batch shapes, collation, lengths, error
messages) it is compared with PyTorch's; random orders come from gradient's generator, so
they are checked for their properties (permutations, reproducibility, a new order per epoch).
"""

import collections
import re
import warnings

import numpy as np
import pytest
import torch
import torch.utils.data as tud

import gradient
import gradient.utils.data as gud
from gradient.errors import ArgumentTypeError
from gradient.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset,
                                 IterableDataset, RandomSampler, SequentialSampler, Subset,
                                 SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
                                 default_collate, default_convert, random_split)
from gradient.utils.data.collate import collate, default_collate_fn_map

Point = collections.namedtuple("Point", "x y")


# ---------------------------------------------------------------------- helpers
def plain(obj):
    """A batch of either library as plain Python: tensors become ('tensor', dtype, values)."""
    if isinstance(obj, (gradient.Tensor, torch.Tensor)):
        return ("tensor", str(obj.dtype).split(".")[-1], obj.tolist())
    if isinstance(obj, dict):
        return {"type": type(obj).__name__, **{k: plain(v) for k, v in obj.items()}}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return ("namedtuple", type(obj).__name__, [plain(v) for v in obj])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [plain(v) for v in obj])
    return obj


def arrays(n=10, seed=0):
    r = np.random.default_rng(seed)
    return r.standard_normal((n, 3)).astype(np.float32), np.arange(n, dtype=np.int64)


def tensor_datasets(n=10):
    x, y = arrays(n)
    return (TensorDataset(gradient.tensor(x), gradient.tensor(y)),
            tud.TensorDataset(torch.tensor(x), torch.tensor(y)))


def batches(loader):
    return [plain(b) for b in loader]


def order(loader):
    """The sample ids of one epoch of a loader over ``tensor_datasets`` (y is the id)."""
    return [i for _, y in loader for i in y.tolist()]


# ---------------------------------------------------------------------- DataLoader, sequential
@pytest.mark.parametrize("n,batch_size", [(10, 1), (10, 3), (10, 5), (12, 4), (10, 10), (7, 20)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sequential_batches_match_torch(n, batch_size, drop_last):
    ours, theirs = tensor_datasets(n)
    a = DataLoader(ours, batch_size=batch_size, drop_last=drop_last)
    b = tud.DataLoader(theirs, batch_size=batch_size, drop_last=drop_last)
    assert len(a) == len(b)
    assert batches(a) == batches(b)
    assert len(batches(a)) == len(a)


def test_tensor_dataset_fast_path_equals_stacking_rows():
    x = gradient.randn(11, 2, 3)
    y = gradient.arange(11)
    w = gradient.randn(11, requires_grad=True)
    ds = TensorDataset(x, y, w)
    sub = Subset(Subset(ds, list(range(10, -1, -1))), [0, 2, 4, 6, 8, 10, 1])
    for dataset in (ds, sub):
        fast = list(DataLoader(dataset, batch_size=4))
        slow = list(DataLoader(dataset, batch_size=4, collate_fn=lambda b: default_collate(b)))
        assert batches(fast) == batches(slow)
        assert [b[2].requires_grad for b in fast] == [True] * len(fast)
    # the gradient flows back through a fast batch to the dataset's tensor
    batch = next(iter(DataLoader(sub, batch_size=3)))
    batch[2].sum().backward()
    assert w.grad.tolist() == [1.0 if i in (10, 8, 6) else 0.0 for i in range(11)]


def test_iterating_twice_and_len_of_iterator():
    ours, _ = tensor_datasets(10)
    loader = DataLoader(ours, batch_size=4)
    it = iter(loader)
    assert len(it) == 3
    xb, yb = next(it)
    assert tuple(xb.shape) == (4, 3) and yb.tolist() == [0, 1, 2, 3]
    assert order(loader) == order(loader) == list(range(10))


def test_batch_size_none_matches_torch():
    x, y = arrays(4)
    samples = [{"x": x[i], "y": int(y[i]), "name": f"s{i}"} for i in range(4)]
    a = DataLoader(samples, batch_size=None)
    b = tud.DataLoader(samples, batch_size=None)
    assert len(a) == len(b) == 4
    assert batches(a) == batches(b)
    assert isinstance(next(iter(a))["x"], gradient.Tensor)  # default_convert made it a tensor


def test_custom_dataset_and_batch_sampler_match_torch():
    class Squares:
        def __len__(self):
            return 9

        def __getitem__(self, i):
            return np.full(2, i, dtype=np.float32), i * i, float(i) / 2

    for kwargs in ({"batch_size": 4}, {"batch_sampler": [[8, 0], [3, 4, 5], [1]]},
                   {"sampler": [8, 1, 5, 2], "batch_size": 3}):
        assert batches(DataLoader(Squares(), **kwargs)) == batches(tud.DataLoader(Squares(),
                                                                                  **kwargs))


def test_getitems_is_used_for_batches():
    class Batched(Dataset):
        calls = []

        def __len__(self):
            return 6

        def __getitem__(self, i):
            raise AssertionError("__getitems__ should be used")

        def __getitems__(self, indices):
            self.calls.append(list(indices))
            return [(i, -i) for i in indices]

    out = batches(DataLoader(Batched(), batch_size=4))
    assert out == batches(tud.DataLoader([(i, -i) for i in range(6)], batch_size=4))
    assert Batched.calls == [[0, 1, 2, 3], [4, 5]]


# ---------------------------------------------------------------------- collation
def test_default_collate_nested_structures_match_torch():
    def sample(i, lib):
        t = gradient.tensor if lib == "gradient" else torch.tensor
        return {
            "tensor": t([[i, i + 1]], dtype=getattr(gradient if lib == "gradient" else torch,
                                                    "float32")),
            "array": np.arange(3, dtype=np.int32) + i,
            "int": i, "float": i / 3, "bool": i % 2 == 0, "str": f"s{i}", "bytes": b"b",
            "np": (np.float32(i), np.float64(i), np.int16(i), np.bool_(i)),
            "point": Point(i, [i * 1.5, i]),
            "list": [i, {"deep": np.zeros((2, 1)) + i}],
        }

    ours = default_collate([sample(i, "gradient") for i in range(3)])
    theirs = tud.default_collate([sample(i, "torch") for i in range(3)])
    assert plain(ours) == plain(theirs)
    assert plain(ours)["float"][1] == "float64" and plain(ours)["int"][1] == "int64"
    assert isinstance(ours["point"], Point) and isinstance(ours["list"], list)


def test_default_collate_keeps_sequence_and_mapping_types():
    ordered = [collections.OrderedDict(a=i, b=2.0) for i in range(2)]
    out = default_collate(ordered)
    assert type(out) is collections.OrderedDict
    assert plain(out) == plain(tud.default_collate(ordered))
    tuples = [(1, 2.5), (3, 4.5)]
    assert plain(default_collate(tuples)) == plain(tud.default_collate(tuples))  # a list
    assert type(default_collate(tuples)) is list


def test_default_collate_stacks_tensors_with_autograd():
    rows = [gradient.randn(3, requires_grad=True) for _ in range(4)]
    out = default_collate(rows)
    assert out.requires_grad and tuple(out.shape) == (4, 3)
    out.sum().backward()
    assert rows[2].grad.tolist() == [1.0, 1.0, 1.0]
    mixed = [gradient.tensor([1, 2], dtype=gradient.int32),
             gradient.tensor([1.5, 2], dtype=gradient.float16)]
    theirs = [torch.tensor([1, 2], dtype=torch.int32), torch.tensor([1.5, 2], dtype=torch.float16)]
    assert plain(default_collate(mixed)) == plain(tud.default_collate(theirs))


@pytest.mark.parametrize("batch,error,match", [
    ([np.array(["a"]), np.array(["b"])], TypeError, "batch must contain"),
    ([object(), object()], TypeError, "batch must contain tensors"),
    ([[1, 2], [3]], RuntimeError, "each element in list of batch should be of equal size"),
    ([gradient.zeros(2), gradient.zeros(3)], ValueError, "equal size"),
])
def test_default_collate_errors(batch, error, match):
    with pytest.raises(error, match=match):
        default_collate(batch)


def test_default_convert_matches_torch():
    data = (np.arange(3), "a", 1.5, {"k": np.ones((2,), np.float32), "n": np.int64(4)},
            Point(np.zeros(1), 2), [np.array(["x"]), b"y"])
    ours, theirs = default_convert(data), tud.default_convert(data)
    assert isinstance(ours, list) and isinstance(ours[0], gradient.Tensor)
    # torch leaves string arrays alone; plain() cannot compare arrays, so compare them apart
    assert ours[5][0] is data[5][0] and theirs[5][0] is data[5][0]
    ours[5][0] = theirs[5][0] = "array"
    assert plain(ours) == plain(theirs)


def test_collate_with_a_custom_map():
    joined = {**default_collate_fn_map, str: lambda b, *, collate_fn_map=None: "".join(b)}
    assert collate([("a", 1), ("b", 2)], collate_fn_map=joined)[0] == "ab"


# ---------------------------------------------------------------------- datasets
def test_tensor_dataset_indexing_and_errors():
    ours, theirs = tensor_datasets(5)
    assert len(ours) == len(theirs) == 5
    for i in (0, 3, -1):
        assert plain(ours[i]) == plain(theirs[i])
    with pytest.raises(ValueError, match=r"same size in dimension 0.*\[5, 4\]"):
        TensorDataset(gradient.zeros(5, 2), gradient.zeros(4))
    with pytest.raises(gradient.ShapeError, match="0-d"):
        TensorDataset(gradient.zeros(5), gradient.tensor(1.0))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()


def test_subset_and_concat_indexing_match_torch():
    a, b = list(range(10, 15)), list(range(100, 103))
    ours = ConcatDataset([a, Subset(b, [2, 0])]) + Subset(a, [4, 1, 3])
    theirs = tud.ConcatDataset([a, tud.Subset(b, [2, 0])]) + tud.Subset(a, [4, 1, 3])
    assert isinstance(ours, ConcatDataset)
    assert len(ours) == len(theirs) == 10
    assert [ours[i] for i in range(-10, 10)] == [theirs[i] for i in range(-10, 10)]
    assert ours.cumulative_sizes == theirs.cumulative_sizes
    with pytest.raises(ValueError, match="absolute value of index should not exceed"):
        ours[-11]
    with pytest.raises(IndexError):
        ours[10]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])


def test_subset_list_index_reads_the_dataset_once():
    seen = []

    class Rows:
        def __getitem__(self, idx):
            seen.append(idx)
            return idx

    assert Subset(Rows(), [5, 6, 7])[[2, 0]] == [7, 5]
    assert seen == [[7, 5]]


class Stream(IterableDataset):
    def __init__(self, n, with_len=True):
        self.n, self.with_len = n, with_len

    def __iter__(self):
        return iter({"i": i, "sq": np.float32(i * i)} for i in range(self.n))

    def __len__(self):
        if not self.with_len:
            raise TypeError("no len")
        return self.n


class TorchStream(tud.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter({"i": i, "sq": np.float32(i * i)} for i in range(self.n))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("kwargs", [{"batch_size": 3}, {"batch_size": 3, "drop_last": True},
                                    {"batch_size": 5}, {"batch_size": None}, {}])
def test_iterable_dataset_matches_torch(kwargs):
    a, b = DataLoader(Stream(10), **kwargs), tud.DataLoader(TorchStream(10), **kwargs)
    assert len(a) == len(b)
    assert batches(a) == batches(b)
    assert batches(a) == batches(a)  # a second epoch reads the stream again


def test_iterable_dataset_options():
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(Stream(3), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler option"):
        DataLoader(Stream(3), sampler=[0, 1])
    with pytest.raises(TypeError):
        len(DataLoader(Stream(3, with_len=False)))
    chained = Stream(2) + Stream(3)
    assert [d["i"] for d in chained] == [0, 1, 0, 1, 2] and len(chained) == 5
    with pytest.raises(TypeError, match="does not support IterableDataset"):
        ConcatDataset([Stream(2)])
    assert gud.get_worker_info() is None


# ---------------------------------------------------------------------- random_split
@pytest.mark.parametrize("n,lengths", [(10, [3, 7]), (10, [0.3, 0.3, 0.4]), (11, [0.3, 0.3, 0.4]),
                                       (7, [0.5, 0.5]), (5, [1.0]), (13, [0.1, 0.2, 0.3, 0.4]),
                                       (3, [0.0, 0.5, 0.5])])
def test_random_split_sizes_match_torch_and_partition(n, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # splits of length 0 warn, in both libraries
        ours = random_split(list(range(100, 100 + n)), lengths)
        theirs = tud.random_split(list(range(n)), lengths)
    assert [len(s) for s in ours] == [len(s) for s in theirs]
    items = [x for s in ours for x in (s[i] for i in range(len(s)))]
    assert sorted(items) == list(range(100, 100 + n))  # disjoint and covering


def test_random_split_reproducible_and_errors():
    g = lambda: gradient.Generator().manual_seed(7)  # noqa: E731
    first = [s.indices for s in random_split(range(20), [5, 15], generator=g())]
    assert first == [s.indices for s in random_split(range(20), [5, 15], generator=g())]
    gradient.manual_seed(3)
    a = [s.indices for s in random_split(range(20), [0.5, 0.5])]
    gradient.manual_seed(3)
    assert a == [s.indices for s in random_split(range(20), [0.5, 0.5])]
    assert a != [list(range(10)), list(range(10, 20))]
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        random_split(range(10), [3, 6])
    with pytest.raises(ValueError, match="Fraction at index 1 is not between 0 and 1"):
        random_split(range(10), [0.5, 1.5, -1.0])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(range(2), [1.0, 0.0])


# ---------------------------------------------------------------------- samplers
@pytest.mark.parametrize("n,batch_size,drop_last", [(10, 3, False), (10, 3, True), (9, 3, True),
                                                    (2, 5, False), (2, 5, True), (0, 2, False)])
def test_batch_sampler_matches_torch(n, batch_size, drop_last):
    ours = BatchSampler(SequentialSampler(range(n)), batch_size, drop_last)
    theirs = tud.BatchSampler(tud.SequentialSampler(range(n)), batch_size, drop_last)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)


@pytest.mark.parametrize("build", [
    lambda m: m.BatchSampler(range(3), 0, False),
    lambda m: m.BatchSampler(range(3), True, False),
    lambda m: m.BatchSampler(range(3), 2, 1),
    lambda m: m.RandomSampler(range(3), replacement=1),
    lambda m: m.RandomSampler(range(3), num_samples=0),
    lambda m: m.RandomSampler([]),
    lambda m: m.WeightedRandomSampler([1.0, 2.0], 0),
    lambda m: m.WeightedRandomSampler([1.0, 2.0], 2, replacement=None),
    lambda m: m.WeightedRandomSampler([[1.0, 2.0]], 2),
])
def test_sampler_errors_match_torch(build):
    with pytest.raises((ValueError, TypeError)) as theirs:
        build(tud)
    with pytest.raises(type(theirs.value), match="^" + re.escape(str(theirs.value)) + "$"):
        build(gud)


def test_random_sampler_permutations_and_replacement():
    gradient.manual_seed(0)
    s = RandomSampler(range(10))
    e1, e2 = list(s), list(s)
    assert sorted(e1) == sorted(e2) == list(range(10)) and e1 != e2 and len(s) == 10
    tails = set()
    for _ in range(10):
        long = list(RandomSampler(range(4), num_samples=10))
        assert sorted(long[:4]) == sorted(long[4:8]) == [0, 1, 2, 3] and len(long) == 10
        assert len(set(long[8:])) == 2  # the start of a third permutation
        tails.add(tuple(long[8:]))
    assert len(tails) > 1
    draws = list(RandomSampler(range(3), replacement=True, num_samples=2000))
    assert len(draws) == 2000 and set(draws) == {0, 1, 2}
    assert all(isinstance(i, int) for i in draws[:5])


def test_subset_random_sampler():
    gradient.manual_seed(1)
    s = SubsetRandomSampler([4, 8, 15, 16])
    e1, e2 = list(s), list(s)
    assert sorted(e1) == sorted(e2) == [4, 8, 15, 16] and len(s) == 4
    assert [list(SubsetRandomSampler(range(20), generator=gradient.Generator().manual_seed(5)))
            for _ in range(2)][0] == list(SubsetRandomSampler(
                range(20), generator=gradient.Generator().manual_seed(5)))


def test_weighted_random_sampler_respects_weights():
    g = gradient.Generator().manual_seed(0)
    weights = [0.0, 1.0, 0.0, 3.0, 0.0]
    draws = list(WeightedRandomSampler(weights, 4000, generator=g))
    counts = np.bincount(draws, minlength=5)
    assert counts[0] == counts[2] == counts[4] == 0
    assert 0.7 < counts[3] / 4000 < 0.8  # 3/4 expected
    without = list(WeightedRandomSampler(weights, 2, replacement=False, generator=g))
    assert sorted(without) == [1, 3]
    assert len(WeightedRandomSampler(gradient.tensor([1.0, 2.0]), 7)) == 7


# ---------------------------------------------------------------------- shuffling
def test_shuffle_reproducible_under_manual_seed_and_new_each_epoch():
    ours, _ = tensor_datasets(20)
    loader = DataLoader(ours, batch_size=6, shuffle=True)
    gradient.manual_seed(0)
    e1, e2 = order(loader), order(loader)
    gradient.manual_seed(0)
    assert [order(loader), order(loader)] == [e1, e2]
    assert sorted(e1) == sorted(e2) == list(range(20))
    assert e1 != e2 and e1 != list(range(20))


def test_shuffle_order_does_not_depend_on_randomness_used_during_the_epoch():
    # one seed per epoch is taken from the default generator, as in PyTorch; random numbers
    # drawn in the training step must not change the rest of the epoch's order
    ours, _ = tensor_datasets(30)
    loader = DataLoader(ours, batch_size=4, shuffle=True)
    gradient.manual_seed(0)
    quiet = order(loader)
    gradient.manual_seed(0)
    busy = []
    for _, y in loader:
        busy += y.tolist()
        gradient.randn(5)  # dropout, noise... in the training step
    assert busy == quiet
    # draws with replacement come in chunks: the later chunks must not shift either
    sampler = RandomSampler(range(5), replacement=True, num_samples=2500)
    gradient.manual_seed(0)
    quiet = list(sampler)
    gradient.manual_seed(0)
    busy = []
    for i in sampler:
        busy.append(i)
        gradient.randn(1)
    assert busy == quiet


def test_shuffle_with_generator():
    ours, _ = tensor_datasets(20)
    a = DataLoader(ours, batch_size=5, shuffle=True, generator=gradient.Generator().manual_seed(1))
    b = DataLoader(ours, batch_size=5, shuffle=True, generator=gradient.Generator().manual_seed(1))
    gradient.manual_seed(0)
    ea = [order(a), order(a)]
    gradient.manual_seed(99)  # the default generator plays no part
    assert [order(b), order(b)] == ea and ea[0] != ea[1]


# ---------------------------------------------------------------------- DataLoader options
@pytest.mark.parametrize("kwargs", [
    {"sampler": [0, 1], "shuffle": True},
    {"batch_sampler": [[0]], "batch_size": 2},
    {"batch_sampler": [[0]], "shuffle": True},
    {"batch_sampler": [[0]], "sampler": [0]},
    {"batch_sampler": [[0]], "drop_last": True},
    {"batch_size": None, "drop_last": True},
    {"num_workers": -1},
    {"timeout": -1},
    {"prefetch_factor": 2},
    {"num_workers": 1, "prefetch_factor": -1},
    {"persistent_workers": True},
    {"multiprocessing_context": "spawn"},
    {"batch_size": 0},
])
def test_dataloader_errors_match_torch(kwargs):
    ours, theirs = tensor_datasets(4)
    with pytest.raises(ValueError) as expected:
        tud.DataLoader(theirs, **kwargs)
    with pytest.raises(ValueError) as got, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        DataLoader(ours, **kwargs)
    assert str(got.value) == str(expected.value)


def test_attributes_are_fixed_after_init():
    ours, _ = tensor_datasets(4)
    loader = DataLoader(ours, batch_size=2)
    with pytest.raises(ValueError, match="batch_size attribute should not be set after DataLoader"):
        loader.batch_size = 3
    loader.collate_fn = default_collate  # not one of the fixed ones
    assert isinstance(loader.sampler, SequentialSampler) and loader.batch_sampler.batch_size == 2


def test_num_workers_and_pin_memory_run_in_process():
    ours, theirs = tensor_datasets(9)
    with pytest.warns(UserWarning, match="main process only; num_workers=2"):
        loader = DataLoader(ours, batch_size=4, num_workers=2, pin_memory=True,
                            persistent_workers=True, worker_init_fn=lambda i: 1 / 0)
    assert batches(loader) == batches(tud.DataLoader(theirs, batch_size=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DataLoader(ours, batch_size=4, pin_memory=True)  # no warning without workers


# ---------------------------------------------------------------------- end to end
def test_training_loop_with_dataloader_decreases_loss():
    nn, F = gradient.nn, gradient.nn.functional
    gradient.manual_seed(0)
    x = gradient.randn(256, 4)
    w_true = gradient.tensor([[1.0], [-2.0], [0.5], [3.0]])
    y = x @ w_true + 0.01 * gradient.randn(256, 1)
    train, val = random_split(TensorDataset(x, y), [0.75, 0.25])
    loader = DataLoader(train, batch_size=32, shuffle=True, drop_last=True)
    model = nn.Linear(4, 1)
    opt = gradient.optim.SGD(model.parameters(), lr=0.1)

    def val_loss():
        with gradient.no_grad():
            xs, ys = next(iter(DataLoader(val, batch_size=len(val))))
            return F.mse_loss(model(xs), ys).item()

    before = val_loss()
    assert len(loader) == 6
    for _ in range(5):
        for xb, yb in loader:
            assert tuple(xb.shape) == (32, 4)
            loss = F.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    after = val_loss()
    assert after < 0.01 * before and after < 1e-2


@pytest.mark.parametrize("call, message", [
    (lambda ds: DataLoader(ds, num_workers="2"), "DataLoader: num_workers must be an integer"),
    (lambda ds: DataLoader(ds, timeout=None), "DataLoader: timeout must be a number"),
    (lambda ds: DataLoader(ds, sampler=3), "DataLoader: sampler must be a Sampler"),
    (lambda ds: DataLoader(ds, batch_sampler=0), "DataLoader: batch_sampler must be a Sampler"),
    (lambda ds: DataLoader(ds, collate_fn="stack"), "DataLoader: collate_fn must be a function"),
    (lambda ds: DataLoader(ds, worker_init_fn=1), "DataLoader: worker_init_fn must be a function"),
    (lambda ds: DataLoader(ds, generator=0), "DataLoader: generator must be a gradient.Generator"),
    (lambda ds: random_split(ds, 5), "random_split: lengths must be a sequence"),
    (lambda ds: random_split(ds, ["a", 5]), "random_split: each length must be a number"),
    (lambda ds: Subset(ds, 3), "Subset: indices must be a sequence of integers"),
    (lambda ds: Subset(ds, "ab"), "Subset: indices must be a sequence of integers"),
])
def test_arguments_of_the_wrong_kind_are_named_where_torch_refuses_them(call, message):
    """PyTorch raises a TypeError for each (at once, or at the first batch); gradient's
    messages name the argument (Python's "'int' object is not callable" at the first batch,
    or "'<' not supported between instances of 'str' and 'int'", before)."""
    dataset = TensorDataset(gradient.arange(10.0))
    with pytest.raises(ArgumentTypeError, match=message):
        list(call(dataset))
