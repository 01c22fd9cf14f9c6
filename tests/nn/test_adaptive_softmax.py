"""AdaptiveLogSoftmaxWithLoss against torch 2.13 on copied weights: output, loss, log_prob,
predict, the gradients of the input and of every parameter, repr, state_dict names, errors."""

import numpy as np
import pytest

import gradient
import gradient.nn as gnn

torch = pytest.importorskip("torch")


def _pair(head_bias):
    torch.manual_seed(0)
    theirs = torch.nn.AdaptiveLogSoftmaxWithLoss(16, 30, cutoffs=[5, 12, 20], div_value=2.0,
                                                 head_bias=head_bias).double()
    ours = gnn.AdaptiveLogSoftmaxWithLoss(16, 30, cutoffs=[5, 12, 20], div_value=2.0,
                                          head_bias=head_bias, dtype=gradient.float64)
    ours.load_state_dict({k: gradient.tensor(v.detach().numpy(), dtype=gradient.float64)
                          for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("head_bias", [False, True])
def test_forward_backward_match_torch(head_bias):
    ours, theirs = _pair(head_bias)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    r = np.random.default_rng(0)
    x = r.standard_normal((9, 16))
    target = np.array([0, 4, 5, 11, 12, 19, 20, 29, 3])   # every cluster, and both edges of each
    xg = gradient.tensor(x, dtype=gradient.float64, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    og, lg = ours(xg, gradient.tensor(target))
    ot, lt = theirs(xt, torch.tensor(target))
    np.testing.assert_allclose(og.detach().numpy(), ot.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(lg.detach()), float(lt.detach()), rtol=1e-10)
    lg.backward()
    lt.backward()
    np.testing.assert_allclose(xg.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(ours_params[name].grad.numpy(), p.grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=name)
    lp_g, lp_t = ours.log_prob(xg), theirs.log_prob(xt)
    np.testing.assert_allclose(lp_g.detach().numpy(), lp_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.exp(lp_g.detach().numpy()).sum(1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(ours.predict(xg).numpy(), theirs.predict(xt).numpy())


def test_unbatched_input():
    ours, theirs = _pair(False)
    x = np.random.default_rng(1).standard_normal(16)
    og, lg = ours(gradient.tensor(x, dtype=gradient.float64), gradient.tensor(25))
    ot, lt = theirs(torch.tensor(x), torch.tensor(25))
    assert tuple(og.shape) == tuple(ot.shape) == ()
    np.testing.assert_allclose(float(og), float(ot.detach()), rtol=1e-10)
    assert tuple(ours.log_prob(gradient.tensor(x, dtype=gradient.float64)).shape) == (30,)


def test_errors():
    with pytest.raises(ValueError, match="cutoffs"):
        gnn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[5, 3])
    with pytest.raises(ValueError, match="cutoffs"):
        gnn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[10])
    asm = gnn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[4])
    with pytest.raises(IndexError, match=r"\[0, 9\]"):
        asm(gradient.randn(2, 8), gradient.tensor([1, 10]))
    with pytest.raises(Exception, match="batch dimension"):
        asm(gradient.randn(3, 8), gradient.tensor([1, 2]))
    with pytest.raises(Exception, match="1-d target"):
        asm(gradient.randn(3, 2, 8), gradient.tensor([1, 2, 3]))
