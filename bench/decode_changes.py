"""What a user's change to a model costs when decoding: a LoRA adapter on q_proj and v_proj, a
no-op forward hook on every decoder layer, against the plain model, on the same weights.

Run:  python bench/decode_changes.py [--gguf PATH] [--new 48] [--rounds 5]

Without ``--gguf``: a float32 LLaMA-family model of SmolLM2-135M's shape (30 layers, width
576, random weights). With it: that GGUF file as ``gradient.hub.load`` gives it (the real
SmolLM2-135M-Instruct Q4_1: float32 activations). Every variant decodes through the step captured
from its module forward and compiled into one loop over the layers; ``module_graph`` is the
plain model with that off (its decoder stack's ``fused_decode``), for reference. The LoRA is a
user's own ``nn.Module``: ``base(x) + B(A(x)) * scale``, rank 8. Each round times ``--new``
greedy tokens of each variant in turn (blocks per variant, interleaved across rounds); the
JSON line gives the median ms/token of each and the ratios to the plain model, with the
rounds' spread (min and max ratio).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import gradient
from gradient import nn


class LoRA(nn.Module):
    def __init__(self, base, rank=8, scale=2.0):
        super().__init__()
        self.base, self.scale = base, scale
        self.a = nn.Linear(base.in_features, rank, bias=False)
        self.b = nn.Linear(rank, base.out_features, bias=False)
        with gradient.no_grad():
            self.b.weight.normal_(0.0, 0.01)

    def forward(self, x):
        return self.base(x) + self.b(self.a(x)) * self.scale


def load(gguf):
    if gguf:
        model, _ = gradient.hub.load(gguf)
        return model.eval()
    from gradient.models import LlamaConfig, LlamaForCausalLM
    gradient.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True,
        rms_norm_eps=1e-5, rope_theta=100000.0)).eval()


def ms_per_token(model, prompt, new):
    with gradient.no_grad():
        cache = model.new_cache(1, len(prompt) + new + 1)
        logits = model(gradient.tensor([prompt]), cache=cache, logits_to_keep=1).logits
        token = int(logits[0, -1].argmax())
        for _ in range(3):    # warm: the first two steps capture, the third compiles the loop
            model(gradient.tensor([[token]]), cache=cache)
        start = time.perf_counter()
        for _ in range(new - 3):
            logits = model(gradient.tensor([[token]]), cache=cache).logits
            token = int(logits[0, -1].argmax())
        return (time.perf_counter() - start) * 1e3 / (new - 3)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gguf")
    p.add_argument("--new", type=int, default=48)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    plain, lora, hooked = load(args.gguf), load(args.gguf), load(args.gguf)
    for layer in lora.model.layers:
        layer.self_attn.q_proj = LoRA(layer.self_attn.q_proj)
        layer.self_attn.v_proj = LoRA(layer.self_attn.v_proj)
    for layer in hooked.model.layers:
        layer.register_forward_hook(lambda m, i, o: None)
    variants = {"plain": plain, "lora": lora, "hook": hooked}
    variants["module_graph"] = load(args.gguf)
    variants["module_graph"].model.fused_decode = False
    prompt = [504, 3575, 282, 4649, 314]
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, model in variants.items():
            times[name].append(ms_per_token(model, prompt, args.new))
    ratios = {name: [t / p for t, p in zip(times[name], times["plain"])]
              for name in variants if name != "plain"}
    print(json.dumps({
        "model": args.gguf or "SmolLM2-135M-shaped, float32, random",
        "ms_per_token": {k: round(statistics.median(v), 2) for k, v in times.items()},
        "ratio_to_plain": {k: round(statistics.median(v), 3) for k, v in ratios.items()},
        "ratio_spread": {k: [round(min(v), 3), round(max(v), 3)] for k, v in ratios.items()},
    }))


if __name__ == "__main__":
    main()
