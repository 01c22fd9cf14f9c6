"""Tensor basics: creation, properties, conversion, devices, random numbers, printing."""

import os
import numpy as np
import pytest
import torch

import gradient
from gradient.errors import AutogradError, DeviceError, DTypeError, ShapeError


def same(ours, theirs):
    """Values, shape and dtype equal to torch's."""
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    np.testing.assert_allclose(ours.float().numpy() if ours.dtype.name == "bfloat16" else ours.numpy(),
                               theirs.float().numpy() if theirs.dtype == torch.bfloat16 else theirs.numpy())


@pytest.mark.parametrize("data", [1, 2.5, True, [1, 2], [1.0, 2], [[True, False]], [True, False],
                                  (3, 4.5), [], [[1, 2], [3, 4]],
                                  [True, 2], [True, 2.5], [[]], range(3), [range(2), range(2)],
                                  [[], []], [[True, 2]], [(1, 2.5), [3, 4]], [[1], [np.int64(2)]],
                                  [[1.5], [np.float64(2)]], [[np.int32(1), 2]]])
def test_tensor_infers_dtype_like_torch(data):
    same(gradient.tensor(data), torch.tensor(data))


@pytest.mark.parametrize("data, dtype", [
    ([2**40, 1], "int32"), ([300], "uint8"), ([128], "int8"), ([1e20], "int64"),
    ([float("nan")], "int64"), ([float("inf")], "int32"), ([127.5], "int8"), ([-256], "uint8"),
    (300, "uint8"), ([[2**40]], "int32")])
def test_python_numbers_past_an_integer_dtype_are_refused_like_torch(data, dtype):
    # NumPy's cast wrapped them: tensor([300], dtype=uint8) was 44, [nan] as int64 its minimum
    with pytest.raises(RuntimeError, match="overflow"):
        torch.tensor(data, dtype=getattr(torch, dtype))
    with pytest.raises(DTypeError, match=f"cannot be converted to {dtype} without overflow"):
        gradient.tensor(data, dtype=getattr(gradient, dtype))


@pytest.mark.parametrize("data, dtype", [([-1], "uint8"), ([-255], "uint8"), ([127], "int8"),
                                         ([-128.0], "int8"), ([3.7, -3.7], "int16"),
                                         ([2.0**63], "int64"), ([True, 2], "int8")])
def test_python_numbers_an_integer_dtype_takes_like_torch(data, dtype):
    # negatives wrap into an unsigned dtype, fractions are cut, as in PyTorch
    same(gradient.tensor(data, dtype=getattr(gradient, dtype)),
         torch.tensor(data, dtype=getattr(torch, dtype)))
    # arrays are cast without the check (wrapped), as PyTorch casts them
    assert gradient.tensor(np.array([2**40]), dtype=gradient.int32).tolist() == [0]


@pytest.mark.parametrize("data", [[1, 2], (1.5, -2.5), [True, 0], [-3.7, 2], [2**20, 1],
                                  [[5]], [[1, 2], (3, 4)], [[1.5, -2.5]], [[True], [0]],
                                  [[-3.7], [2]]])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "int32", "bool", "float64"])
def test_tensor_of_a_flat_list_with_a_dtype_like_torch(data, dtype):
    # (a flat list of Python numbers, or a list of such rows, takes one NumPy conversion,
    # not one check per element)
    same(gradient.tensor(data, dtype=getattr(gradient, dtype)),
         torch.tensor(data, dtype=getattr(torch, dtype)))


@pytest.mark.parametrize("data", [[[1, 2], [3]], [[1], 2], [[1, 2], [[3], [4]]]])
def test_ragged_rows_are_refused(data):
    with pytest.raises((ValueError, TypeError)):
        torch.tensor(data)
    with pytest.raises(ShapeError, match="rectangular"):
        gradient.tensor(data)


NUMPY_IN_LISTS = [[np.float64(1.5)], [np.float64(1.5), 2.0], [np.int32(3)], [np.int32(3), 4],
                  [np.float16(1), 2], [np.float32(1.5), np.float64(2)], [1.0, np.float32(2)],
                  [np.int64(1), 2.5], [np.uint8(3), np.int8(1)], [np.uint8(3), -1],
                  [np.bool_(True), np.bool_(False)],
                  [np.array([1, 2], np.int32), np.array([3, 4], np.int32)],
                  [np.array([1.0, 2.0])], [np.array([1, 2]), [3, 4]], [np.array([True])],
                  [np.array([1, 2], np.int32), np.array([1.5, 2], np.float32)],
                  [np.array([], np.int16)]]


@pytest.mark.parametrize("data", NUMPY_IN_LISTS, ids=range(len(NUMPY_IN_LISTS)))
def test_numpy_scalars_and_arrays_in_lists_keep_their_dtypes_like_torch(data):
    """A ported script's ``torch.tensor([np.float64(x), ...])`` or list of arrays: each
    element's dtype, promoted together, as PyTorch infers it (not the kind alone)."""
    import warnings
    with warnings.catch_warnings():        # torch: a list of ndarrays is slow to convert
        warnings.simplefilter("ignore")
        expected = torch.tensor(data)
    same(gradient.tensor(data), expected)


def test_zero_dim_tensors_in_a_list_keep_their_dtype_like_torch():
    ints = [gradient.tensor(1, dtype=gradient.int32), gradient.tensor(2, dtype=gradient.int32)]
    same(gradient.tensor(ints), torch.tensor([torch.tensor(1, dtype=torch.int32),
                                              torch.tensor(2, dtype=torch.int32)]))
    same(gradient.tensor([gradient.tensor(1.5, dtype=gradient.float64), 2]),
         torch.tensor([torch.tensor(1.5, dtype=torch.float64), 2]))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "int8", "uint8", "int16",
                                   "int32", "int64", "bool"])
def test_tensor_with_explicit_dtype(dtype):
    same(gradient.tensor([0, 1, 2], dtype=getattr(gradient, dtype)),
         torch.tensor([0, 1, 2], dtype=getattr(torch, dtype)))


def test_tensor_from_numpy_keeps_dtype_and_copies():
    a = np.arange(3, dtype=np.int32)
    t = gradient.tensor(a)
    a[0] = 7
    assert t.dtype is gradient.int32 and t.tolist() == [0, 1, 2]


def test_from_numpy_shares_memory():
    a = np.zeros(3, dtype=np.float32)
    t = gradient.from_numpy(a)
    a[1] = 5
    assert t.tolist() == [0, 5, 0]


@pytest.mark.parametrize("make", [
    lambda m: m.zeros(2, 3), lambda m: m.ones((2, 3)), lambda m: m.full((2,), 7),
    lambda m: m.full((2,), 1.5), lambda m: m.arange(5), lambda m: m.arange(1, 2, 0.25),
    lambda m: m.arange(0, 10, 3), lambda m: m.arange(5.0), lambda m: m.linspace(0, 1, 5),
    lambda m: m.eye(3), lambda m: m.eye(2, 4), lambda m: m.zeros_like(m.ones(2, dtype=m.int32)),
    lambda m: m.ones_like(m.zeros(2, 2)), lambda m: m.full_like(m.zeros(3), 4),
    lambda m: m.zeros(3, dtype=m.float16), lambda m: m.empty(0, 3),
    lambda m: m.ones(2).new_zeros(3), lambda m: m.zeros(2, dtype=m.int8).new_ones((2, 2)),
])
def test_creation_functions_match_torch(make):
    same(make(gradient), make(torch))


def test_properties():
    t = gradient.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.size() == gradient.Size([2, 3, 4]) and t.size(-1) == 4
    assert t.ndim == t.dim() == 3 and t.numel() == 24 and t.shape.numel() == 24
    assert t.T.shape == (4, 3, 2) and t.mT.shape == (2, 4, 3)
    assert t.device == gradient.device("cpu") and t.device.type == "cpu"
    assert t.is_leaf and not t.requires_grad and t.grad is None and t.grad_fn is None
    assert t.is_contiguous() and not t.T.is_contiguous()
    assert t.stride() == (12, 4, 1)


def test_numpy_item_tolist():
    t = gradient.tensor([[1.5, 2.0]])
    assert t.tolist() == [[1.5, 2.0]] and isinstance(t.numpy(), np.ndarray)
    assert gradient.tensor(3).item() == 3 and isinstance(gradient.tensor(3).item(), int)
    assert gradient.tensor([2.5], dtype=gradient.bfloat16).item() == 2.5
    with pytest.raises(ValueError, match="one-element"):
        t.item()
    with pytest.raises(AutogradError, match="detach"):
        gradient.ones(2, requires_grad=True).numpy()


@pytest.mark.parametrize("method,dtype", [("float", "float32"), ("double", "float64"), ("half", "float16"),
                                          ("bfloat16", "bfloat16"), ("long", "int64"), ("int", "int32"),
                                          ("bool", "bool")])
def test_conversion_methods(method, dtype):
    ours = getattr(gradient.tensor([0.0, 1.7, -2.2]), method)()
    theirs = getattr(torch.tensor([0.0, 1.7, -2.2]), method)()
    same(ours, theirs)
    assert ours.dtype is getattr(gradient, dtype)


def test_to_dtype_is_differentiable():
    x = gradient.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(gradient.float64) * 3
    assert y.dtype is gradient.float64
    y.sum().backward()
    assert x.grad.dtype is gradient.float32 and x.grad.tolist() == [3.0, 3.0]
    assert x.to("cpu") is x and x.to(gradient.float32) is x


def test_unknown_dtype_and_device_errors():
    with pytest.raises(DTypeError, match="unknown dtype"):
        gradient.zeros(2, dtype="complex32")
    with pytest.raises(DeviceError, match="unknown device"):
        gradient.zeros(2, device="tpu")
    with pytest.raises(DeviceError, match="cuda"):
        gradient.zeros(2, device="cuda")
    with pytest.raises(DeviceError, match="cuda"):
        gradient.zeros(2).to("cuda:0")
    with pytest.raises(DeviceError, match="index"):
        gradient.device("cuda:x")


def test_ragged_data_is_refused():
    with pytest.raises(ShapeError, match="rectangular"):
        gradient.tensor([[1, 2], [3]])
    with pytest.raises(DTypeError):
        gradient.tensor(["a"])


def test_manual_seed_makes_random_numbers_reproducible():
    gradient.manual_seed(123)
    a = (gradient.rand(5), gradient.randn(5), gradient.randint(0, 10, (5,)), gradient.randperm(5))
    gradient.manual_seed(123)
    b = (gradient.rand(5), gradient.randn(5), gradient.randint(0, 10, (5,)), gradient.randperm(5))
    for x, y in zip(a, b):
        assert x.tolist() == y.tolist()


def test_a_negative_seed_is_taken_modulo_2_64_as_torch():
    for seed in (-1, -5, -2 ** 63):
        torch.manual_seed(seed)
        assert gradient.manual_seed(seed).initial_seed() == torch.initial_seed()
        a = gradient.randn(3).tolist()
        assert gradient.manual_seed(seed).initial_seed() == seed + 2 ** 64
        assert gradient.randn(3).tolist() == a
    with pytest.raises(ValueError, match="smallest seed"):
        gradient.manual_seed(-2 ** 63 - 1)


def test_random_distributions_and_dtypes():
    gradient.manual_seed(0)
    u = gradient.rand(10000)
    n = gradient.randn(10000, dtype=gradient.float64)
    r = gradient.randint(3, 7, (1000,))
    p = gradient.randperm(50)
    assert u.dtype is gradient.float32 and 0 <= u.min().item() and u.max().item() < 1
    assert abs(u.mean().item() - 0.5) < 0.02
    assert n.dtype is gradient.float64 and abs(n.mean().item()) < 0.05 and abs(n.std().item() - 1) < 0.05
    assert r.dtype is gradient.int64 and set(r.tolist()) == {3, 4, 5, 6}
    assert sorted(p.tolist()) == list(range(50))
    g = gradient.Generator().manual_seed(5)
    assert gradient.rand(3, generator=g).tolist() == gradient.rand(
        3, generator=gradient.Generator().manual_seed(5)).tolist()


def test_repr_looks_like_torch():
    assert repr(gradient.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(gradient.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(gradient.tensor([1.5], requires_grad=True)) == "tensor([1.5000], requires_grad=True)"
    assert "dtype=gradient.float64" in repr(gradient.tensor([1.0], dtype=gradient.float64))
    assert "grad_fn=<MulBackward>" in repr(gradient.tensor([1.0], requires_grad=True) * 2)


def test_python_number_conversions():
    assert float(gradient.tensor(2.5)) == 2.5 and int(gradient.tensor(3)) == 3
    assert bool(gradient.tensor([True]))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(gradient.tensor([1, 2]))
    assert len(gradient.zeros(4, 2)) == 4
    assert [r.tolist() for r in gradient.tensor([[1, 2], [3, 4]])] == [[1, 2], [3, 4]]
    assert [0, 1, 2][gradient.tensor(1)] == 1


def test_tensor_class_constructor_makes_default_float_like_torch():
    same(gradient.Tensor([1, 2]), torch.Tensor([1, 2]))
    assert gradient.Tensor([1.5], requires_grad=True).requires_grad
    for sizes in [(2, 3), (4,), ()]:          # sizes (torch leaves the values uninitialised)
        t = gradient.Tensor(*sizes)
        assert t.shape == torch.Tensor(*sizes).shape and t.dtype == gradient.float32
    with pytest.raises(TypeError, match="one sequence of values or integer sizes"):
        gradient.Tensor([1.0], 2)


def test_requires_grad_attribute_is_validated_like_torch():
    with pytest.raises(AutogradError, match="floating"):
        gradient.tensor([1, 2]).requires_grad = True
    frozen = gradient.ones(2, requires_grad=True)
    frozen.requires_grad = False  # freezing a parameter
    assert not (frozen * 2).requires_grad
    with pytest.raises(AutogradError, match="leaf"):
        (gradient.ones(2, requires_grad=True) * 2).requires_grad = False


def test_copy_under_no_grad_does_not_turn_inf_into_nan():
    p = gradient.tensor([float("inf"), 1.0], requires_grad=True)
    with gradient.no_grad():
        p.copy_(gradient.tensor([1.0, 2.0]))
    assert p.tolist() == [1.0, 2.0]
    y = gradient.tensor([float("inf"), 1.0], requires_grad=True) * 1
    y.copy_(gradient.tensor([3.0, 4.0]))  # recorded: the old value gets a zero gradient, not nan
    assert y.tolist() == [3.0, 4.0]


def test_deepcopy_of_leaf_tensors_copies_storage_and_grad():
    import copy
    x = gradient.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    y = copy.deepcopy(x)
    assert y.requires_grad and y.tolist() == [1.0, 2.0] and y.grad.tolist() == [3.0, 3.0]
    y.detach()[0] = 9.0
    assert x.tolist() == [1.0, 2.0]
    with pytest.raises(AutogradError, match="leaf"):
        copy.deepcopy(x * 2)


def test_in_place_random_fills():
    gradient.manual_seed(0)
    w = gradient.empty(1000, requires_grad=True)
    w.normal_(0.0, 2.0)
    assert abs(w.detach().std().item() - 2.0) < 0.2 and w.requires_grad
    w.uniform_(-1, 1)
    assert -1 <= w.detach().min().item() and w.detach().max().item() < 1
    with pytest.raises(DTypeError):
        gradient.zeros(3, dtype=gradient.int64).normal_()


def test_format_and_truth_value_like_torch():
    for lib in (gradient, torch):
        t = lib.tensor(1.23456)
        assert f"{t:.3f}" == "1.235" and "{:>7.2f}".format(t) == "   1.23"
        assert f"{lib.tensor(7):05d}" == "00007"
        with pytest.raises(TypeError, match="unsupported format string"):
            f"{lib.ones(2):.2f}"
        assert f"{lib.ones(2)}" == str(lib.ones(2))
        with pytest.raises(RuntimeError):     # PyTorch's class (ours is also a ValueError)
            bool(lib.ones(2))
        with pytest.raises(RuntimeError):     # a shape error, as PyTorch raises it
            lib.ones(3).view(2, 2)


def test_set_num_threads_limits_blas_and_numba():
    import numba
    from threadpoolctl import threadpool_info
    before = gradient.get_num_threads()
    try:
        gradient.set_num_threads(1)
        assert gradient.get_num_threads() == 1 and numba.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
        x = gradient.randn(64, 64)
        np.testing.assert_allclose((x @ x).numpy(), x.numpy() @ x.numpy(), rtol=1e-5, atol=1e-5)
    finally:
        gradient.set_num_threads(before)
    assert gradient.get_num_threads() == before
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="positive number of threads"):
            gradient.set_num_threads(bad)
    assert gradient.autocast is gradient.amp.autocast


def _fresh_interpreter(code: str, unset: tuple, **env) -> str:
    """What ``code`` prints in a new Python, with the variables ``unset`` taken out of this
    process's environment and ``env`` put in (thread settings are read at import and start)."""
    import subprocess
    import sys
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, check=True,
                          capture_output=True, text=True).stdout


_OPENMP_WAIT = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")


def test_importing_gradient_lets_numba_threads_yield_to_blas_unless_the_user_chose():
    # numba's OpenMP threads spin after a parallel kernel; a BLAS product beside them ran 3-4x
    # slower (gradient.threads): gradient sets a short spin, but never over the user's choice
    show = "import os, gradient; print(os.environ.get('GOMP_SPINCOUNT'))"

    def spin_count(**env):
        return _fresh_interpreter(show, _OPENMP_WAIT, **env).strip()
    assert spin_count() == gradient.threads.NUMBA_SPIN_COUNT
    assert spin_count(GOMP_SPINCOUNT="123") == "123"
    assert spin_count(OMP_WAIT_POLICY="ACTIVE") == "None"


def test_a_server_keeps_openmp_spinning_unless_the_user_chose_or_threads_started():
    # gradient serve gives numba's threads OpenMP's own long wait (gradient.threads.
    # keep_workers_spinning): only over gradient's short one, and only before OpenMP reads it
    before = ("import os, gradient.threads as t; kept = t.keep_workers_spinning(); "
              "print(kept, os.environ.get('GOMP_SPINCOUNT'))")
    after = ("import os, numba, gradient.threads as t; numba.get_num_threads(); "
             "print(t.keep_workers_spinning(), numba.threading_layer())")

    def run(code, **env):
        return _fresh_interpreter(code, _OPENMP_WAIT, **env).split()
    assert run(before) == ["True", gradient.threads.SERVER_SPIN_COUNT]
    assert run(before, GOMP_SPINCOUNT="123") == ["False", "123"]
    assert run(before, OMP_WAIT_POLICY="ACTIVE") == ["False", "None"]
    kept, layer = run(after)
    if layer == "omp":           # (other threading layers do not read it: nothing to keep)
        assert kept == "False"


def test_importing_gradient_lets_blas_threads_yield_to_numba_unless_the_user_chose():
    # OpenBLAS's threads poll for a tenth of a second after a product; numba's kernels beside
    # them ran 2x slower (gradient.threads): set before gradient imports NumPy, which loads
    # OpenBLAS and reads it then
    show = ("import os, sys, gradient; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), "
            "list(sys.modules).index('gradient.threads') < list(sys.modules).index('numpy'))")

    def timeout(**env):
        return _fresh_interpreter(show, ("OPENBLAS_THREAD_TIMEOUT",), **env).split()
    assert timeout() == [gradient.threads.BLAS_THREAD_TIMEOUT, "True"]
    assert timeout(OPENBLAS_THREAD_TIMEOUT="4")[0] == "4"


def test_in_place_ops_cannot_grow_their_tensor():
    for lib in (gradient, torch):
        x = lib.zeros(2, 3)
        x.add_(lib.ones(3))                       # broadcasts into x: fine
        with pytest.raises(RuntimeError):
            lib.zeros(3).add_(lib.zeros(2, 3))
    with pytest.raises(ShapeError, match=r"add_: the result has shape \(2, 3\), which does not fit"):
        gradient.zeros(3).add_(gradient.zeros(2, 3))
