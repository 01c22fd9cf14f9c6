"""Calls given something other than a Tensor where they take one: PyTorch's TypeError naming the
argument, never an AttributeError about an attribute of None (gradient.ops.argument_errors)."""

import inspect
import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import gradient
import gradient.nn.functional as F
from gradient import nn
from gradient.errors import (ArgumentTypeError, ArgumentValueError, DTypeError, GradientError,
                             ShapeError)
from gradient.ops.argument_errors import tensor_arguments

# Every function of the torch and torch.nn.functional namespaces, each given None, a string, a
# list or a bare object where a Tensor goes, in a process of its own (the functions that set
# process-wide state, autocast's and the default dtype's among them, get junk too): printed,
# each call that failed with AttributeError. 287 functions did ("'NoneType' object has no
# attribute 'dtype'") before.
_EVERY_FUNCTION = r"""
import inspect, json, warnings
import gradient
import gradient.nn.functional as F
skip = {"load", "save", "compile", "set_printoptions"}   # files; a printing option's junk
patterns = [(None,), ("abc",), (object(),), ([1, 2], None), ("x", None), ("x", "abc"),
            ("x", "x", None)]
failures = []
warnings.simplefilter("ignore")
for space, module in (("gradient", gradient), ("F", F)):
    for name in sorted(dir(module)):
        fn = getattr(module, name)
        if (name.startswith("_") or name in skip or not callable(fn) or inspect.isclass(fn)
                or inspect.ismodule(fn)):
            continue
        for pattern in patterns:
            args = [gradient.randn(3, 4) if a == "x" else a for a in pattern]
            try:
                fn(*args)
            except AttributeError as e:
                failures.append(f"{space}.{name}{tuple(pattern)}: {e}")
            except Exception:
                pass
print(json.dumps(failures))
"""


def test_no_public_function_fails_with_an_attribute_error_on_a_wrong_argument():
    done = subprocess.run([sys.executable, "-c", _EVERY_FUNCTION], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("call, message", [
    (lambda x: gradient.abs(None),
     "abs(): argument 'input' (position 1) must be a Tensor, not NoneType"),
    (lambda x: F.linear(x, None),
     "linear(): argument 'weight' (position 2) must be a Tensor, not NoneType"),
    (lambda x: gradient.mean(input=[1.0, 2.0]),
     "mean(): argument 'input' must be a Tensor, not list"),
    (lambda x: gradient.hstack([x, None]),
     "hstack(): argument 'tensors' must hold Tensors, not NoneType (at index 1)"),
    (lambda x: F.softmax("abc", 0),
     "softmax(): argument 'input' (position 1) must be a Tensor, not str"),
    (lambda x: nn.Linear(4, 2)(None), "argument 'input' (position 1) must be a Tensor, not "
     "NoneType"),
    (lambda x: nn.Sequential(nn.LayerNorm(4), nn.ReLU())([1.0] * 4),
     "must be a Tensor, not list"),
    (lambda x: gradient.isnan(None), "expected a Tensor input, got NoneType"),
    # Tensor methods too
    (lambda x: x.view_as(3), "view_as(): argument 'other' (position 2) must be a Tensor, not int"),
    (lambda x: x.reshape_as("a"), "reshape_as(): argument 'other' * must be a Tensor, not str"),
    (lambda x: x.inner(None), "inner(): argument 'other' * must be a Tensor, not NoneType"),
])
def test_the_error_names_the_argument(call, message):
    with pytest.raises(ArgumentTypeError, match=".*".join(map(_escaped, message.split("*")))):
        call(gradient.randn(3, 4))
    # a TypeError, as PyTorch's, and one of gradient's own
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError,
                                                                  GradientError)


@pytest.mark.parametrize("call", [
    lambda m, x: m.nn.functional.elu(x, alpha=x),
    lambda m, x: m.nn.functional.celu(x, alpha="a"),
    lambda m, x: m.nn.functional.softplus(x, beta=x),
    lambda m, x: m.nn.functional.leaky_relu(x, x),
    lambda m, x: m.nn.functional.threshold(x, x, 0.0),
    lambda m, x: m.nan_to_num(x, nan=x),
])
def test_a_tensor_of_several_elements_for_a_number_is_a_type_error_as_torchs(call):
    with pytest.raises(TypeError):
        call(torch, torch.ones(3))
    with pytest.raises(ArgumentTypeError, match="must be a number, got"):
        call(gradient, gradient.ones(3))


def test_one_element_tensors_and_numpy_scalars_are_numbers_as_torchs():
    x = np.array([-2.0, 0.5, 3.0, np.nan], np.float32)
    for fn, kwargs in ((F.elu, dict(alpha=np.float32(0.5))), (F.leaky_relu, dict(
            negative_slope=0.25)), (F.hardtanh, dict(min_val=-1.5, max_val=2))):
        ours = fn(gradient.tensor(x), **{k: gradient.tensor(v) for k, v in kwargs.items()})
        theirs = getattr(torch.nn.functional, fn.__name__)(torch.tensor(x), **kwargs)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(gradient.nan_to_num(gradient.tensor(x), nan=gradient.tensor(
        7.0)).numpy(), torch.nan_to_num(torch.tensor(x), nan=7.0).numpy())


@pytest.mark.parametrize("call", [
    lambda m: m.slice_copy(m.tensor(2.0), 1),
    lambda m: m.trapz(m.tensor(2.0)),
    lambda m: m.cumulative_trapezoid(m.tensor(2.0)),
    lambda m: m.broadcast_to(m.ones(2, 3), 1),
    lambda m: m.polygamma(m.tensor(2.0), 1),
    lambda m: m.nuclear_norm(m.ones(3, 4), 1),
    lambda m: m.lu_unpack(m.ones(3, 4), m.ones(3, 4)),
    lambda m: m.hstack(m.ones(3)),
    lambda m: m.hstack([]),
    lambda m: m.rot90(m.ones(2, 3), 1, 1),
    lambda m: m.unflatten(m.ones(2, 3), 1, 1),
    lambda m: m.nn.functional.softmax(m.ones(2, 3), 2.5),
    lambda m: m.nn.functional.glu(m.ones(2, 4), "a"),
    lambda m: m.ones(2, 3).flip(None),
    lambda m: m.nn.functional.layer_norm(m.ones(2, 3), "a"),
    lambda m: m.nn.functional.rms_norm(m.ones(2, 3), 3.0),
    lambda m: m.tensor(2.0).size(0),
    lambda m: m.tensor(2.0).stride(-1),
    lambda m: m.ones(3).normal_(m.ones(3)),
    lambda m: m.ones(3).uniform_("a"),
    lambda m: m.ones(3).random_(2.5),
    lambda m: m.ones(3).log_normal_("a"),
    lambda m: m.ones(3).multinomial(2.5),
    lambda m: m.ones(3).kthvalue(1.5),
    lambda m: m.ones(3).tile("a"),
    lambda m: m.ones(3).logit("a"),
    # found by calling every function with random odd arguments (a fuzzer): Python's or
    # NumPy's TypeError, ValueError, OverflowError, ZeroDivisionError and NotImplementedError
    # from inside before, and two calls that ran until memory ran out
    lambda m: m.nn.functional.dropout(m.ones(3), (0.5,)),
    lambda m: m.nn.functional.softmax(np.ones(3), 0),
    lambda m: m.nn.functional.layer_norm(np.ones((2, 3)), (3,)),
    lambda m: m.diag(m.ones(3), [1]),
    lambda m: m.hardshrink(m.ones(3), {}),
    lambda m: m.cat(3),
    lambda m: m.stack(m.float32),
    lambda m: m.hstack(2.5),
    lambda m: m.full(-0.5, 2),
    lambda m: m.full((2,), "a"),
    lambda m: m.full_like(m.ones(2), (3, 2)),
    lambda m: m.ones(3).new_full((4,), m.ones(3, 4)),
    lambda m: m.as_strided(m.ones(3), float("inf"), [1]),
    lambda m: m.empty_strided(2, 1),
    lambda m: m.ones(2, 1).expand(2, ()),
    lambda m: m.broadcast_shapes(float("inf")),
    lambda m: m.tensor_split(m.ones(4), {}),
    lambda m: m.logical_and(m.ones(2), [1, 2]),
    lambda m: m.logical_xor(m.ones(2, 2), np.ones(3)),
    lambda m: m.float_power(m.ones(2), "a"),
    lambda m: m.linspace(m.float32, 1, 3),
    lambda m: m.bernoulli(m.ones(3), (2, 3)),
    lambda m: m.quantile(m.ones(3), None),
    lambda m: m.ones(3).fill_("a"),
    lambda m: m.ones(2, dtype=m.int64).fill_(1e300),
    lambda m: m.ones(2).fill_(1e300),
    lambda m: m.ones(2).clamp_max(1e300),
    lambda m: m.ones(2) * 10 ** 20,
    lambda m: m.tensor([3]) % 0,
    lambda m: m.tensor([3]) // 0,
    lambda m: m.nn.functional.adaptive_avg_pool2d(m.ones(1, 2, 4, 4), float("nan")),
    lambda m: m.nn.functional.affine_grid(m.ones(1, 2, 3), float("inf"), align_corners=False),
    lambda m: m.nn.functional.max_pool2d(m.ones(1, 1, 4, 4), [[1, 2], [3]]),
    lambda m: m.nn.functional.interpolate(m.ones(1, 1, 4), scale_factor=2, mode="no such mode"),
    lambda m: m.histogram(m.ones(3), float("nan")),
    lambda m: m.cross(m.ones(2, 3, 4), m.ones(2, 3)),
    lambda m: m.arange(1e300),
    lambda m: m.zeros(10 ** 20),
    lambda m: m.randperm(10 ** 20),
    lambda m: m.vander(m.ones(3), 10 ** 20),
    lambda m: m.ones(3).tile(10 ** 15),
    lambda m: m.ones(()).repeat_interleave(10 ** 20),
    lambda m: m.nn.functional.adaptive_max_pool1d(m.ones(2, 0, 3), 10 ** 20),
    lambda m: m.ones(2).type_as(-0.5),
    lambda m: m.ones(2, dtype=m.bool).fill_(m.ones(4)),
    lambda m: m.ones(3, requires_grad=True).clone().fill_(m.ones(3)),   # (recorded, too)
    lambda m: m.ones(3, 4).add_(m.ones(4), alpha="mean"),
    lambda m: m.ones(()).new_ones(0, 1e300, 0),
    lambda m: m.nn.Upsample(None, "relu")(m.ones(1, 1, 2)),
    lambda m: m.nn.LPPool1d("a", 2)(m.ones(1, 2, 4)),
    lambda m: m.nn.Embedding(2, 3, ()),
    lambda m: m.randint(m.float32, (2,)),
    lambda m: m.polygamma((0, 1), m.ones(2)),
    lambda m: m.dist(m.ones(2), m.zeros(2), []),
    lambda m: m.linalg.vector_norm(m.ones(2), "a"),
    lambda m: m.hstack(np.ones(3)),
    lambda m: m.tensordot(m.ones(2, 2), m.ones(2, 2), "abc"),
    lambda m: m.ones(3).random_(np.ones(3)),
    lambda m: m.ones(3).random_(10 ** 20),
    lambda m: m.randint_like(m.ones(3), 10 ** 20),
    lambda m: m.set_rng_state(None),
])
def test_odd_arguments_get_gradients_own_errors_where_torch_raises(call):
    """(Found by calling every function with odd arguments: Python's and NumPy's errors from
    inside before, a ZeroDivisionError among them.)"""
    with pytest.raises((TypeError, RuntimeError, IndexError, ValueError, AttributeError,
                        OverflowError)):
        call(torch)
    with pytest.raises(GradientError):
        call(gradient)


def _escaped(text):
    import re
    return re.escape(text)


def test_other_attribute_errors_go_on_as_they_are():
    x = gradient.randn(2)

    def reads_a_missing_attribute_of_a_tensor(t):
        return t.no_such_attribute                  # a Tensor's own failure: a bug, not input

    def reads_an_attribute_tensors_lack(batch):
        return batch.input_ids                      # not an attribute a Tensor has

    with pytest.raises(AttributeError, match="no_such_attribute"):
        tensor_arguments(reads_a_missing_attribute_of_a_tensor)(x)
    with pytest.raises(AttributeError, match="input_ids") as raised:
        tensor_arguments(reads_an_attribute_tensors_lack)({"input_ids": x})
    assert not isinstance(raised.value, ArgumentTypeError)

    class Mine(nn.Module):                          # a layer of the user's: left alone
        def forward(self, x):
            return x.shape

    with pytest.raises(AttributeError) as raised:
        Mine()(None)
    assert not isinstance(raised.value, ArgumentTypeError)


def test_wrapped_functions_keep_their_face():
    assert gradient.abs is gradient.absolute                  # an alias stays one object
    assert pickle.loads(pickle.dumps(gradient.abs)) is gradient.abs
    assert pickle.loads(pickle.dumps(F.relu)) is F.relu
    assert list(inspect.signature(F.linear).parameters)[:2] == ["input", "weight"]
    assert "Example" in (gradient.tensor.__doc__ or "")
    x = gradient.tensor([-1.0, 2.0])
    assert gradient.abs(x).tolist() == [1.0, 2.0]


def test_comparing_with_what_is_no_operand_falls_back_to_identity():
    # PyTorch returns NotImplemented: `mask == None` is False (and `x in [None]` works), where
    # gradient raised DTypeError
    x = gradient.ones(2)
    assert (x == None) is False and (x != None) is True  # noqa: E711
    assert (x == "a") is False and (x == [1.0, 1.0]) is False and (x != object()) is True
    assert x not in [None, "a"]
    assert (x == 1).tolist() == [True, True] and (x != x).tolist() == [False, False]
    assert (x == np.float32(1)).tolist() == [True, True]
    with pytest.raises(TypeError):
        x < None  # noqa: B015


def test_tensor_of_none_with_a_dtype_is_refused_not_nan():
    # NumPy makes None a NaN in a float array: tensor(None, dtype=float32) was tensor(nan), and
    # copy_(None) overwrote a tensor with NaNs
    for data in (None, [1.0, None], [[1.0], [None]], "abc"):
        for dtype in (gradient.float32, gradient.int64):
            with pytest.raises(GradientError, match="cannot make a tensor from"):
                gradient.tensor(data, dtype=dtype)
    x = gradient.tensor([1.0, 2.0])
    with pytest.raises(TypeError):
        x.copy_(None)
    assert x.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("call, message", [
    (lambda x: x.reshape("ab"), "reshape: the shape must be integers, got ('ab',)"),
    (lambda x: x.view(-1, None), "view: the shape must be integers, got (-1, None)"),
    (lambda x: x.flip("a"), "flip: dims must be integers"),
    (lambda x: x.squeeze("a"), "dim must be integers"),
    (lambda x: x.repeat("a"), "repeat: sizes must be integers"),
    (lambda x: gradient.zeros(2, None), "the size must be integers, got (2, None)"),
])
def test_sizes_and_dims_that_are_no_integers_are_named(call, message):
    # Python's "invalid literal for int() with base 10: 'a'" (a ValueError) before
    with pytest.raises(ArgumentTypeError, match=_escaped(message)):
        call(gradient.ones(2, 3))
    assert gradient.ones(2, 3).reshape(3.0, 2).shape == (3, 2)    # int() of a float, as before


@pytest.mark.parametrize("call, message", [
    (lambda x: x.split("a"), "split: split_size must be an integer, got 'a'"),
    (lambda x: x.split([1, "a"]), "split: the sizes must be integers"),
    (lambda x: x.chunk("a"), "chunk: chunks must be an integer"),
    (lambda x: x.roll("a"), "roll: shifts must be an integer"),
    (lambda x: x.roll(1, "a"), "roll: dims must be integers"),
    (lambda x: x.tril("a"), "tril: diagonal must be an integer"),
    (lambda x: x.triu(None), "triu: diagonal must be an integer, got None"),
    (lambda x: x.triu(1.5), "triu: diagonal must be an integer, got 1.5"),   # int() cut it to 1
    (lambda x: x.narrow(0, "a", 1), "narrow: start must be an integer"),
    (lambda x: x.topk("a"), "topk: k must be an integer"),
    (lambda x: x.unfold(0, "a", 1), "unfold: size must be an integer"),
    (lambda x: x.diagonal("a"), "diagonal: offset must be an integer"),
    (lambda x: x.repeat_interleave("a"), "repeat_interleave: repeats must be an integer"),
    (lambda x: x.reshape(2.5, -1), "reshape: the shape must be integers, got (2.5, -1)"),
    (lambda x: gradient.eye("a"), "eye: n must be an integer"),
    (lambda x: gradient.linspace(0, 1, "a"), "linspace: steps must be an integer"),
    (lambda x: gradient.arange("a"), "arange: end must be a number, got 'a'"),
])
def test_counts_offsets_and_steps_that_are_no_integers_are_named(call, message):
    # Python's "invalid literal for int()", "'<' not supported between 'str' and 'int'" or a
    # silently truncated 1.5 before; PyTorch raises a TypeError for each
    x = gradient.ones(4, 4)
    with pytest.raises(ArgumentTypeError, match=_escaped(message)):
        call(x)
    # what int() reads as an integer still is one: 2.0, a NumPy integer, a one-element tensor
    assert x.tril(1.0).sum().item() == x.tril(1).sum().item() == 13
    assert x.topk(np.int64(2))[0].shape == (4, 2)
    assert x.narrow(0, gradient.tensor(1), 2).shape == (2, 4)


@pytest.mark.parametrize("args", [(0, 5, -1), (5, 0, 1), (0, float("inf")), (float("nan"),),
                                  (0, 1, -float("inf")), (0, 5, 0)])
def test_arange_refuses_the_ranges_pytorch_refuses(args):
    with pytest.raises(RuntimeError):        # PyTorch's class: gradient's ShapeError is one
        torch.arange(*args)
    with pytest.raises(ShapeError, match="arange"):
        gradient.arange(*args)


@pytest.mark.parametrize("args", [(5,), (3, 3), (5, 0, -2), (1, 2, 0.25), (True,), (0.5, 3),
                                  (0, 1, float("inf"))])
def test_arange_of_the_ranges_pytorch_takes(args):
    expected = torch.arange(*args)
    got = gradient.arange(*args)
    assert got.tolist() == expected.tolist() and str(got.dtype).split(".")[-1] == \
        str(expected.dtype).split(".")[-1]


@pytest.mark.parametrize("call", [lambda m: m.eye(-1), lambda m: m.linspace(0, 1, -1),
                                  lambda m: m.randperm(-1)])
def test_negative_counts_are_refused(call):
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises(ShapeError, match="must be non-negative, got -1"):
        call(gradient)


@pytest.mark.parametrize("data", [[2 ** 70], 2 ** 70, [[1, 2 ** 64]], [1, -2 ** 70]])
def test_integers_past_64_bits_are_named_not_called_ragged(data):
    with pytest.raises(ValueError):          # "Overflow when unpacking long long"
        torch.tensor(data)
    # "nested sequences must be rectangular" before
    with pytest.raises(DTypeError, match="without overflow .*dtype=gradient.float64"):
        gradient.tensor(data)
    held = gradient.tensor(data, dtype=gradient.float64)
    assert held.tolist() == torch.tensor(data, dtype=torch.float64).tolist()


@pytest.mark.parametrize("call", [
    lambda: gradient.adaptive_max_pool1d(gradient.ones(2, 8), 10 ** 12),
    lambda: F.adaptive_avg_pool1d(gradient.ones(2, 8), 10 ** 12),
    lambda: F.adaptive_avg_pool2d(gradient.ones(1, 2, 3, 4), (None, 10 ** 12)),
])
def test_an_adaptive_pool_far_past_the_memory_is_refused_before_its_windows_grow(call):
    # (its windows are Python lists as long as the output: they grew until the system killed
    # the process)
    with pytest.raises(ArgumentValueError, match="more than this machine's memory"):
        call()
