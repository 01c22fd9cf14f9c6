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


@pytest.mark.parametrize("block", re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(),
                                             re.S))
def test_readme_python_snippets_run(block):
    exec(compile(block, "README.md", "exec"), {"gradient": gradient})
