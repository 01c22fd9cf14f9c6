"""gradient.testing against torch.testing: assert_close passes and fails where torch's does, with
the same message; make_tensor draws from torch's ranges."""

import math
import re

import numpy as np
import pytest
import torch

import gradient
from gradient.testing import assert_close, make_tensor

NAN, INF = float("nan"), float("inf")


def T(m, values, dtype="float32"):
    return m.tensor(values, dtype=getattr(m, dtype))


# Each case builds its inputs with m = gradient or m = torch: (actual, expected, keyword arguments)
CASES = {
    "equal": lambda m: (T(m, [1.0, 2.0]), T(m, [1.0, 2.0]), {}),
    "within float32 tolerance": lambda m: (T(m, [1.0, 2.0]), T(m, [1.0, 2.0 + 2e-6]), {}),
    "one element off": lambda m: (T(m, [1.0, 2.0, 3.0]), T(m, [1.0, 2.5, 3.0]), {}),
    "2-d, index of the worst": lambda m: (T(m, [[0.0, 2.0], [3.0, 4.0]]), T(m, [[1e-9, 2.0], [3.0, 4.1]]), {}),
    "dtype mismatch": lambda m: (T(m, [1.0]), T(m, [1.0], "float64"), {}),
    "dtype mismatch allowed": lambda m: (T(m, [1.0, 2.0]), T(m, [1.0, 2.0], "float64"), dict(check_dtype=False)),
    "dtype mismatch allowed, float32 tolerance": lambda m: (T(m, [1.0]), T(m, [1.000001], "float64"),
                                                           dict(check_dtype=False)),
    "float vs int allowed": lambda m: (T(m, [1.0, 2.0]), T(m, [1, 2], "int64"), dict(check_dtype=False)),
    "shape mismatch": lambda m: (T(m, [1.0, 2.0]), T(m, [1.0, 2.0, 3.0]), {}),
    "integers exact": lambda m: (T(m, [1, 2], "int64"), T(m, [1, 3], "int64"), {}),
    "integers 2-d": lambda m: (T(m, [[0, 0], [0, 0]], "int64"), T(m, [[0, 0], [0, 3]], "int64"), {}),
    "uint8 no wrap-around": lambda m: (T(m, [3], "uint8"), T(m, [5], "uint8"), {}),
    "integers with tolerance": lambda m: (T(m, [5, 6], "int64"), T(m, [5, 7], "int64"), dict(atol=1, rtol=0)),
    "bool": lambda m: (T(m, [True, False], "bool"), T(m, [True, True], "bool"), {}),
    "nan": lambda m: (T(m, [1.0, NAN]), T(m, [1.0, NAN]), {}),
    "nan equal_nan": lambda m: (T(m, [1.0, NAN]), T(m, [1.0, NAN]), dict(equal_nan=True)),
    "nan vs number": lambda m: (T(m, [1.0, NAN]), T(m, [1.0, 2.0]), dict(equal_nan=True)),
    "inf equal": lambda m: (T(m, [1.0, INF]), T(m, [1.0, INF]), {}),
    "inf vs -inf": lambda m: (T(m, [1.0, INF]), T(m, [1.0, -INF]), {}),
    "only mismatches count": lambda m: (T(m, [1e6, 0.0]), T(m, [1e6 + 1, 1e-3]), {}),   # 1 is within 1.3e6 * rtol
    "expected zero": lambda m: (T(m, [1e-4, 1.0]), T(m, [0.0, 1.0]), {}),
    "explicit tolerances pass": lambda m: (T(m, [1.0]), T(m, [1.1]), dict(rtol=0.2, atol=0.0)),
    "explicit tolerances fail": lambda m: (T(m, [1.0]), T(m, [1.1]), dict(rtol=0.05, atol=0.0)),
    "rtol without atol": lambda m: (T(m, [1.0]), T(m, [1.1]), dict(rtol=0.2)),
    "atol without rtol": lambda m: (T(m, [1.0]), T(m, [1.0]), dict(atol=0.2)),
    "0-d": lambda m: (T(m, 1.0), T(m, 2.0), {}),
    "0-d int": lambda m: (T(m, 1, "int64"), T(m, 2, "int64"), {}),
    "empty": lambda m: (T(m, []), T(m, []), {}),
    "float16 in tolerance": lambda m: (T(m, [1.0, 2.0], "float16"), T(m, [1.0005, 2.0], "float16"), {}),
    "float16 out of tolerance": lambda m: (T(m, [1.0, 2.0], "float16"), T(m, [1.01, 2.0], "float16"), {}),
    "bfloat16 in tolerance": lambda m: (T(m, [1.0, 2.0], "bfloat16"), T(m, [1.01, 2.0], "bfloat16"), {}),
    "bfloat16 out of tolerance": lambda m: (T(m, [1.0, 2.0], "bfloat16"), T(m, [1.05, 2.0], "bfloat16"), {}),
    "float32 out of tolerance": lambda m: (T(m, [100.0]), T(m, [100.001]), {}),
    "float64 in tolerance": lambda m: (T(m, [1.0], "float64"), T(m, [1.0 + 1e-7], "float64"), {}),
    "float64 out of tolerance": lambda m: (T(m, [1.0], "float64"), T(m, [1.0 + 3e-7], "float64"), {}),
    "strides ignored": lambda m: (m.ones(2, 3).T, m.ones(3, 2), {}),
    "strides checked": lambda m: (m.ones(2, 3).T, m.ones(3, 2), dict(check_stride=True)),
    "requires_grad ignored": lambda m: (m.ones(2, requires_grad=True), m.ones(2), {}),
    "msg string": lambda m: (T(m, [1.0]), T(m, [2.0]), dict(msg="custom message")),
    "msg callable": lambda m: (T(m, [1.0]), T(m, [2.0]), dict(msg=lambda s: f"Header\n{s}\nFooter")),
    # Python numbers, sequences, mappings
    "int vs float": lambda m: (1, 1.0, {}),
    "int vs float allowed": lambda m: (1, 1.0, dict(check_dtype=False)),
    "floats close": lambda m: (1.0, 1.0 + 1e-9, {}),
    "floats far": lambda m: (1.0, 1.1, {}),
    "ints": lambda m: (1, 2, {}),
    "bools": lambda m: (True, False, {}),
    "float nan": lambda m: (NAN, NAN, {}),
    "float nan equal_nan": lambda m: (NAN, NAN, dict(equal_nan=True)),
    "numpy scalars": lambda m: (np.float32(1.0), np.float32(1.0), {}),
    "numpy scalar vs float": lambda m: (np.float64(1.0), 1.5, {}),
    "numpy arrays": lambda m: (np.array([1.0, 2.0]), np.array([1.0, 2.5]), {}),
    "numpy array vs tensor": lambda m: (np.array([1.0]), T(m, [1.0], "float64"), {}),
    "tensor vs number": lambda m: (T(m, 1.0), 1.0, {}),
    "none": lambda m: (None, None, {}),
    "strings": lambda m: ("a", "a", {}),
    "list of tensors": lambda m: ([T(m, 1.0), T(m, [2.0])], [T(m, 1.0), T(m, [2.5])], {}),
    "list vs tuple": lambda m: ([T(m, 1.0), 2], (T(m, 1.0), 2), {}),
    "sequence lengths": lambda m: ([T(m, 1.0)], [T(m, 1.0), T(m, 2.0)], {}),
    "nested mapping": lambda m: ({"a": T(m, 1.0), "b": [1.0, T(m, [2.0, 3.0])]},
                                 {"a": T(m, 1.0), "b": [1.0, T(m, [2.0, 4.0])]}, {}),
    "mapping keys": lambda m: ({"a": T(m, 1.0), "c": 1}, {"b": T(m, 1.0), "c": 1}, {}),
    "mapping vs list": lambda m: ({"a": T(m, 1.0)}, [T(m, 1.0)], {}),
    "nested with msg callable": lambda m: ([T(m, [1.0])], [T(m, [2.0])], dict(msg=lambda s: "X: " + s)),
}


def outcome(fn, case, m):
    actual, expected, kwargs = case(m)
    try:
        fn(actual, expected, **kwargs)
    except Exception as e:   # noqa: BLE001  (the outcome is what is compared)
        return type(e), str(e)
    return None, None


def as_torch_words(msg: str) -> str:
    """Our message in torch's words: gradient.X names become torch.X, our 'what to do' hints go."""
    msg = msg.replace("<class 'gradient.tensor.Tensor'>", "<class 'torch.Tensor'>")
    msg = re.sub(r"gradient\.(Size|float|int|uint|bool|bfloat)", r"torch.\1", msg)
    return re.sub(r" Compare tensors with tensors.*$", "", msg, flags=re.S)


@pytest.mark.parametrize("name", list(CASES))
def test_assert_close_agrees_with_torch(name):
    ours = outcome(assert_close, CASES[name], gradient)
    theirs = outcome(torch.testing.assert_close, CASES[name], torch)
    # the same class, or gradient's own subclass of it (ArgumentValueError for ValueError)
    assert ours[0] is theirs[0] or (ours[0] is not None and theirs[0] is not None and
                                    issubclass(ours[0], theirs[0])), (ours, theirs)
    if ours[0] is not None:
        assert as_torch_words(ours[1]) == theirs[1]


def test_failure_message_contents():
    with pytest.raises(AssertionError) as info:
        assert_close(gradient.tensor([[1.0, 2.0], [3.0, 4.0]]), gradient.tensor([[1.0, 2.0], [3.5, 8.0]]))
    assert str(info.value) == (
        "Tensor-likes are not close!\n\n"
        "Mismatched elements: 2 / 4 (50.0%)\n"
        "Greatest absolute difference: 4.0 at index (1, 1) (up to 1e-05 allowed)\n"
        "Greatest relative difference: 0.5 at index (1, 1) (up to 1.3e-06 allowed)")


def test_nested_failure_says_where():
    with pytest.raises(AssertionError, match=re.escape("The failure occurred for item ['b'][1]")):
        assert_close({"a": 1, "b": [0.5, gradient.tensor([1.0])]}, {"a": 1, "b": [0.5, gradient.tensor([1.5])]})


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_default_tolerances_per_dtype_match_torch(dtype):
    """Around 1.0, from far inside the dtype's tolerance to far outside: pass/fail as torch."""
    outcomes = []
    for offset in np.geomspace(1e-9, 1e-1, 33):
        ours = _passes(lambda: assert_close(T(gradient, [1.0 + offset], dtype), T(gradient, [1.0], dtype)))
        theirs = _passes(lambda: torch.testing.assert_close(T(torch, [1.0 + offset], dtype), T(torch, [1.0], dtype)))
        assert ours is theirs, (dtype, offset)
        outcomes.append(ours)
    assert True in outcomes and False in outcomes   # the boundary was crossed


def test_explicit_tolerances_replace_the_defaults():
    expected = gradient.tensor([100.0], dtype=gradient.float64)
    assert_close(expected + 1.9, expected, rtol=0.01, atol=1.0)          # 1.9 <= 1 + 0.01 * 100
    with pytest.raises(AssertionError, match=re.escape("(up to 1.0 allowed)")):
        assert_close(expected + 2.1, expected, rtol=0.01, atol=1.0)


def _passes(fn):
    try:
        fn()
    except AssertionError:
        return False
    return True


def test_integers_and_bools_compare_exactly():
    with pytest.raises(AssertionError, match="not equal"):
        assert_close(gradient.tensor([10**12], dtype=gradient.int64), gradient.tensor([10**12 + 1], dtype=gradient.int64))
    assert_close(gradient.tensor([True]), gradient.tensor([True]))


# ---------------------------------------------------------------------------- make_tensor
RANGES = {"bool": (0, 1), "uint8": (0, 9), "int8": (-9, 9), "int16": (-9, 9), "int32": (-9, 9),
          "int64": (-9, 9), "float16": (-9, 9), "bfloat16": (-9, 9), "float32": (-9, 9), "float64": (-9, 9)}


@pytest.mark.parametrize("dtype", list(RANGES))
def test_make_tensor_default_ranges_match_torch(dtype):
    gradient.manual_seed(0)
    t = make_tensor(4000, dtype=getattr(gradient, dtype), device="cpu")
    assert t.dtype == getattr(gradient, dtype) and tuple(t.shape) == (4000,)
    values = t.to(gradient.float64).numpy()
    lo, hi = RANGES[dtype]
    assert values.min() >= lo and values.max() <= hi
    if t.dtype.is_floating_point:
        assert values.max() < 9 and values.min() < -8 and values.max() > 8   # [-9, 9): 9 never drawn
    else:
        assert values.min() == lo and values.max() == hi                      # every end reached
    ref = torch.testing.make_tensor(4000, dtype=getattr(torch, dtype), device="cpu").double()
    assert ref.min() >= lo and ref.max() <= hi


def test_make_tensor_low_high_and_clamping():
    gradient.manual_seed(1)
    t = make_tensor(2, 500, dtype=gradient.float32, device="cpu", low=-1, high=1)
    assert tuple(t.shape) == (2, 500) and -1 <= t.min().item() and t.max().item() < 1
    t = make_tensor((1000,), dtype=gradient.int8, device="cpu", low=-1000, high=1000)   # clamped to int8
    assert t.min().item() == -128 and t.max().item() == 127
    t = make_tensor([300], dtype=gradient.int16, device="cpu", low=0.5, high=3.2)        # ceil: [1, 4)
    assert set(t.numpy().tolist()) == {1, 2, 3}
    t = make_tensor(4000, dtype=gradient.float16, device="cpu", low=1.3, high=1.31)      # high exclusive
    assert 1.3 <= t.to(gradient.float64).min().item() and t.to(gradient.float64).max().item() < 1.31
    t = make_tensor(5, dtype=gradient.float64, device="cpu", low=-math.inf, high=math.inf)
    assert np.isfinite(t.numpy()).all()


def test_make_tensor_options():
    gradient.manual_seed(2)
    t = make_tensor(3, 4, dtype=gradient.float32, device="cpu", noncontiguous=True)
    assert tuple(t.shape) == (3, 4) and not t.is_contiguous()
    assert make_tensor(1, dtype=gradient.float32, device="cpu", noncontiguous=True).is_contiguous()
    t = make_tensor(2, 3, dtype=gradient.float64, device="cpu", requires_grad=True)
    assert t.requires_grad and t.is_leaf
    t = make_tensor(500, dtype=gradient.int8, device="cpu", low=-1, high=2, exclude_zero=True)
    assert 0 not in t.numpy() and set(t.numpy().tolist()) == {-1, 1}
    t = make_tensor(50, dtype=gradient.float32, device="cpu", low=0, high=1e-38, exclude_zero=True)
    assert (t.numpy() > 0).all()
    assert tuple(make_tensor(dtype=gradient.float32, device="cpu").shape) == ()
    assert tuple(make_tensor((), dtype=gradient.float32, device="cpu").shape) == ()
    assert tuple(make_tensor(gradient.Size([2, 2]), dtype=gradient.float32, device="cpu").shape) == (2, 2)


def test_make_tensor_is_reproducible_with_manual_seed():
    gradient.manual_seed(3)
    a = make_tensor(5, dtype=gradient.float32, device="cpu")
    gradient.manual_seed(3)
    assert_close(make_tensor(5, dtype=gradient.float32, device="cpu"), a)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(dtype=gradient.int32, requires_grad=True), ValueError, "requires_grad=True"),
    (dict(dtype=gradient.float32, low=2, high=1), ValueError, "less than `high`"),
    (dict(dtype=gradient.float32, low=math.nan), ValueError, "cannot be NaN"),
    (dict(dtype=gradient.uint8, low=300, high=400), ValueError, "only supports"),
    (dict(dtype=gradient.float32, noncontiguous=True, memory_format="channels_last"), ValueError, "mutually exclusive"),
    (dict(dtype="complex64"), TypeError, "complex64"),
])
def test_make_tensor_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_tensor(3, device="cpu", **kwargs)
