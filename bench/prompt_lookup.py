"""Prompt lookup decoding on SmolLM2-135M Q4_1: an input-grounded request (rewriting a code
snippet), greedy with and without ``prompt_lookup_num_tokens``: the same tokens, and the
decode speed-up.

Run:  python bench/prompt_lookup.py [--gguf PATH] [--tokens 96] [--rounds 3]

The check of several drafted tokens is a captured step too, but its products cost nearly as
much per row as a single token's step: a forward of a few tokens costs several single-token
steps, so prompt lookup pays only when enough drafts are kept (``tokens_per_forward``); the
number drafted follows how many were kept (``gradient.generation.draft_schedule``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import find_smollm2  # noqa: E402

import gradient  # noqa: E402
from gradient.generation import generate_tokens  # noqa: E402

CODE = '''def moving_average(values, window):
    """The mean of each run of `window` consecutive values."""
    averages = []
    for start in range(len(values) - window + 1):
        total = 0
        for value in values[start:start + window]:
            total += value
        averages.append(total / window)
    return averages
'''


FORWARDS = []
#: drafts checked per forward at most (how many follows how many were kept): with the last
#: token, checks of up to 8 rows (a captured step takes up to 16)
LOOKUP = 7


def run(model, ids, tokens, lookup=None, **options):
    """(seconds after the first token, tokens after the first, the tokens) of greedy decoding
    with ``prompt_lookup_num_tokens=lookup`` and any other ``generate`` ``options``."""
    FORWARDS.clear()
    # (every id a token: the template's end-of-turn ids are not padding)
    steps = generate_tokens(model, [ids], tokens, eos_token_id=[], attention_mask=[[1] * len(ids)],
                            prompt_lookup_num_tokens=lookup, **options)
    out, first = [], None
    for (t,) in steps:
        out.append(t)
        if first is None:
            first = time.perf_counter()
    return time.perf_counter() - first, len(out) - 1, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gguf", default=None)
    p.add_argument("--tokens", type=int, default=96)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    path = find_smollm2(args.gguf)
    if path is None:
        raise SystemExit("no SmolLM2 GGUF: pass --gguf PATH")
    model, tok = gradient.hub.load(path)
    model.eval()
    forward = type(model).forward

    def counted(self, input_ids, *a, **k):
        FORWARDS.append(input_ids.shape[1])
        return forward(self, input_ids, *a, **k)
    type(model).forward = counted
    ids = list(tok.apply_chat_template([{"role": "user", "content":
                                         "Rename `values` to `xs` in this code:\n\n" + CODE}],
                                       add_generation_prompt=True))
    run(model, ids, 8, None)   # warm up
    speeds = {"greedy": [], "prompt_lookup": []}
    texts = {}
    for _ in range(args.rounds):
        for name, lookup in (("greedy", None), ("prompt_lookup", LOOKUP)):
            seconds, n, out = run(model, ids, args.tokens, lookup)
            speeds[name].append(n / seconds)
            texts[name] = out
            if lookup:   # tokens per forward after the prefill: what the drafts bought
                per_forward = n / max(1, len(FORWARDS) - 1)
    ratio = [b / a for a, b in zip(speeds["greedy"], speeds["prompt_lookup"])]
    print(json.dumps({"prompt_tokens": len(ids), "tokens": args.tokens,
                      "greedy_tokens_per_s": round(statistics.median(speeds["greedy"]), 1),
                      "lookup_tokens_per_s": round(statistics.median(speeds["prompt_lookup"]), 1),
                      "speedup": round(statistics.median(ratio), 2),
                      "speedup_spread": [round(min(ratio), 2), round(max(ratio), 2)],
                      "tokens_per_forward": round(per_forward, 2),
                      "same_tokens": texts["greedy"] == texts["prompt_lookup"]}))


if __name__ == "__main__":
    main()
