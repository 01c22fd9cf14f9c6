"""Checks shared by the tests of the decode path on raw arrays (``gradient.models.raw_decode``)
for GPT-2, the LLaMA family and their quantized forms: the logits of a decode run with the path
allowed or not, a count of the steps that took it, and the cases where a module's forward could
differ from the arithmetic the raw path runs, so the module graph must run instead."""

import numpy as np

import gradient


def decode_logits(model, ids, prompt=6, fused=True):
    """Logits (B, T, vocab) of a prefill of the first ``prompt`` tokens of ``ids`` then one-token
    steps through the rest, on the model's device, with the decode path on raw arrays allowed
    (``fused``) or not (the decoder stack's ``fused_decode`` flag)."""
    stack = model.transformer if hasattr(model, "transformer") else model.model
    device = next(iter(model.parameters())).device
    stack.fused_decode = fused
    try:
        with gradient.no_grad():
            cache = model.new_cache(ids.shape[0], ids.shape[1])
            steps = [model(gradient.tensor(ids[:, :prompt], device=device), cache=cache)]
            for t in range(prompt, ids.shape[1]):
                steps.append(model(gradient.tensor(ids[:, t:t + 1], device=device), cache=cache))
    finally:
        stack.fused_decode = True
    return np.concatenate([s.logits.numpy() for s in steps], 1)


def count_raw_steps(monkeypatch, model_module) -> list:
    """A list that gains an entry for each decode step ``model_module`` (``gradient.models.gpt2``
    or ``.llama``) runs on raw arrays (its ``_decode_on_arrays``)."""
    calls = []
    real = model_module._decode_on_arrays
    monkeypatch.setattr(model_module, "_decode_on_arrays", lambda *a: calls.append(1) or real(*a))
    return calls


def assert_module_graph_where_forwards_differ(model, decode_calls, ids, hooked, parent, name):
    """With a forward hook on ``hooked``, a subclassed ``Linear`` at ``parent.<name>`` or a
    ``forward`` set on the one there, autocast or a recorded graph, the decode steps take the
    module graph (``decode_calls``, from :func:`count_raw_steps` or a count of the compiled
    steps, stays empty) and give what it gives; afterwards the raw path is taken again with the
    same logits (``ids`` of shape (1, 9): a prefill of 6, three steps)."""
    expected = decode_logits(model, ids, fused=False)
    seen = []
    handle = hooked.register_forward_hook(lambda m, i, o: seen.append(1))
    np.testing.assert_array_equal(decode_logits(model, ids), expected)
    assert len(seen) == 4 and decode_calls == []  # the hook ran at every step, prefill included
    handle.remove()

    class Scaled(gradient.nn.Linear):             # a subclass may compute something else
        def forward(self, x):
            return super().forward(x) * 2.0
    old = getattr(parent, name)
    swapped = Scaled(old.in_features, old.out_features, bias=old.bias is not None)
    swapped.load_state_dict(old.state_dict())
    setattr(parent, name, swapped)
    scaled = decode_logits(model, ids)
    assert decode_calls == [] and not np.allclose(scaled, expected)
    setattr(parent, name, old)

    old.forward = lambda x: type(old).forward(old, x) * 2.0   # a forward set on the instance
    own = decode_logits(model, ids)
    assert decode_calls == [] and not np.allclose(own, expected)
    np.testing.assert_array_equal(own, decode_logits(model, ids, fused=False))
    del old.forward

    with gradient.amp.autocast("cpu", dtype=gradient.bfloat16):    # the products in bfloat16
        low = decode_logits(model, ids)
    assert decode_calls == [] and not np.array_equal(low, expected)

    with gradient.enable_grad():                  # recording: the graph is needed
        cache = model.new_cache(1, 9)
        model(gradient.tensor(ids[:, :8]), cache=cache)
        model(gradient.tensor(ids[:, 8:]), cache=cache).logits.sum().backward()
    assert decode_calls == [] and model.lm_head.weight.grad is not None
    np.testing.assert_array_equal(decode_logits(model, ids), expected)
    assert decode_calls.count(1) == 3     # the three one-token steps (GPT-2's prompt besides)
