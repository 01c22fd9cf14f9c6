"""Training step of a nanoGPT-style model: gradient against PyTorch eager, same weights, same batches.

Run:  python bench/train_gpt.py [--steps 8] [--rounds 6] [--threads 2] [--sizes small,medium]

The model is written once (`build_gpt(lib, ...)`) and built twice, with ``lib = gradient`` and
``lib = torch``: gradient's API is PyTorch's, so the same code runs on both. The torch model's
initial weights are copied into ours, both train with AdamW on identical batches, and the script
prints one JSON line per size with the loss curves' largest relative difference and the median
step-time ratio gradient / torch (lower is better; 1.0 is parity), that ratio per round
(``ratio_per_round``), which shows how much the machine's drift moves it, and the median of the
per-round ratios (``ratio_median_of_rounds``): each round times both libraries within a second
or so of each other, so this pairing cancels the slower drift that the overall ratio of medians
mixes in.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

import gradient

SIZES = {
    "small": dict(n_layer=2, n_head=4, n_embd=128, block_size=64, batch_size=16, vocab_size=65),
    "medium": dict(n_layer=4, n_head=4, n_embd=256, block_size=128, batch_size=16, vocab_size=65),
}


def build_gpt(lib, vocab_size, block_size, n_layer, n_head, n_embd, **_):
    """A GPT (pre-LayerNorm transformer decoder, tied embeddings) in library ``lib``."""
    nn, F = lib.nn, lib.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(n_embd, 3 * n_embd)
            self.c_proj = nn.Linear(n_embd, n_embd)

        def forward(self, x):
            B, T, C = x.shape
            q, k, v = self.c_attn(x).split(n_embd, dim=2)
            q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(n_embd)
            self.attn = CausalSelfAttention()
            self.ln_2 = nn.LayerNorm(n_embd)
            self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(approximate="tanh"),
                                     nn.Linear(4 * n_embd, n_embd))

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(vocab_size, n_embd)
            self.wpe = nn.Embedding(block_size, n_embd)
            self.h = nn.ModuleList([Block() for _ in range(n_layer)])
            self.ln_f = nn.LayerNorm(n_embd)
            self.apply(self._init_weights)

        @staticmethod
        def _init_weights(module):  # GPT-2's initialisation, as in nanoGPT
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

        def forward(self, idx, targets):
            pos = lib.arange(idx.shape[1], device=idx.device)
            x = self.wte(idx) + self.wpe(pos)
            for block in self.h:
                x = block(x)
            logits = self.ln_f(x) @ self.wte.weight.T  # tied output head
            return F.cross_entropy(logits.view(-1, vocab_size), targets.view(-1))

    return GPT()


def copy_weights(src: torch.nn.Module, dst) -> None:
    """Load a torch model's weights into the gradient model of the same structure."""
    state = {k: gradient.tensor(v.detach().numpy()) for k, v in src.state_dict().items()}
    dst.load_state_dict(state)


def run(size: str, steps: int, rounds: int) -> dict:
    cfg = SIZES[size]
    torch.manual_seed(0)
    theirs = build_gpt(torch, **cfg)
    ours = build_gpt(gradient, **cfg)
    copy_weights(theirs, ours)
    opts = (gradient.optim.AdamW(ours.parameters(), lr=1e-3),
            torch.optim.AdamW(theirs.parameters(), lr=1e-3, foreach=False))

    rng = np.random.default_rng(0)
    shape = (cfg["batch_size"], cfg["block_size"])
    batches = [(rng.integers(0, cfg["vocab_size"], shape), rng.integers(0, cfg["vocab_size"], shape))
               for _ in range(steps * rounds)]

    # The libraries take turns in blocks of `steps` steps on the same batches. Not step by step:
    # each library's idle worker threads spin for a while after a kernel (OpenMP, OpenBLAS), and
    # interleaving single steps would time each library against the other's spinning threads.
    # The first step of each block is left out of the timings for the same reason.
    losses = {"gradient": [], "torch": []}
    times = {"gradient": [], "torch": []}
    for r in range(rounds):
        for name, lib, model, opt in (("torch", torch, theirs, opts[1]),
                                      ("gradient", gradient, ours, opts[0])):
            for i, (x, y) in enumerate(batches[r * steps:(r + 1) * steps]):
                xb, yb = lib.tensor(x), lib.tensor(y)
                t0 = time.perf_counter()
                loss = model(xb, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if i > 0:
                    times[name].append(time.perf_counter() - t0)
                losses[name].append(loss.item())
    rel = [abs(a - b) / abs(b) for a, b in zip(losses["gradient"], losses["torch"])]
    g_ms = statistics.median(times["gradient"]) * 1e3
    t_ms = statistics.median(times["torch"]) * 1e3
    # each round's ratio of medians: how far this shared machine's drift moves the figure
    per_block = steps - 1
    rounds_ratio = [round(statistics.median(times["gradient"][r * per_block:(r + 1) * per_block])
                          / statistics.median(times["torch"][r * per_block:(r + 1) * per_block]), 3)
                    for r in range(rounds)] if per_block > 0 else []
    return {"case": f"train_gpt_{size}", **{k: cfg[k] for k in ("n_layer", "n_embd", "block_size")},
            "steps": steps * rounds, "loss_max_rel_diff": float(f"{max(rel):.3g}"),
            "final_loss": round(losses["gradient"][-1], 5), "gradient_ms": round(g_ms, 2),
            "torch_ms": round(t_ms, 2), "ratio": round(g_ms / t_ms, 3),
            "ratio_per_round": rounds_ratio,
            "ratio_median_of_rounds": round(statistics.median(rounds_ratio), 3) if rounds_ratio else None,
            "torch_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="steps per block")
    parser.add_argument("--rounds", type=int, default=6, help="blocks per library, alternating")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="small,medium")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for size in args.sizes.split(","):
        print(json.dumps(run(size, args.steps, args.rounds)))


if __name__ == "__main__":
    main()
