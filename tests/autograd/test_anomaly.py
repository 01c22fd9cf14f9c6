"""Anomaly detection: NaN gradients caught in backward with the forward line that made the op."""

import warnings

import numpy as np
import pytest
import torch

import gradient
from gradient.autograd import anomaly_mode, function
from gradient.errors import AutogradError

ag = gradient.autograd


@pytest.fixture(autouse=True)
def restore_mode():
    """The mode is process-wide: leave it off for the tests that follow, whatever happens."""
    yield
    anomaly_mode._set(False, True)


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # "Anomaly Detection has been enabled"
        warnings.simplefilter("ignore", RuntimeWarning)   # NumPy's, on the NaNs made on purpose
        yield


def nan_through_mul(m):
    x = m.tensor([0.0, 1.0], requires_grad=True)
    w = m.tensor([float("nan"), 1.0])
    return x, (x * w).sum()   # the line the error must show


def test_nan_in_backward_names_the_op_and_shows_the_forward_line():
    with ag.detect_anomaly():
        x, loss = nan_through_mul(gradient)
        with pytest.raises(AutogradError) as info:
            loss.backward()
    msg = str(info.value)
    assert msg.startswith("Function 'MulBackward' returned nan values in its 0th output.")
    assert "Traceback of forward call that caused the error:" in msg
    assert "return x, (x * w).sum()   # the line the error must show" in msg
    assert "in nan_through_mul" in msg and __file__ in msg
    assert isinstance(info.value, RuntimeError)
    # torch raises on the same graph, for its MulBackward0
    with torch.autograd.detect_anomaly():
        _, torch_loss = nan_through_mul(torch)
        with pytest.raises(RuntimeError, match="Function 'MulBackward0' returned nan values in its 0th output"):
            torch_loss.backward()


def test_nothing_is_raised_without_anomaly_mode():
    x, loss = nan_through_mul(gradient)
    loss.backward()
    assert np.isnan(x.grad.numpy()[0])


def test_nan_made_by_a_backward_formula_is_caught_at_that_op():
    x = gradient.tensor([0.0, 4.0], requires_grad=True)
    with ag.detect_anomaly():
        y = x.sqrt() * 0.0          # 0 * d(sqrt)/dx at 0 = 0 * inf
        with pytest.raises(AutogradError, match=r"^Function 'SqrtBackward' returned nan values in its 0th output") as info:
            y.sum().backward()
    assert "y = x.sqrt() * 0.0" in str(info.value)


class NanSecond(gradient.autograd.Function):
    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, grad):
        return grad, grad * float("nan")


def test_the_index_of_the_bad_gradient_and_a_custom_function_name():
    a = gradient.ones(2, requires_grad=True)
    b = gradient.ones(2, requires_grad=True)
    with ag.detect_anomaly():
        out = NanSecond.apply(a, b)
        with pytest.raises(AutogradError, match=r"^Function 'NanSecondBackward' returned nan values in its 1th output"):
            out.sum().backward()


def test_autograd_grad_is_checked_too():
    x = gradient.tensor([0.0], requires_grad=True)
    with ag.detect_anomaly():
        y = (x.log() * 0.0).sum()    # 0 * (1/0)
        with pytest.raises(AutogradError, match="LogBackward"):
            ag.grad(y, x)


def test_check_nan_false_lets_nan_through():
    with ag.detect_anomaly(check_nan=False):
        assert ag.is_anomaly_enabled() and not ag.is_anomaly_check_nan_enabled()
        x, loss = nan_through_mul(gradient)
        loss.backward()
    assert np.isnan(x.grad.numpy()[0])


class Broken(gradient.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        return a * 2

    @staticmethod
    def backward(ctx, grad):
        raise ValueError("broken backward")


def test_an_error_in_backward_gets_the_forward_traceback_as_a_note():
    a = gradient.ones(2, requires_grad=True)
    with ag.set_detect_anomaly(True, check_nan=False):
        out = Broken.apply(a)   # made here
        with pytest.raises(ValueError, match="broken backward") as info:
            out.sum().backward()
    notes = "\n".join(getattr(info.value, "__notes__", []))
    if hasattr(info.value, "add_note"):   # Python 3.11+
        assert "BrokenBackward" in notes and "out = Broken.apply(a)   # made here" in notes


def test_a_node_recorded_before_anomaly_mode_says_so():
    x, loss = nan_through_mul(gradient)
    with ag.detect_anomaly():
        with pytest.raises(AutogradError, match="No forward traceback was recorded"):
            loss.backward()


# ---------------------------------------------------------------------------- the mode itself
def test_defaults_match_torch():
    assert ag.is_anomaly_enabled() is False is torch.is_anomaly_enabled()
    assert ag.is_anomaly_check_nan_enabled() is True is torch.is_anomaly_check_nan_enabled()


def test_context_managers_restore_the_previous_mode():
    with ag.detect_anomaly():
        assert ag.is_anomaly_enabled() and ag.is_anomaly_check_nan_enabled()
        with ag.set_detect_anomaly(False):
            assert not ag.is_anomaly_enabled()
            with ag.detect_anomaly(check_nan=False):
                assert ag.is_anomaly_enabled() and not ag.is_anomaly_check_nan_enabled()
            assert not ag.is_anomaly_enabled() and ag.is_anomaly_check_nan_enabled()
        assert ag.is_anomaly_enabled()
    assert not ag.is_anomaly_enabled()


def test_the_mode_is_restored_when_the_block_raises():
    with pytest.raises(KeyError):
        with ag.detect_anomaly(check_nan=False):
            raise KeyError("boom")
    assert not ag.is_anomaly_enabled() and ag.is_anomaly_check_nan_enabled()


def test_set_detect_anomaly_takes_effect_at_once():
    ag.set_detect_anomaly(True)
    assert ag.is_anomaly_enabled()
    ag.set_detect_anomaly(False)
    assert not ag.is_anomaly_enabled()


def test_detect_anomaly_as_a_decorator():
    @ag.detect_anomaly(check_nan=False)
    def inside():
        return ag.is_anomaly_enabled(), ag.is_anomaly_check_nan_enabled()

    assert inside() == (True, False) and inside() == (True, False)
    assert not ag.is_anomaly_enabled()


def test_detect_anomaly_warns_as_torch_does():
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        ag.detect_anomaly()


def test_the_mode_is_process_wide_as_in_torch():
    import threading
    seen = []
    with ag.detect_anomaly():
        thread = threading.Thread(target=lambda: seen.append(ag.is_anomaly_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


# ---------------------------------------------------------------------------- cost when off
def test_no_traceback_is_captured_when_off(monkeypatch):
    def refuse():
        raise AssertionError("a traceback was captured with anomaly detection off")
    monkeypatch.setattr(anomaly_mode, "capture_forward_trace", refuse)
    x = gradient.ones(3, requires_grad=True)
    y = (x * 2).exp().sum()
    assert getattr(y.grad_fn, "forward_trace", None) is None
    y.backward()


def test_nothing_is_checked_in_backward_when_off(monkeypatch):
    from gradient.autograd import engine
    monkeypatch.setattr(engine, "_apply_checked", lambda node, grads: pytest.fail("checked while off"))
    x = gradient.ones(3, requires_grad=True)
    (x * 2).sum().backward()


def test_nodes_made_in_anomaly_mode_keep_a_short_trace():
    with ag.detect_anomaly():
        y = gradient.ones(2, requires_grad=True) * 3
    trace = y.grad_fn.forward_trace
    assert 0 < len(trace) <= anomaly_mode._TRACE_DEPTH
    assert __file__ in [f.filename for f in trace]
    assert not any(f.filename == function.__file__ for f in trace)   # autograd's machinery is left out
