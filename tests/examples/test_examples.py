"""The examples and the README's snippets run and do what they say."""

import pathlib
import re
import runpy

import pytest

import gradient

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_spiral_mlp_learns_the_spirals():
    example = runpy.run_path(str(ROOT / "examples" / "spiral_mlp.py"))
    assert example["main"](steps=1500) > 0.9


@pytest.mark.parametrize("block", [
    b for b in re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    # those need a model (tests/hub/test_readme.py runs them offline) or a running server
    # (tests/serve drives the same client calls)
    if "gradient.hub." not in b and "OpenAI(" not in b])
def test_readme_python_snippets_run(block):
    exec(compile(block, "README.md", "exec"), {"gradient": gradient})


def test_teaching_walkthrough_scalar_and_tensor_autograd_agree(monkeypatch):
    import math
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "teaching"))
    walkthrough = runpy.run_path(str(ROOT / "examples" / "teaching" / "tensor_autograd.py"))
    second = walkthrough["main"]()  # asserts the first derivatives agree to 1e-12
    # d2/dw1^2 of tanh(x1 w1 + x2 w2 + b) + 0.1 exp(w1 w2) at the example's point
    t = math.tanh(2.0 * -3.0 + 6.8813735870195432)
    expected = -2 * t * (1 - t * t) * 2.0 ** 2 + 0.1 * math.exp(-3.0)
    assert math.isclose(second, expected, rel_tol=1e-10)
