"""The README's hub snippet, run against an offline cache that holds a small 'gpt2'."""

import pathlib
import re

import gradient

from .checkpoints import add_to_cache

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def hub_snippets():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return [b for b in blocks if "gradient.hub." in b]


def test_readme_hub_snippet_runs_offline(hub_cache, gpt2_dir, capsys):
    add_to_cache(hub_cache, "openai-community/gpt2", gpt2_dir)
    snippets = hub_snippets()
    assert snippets, "the README shows gradient.hub.load"
    for block in snippets:
        exec(compile(block, "README.md", "exec"), {"gradient": gradient})
    assert capsys.readouterr().out.strip()  # it printed the generated text
