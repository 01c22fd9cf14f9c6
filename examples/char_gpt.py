"""A character-level GPT, trained with gradient on the docstrings of Python's standard library.

Run:  python examples/char_gpt.py                 # ~30 s on 2 CPU cores
      python examples/char_gpt.py --amp bf16      # matrix products in bfloat16
      python examples/char_gpt.py --resume out-char-gpt/ckpt.safetensors   # continue a stopped run

The loss curves go to out-char-gpt/char_gpt.png when matplotlib is installed
(``pip install -e .[examples]``).

This is nanoGPT (github.com/karpathy/nanoGPT) in miniature, written against gradient only. Read it
top to bottom:

1. the corpus: every docstring of a fixed list of standard-library modules, read from their
   source files with ``ast`` (nothing is imported, nothing is downloaded), about 0.9 MB of English
   and Python; the vocabulary is the set of characters in it (~100), 90% train / 10% val;
2. the model: a GPT-2-style transformer decoder (pre-LayerNorm blocks of causal self-attention
   and an MLP, learned position embeddings, output head tied to the token embedding);
3. the training loop: AdamW with weight decay on the 2-d weights only, linear warmup + cosine
   decay, gradient clipping, optional bfloat16 autocast, periodic evaluation, checkpoints that
   ``--resume`` continues bit for bit;
4. sampling: a few hundred characters with temperature and top-k;
5. the figure: the batch losses, the train/val evaluations and the learning rate per step.

What to expect with the defaults (2 layers, 4 heads, width 128, context 64, batch 16, 1000
steps, lr 3e-3, seed 0; about 30 s on 2 CPU cores, 420k parameters): the corpus is ~890k
characters with a vocabulary of ~100, so the loss starts at ln(vocab) = ln(102) ~ 4.6; the val
loss ends near 1.8 nats/char (train ~1.7). The sample is not English yet, but it has words,
sentences, blank lines between paragraphs and phrases like ``Return the`` and ``(attribute``.
``--amp bf16`` trains to about the same loss but is slower on CPU (bfloat16 matrix products
have no fast kernel there); it is here to show the autocast pattern.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
import sysconfig
import time
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

import gradient
import gradient.nn as nn
import gradient.nn.functional as F


# ------------------------------------------------------------------------------------ the data
# A fixed, alphabetical list: the corpus (and so the vocabulary and every loss) is the same on
# every run with the same Python version. Modules absent from an installation are skipped.
STDLIB_MODULES = [
    "abc", "argparse", "ast", "asyncio.base_events", "asyncio.events", "asyncio.streams",
    "asyncio.tasks", "base64", "bisect", "calendar", "cmd", "code", "codecs", "collections",
    "colorsys", "compileall", "concurrent.futures._base", "configparser", "contextlib", "copy",
    "csv", "dataclasses", "datetime", "decimal", "difflib", "dis", "doctest", "email.message",
    "email.utils", "enum", "filecmp", "fileinput", "fnmatch", "fractions", "ftplib", "functools",
    "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "html.parser", "http.client",
    "http.cookiejar", "http.server", "imaplib", "inspect", "ipaddress", "json.decoder",
    "json.encoder", "linecache", "locale", "logging", "lzma", "mailbox", "mimetypes",
    "multiprocessing.pool", "numbers", "operator", "optparse", "os", "pathlib", "pdb", "pickle",
    "pickletools", "pkgutil", "platform", "plistlib", "poplib", "posixpath", "pprint", "pstats",
    "pydoc", "queue", "random", "re", "reprlib", "runpy", "sched", "secrets", "selectors",
    "shlex", "shutil", "smtplib", "socket", "socketserver", "ssl", "statistics", "string",
    "subprocess", "sysconfig", "tarfile", "tempfile", "textwrap", "threading", "timeit",
    "tokenize", "trace", "traceback", "turtle", "types", "typing", "unittest.case",
    "unittest.mock", "urllib.parse", "urllib.request", "uuid", "warnings", "weakref",
    "xml.dom.minidom", "xml.etree.ElementTree", "xmlrpc.client", "zipfile",
]


def stdlib_docstrings(max_chars: int = 1_000_000) -> str:
    """The docstrings of STDLIB_MODULES (module, class, function; in source order), joined by
    blank lines and cut at ``max_chars``.

    The source files are found in the standard library's directory and parsed with ``ast``
    rather than imported: importing runs code (and some modules, like ``turtle``, need a
    display), and ``abc``/``os`` are frozen in recent Pythons, so their module objects carry no
    source path.
    """
    stdlib = sysconfig.get_paths()["stdlib"]
    docs = []

    def visit(node):  # depth-first, so a class's docstring is followed by its methods'
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)  # clean=True: the common indentation is removed
            if doc:
                docs.append(doc)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for name in STDLIB_MODULES:
        base = os.path.join(stdlib, *name.split("."))
        for path in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    visit(ast.parse(f.read()))
                break
        if sum(map(len, docs)) > max_chars:
            break
    return "\n\n".join(docs)[:max_chars]


class CharData:
    """The corpus as integer ids, split 90/10 into train and val, and a batch sampler."""

    def __init__(self, text: str, block_size: int):
        self.chars = sorted(set(text))  # the vocabulary: every character that occurs
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        ids = np.array([self.stoi[c] for c in text], dtype=np.int64)
        n = int(0.9 * len(ids))
        self.split = {"train": ids[:n], "val": ids[n:]}
        self.block_size = block_size

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> list:
        return [self.stoi[c] for c in s if c in self.stoi]

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)

    def batch(self, split: str, batch_size: int, rng: np.random.Generator):
        """``batch_size`` random windows of the split: inputs x and targets y = x shifted by one.

        The randomness comes from ``rng``, a NumPy Generator we own: its state is saved in the
        checkpoint, so a resumed run draws exactly the batches the uninterrupted run would have.
        """
        data = self.split[split]
        starts = rng.integers(0, len(data) - self.block_size - 1, size=batch_size)
        x = np.stack([data[i:i + self.block_size] for i in starts])
        y = np.stack([data[i + 1:i + 1 + self.block_size] for i in starts])
        return gradient.tensor(x), gradient.tensor(y)


# ----------------------------------------------------------------------------------- the model
@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 64  # the longest context the model sees
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 128


class CausalSelfAttention(nn.Module):
    """Every position attends to itself and the positions before it, in ``n_head`` heads."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        assert cfg.n_embd % cfg.n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)  # q, k and v in one product
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_size): the heads become a batch dimension
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        # softmax(q k^T / sqrt(head_size)) v, with the future masked out (is_causal)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2's GELU
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x):
        return self.c_proj(self.gelu(self.c_fc(x)))


class Block(nn.Module):
    """Pre-LayerNorm residual block: x + attn(ln(x)), then x + mlp(ln(x)). The residual path is
    never normalised, so gradients reach the first layers undiminished."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)  # token embeddings
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)  # position embeddings
        self.h = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        # GPT-2's initialisation: N(0, 0.02) weights, zero biases (LayerNorm keeps its 1 and 0) ...
        self.apply(self._init_weights)
        # ... and the projections that write into the residual stream scaled by 1/sqrt(2 n_layer),
        # so that the stream's variance does not grow with depth (two writes per block).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx, targets=None):
        """Logits (B, T, vocab) for every position, and the mean cross-entropy if targets."""
        B, T = idx.shape
        assert T <= self.cfg.block_size, f"sequence of {T} > block_size {self.cfg.block_size}"
        x = self.wte(idx) + self.wpe(gradient.arange(T, device=idx.device))
        for block in self.h:
            x = block(x)
        # The output head reuses the token embedding (weight tying, as GPT-2): a character's
        # input vector is also the direction that predicts it. Fewer parameters, better loss.
        logits = self.ln_f(x) @ self.wte.weight.T
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
        return logits, loss

    @gradient.no_grad()
    def generate(self, idx, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None):
        """Extend ``idx`` (B, T) by ``max_new_tokens`` ids, one at a time, each drawn from the
        model's distribution (divided by ``temperature``, cut to the ``top_k`` likeliest)."""
        for _ in range(max_new_tokens):
            context = idx[:, -self.cfg.block_size:]  # the model has no position beyond block_size
            logits, _ = self(context)
            logits = logits[:, -1, :].float() / temperature  # only the last position predicts
            if top_k is not None:
                kth = logits.topk(min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            probs = F.softmax(logits, dim=-1)
            idx = gradient.cat([idx, gradient.multinomial(probs, num_samples=1)], dim=1)
        return idx


# ----------------------------------------------------------------------------- the training
def configure_optimizer(model: GPT, lr: float, weight_decay: float) -> gradient.optim.AdamW:
    """AdamW with weight decay on the matrices (Linear weights, embeddings) only, as nanoGPT:
    decaying biases and LayerNorm gains toward 0 only hurts, they are few and do not overfit."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    # beta2 = 0.99 rather than 0.999: small batches give noisy gradients (nanoGPT's char config)
    return gradient.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99))


def autocast(amp: str):
    """bfloat16 autocast (matrix products in bf16, losses and norms in float32) or nothing."""
    return gradient.amp.autocast("cpu", dtype=gradient.bfloat16, enabled=(amp == "bf16"))


@gradient.no_grad()  # evaluation builds no graph: less memory and time
def estimate_loss(model, data: CharData, args) -> dict:
    """Mean loss over ``args.eval_iters`` batches of each split.

    The eval batches come from their own Generator, seeded the same at every evaluation: they do
    not disturb the training batches (so resuming stays exact), and every evaluation measures
    the same windows, so the curve's wiggles are the model's and not the sample's.
    """
    model.eval()
    rng = np.random.default_rng(args.seed + 1)
    out = {}
    for split in ("train", "val"):
        losses = []
        for _ in range(args.eval_iters):
            x, y = data.batch(split, args.batch_size, rng)
            with autocast(args.amp):
                _, loss = model(x, y)
            losses.append(loss.item())
        out[split] = float(np.mean(losses))
    model.train()
    return out


def save_checkpoint(path, model, optimizer, scheduler, step, rng, cfg):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    gradient.save({
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),  # AdamW's moments and step counts
        "scheduler": scheduler.state_dict(),  # where we are on the lr curve
        "step": step,                         # the number of optimizer steps done
        # the batch sampler's state: a dict of ints and strings, which gradient.save stores as JSON
        # (the PCG64 state's 128-bit ints included). With dropout we would also store
        # gradient.get_rng_state(); this model has none, so training draws no other random numbers.
        "rng": rng.bit_generator.state,
        "config": asdict(cfg),
    }, path)  # written atomically: a crash mid-save leaves the previous checkpoint intact


# ---------------------------------------------------------------------------------- the figure
def record_eval(history: dict, step: int, losses: dict) -> None:
    history["eval_step"].append(step)
    history["train"].append(losses["train"])
    history["val"].append(losses["val"])


def save_figure(path: str, history: dict, quiet: bool = False) -> str | None:
    """The batch losses (faint), their running mean, the train/val evaluations and the learning
    rate against the step. A resumed run plots the steps it ran itself.

    Returns the path written, or None when matplotlib is not installed (the figure is optional).
    """
    try:
        import matplotlib
    except ImportError:
        if not quiet:
            print("matplotlib is not installed: no figure (pip install -e .[examples])")
        return None
    matplotlib.use("Agg")  # draws to a file; needs no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps, loss = np.asarray(history["step"]), np.asarray(history["loss"])
    ax.plot(steps, loss, color="tab:blue", alpha=0.25, lw=0.8, label="batch loss")
    if len(loss) >= 20:  # a running mean over 20 steps reads better than the raw batches
        mean = np.convolve(loss, np.ones(20) / 20, mode="valid")
        ax.plot(steps[19:], mean, color="tab:blue", lw=1.5, label="batch loss, mean of 20")
    ax.plot(history["eval_step"], history["train"], "o-", color="tab:green", label="train (eval)")
    ax.plot(history["eval_step"], history["val"], "s-", color="tab:red", label="val (eval)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/char)")
    ax.grid(alpha=0.3)
    lr_ax = ax.twinx()  # the schedule: warmup then cosine decay
    lr_ax.plot(steps, history["lr"], color="gray", ls="--", lw=1, label="learning rate")
    lr_ax.set_ylabel("learning rate")
    lines = ax.get_legend_handles_labels()
    lr_lines = lr_ax.get_legend_handles_labels()
    ax.legend(lines[0] + lr_lines[0], lines[1] + lr_lines[1], loc="upper right")
    ax.set_title("char_gpt: character-level GPT on standard-library docstrings")
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000, help="total optimizer steps")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=64, help="context length in characters")
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    p.add_argument("--min-lr-ratio", type=float, default=0.1, help="final lr / peak lr")
    p.add_argument("--warmup-steps", type=int, default=None, help="default: 5%% of --steps")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0, help="max global grad norm; 0: off")
    p.add_argument("--amp", choices=["none", "bf16"], default="none")
    p.add_argument("--out-dir", default="out-char-gpt", help="where checkpoints and the figure go")
    p.add_argument("--ckpt-interval", type=int, default=500, help="save every N steps; 0: never")
    p.add_argument("--resume", default=None, metavar="PATH",
                   help="checkpoint to continue from, with the same flags (the lr schedule is part "
                        "of the checkpoint: a larger --steps goes on at the final lr)")
    p.add_argument("--eval-interval", type=int, default=200)
    p.add_argument("--eval-iters", type=int, default=20, help="batches per split per evaluation")
    p.add_argument("--max-chars", type=int, default=1_000_000, help="corpus size cap")
    p.add_argument("--sample-chars", type=int, default=300)
    p.add_argument("--prompt", default="Return the ")
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Train (or continue training), evaluate, sample. Returns the final metrics as a dict."""
    args = parse_args(argv)
    t_start = time.perf_counter()
    gradient.manual_seed(args.seed)  # the weight init and the sampling at the end
    data = CharData(stdlib_docstrings(args.max_chars), args.block_size)
    cfg = GPTConfig(vocab_size=data.vocab_size, block_size=args.block_size, n_layer=args.n_layer,
                    n_head=args.n_head, n_embd=args.n_embd)
    model = GPT(cfg)
    optimizer = configure_optimizer(model, args.lr, args.weight_decay)
    warmup = args.warmup_steps if args.warmup_steps is not None else max(1, args.steps // 20)
    scheduler = gradient.optim.lr_scheduler.warmup_cosine(
        optimizer, warmup_steps=min(warmup, args.steps), total_steps=args.steps,
        min_lr_ratio=args.min_lr_ratio)
    rng = np.random.default_rng(args.seed)  # draws the training batches
    step = 0

    if args.resume:
        ckpt = gradient.load(args.resume)
        if ckpt["config"] != asdict(cfg):
            raise SystemExit(f"--resume: the checkpoint's model {ckpt['config']} is not the one "
                             f"these flags build {asdict(cfg)}: pass the same model flags")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        rng.bit_generator.state = ckpt["rng"]
        step = ckpt["step"]

    n_params = sum(p.numel() for p in model.parameters())
    if not args.quiet:
        print(f"corpus: {sum(len(s) for s in data.split.values()):,} chars, vocab {data.vocab_size}"
              f" (ln vocab = {math.log(data.vocab_size):.3f}); model: {n_params:,} parameters"
              + (f"; resuming at step {step}" if step else ""))

    last_loss = float("nan")
    history = {"step": [], "loss": [], "lr": [], "eval_step": [], "train": [], "val": []}
    steps = range(step, args.steps)
    bar = None if args.quiet else tqdm(steps, total=args.steps, initial=step, dynamic_ncols=True)
    model.train()
    for step in (bar if bar is not None else steps):
        if step % args.eval_interval == 0:
            losses = estimate_loss(model, data, args)
            record_eval(history, step, losses)
            if bar is not None:  # bar.write prints above the bar instead of through it
                bar.write(f"step {step}: train loss {losses['train']:.4f}, "
                          f"val loss {losses['val']:.4f}")

        x, y = data.batch("train", args.batch_size, rng)
        with autocast(args.amp):  # only the forward pass: backward runs in the dtypes it recorded
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:  # one bad batch cannot throw the weights far
            gradient.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        scheduler.step()
        last_loss = loss.item()
        history["step"].append(step)
        history["loss"].append(last_loss)
        history["lr"].append(scheduler.get_last_lr()[0])
        if bar is not None:
            bar.set_postfix_str(f"loss {last_loss:.4f} lr {scheduler.get_last_lr()[0]:.2e}")

        done = step + 1
        if args.ckpt_interval and (done % args.ckpt_interval == 0 or done == args.steps):
            save_checkpoint(os.path.join(args.out_dir, "ckpt.safetensors"), model, optimizer,
                            scheduler, done, rng, cfg)
    if bar is not None:
        bar.close()

    losses = estimate_loss(model, data, args)
    record_eval(history, args.steps, losses)
    figure = save_figure(os.path.join(args.out_dir, "char_gpt.png"), history, args.quiet)
    prompt = data.encode(args.prompt) or [0]
    model.eval()
    with autocast(args.amp):
        out = model.generate(gradient.tensor([prompt]), args.sample_chars,
                             temperature=args.temperature, top_k=args.top_k)
    sample = data.decode(out[0].tolist())
    elapsed = time.perf_counter() - t_start
    if not args.quiet:
        print(f"\n--- sample ({args.sample_chars} characters, temperature {args.temperature}, "
              f"top-k {args.top_k}) ---\n{sample}\n---")
        print(f"final: train loss {losses['train']:.4f}, val loss {losses['val']:.4f} "
              f"(ln vocab {math.log(data.vocab_size):.3f}), {elapsed:.0f} s")
        written = [os.path.join(args.out_dir, "ckpt.safetensors")] if args.ckpt_interval else []
        written += [figure] if figure else []
        if written:
            print("wrote " + " and ".join(os.path.abspath(p) for p in written))
    return {"train_loss": losses["train"], "val_loss": losses["val"],
            "last_batch_loss": last_loss,
            "initial_loss": math.log(data.vocab_size), "vocab_size": data.vocab_size,
            "steps": args.steps, "sample": sample, "seconds": elapsed, "model": model,
            "history": history, "figure": figure}


if __name__ == "__main__":
    main()
