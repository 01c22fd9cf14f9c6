"""gradient raises its own error classes (gradient/errors.py), each a subclass of the built-in
one a Python user catches and, where PyTorch raises RuntimeError, of that too."""

import ast
import pathlib
import pickle

import pytest
import torch

import gradient
from gradient.errors import ArgumentValueError, GradientError

PACKAGE = pathlib.Path(gradient.__file__).parent


def _bare_raises(name: str) -> list:
    """``path:line`` of every ``raise name(...)`` in gradient's own source."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)
                    and isinstance(node.exc.func, ast.Name) and node.exc.func.id == name):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    return found


@pytest.mark.parametrize("name", ["ValueError", "TypeError", "RuntimeError"])
def test_no_bare_value_type_or_runtime_error_is_raised(name):
    # a caller catching gradient.GradientError catches every refusal of a bad argument or
    # of a call at the wrong time (UsageError, AutogradError: RuntimeErrors too)
    assert _bare_raises(name) == []


def test_index_errors_are_gradients_own_outside_compiled_kernels():
    # (a compiled kernel's raise ends the compiled step, which is then replayed in Python,
    # where gradient's own error is raised: gradient.capture.plan)
    assert [f for f in _bare_raises("IndexError")
            if not f.startswith("gradient/backends/cpu_lowered.py")] == []


@pytest.mark.parametrize("call", [
    lambda m: m.gather(m.zeros(3, 4), 1, m.tensor([[0, 9]] * 3)),
    lambda m: m.index_select(m.zeros(3, 4), 0, m.tensor([5])),
    lambda m: m.nn.functional.embedding(m.tensor([[0, 70]]), m.zeros(10, 4)),
    lambda m: m.nn.functional.cross_entropy(m.zeros(4, 10), m.tensor([0, 1, 2, 10])),
    lambda m: m.topk(m.zeros(3), 5),
    lambda m: m.nn.ModuleList([m.nn.ReLU()])[3],
])
def test_indices_out_of_range_raise_what_pytorch_raises_and_gradients_own(call):
    with pytest.raises((IndexError, RuntimeError)) as theirs:
        call(torch)
    with pytest.raises(gradient.errors.IndexRangeError) as ours:
        call(gradient)
    assert isinstance(ours.value, type(theirs.value).__mro__[0])
    assert isinstance(ours.value, GradientError)


@pytest.mark.parametrize("call", [
    lambda m: m.normal(0.0, -1.0, (2,)),
    lambda m: m.bernoulli(m.full((2,), 1.5)),
    lambda m: m.ones(3).div(2, rounding_mode="nearest"),
    lambda m: m.randint(5, 5, (2,)),
    lambda m: m.multinomial(m.ones(4), 0),
])
def test_bad_values_raise_gradient_errors_where_pytorch_raises_runtime_errors(call):
    with pytest.raises(RuntimeError):
        call(torch)
    with pytest.raises(ArgumentValueError) as caught:
        call(gradient)
    error = caught.value
    assert isinstance(error, GradientError) and isinstance(error, ValueError) \
        and isinstance(error, RuntimeError)
    again = pickle.loads(pickle.dumps(error))      # (a rank's or a plugin's error travels)
    assert type(again) is ArgumentValueError and str(again) == str(error)


@pytest.mark.filterwarnings("ignore:.*weight_norm. is deprecated:FutureWarning")
def test_misuse_raises_usage_errors_where_pytorch_raises_runtime_errors():
    for m in (torch, gradient):
        with pytest.raises(RuntimeError) as caught:
            m.nn.ParameterList([m.nn.Parameter(m.ones(2))])()
        if m is gradient:
            assert isinstance(caught.value, gradient.errors.UsageError)
            assert isinstance(caught.value, GradientError)
        layer = m.nn.Linear(2, 2)
        m.nn.utils.weight_norm(layer)
        with pytest.raises(RuntimeError, match="two weight_norm hooks") as caught:
            m.nn.utils.weight_norm(layer)
    assert isinstance(caught.value, gradient.errors.UsageError)
