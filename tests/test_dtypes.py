"""dtypes: PyTorch's promotion table and result_type rules, dtype names and their errors."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

import gradient
from gradient import dtypes

torch = pytest.importorskip("torch")

NAMES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


def _ours(name):
    return dtypes.as_dtype(name)


def _theirs(name):
    return getattr(torch, name)


def test_all_dtypes_are_the_ten():
    assert [d.name for d in dtypes.ALL_DTYPES] == NAMES


def test_promote_types_matches_torch():
    wrong = []
    for a, b in itertools.product(NAMES, NAMES):  # all 100 pairs, reported together
        ours = gradient.promote_types(_ours(a), _ours(b)).name
        theirs = str(torch.promote_types(_theirs(a), _theirs(b))).removeprefix("torch.")
        if ours != theirs:
            wrong.append(f"{a} with {b}: {ours}, torch {theirs}")
    assert not wrong, "\n".join(wrong)


def test_promote_types_is_symmetric_and_idempotent():
    for a, b in itertools.product(dtypes.ALL_DTYPES, repeat=2):
        assert gradient.promote_types(a, b) is gradient.promote_types(b, a)
    for a in dtypes.ALL_DTYPES:
        assert gradient.promote_types(a, a) is a


# ---------------------------------------------------------------------- result_type
_SAMPLE = {"bool": [True, False], "uint8": [1, 200], "int8": [1, -3], "int16": [1, -3],
           "int32": [1, -3], "int64": [1, -3]}


def _pair(name, zero_dim):
    """The same tensor for both libraries: 1-d, or 0-d when ``zero_dim``."""
    vals = _SAMPLE.get(name, [1.5, -2.0])
    data = vals[0] if zero_dim else vals
    return (gradient.tensor(data, dtype=_ours(name)), torch.tensor(data, dtype=_theirs(name)))


SCALARS = [True, 3, -2, 2.5]
OPERANDS = ([("dim", n) for n in NAMES] + [("0-d", n) for n in NAMES] + [("scalar", s) for s in SCALARS])


def _operand(kind, value):
    if kind == "scalar":
        return value, value
    return _pair(value, zero_dim=kind == "0-d")


def _id(op):
    return f"{op[0]}-{op[1]}"


def test_result_type_matches_torch():
    """Every pair of (1-d tensor | 0-d tensor) of each dtype and Python scalar, both orders."""
    wrong = []
    for first, second in itertools.product(OPERANDS, OPERANDS):
        if first[0] == "scalar" and second[0] == "scalar":
            continue  # torch.result_type needs a tensor
        (g1, t1), (g2, t2) = _operand(*first), _operand(*second)
        ours = gradient.result_type(g1, g2).name
        theirs = str(torch.result_type(t1, t2)).removeprefix("torch.")
        if ours != theirs:
            wrong.append(f"{_id(first)} with {_id(second)}: {ours}, torch {theirs}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("kinds", [("dim", "0-d", "0-d"), ("0-d", "0-d", "0-d"), ("dim", "dim", "0-d"),
                                   ("0-d", "dim", "dim")])
def test_result_type_of_three_tensors_matches_torch(kinds):
    # torch.result_type takes two operands; with three, the oracle is torch.addcmul, whose
    # dtype is the result type of all three (and gradient.addcmul must agree too)
    rng = np.random.default_rng(0)
    tensor_names = [n for n in NAMES if n != "bool"]
    for _ in range(60):
        names = [tensor_names[k] for k in rng.integers(len(tensor_names), size=3)]
        pairs = [_pair(n, zero_dim=kind == "0-d") for kind, n in zip(kinds, names)]
        theirs = str(torch.addcmul(*(t for _, t in pairs)).dtype).removeprefix("torch.")
        assert gradient.result_type(*(g for g, _ in pairs)).name == theirs, names
        assert gradient.addcmul(*(g for g, _ in pairs)).dtype.name == theirs, names


def test_result_type_examples():
    i8 = gradient.tensor([1], dtype=gradient.int8)
    assert gradient.result_type(i8, 1000) is gradient.int8        # scalars only decide the category
    assert gradient.result_type(i8, 2.5) is gradient.float32      # ... and floats use the default
    assert gradient.result_type(gradient.tensor([1.0], dtype=gradient.float16), 2.5) is gradient.float16
    assert gradient.result_type(i8, gradient.tensor(1, dtype=gradient.int64)) is gradient.int8
    assert gradient.result_type(i8, gradient.tensor(1.0, dtype=gradient.float64)) is gradient.float64
    assert gradient.result_type(3, 2.5) is gradient.float32
    assert gradient.result_type(True, False) is gradient.bool


def test_result_type_follows_the_default_dtype():
    i = gradient.tensor([1, 2])
    gradient.set_default_dtype(gradient.float64)
    try:
        assert gradient.result_type(i, 0.5) is gradient.float64
        assert (i * 0.5).dtype is gradient.float64
    finally:
        gradient.set_default_dtype(gradient.float32)
    assert gradient.result_type(i, 0.5) is gradient.float32


def test_result_type_rejects_non_numbers():
    with pytest.raises(gradient.DTypeError, match="expected a Python number, got str"):
        gradient.result_type(gradient.tensor([1]), "2")


# ---------------------------------------------------------------------- names
@pytest.mark.parametrize("name", NAMES)
def test_as_dtype_names_and_repr(name):
    d = dtypes.as_dtype(name)
    assert d.name == name
    assert repr(d) == f"gradient.{name}"
    assert dtypes.as_dtype(f"torch.{name}") is d
    assert dtypes.as_dtype(f"gradient.{name}") is d
    assert dtypes.as_dtype(d) is d
    assert getattr(gradient, name if name != "bool" else "bool_") is d
    assert d.itemsize == _theirs(name).itemsize
    assert d.is_floating_point == _theirs(name).is_floating_point
    assert d.is_signed == _theirs(name).is_signed


@pytest.mark.parametrize("alias,name", [("half", "float16"), ("float", "float32"), ("double", "float64"),
                                        ("short", "int16"), ("int", "int32"), ("long", "int64"),
                                        ("byte", "uint8"), ("char", "int8"), ("bool_", "bool")])
def test_as_dtype_aliases_match_torch(alias, name):
    assert dtypes.as_dtype(alias).name == name
    if hasattr(torch, alias):  # torch has no torch.byte, torch.char (only Tensor.byte(), .char())
        assert str(getattr(torch, alias)) == f"torch.{name}"


def test_as_dtype_from_numpy_and_python_types():
    assert dtypes.as_dtype(np.float32) is gradient.float32
    assert dtypes.as_dtype(np.dtype("int16")) is gradient.int16
    assert dtypes.as_dtype(np.bool_) is gradient.bool
    import ml_dtypes
    assert dtypes.as_dtype(ml_dtypes.bfloat16) is gradient.bfloat16
    # Python types mean what they mean in torch: float is float64 (not the default dtype)
    for py, name in [(float, "float64"), (int, "int64"), (bool, "bool")]:
        assert dtypes.as_dtype(py).name == name == str(torch.zeros(1, dtype=py).dtype).removeprefix("torch.")
    assert gradient.zeros(2, dtype=float).dtype is gradient.float64


@pytest.mark.parametrize("bad", ["float128", "complex64", "torch.cfloat", "", np.complex64, np.float128
                                 if hasattr(np, "float128") else np.complex128, object, None, 3])
def test_as_dtype_unknown(bad):
    with pytest.raises(gradient.DTypeError, match=r"unknown dtype .*expected one of bool, uint8, int8"):
        dtypes.as_dtype(bad)


def test_a_tensor_for_a_dtype_is_a_dtype_error_that_stays_short():
    # NumPy reads a Tensor's .dtype and raised its own ValueError before
    for call in (lambda: dtypes.as_dtype(gradient.ones(300)),
                 lambda: gradient.zeros_like(gradient.ones(3), gradient.ones(3))):
        with pytest.raises(gradient.DTypeError, match=r"unknown dtype (a Tensor|tensor\(\[1\., "
                                                      r"1\., 1\.\]\)): expected one of") as e:
            call()
        assert len(str(e.value)) < 160


def test_from_numpy_dtype_unsupported():
    assert dtypes.from_numpy_dtype(np.dtype(np.float64)) is gradient.float64
    with pytest.raises(gradient.DTypeError, match="complex128 is not supported"):
        dtypes.from_numpy_dtype(np.dtype(np.complex128))


def test_set_default_dtype_rejects_integers():
    with pytest.raises(gradient.DTypeError, match="expected a floating dtype, got gradient.int64"):
        gradient.set_default_dtype(gradient.int64)
    assert gradient.get_default_dtype() is gradient.float32


def test_dtypes_are_singletons_through_pickle_and_copy():
    import copy
    import pickle
    for d in dtypes.ALL_DTYPES:
        assert pickle.loads(pickle.dumps(d)) is d
        assert copy.deepcopy(d) is d


@pytest.mark.parametrize("name", NAMES)
def test_finfo_and_iinfo_match_torch(name):
    ours, theirs = _ours(name), getattr(torch, name)
    if theirs.is_floating_point:
        a, b = gradient.finfo(ours), torch.finfo(theirs)
        keys = ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype")
        with pytest.raises(TypeError, match="use gradient.finfo"):
            gradient.iinfo(ours)
    elif name != "bool":
        a, b = gradient.iinfo(ours), torch.iinfo(theirs)
        keys = ("bits", "max", "min", "dtype")
        with pytest.raises(TypeError, match="use gradient.iinfo"):
            gradient.finfo(ours)
    else:
        for info in (gradient.finfo, gradient.iinfo):
            with pytest.raises(TypeError):
                info(ours)
        return
    assert {k: getattr(a, k) for k in keys} == {k: getattr(b, k) for k in keys}
    assert repr(a) == repr(b)


def test_finfo_defaults_to_the_default_dtype():
    assert gradient.finfo().dtype == "float32"
    gradient.set_default_dtype(gradient.float64)
    try:
        assert gradient.finfo().bits == 64
    finally:
        gradient.set_default_dtype(gradient.float32)


# float64 -> float16 as PyTorch converts it: through float32, two roundings (NumPy rounds once)
_PAST_A_MIDPOINT = 1 + 2 ** -11 + 2 ** -40     # float32 rounds it onto the midpoint: 1.0


def _many_float64():
    rng = np.random.default_rng(7)
    values = rng.standard_normal(200_000) * rng.choice([1e-6, 1e-3, 1.0, 1e3, 6e4, 1e6], 200_000)
    return np.concatenate([values, [_PAST_A_MIDPOINT, -_PAST_A_MIDPOINT, 1e300, -1e300]])


@pytest.mark.parametrize("how", ["to", "half", "tensor", "list"])
def test_float64_to_float16_rounds_as_torch(how):
    a = _many_float64()
    if how == "list":
        a = a[-2_000:]
    ours = {"to": lambda: gradient.tensor(a).to(gradient.float16),
            "half": lambda: gradient.from_numpy(a).half(),
            "tensor": lambda: gradient.tensor(a, dtype=gradient.float16),
            "list": lambda: gradient.tensor(a.tolist(), dtype=gradient.float16)}[how]()
    theirs = torch.tensor(a).to(torch.float16)
    assert np.array_equal(ours.numpy().view(np.uint16), theirs.numpy().view(np.uint16))
    assert float(gradient.tensor([_PAST_A_MIDPOINT], dtype=gradient.float16)[0]) == 1.0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_a_value_past_the_range_becomes_inf_silently(dtype):
    # (NumPy's cast warns "overflow encountered in cast"; PyTorch does not)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        made = gradient.tensor(np.array([1e300, -1e300]), dtype=getattr(gradient, dtype))
        cast = gradient.tensor([1e300]).to(getattr(gradient, dtype))
    assert made.tolist() == [float("inf"), float("-inf")] and cast.tolist() == [float("inf")]
