"""Decode and prefill speed of a GGUF model against another revision of gradient, side by side.

Run:  python bench/versus_revision.py --rev main~3 [--model PATH] [--rounds 5] [--new 64]

``--model`` is a GGUF file (SmolLM2-135M Q4_1 by default) or a Hugging Face checkpoint directory
(weights and ``config.json``; no tokenizer needed), e.g. a random GPT-2 written by
``bench/decode.py``'s ``make_checkpoint``.

The other revision is checked out with ``git worktree`` into a temporary directory; each round
runs one child process per revision in turn (the order alternating between rounds), each
importing its own ``gradient`` (``PYTHONPATH``). A child loads the model with
``gradient.hub.load``, runs an untimed warm-up (a short prefill and a few decode steps: kernels
loaded, the decode step captured and compiled), then times a prefill of ``--prompt`` tokens
and ``--new`` greedy one-token steps. The JSON line gives the median of each, the ratios
this tree / the revision (below 1: this tree is faster) and the rounds' spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_GGUF = os.path.join(ROOT, "tests", "fixtures", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")

CHILD = r"""
import json, os, sys, time
import gradient
path, prompt_len, new = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if os.path.isdir(path):
    model = gradient.models.from_pretrained(path)
else:
    model, _ = gradient.hub.load(path)
prompt = [(i * 37) % 4000 + 100 for i in range(prompt_len)]

def run(prompt, new):
    with gradient.no_grad():
        cache = model.new_cache(1, len(prompt) + new + 1)
        start = time.perf_counter()
        logits = model(gradient.tensor([prompt]), cache=cache, logits_to_keep=1).logits
        token = int(logits[0, -1].argmax())
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(new):
            token = int(model(gradient.tensor([[token]]), cache=cache).logits[0, -1].argmax())
        return prefill, (time.perf_counter() - start) / new
run(prompt[:8], 4)                                   # warm-up: load, capture, compile
prefill, decode = run(prompt, new)
print(json.dumps({"prefill_s": prefill, "decode_ms": decode * 1e3, "gradient": gradient.__file__}))
"""


def child(tree, args):
    env = dict(os.environ, PYTHONPATH=tree)
    out = subprocess.run([sys.executable, "-c", CHILD, args.model, str(args.prompt), str(args.new)],
                         env=env, capture_output=True, text=True, check=True, cwd=tree)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not result["gradient"].startswith(tree):
        raise RuntimeError(f"the child imported {result['gradient']}, not the tree {tree}")
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rev", required=True, help="the git revision to compare with")
    p.add_argument("--model", "--gguf", default=DEFAULT_GGUF,
                   help="a GGUF file or a Hugging Face checkpoint directory")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--new", type=int, default=64)
    p.add_argument("--prompt", type=int, default=128)
    args = p.parse_args()
    other = os.path.join(tempfile.mkdtemp(), "gradient")
    subprocess.run(["git", "worktree", "add", "--detach", other, args.rev], cwd=ROOT,
                   check=True, capture_output=True)
    try:
        trees = {"this": ROOT, args.rev: other}
        times = {name: [] for name in trees}
        for r in range(args.rounds):
            for name in (list(trees) if r % 2 == 0 else list(trees)[::-1]):
                times[name].append(child(trees[name], args))
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", other], cwd=ROOT,
                       capture_output=True)
    result = {"model": os.path.basename(args.model), "rev": args.rev,
              "prompt_tokens": args.prompt, "new_tokens": args.new}
    for key in ("decode_ms", "prefill_s"):
        ours = [t[key] for t in times["this"]]
        theirs = [t[key] for t in times[args.rev]]
        ratios = [a / b for a, b in zip(ours, theirs)]
        result[key] = {"this": round(statistics.median(ours), 4),
                       args.rev: round(statistics.median(theirs), 4),
                       "ratio": round(statistics.median(ratios), 3),
                       "spread": [round(min(ratios), 3), round(max(ratios), 3)]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
