"""Checks shared by the tests of the models' captured decode steps (``gradient.capture``) for
GPT-2, the LLaMA family and their quantized forms: the logits of a decode run with the step
allowed or not, how many steps were replayed, and what a user's change to the model does: the
step is captured again with the change in it (a hook runs at every step) and gives the module
graph's logits; what cannot be replayed (autocast, a recorded graph) runs the module graph."""

import numpy as np

import gradient


def decode_logits(model, ids, prompt=6, fused=True, counts=None, chunk=1):
    """Logits (B, T, vocab) of a prefill of the first ``prompt`` tokens of ``ids`` then steps of
    ``chunk`` tokens (one by default; several as speculative decoding checks drafts) through
    the rest, on the model's device, with the captured decode step allowed (``fused``) or not
    (the decoder stack's ``fused_decode`` flag). ``counts`` (a Counter), if given, gains the
    kernel trace of the run."""
    stack = model.transformer if hasattr(model, "transformer") else model.model
    device = next(iter(model.parameters())).device
    stack.fused_decode = fused
    try:
        with gradient.no_grad(), gradient.kernels.trace() as t:
            cache = model.new_cache(ids.shape[0], ids.shape[1])
            steps = [model(gradient.tensor(ids[:, :prompt], device=device), cache=cache)]
            for t_ in range(prompt, ids.shape[1], chunk):
                steps.append(model(gradient.tensor(ids[:, t_:t_ + chunk], device=device),
                                   cache=cache, logits_to_keep=chunk))
    finally:
        stack.fused_decode = True
    if counts is not None:
        counts.update(t.counts)
    return np.concatenate([s.logits.numpy() for s in steps], 1)


def assert_steps_compiled(stack, tokens: int) -> None:
    """Every captured plan of the decoder ``stack`` for steps of ``tokens`` new tokens (there
    is one at least) compiled its blocks into one numba loop (else: why not)."""
    from gradient.capture import Plan
    # a plan's key holds its inputs' signatures: the first input's shape (B, T, hidden)
    plans = [e for key, e in stack.__dict__["_captured"]._entries.items()
             if type(e) is Plan and key[1][0][0][1] == tokens]
    assert plans and all(plan.loop is not None for plan in plans), \
        [plan.why_python for plan in plans]


def steps_by_kind(counts) -> dict:
    """``{"capture": n, "replay": n, "module graph": n}`` of a trace's decode steps."""
    return {kind: counts[("captured_step", kind)] for kind in ("capture", "replay", "module graph")}


def assert_user_changes_keep_the_step(model, ids, hooked, parent, name):
    """With a forward hook on ``hooked``, a subclassed ``Linear`` at ``parent.<name>`` or a
    ``forward`` set on the one there, the decode steps are still replayed (captured again with
    the change in them) and give the module graph's logits, the hook running at every step;
    autocast and a recorded graph run the module graph; afterwards the plain step is replayed
    again with the plain logits (``ids`` of shape (1, 12): a prefill of 6, six steps, the first
    two captured)."""
    from collections import Counter
    expected = decode_logits(model, ids, fused=False)
    np.testing.assert_array_equal(decode_logits(model, ids), expected)
    seen = []
    handle = hooked.register_forward_hook(lambda m, i, o: seen.append(1))
    counts = Counter()
    np.testing.assert_array_equal(decode_logits(model, ids, counts=counts), expected)
    assert len(seen) == 7                 # at every forward: the prefill and six steps
    assert steps_by_kind(counts) == {"capture": 2, "replay": 4, "module graph": 0}
    handle.remove()

    class Scaled(gradient.nn.Linear):     # a subclass computes something else: captured too
        def forward(self, x):
            return super().forward(x) * 2.0
    old = getattr(parent, name)
    swapped = Scaled(old.in_features, old.out_features, bias=old.bias is not None)
    swapped.load_state_dict(old.state_dict())
    setattr(parent, name, swapped)
    counts = Counter()
    scaled = decode_logits(model, ids, counts=counts)
    assert steps_by_kind(counts)["replay"] == 4 and not np.allclose(scaled, expected)
    np.testing.assert_array_equal(scaled, decode_logits(model, ids, fused=False))
    setattr(parent, name, old)

    old.forward = lambda x: type(old).forward(old, x) * 2.0   # a forward set on the instance
    counts = Counter()
    own = decode_logits(model, ids, counts=counts)
    assert steps_by_kind(counts)["replay"] == 4 and not np.allclose(own, expected)
    np.testing.assert_array_equal(own, decode_logits(model, ids, fused=False))
    del old.forward

    counts = Counter()
    with gradient.amp.autocast("cpu", dtype=gradient.bfloat16):    # the products in bfloat16
        low = decode_logits(model, ids, counts=counts)
    assert sum(steps_by_kind(counts).values()) == 0 and not np.array_equal(low, expected)

    with gradient.enable_grad(), gradient.kernels.trace() as t:   # recording: the graph
        cache = model.new_cache(1, 12)
        model(gradient.tensor(ids[:, :8]), cache=cache)
        for i in range(8, 12):
            out = model(gradient.tensor(ids[:, i:i + 1]), cache=cache)
        out.logits.sum().backward()
    assert sum(steps_by_kind(t.counts).values()) == 0 and model.lm_head.weight.grad is not None
    counts = Counter()
    np.testing.assert_array_equal(decode_logits(model, ids, counts=counts), expected)
    assert steps_by_kind(counts) == {"capture": 2, "replay": 4, "module graph": 0}
