"""PyTorch's legacy tensor types (gradient.FloatTensor ..., gradient.cuda.FloatTensor ...),
x.type(), set_default_tensor_type and autograd.Variable, against torch's."""

import warnings

import numpy as np
import pytest
import torch

import gradient
from gradient.autograd import Variable
from gradient.errors import DeviceError, DTypeError

NAMES = ["FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "ByteTensor",
         "CharTensor", "ShortTensor", "IntTensor", "LongTensor", "BoolTensor"]
DTYPES = ["float32", "float64", "float16", "bfloat16", "uint8", "int8", "int16", "int32",
          "int64", "bool"]


@pytest.mark.parametrize("name", NAMES)
def test_a_legacy_type_makes_tensors_as_torchs(name):
    ours, theirs = getattr(gradient, name), getattr(torch, name)
    assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")
    for args in ([[1, 0, 1]], [(2, 3)], [np.array([1, 0])], [2, 3], []):
        made, expected = ours(*args), theirs(*args)
        assert made.dtype.name == str(expected.dtype).removeprefix("torch.")
        assert tuple(made.shape) == tuple(expected.shape)
        if args and not (len(args) > 1 or args == [2, 3]):
            np.testing.assert_array_equal(made.double().numpy(), expected.double().numpy())
    assert ours.is_cuda is False and gradient.cuda.__dict__[name].is_cuda is True


def test_new_and_a_size_given_to_the_constructor_as_torchs():
    x, t = gradient.ones(2, dtype=gradient.float64), torch.ones(2, dtype=torch.float64)
    cases = [((), ()), ((2, 3), (2, 3)), (([1, 2],), ([1, 2],)), (((2, 3),), ((2, 3),)),
             ((gradient.Size([4, 1]),), (torch.Size([4, 1]),))]
    for ours_args, theirs_args in cases:
        made, expected = x.new(*ours_args), t.new(*theirs_args)
        assert tuple(made.shape) == tuple(expected.shape) and made.dtype is gradient.float64
        if ours_args and isinstance(ours_args[0], list | tuple) and \
                not isinstance(ours_args[0], gradient.Size):
            np.testing.assert_array_equal(made.numpy(), expected.numpy())    # values, not sizes
    assert tuple(gradient.Tensor(gradient.Size([2, 5])).shape) == (2, 5)
    assert tuple(torch.Tensor(torch.Size([2, 5])).shape) == (2, 5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_isinstance_and_type_name_follow_the_dtype(dtype):
    x, t = gradient.zeros(2, dtype=dtype), torch.zeros(2, dtype=getattr(torch, dtype))
    assert x.type() == t.type().replace("torch.", "gradient.")
    for name in NAMES:
        assert isinstance(x, getattr(gradient, name)) == isinstance(t, getattr(torch, name))
        assert not isinstance(x, gradient.cuda.__dict__[name])    # a CPU tensor
    assert not isinstance(t, gradient.FloatTensor) and not isinstance(3.0, gradient.FloatTensor)
    assert gradient.typename(x) == x.type()


@pytest.mark.parametrize("to", [lambda m: m.LongTensor, lambda m: "torch.DoubleTensor",
                                lambda m: "torch.HalfTensor", lambda m: m.float16,
                                lambda m: m.BoolTensor])
def test_type_converts_as_torchs(to):
    x = gradient.tensor([1.5, -2.0, 0.0])
    t = torch.tensor([1.5, -2.0, 0.0])
    got, expected = x.type(to(gradient)), t.type(to(torch))
    assert got.type() == expected.type().replace("torch.", "gradient.")
    np.testing.assert_array_equal(got.numpy(), expected.numpy())
    assert x.type(gradient.FloatTensor) is x and x.type("gradient.FloatTensor") is x


def test_a_legacy_name_gradient_does_not_know_is_a_clear_error():
    x = gradient.ones(2)
    with pytest.raises(DTypeError, match="'torch.FooTensor'.*such as 'torch.FloatTensor'"):
        x.type("torch.FooTensor")


@pytest.mark.skipif(gradient.cuda.is_available(), reason="checks the machine without a GPU")
def test_cuda_types_without_a_gpu_say_so():
    with pytest.raises(DeviceError):
        gradient.cuda.FloatTensor([1.0])
    with pytest.raises(DeviceError):
        gradient.ones(2).type(gradient.cuda.FloatTensor)
    with pytest.raises(DeviceError):
        gradient.ones(2).type("torch.cuda.LongTensor")


def test_set_default_tensor_type():
    try:
        with pytest.warns(DeprecationWarning):
            gradient.set_default_tensor_type(gradient.DoubleTensor)
        assert gradient.get_default_dtype() is gradient.float64
        assert gradient.ones(1).dtype is gradient.float64 and gradient.Tensor(2).dtype.name == \
            "float64"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            gradient.set_default_tensor_type("torch.FloatTensor")
            assert gradient.ones(1).dtype is gradient.float32
            with pytest.raises(DTypeError, match="floating"):
                gradient.set_default_tensor_type(gradient.LongTensor)
            with pytest.raises(DTypeError, match="tensor type"):
                gradient.set_default_tensor_type(gradient.float64)
    finally:
        gradient.set_default_dtype(gradient.float32)
        gradient.set_default_device(None)


def test_variable_is_a_detached_tensor_as_in_torch():
    from torch.autograd import Variable as TorchVariable
    x, t = gradient.ones(2), torch.ones(2)
    v, tv = Variable(x, requires_grad=True), TorchVariable(t, requires_grad=True)
    assert v is not x and v.requires_grad == tv.requires_grad and v.is_leaf == tv.is_leaf
    x.add_(1.0)
    assert v.tolist() == [2.0, 2.0]              # the same data
    y, ty = v * 2, tv * 2
    w, tw = Variable(y), TorchVariable(ty)
    assert (w.requires_grad, w.grad_fn, w.is_leaf) == (tw.requires_grad, tw.grad_fn, tw.is_leaf)
    assert isinstance(x, Variable) and isinstance(w, Variable) and not isinstance(1, Variable)
    (v * v).sum().backward()
    assert v.grad.tolist() == [4.0, 4.0]
    with pytest.warns(UserWarning, match="no_grad"):
        Variable(x, volatile=True)
    with pytest.raises(TypeError, match="expected a tensor"):
        Variable([1.0, 2.0])
