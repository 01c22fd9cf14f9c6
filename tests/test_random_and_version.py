"""gradient.random (torch.random's names and fork_rng) and gradient.version (torch.version's
cuda, hip and debug), as PyTorch programs use them."""

import pytest
import torch

import gradient


def test_torch_random_names_are_there():
    names = ["manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
             "fork_rng", "default_generator"]
    assert all(hasattr(torch.random, n) for n in names)          # (PyTorch's own)
    assert all(hasattr(gradient.random, n) for n in names)
    gradient.random.manual_seed(7)
    assert gradient.random.initial_seed() == 7
    first = gradient.randn(3).tolist()
    gradient.manual_seed(7)
    assert gradient.randn(3).tolist() == first                 # one generator


@pytest.mark.parametrize("enabled", [True, False])
def test_fork_rng_gives_the_block_its_own_numbers(enabled):
    gradient.manual_seed(3)
    expected = gradient.rand(4).tolist()
    gradient.manual_seed(3)
    with gradient.random.fork_rng(enabled=enabled):
        inside = gradient.rand(4).tolist()
    after = gradient.rand(4).tolist()
    assert inside == expected
    # restored: the next draw is the block's again; not restored: the generator moved on
    assert (after == expected) == enabled


def test_fork_rng_restores_after_an_error():
    gradient.manual_seed(5)
    expected = gradient.rand(2).tolist()
    gradient.manual_seed(5)
    with pytest.raises(ValueError):
        with gradient.random.fork_rng(devices=[0]):
            gradient.rand(2)
            raise ValueError("in the block")
    assert gradient.rand(2).tolist() == expected


def test_version_has_torchs_fields():
    assert gradient.version.hip is None and gradient.version.debug is False
    cuda = gradient.version.cuda
    assert cuda is None if not gradient.cuda.is_available() else isinstance(cuda, str)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        gradient.version.nothing
