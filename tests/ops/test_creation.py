"""Creation ops that PyTorch users call by name: bernoulli, normal, the random in-place fills
(random_, bernoulli_, exponential_) and triu_indices / tril_indices.

Random draws come from gradient's own generator, so they are checked for their distribution,
range, dtype, shape and reproducibility, not against PyTorch's numbers.
"""

import math

import numpy as np
import pytest

import gradient
from gradient.errors import DTypeError, ShapeError

torch = pytest.importorskip("torch")


def test_bernoulli_draws_ones_with_the_given_probabilities():
    gradient.manual_seed(0)
    p = gradient.tensor([0.0, 0.2, 0.9, 1.0]).expand(20000, 4)
    draws = gradient.bernoulli(p)
    assert draws.dtype is gradient.float32 and tuple(draws.shape) == (20000, 4)
    assert set(np.unique(draws.numpy())) <= {0.0, 1.0}
    np.testing.assert_allclose(draws.numpy().mean(0), [0.0, 0.2, 0.9, 1.0], atol=0.015)
    assert gradient.bernoulli(gradient.zeros(3, dtype=gradient.float64), 1.0).dtype is gradient.float64
    np.testing.assert_array_equal(gradient.zeros(3).bernoulli(p=1.0).numpy(), [1, 1, 1])


def test_bernoulli_is_reproducible_with_a_generator_and_not_differentiable():
    p = gradient.full((50,), 0.5, requires_grad=True)
    a = gradient.bernoulli(p, generator=gradient.Generator().manual_seed(3))
    b = gradient.bernoulli(p, generator=gradient.Generator().manual_seed(3))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not a.requires_grad


@pytest.mark.parametrize("p", [1.5, -0.1, float("nan")])
def test_bernoulli_refuses_probabilities_outside_0_1(p):
    with pytest.raises(ValueError, match=r"probabilit.* in \[0, 1\]"):
        gradient.bernoulli(gradient.tensor([0.5, p]))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        gradient.zeros(2).bernoulli_(p)


def test_bernoulli_in_place_with_a_tensor_of_probabilities():
    gradient.manual_seed(1)
    x = gradient.zeros(10000, 2, dtype=gradient.int64)
    x.bernoulli_(gradient.tensor([0.25, 0.75]))
    assert x.dtype is gradient.int64
    np.testing.assert_allclose(x.numpy().mean(0), [0.25, 0.75], atol=0.02)
    with pytest.raises(ShapeError, match="does not broadcast"):
        gradient.zeros(3).bernoulli_(gradient.full((2, 3), 0.5))


def test_random_ranges_follow_torch():
    gradient.manual_seed(0)
    x = gradient.empty(4000, dtype=gradient.int64).random_(10)
    assert x.numpy().min() == 0 and x.numpy().max() == 9
    y = gradient.empty(4000).random_(-3, 2)
    assert y.dtype is gradient.float32 and set(np.unique(y.numpy())) == {-3, -2, -1, 0, 1}
    z = gradient.empty(4000, dtype=gradient.uint8).random_()
    assert z.numpy().max() > 200  # [0, 255]
    f = gradient.empty(2000, dtype=gradient.float16).random_()  # [0, 2 ** 11]
    assert f.numpy().max() <= 2048 and np.all(f.numpy() == np.round(f.numpy()))
    b = gradient.empty(100, dtype=gradient.bool).random_()
    assert set(np.unique(b.numpy())) == {False, True}


def test_random_refuses_empty_or_unrepresentable_ranges():
    with pytest.raises(ValueError, match="expected from < to"):
        gradient.empty(3).random_(5, 5)
    with pytest.raises(ValueError, match="does not fit in gradient.int8"):
        gradient.empty(3, dtype=gradient.int8).random_(0, 1000)


def test_exponential_has_the_right_mean():
    gradient.manual_seed(0)
    x = gradient.empty(20000, dtype=gradient.float64).exponential_(4.0)
    assert x.numpy().min() >= 0
    assert abs(x.numpy().mean() - 0.25) < 0.01
    with pytest.raises(DTypeError, match="floating"):
        gradient.empty(3, dtype=gradient.int64).exponential_()
    with pytest.raises(ValueError, match="lambd > 0"):
        gradient.empty(3).exponential_(0.0)


def test_normal_function_forms_match_torch_shapes_and_dtypes():
    mean, std = gradient.zeros(2, 1), gradient.ones(3)
    for ours, theirs in [
        (gradient.normal(mean, std), torch.normal(torch.zeros(2, 1), torch.ones(3))),
        (gradient.normal(mean), torch.normal(torch.zeros(2, 1))),
        (gradient.normal(2.0, std), torch.normal(2.0, torch.ones(3))),
        (gradient.normal(0.0, 1.0, size=(2, 5)), torch.normal(0.0, 1.0, size=(2, 5))),
        (gradient.normal(0.0, 1.0, (4,), dtype=gradient.float64),
         torch.normal(0.0, 1.0, (4,), dtype=torch.float64)),
    ]:
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert ours.dtype.name == str(theirs.dtype).removeprefix("torch.")


def test_normal_statistics_and_reparameterized_gradient():
    gradient.manual_seed(0)
    mean = gradient.full((20000,), 3.0, dtype=gradient.float64, requires_grad=True)
    std = gradient.full((20000,), 0.5, dtype=gradient.float64, requires_grad=True)
    x = gradient.normal(mean, std)
    assert abs(x.detach().numpy().mean() - 3.0) < 0.02
    assert abs(x.detach().numpy().std() - 0.5) < 0.02
    x.sum().backward()
    np.testing.assert_array_equal(mean.grad.numpy(), np.ones(20000))
    # d x / d std is the standard normal draw: (x - mean) / std
    np.testing.assert_allclose(std.grad.numpy(), (x.detach().numpy() - 3.0) / 0.5, atol=1e-12)


def test_normal_errors():
    with pytest.raises(TypeError, match="give the size"):
        gradient.normal(0.0, 1.0)
    with pytest.raises(ValueError, match="std >= 0"):
        gradient.normal(gradient.zeros(2), gradient.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="std >= 0"):
        gradient.normal(0.0, -1.0, size=(2,))
    with pytest.raises(DTypeError, match="floating-point mean and std"):
        gradient.normal(gradient.zeros(2, dtype=gradient.int64))


@pytest.mark.parametrize("row,col,offset", [(3, 3, 0), (4, 3, 1), (3, 5, -1), (0, 3, 0),
                                            (3, 4, -5), (3, 4, 10), (1, 1, 0)])
@pytest.mark.parametrize("name", ["tril_indices", "triu_indices"])
def test_triangle_indices_match_torch(name, row, col, offset):
    ours = getattr(gradient, name)(row, col, offset)
    theirs = getattr(torch, name)(row, col, offset)
    assert ours.dtype is gradient.int64
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_triangle_indices_dtype_and_errors():
    assert gradient.tril_indices(3, 3, dtype=gradient.int32).dtype is gradient.int32
    with pytest.raises(DTypeError, match="integer dtype"):
        gradient.triu_indices(3, 3, dtype=gradient.float32)
    with pytest.raises(ValueError, match="non-negative"):
        gradient.tril_indices(-1, 3)
    x = gradient.arange(9.0).reshape(3, 3)
    rows, cols = gradient.triu_indices(3, 3, 1)
    np.testing.assert_array_equal(x[rows, cols].numpy(), [1.0, 2.0, 5.0])
    assert math.isclose(float(x[tuple(gradient.tril_indices(3, 3))].sum()), 0 + 3 + 4 + 6 + 7 + 8)
