"""Speculative decoding with a draft model on SmolLM2-135M: the model in F16 (or Q8_0) as the
target and the same model in Q4_0 as the draft (both written from the Q4_1 file by gradient's
GGUF writer at benchmark time), greedy with and without ``assistant_model``: the same tokens,
the share of drafts kept, and the decode speed-up.

Run:  python bench/speculative.py [--gguf PATH] [--target F16|Q8_0] [--draft-activations
      int8|float32] [--drafts 5] [--tokens 96] [--rounds 3]

Two prompts: a chat question, and an input-grounded one (the model asked to rewrite a code
snippet). Each round times greedy decoding, then speculative decoding, after the first token
(the prefill is the same for both). ``drafts_kept`` is the share of drafted tokens the target
kept; ``tokens_per_forward`` the tokens each of the target's forwards gave after the prefill.
A draft model of another network reads the prompt at its first draft (after the first
token): ``draft_prompt_s`` is that pass, counted in ``speedup``; ``speedup_without_draft_prompt``
is the decode steps' alone (what a longer answer, or a draft cache kept across turns, tends
to). This pair is one network in two precisions, so the draft copies the prompt's keys and
values from the target's cache instead (:mod:`gradient.generation.assistant`): no pass, 0 s.

As under ``gradient serve``, the steps of several tokens (the target's checks, the draft's
catching up) are compiled loops: a child process compiles each while it replays in Python
(:mod:`gradient.capture.background`); the warm-up waits for them, so the rounds time the
steady state. The draft computes with int8 activations by default: its numbers only decide
which tokens are proposed, never the text (every token is the target's greedy choice).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import find_smollm2  # noqa: E402
from prompt_lookup import CODE, run  # noqa: E402

import gradient  # noqa: E402
from gradient.capture import background  # noqa: E402
from gradient.generation.draft_schedule import DraftSchedule  # noqa: E402
from gradient.models.gguf_writer import save_gguf  # noqa: E402

PROMPTS = {"chat": "What are three good habits for writing readable Python code?",
           "rewrite_code": "Rename `values` to `xs` in this code:\n\n" + CODE}


class Counted:
    """Counts the target's forwards and, through DraftSchedule.update, the drafts; times the
    draft model's pass over the prompt (its first forward of a generation)."""

    def __init__(self, model, draft):
        self.forwards, self.drafted, self.kept, self.draft_prompt = 0, 0, 0, 0.0
        forward, update, me = type(model).forward, DraftSchedule.update, self

        def counted_forward(module, input_ids, *a, **k):
            if module is model:
                me.forwards += 1
            if module is draft and input_ids.shape[1] > 8:
                start = time.perf_counter()
                out = forward(module, input_ids, *a, **k)
                me.draft_prompt += time.perf_counter() - start
                return out
            return forward(module, input_ids, *a, **k)

        def counted_update(schedule, drafted, kept, seconds=None):
            me.drafted += drafted
            me.kept += kept
            return update(schedule, drafted, kept, seconds)
        type(model).forward = counted_forward
        DraftSchedule.update = counted_update

    def reset(self):
        self.forwards, self.drafted, self.kept, self.draft_prompt = 0, 0, 0, 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gguf", default=None)
    p.add_argument("--target", default="F16", choices=("F16", "Q8_0"))
    p.add_argument("--draft-activations", default="int8", choices=("int8", "float32"))
    p.add_argument("--drafts", type=int, default=5,
                   help="num_assistant_tokens (a check of up to 15 drafts is a compiled step)")
    p.add_argument("--tokens", type=int, default=96)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    path = find_smollm2(args.gguf)
    if path is None:
        raise SystemExit("no SmolLM2 GGUF: pass --gguf PATH")
    os.environ[background.SWITCH] = "1"      # as `gradient serve`: loops compiled by children
    source, tok = gradient.hub.load(path)
    with tempfile.TemporaryDirectory() as tmp:
        files = {q: save_gguf(source, f"{tmp}/smollm2-{q}.gguf", q) for q in (args.target,
                                                                              "Q4_0")}
        target = gradient.hub.load(files[args.target])[0].eval()
        draft = gradient.hub.load(files["Q4_0"], activations=args.draft_activations)[0].eval()
    counted = Counted(target, draft)
    spec = {"assistant_model": draft, "num_assistant_tokens": args.drafts}
    result = {"target": args.target, "draft": "Q4_0",
              "draft_activations": args.draft_activations, "drafts": args.drafts,
              "tokens": args.tokens}
    prompts = {name: list(tok.apply_chat_template([{"role": "user", "content": text}],
                                                  add_generation_prompt=True))
               for name, text in PROMPTS.items()}
    for _ in range(3):     # every step's loop compiled (children), then found in the cache
        for ids in prompts.values():
            run(target, ids, args.tokens)
            run(target, ids, args.tokens, **spec)
        background.wait(900)
        time.sleep(2 * background.RECHECK_SECONDS)
    for name, ids in prompts.items():
        ratios, plain_speeds, spec_speeds, decode_ratios = [], [], [], []
        for _ in range(args.rounds):
            seconds, n, plain_out = run(target, ids, args.tokens)
            plain = n / seconds
            counted.reset()
            seconds, n, spec_out = run(target, ids, args.tokens, **spec)
            fast = n / seconds
            ratios.append(fast / plain)
            decode_ratios.append(n / (seconds - counted.draft_prompt) / plain)
            plain_speeds.append(plain)
            spec_speeds.append(fast)
        result[name] = {
            "greedy_tokens_per_s": round(statistics.median(plain_speeds), 1),
            "speculative_tokens_per_s": round(statistics.median(spec_speeds), 1),
            "speedup": round(statistics.median(ratios), 2),
            "speedup_spread": [round(min(ratios), 2), round(max(ratios), 2)],
            "draft_prompt_s": round(counted.draft_prompt, 3),
            "speedup_without_draft_prompt": round(statistics.median(decode_ratios), 2),
            "drafts_kept": round(counted.kept / max(1, counted.drafted), 2),
            "tokens_per_forward": round((len(spec_out) - 1) / max(1, counted.forwards - 1), 2),
            "same_tokens": spec_out == plain_out}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
