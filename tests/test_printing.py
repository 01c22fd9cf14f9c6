"""Tensors print as PyTorch prints them, character for character: the same element format,
alignment, line breaks, summarising and suffixes, under every print option."""

import re

import numpy as np
import pytest

import gradient

torch = pytest.importorskip("torch")

DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int8", "uint8", "bool"]


def _pair(values, dtype, requires_grad=False):
    return (torch.tensor(values, dtype=getattr(torch, dtype), requires_grad=requires_grad),
            gradient.tensor(values, dtype=getattr(gradient, dtype), requires_grad=requires_grad))


def _same(theirs, ours):
    """torch's text and ours, the dtype's name aside: gradient's dtypes print as
    ``gradient.float16``, three characters longer, so a suffix may go to a line of its own
    where torch's fits."""
    def unwrap(text):
        return re.sub(r",\n +(dtype|requires_grad|grad_fn)", r", \1", text)
    assert unwrap(ours.replace("gradient.", "torch.")) == unwrap(theirs)


@pytest.fixture
def options():
    """Print options set for both libraries, reset after the test."""
    def set_both(**kw):
        torch.set_printoptions(**kw)
        gradient.set_printoptions(**kw)
    yield set_both
    torch.set_printoptions(profile="default")
    gradient.set_printoptions(profile="default")


@pytest.mark.parametrize("values", [
    [True], [True, False], [1.5, -2.25, 100.0], [1e-5, 1.0], [1e9, 1.0], [1.0, 1000.0, 1e5],
    [[1.0, -1.0], [10.0, 0.5]], [float("nan"), 1.0, float("inf")], [float("nan")], [0.0, -0.0],
    [[1, -20], [300, 4]], [123456.0, 0.5], [2000.5, 1.0], 3.5, 7, 1e-7, True, [[]], [],
    list(range(1200)), np.linspace(-1, 1, 1500).reshape(30, 50).tolist(),
    [[[1.0, 2.0]], [[3.0, 4.0]]], np.arange(4000.0).reshape(10, 20, 20).tolist()])
@pytest.mark.parametrize("dtype", DTYPES)
def test_examples_print_as_in_pytorch(values, dtype):
    as_float = np.asarray(values, np.float64)
    if dtype.startswith(("int", "uint")) and not (
            np.isfinite(as_float).all() and np.iinfo(dtype).min <= as_float.min(initial=0)
            and as_float.max(initial=0) <= np.iinfo(dtype).max):
        pytest.skip("values an integer dtype does not hold")
    theirs, ours = _pair(values, dtype)
    _same(repr(theirs), repr(ours))
    _same(str(theirs), str(ours))


def test_random_tensors_print_as_in_pytorch_under_random_options(options):
    rng = np.random.default_rng(0)
    for _ in range(600):
        ndim = int(rng.integers(0, 4))
        shape = tuple(int(s) for s in rng.integers(1, 14 if ndim < 3 else 6, ndim))
        values = rng.standard_normal(shape) * 10.0 ** int(rng.integers(-9, 10))
        if rng.random() < 0.3:
            values = np.round(values * 4) / 4
        if rng.random() < 0.2 and values.size:
            values.flat[int(rng.integers(0, values.size))] = rng.choice(
                [np.nan, np.inf, -np.inf, 0.0, -0.0])
        dtype = str(rng.choice(DTYPES))
        if dtype == "bool":
            values = values > 0
        elif dtype.startswith(("int", "uint")):
            limit = {"int8": 127, "uint8": 255}.get(dtype, 1e9)
            values = np.clip(np.nan_to_num(values, posinf=0, neginf=0), 0 if dtype == "uint8"
                             else -limit, limit).astype(np.int64)
        if rng.random() < 0.5:
            options(precision=int(rng.integers(0, 8)), threshold=int(rng.choice([5, 50, 1000])),
                    edgeitems=int(rng.integers(0, 4)), linewidth=int(rng.choice([20, 40, 80])),
                    sci_mode=[None, True, False][int(rng.integers(0, 3))])
        theirs, ours = _pair(values, dtype, requires_grad=dtype in ("float32", "float64")
                             and rng.random() < 0.3)
        _same(repr(theirs), repr(ours))
        options(profile="default")


def test_suffixes_and_empty_tensors():
    for make in (lambda lib: lib.zeros(0, 3), lambda lib: lib.zeros(0, dtype=lib.int64),
                 lambda lib: lib.zeros(0, dtype=lib.float16), lambda lib: lib.ones(2) * 3,
                 lambda lib: lib.ones(40, requires_grad=True),
                 lambda lib: lib.zeros(2, 3, 0, dtype=lib.bool)):
        _same(repr(make(torch)), repr(make(gradient)))
    assert repr(gradient.ones(2, requires_grad=True) * 3).endswith("grad_fn=<MulBackward>)")


def test_printoptions_apply_inside_the_block_only():
    x = gradient.tensor([1 / 3])
    with gradient.printoptions(precision=2, linewidth=40):
        assert repr(x) == "tensor([0.33])"
        assert gradient.get_printoptions()["linewidth"] == 40
    assert repr(x) == "tensor([0.3333])"
    assert gradient.get_printoptions() == dict(precision=4, threshold=1000, edgeitems=3,
                                               linewidth=80, sci_mode=None)
