"""Speculative decoding with a draft model on SmolLM2-135M: the model in Q8_0 as the target and
the same model in Q4_0 as the draft (both written from the Q4_1 file by gradient's GGUF
writer at benchmark time), greedy with and without ``assistant_model``: the same tokens, the
share of drafts kept, and the decode speed-up.

Run:  python bench/speculative.py [--gguf PATH] [--tokens 96] [--rounds 3]

Two prompts: a chat question, and an input-grounded one (the model asked to rewrite a code
snippet). Each round times greedy decoding, then speculative decoding, after the first token
(the prefill is the same for both). ``drafts_kept`` is the share of drafted tokens the target
kept; ``tokens_per_forward`` the tokens each of the target's forwards gave after the prefill.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import find_smollm2  # noqa: E402
from prompt_lookup import CODE, run  # noqa: E402

import gradient  # noqa: E402
from gradient.generation.draft_schedule import DraftSchedule  # noqa: E402
from gradient.models.gguf_writer import save_gguf  # noqa: E402

PROMPTS = {"chat": "What are three good habits for writing readable Python code?",
           "rewrite_code": "Rename `values` to `xs` in this code:\n\n" + CODE}


class Counted:
    """Counts the target's forwards and, through DraftSchedule.update, the drafts."""

    def __init__(self, model):
        self.forwards, self.drafted, self.kept = 0, 0, 0
        forward, update, me = type(model).forward, DraftSchedule.update, self

        def counted_forward(module, input_ids, *a, **k):
            if module is model:
                me.forwards += 1
            return forward(module, input_ids, *a, **k)

        def counted_update(schedule, drafted, kept):
            me.drafted += drafted
            me.kept += kept
            return update(schedule, drafted, kept)
        type(model).forward = counted_forward
        DraftSchedule.update = counted_update

    def reset(self):
        self.forwards, self.drafted, self.kept = 0, 0, 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gguf", default=None)
    p.add_argument("--tokens", type=int, default=96)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    path = find_smollm2(args.gguf)
    if path is None:
        raise SystemExit("no SmolLM2 GGUF: pass --gguf PATH")
    source, tok = gradient.hub.load(path)
    with tempfile.TemporaryDirectory() as tmp:
        files = {q: save_gguf(source, f"{tmp}/smollm2-{q}.gguf", q) for q in ("Q8_0", "Q4_0")}
        target = gradient.hub.load(files["Q8_0"])[0].eval()
        draft = gradient.hub.load(files["Q4_0"])[0].eval()
    counted = Counted(target)
    result = {"target": "Q8_0", "draft": "Q4_0", "tokens": args.tokens}
    for name, text in PROMPTS.items():
        ids = list(tok.apply_chat_template([{"role": "user", "content": text}],
                                           add_generation_prompt=True))
        run(target, ids, 8)                # warm up both paths
        run(target, ids, 8, assistant_model=draft)
        ratios, plain_speeds, spec_speeds = [], [], []
        for _ in range(args.rounds):
            seconds, n, plain_out = run(target, ids, args.tokens)
            plain = n / seconds
            counted.reset()
            seconds, n, spec_out = run(target, ids, args.tokens, assistant_model=draft)
            spec = n / seconds
            ratios.append(spec / plain)
            plain_speeds.append(plain)
            spec_speeds.append(spec)
        result[name] = {
            "greedy_tokens_per_s": round(statistics.median(plain_speeds), 1),
            "speculative_tokens_per_s": round(statistics.median(spec_speeds), 1),
            "speedup": round(statistics.median(ratios), 2),
            "speedup_spread": [round(min(ratios), 2), round(max(ratios), 2)],
            "drafts_kept": round(counted.kept / max(1, counted.drafted), 2),
            "tokens_per_forward": round((len(spec_out) - 1) / max(1, counted.forwards - 1), 2),
            "same_tokens": spec_out == plain_out}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
