"""``gradient.compile`` and ``gradient.compiler``'s names run everything eagerly; against
torch's (whose calls that change its compiler's state run for gradient only)."""

import pytest
import torch

import gradient

LIBS = pytest.mark.parametrize("lib", [gradient, torch], ids=["gradient", "torch"])


@LIBS
def test_compiler_names_run_eagerly(lib):
    compiler = lib.compiler
    assert not compiler.is_compiling() and not compiler.is_dynamo_compiling()

    @compiler.disable
    def double(x):
        return x * 2

    @compiler.disable(recursive=False)
    def triple(x):
        return x * 3

    assert double(lib.ones(1)).item() == 2.0 and triple(lib.ones(1)).item() == 3.0
    if lib is gradient:     # (torch's change its compiler's state for the tests after)
        compiler.reset()
        compiler.cudagraph_mark_step_begin()
        with compiler.set_stance("force_eager"):
            assert lib.compile(lib.nn.Linear(2, 2))(lib.ones(1, 2)).shape == (1, 2)
        assert compiler.list_backends() == [] and compiler.compile is gradient.compile
        assert compiler.allow_in_graph(len) is len
