"""Checks shared by the GPT-2 and LLaMA tests of the decode path on raw arrays
(``gradient.models.raw_decode``): where a module's forward could differ from the arithmetic the
raw path runs, the module graph must run instead."""

import numpy as np

import gradient


def assert_module_graph_where_forwards_differ(model, decode, decode_calls, ids, hooked, parent,
                                              name):
    """With a forward hook on ``hooked``, a subclassed ``Linear`` at ``parent.<name>``, autocast
    or a recorded graph, the decode steps take the module graph (``decode_calls`` stays empty)
    and give what it gives; afterwards the raw path is taken again with the same logits.

    ``decode(model, ids, fused=True)`` returns the logits of a prefill then one-token steps
    (``ids`` of shape (1, 9): a prefill of 6, three steps)."""
    expected = decode(model, ids, fused=False)
    seen = []
    handle = hooked.register_forward_hook(lambda m, i, o: seen.append(1))
    np.testing.assert_array_equal(decode(model, ids), expected)
    assert len(seen) == 4 and decode_calls == []  # the hook ran at every step, prefill included
    handle.remove()

    class Scaled(gradient.nn.Linear):             # a subclass may compute something else
        def forward(self, x):
            return super().forward(x) * 2.0
    old = getattr(parent, name)
    swapped = Scaled(old.in_features, old.out_features, bias=old.bias is not None)
    swapped.load_state_dict(old.state_dict())
    setattr(parent, name, swapped)
    scaled = decode(model, ids)
    assert decode_calls == [] and not np.allclose(scaled, expected)
    setattr(parent, name, old)

    with gradient.amp.autocast("cpu", dtype=gradient.bfloat16):    # the products in bfloat16
        low = decode(model, ids)
    assert decode_calls == [] and not np.array_equal(low, expected)

    with gradient.enable_grad():                  # recording: the graph is needed
        cache = model.new_cache(1, 9)
        model(gradient.tensor(ids[:, :8]), cache=cache)
        model(gradient.tensor(ids[:, 8:]), cache=cache).logits.sum().backward()
    assert decode_calls == [] and model.lm_head.weight.grad is not None
    np.testing.assert_array_equal(decode(model, ids), expected)
    assert len(decode_calls) == 3
