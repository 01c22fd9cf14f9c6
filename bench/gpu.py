"""GPU benchmarks: gradient's CUDA backend against PyTorch eager CUDA, same weights, same run.

Run:  python bench/gpu.py [--cases decode,prefill,train,quant] [--new 128] [--rounds 3]

Cases (each prints one JSON line with both figures and the ratio gradient / PyTorch):

* ``decode``: GPT-2 124M with random weights in float16, a 128-token prompt then ``--new``
  greedy tokens with a KV cache, batch 1 and batch 8; tokens/s, and for batch 1 the decode step
  as a fraction of the memory-bandwidth limit (weight bytes per token over the bandwidth of a
  device-to-device copy measured here).
* ``prefill``: the same model on a 1024-token prompt (time to the last position's logits).
* ``train``: the training step of bench/train_gpt.py's medium GPT (4 layers, width 256,
  context 128, batch 16) under float16 autocast with AdamW; median step time.
* ``quant``: one product ``x @ W.T`` of float32 rows x with W quantized: int4 in groups of 64
  with zero points as GPTQ/AWQ layers hold it (``WeightOnlyLinear``, the backend's
  ``grouped_matmul``), GGML Q4_0 (``QuantizedLinear``'s ``quant_matmul``), against PyTorch's
  float16 ``F.linear`` of the same W; shapes of SmolLM2-135M, TinyLlama-1.1B and a 7B LLaMA,
  1 to 512 rows. Microseconds a product (best of rounds of 100): up to 8 rows, GPU time of the
  100 replayed as one CUDA graph; more rows (cuBLAS, which CuPy cannot capture), eager calls
  from Python. For one row, the weight bytes read per second.

Needs a CUDA GPU, CuPy (``pip install -e ".[cuda]"``) and a CUDA build of PyTorch; without
them it prints one line saying what is missing and exits 0. A case that fails prints its error
in its line instead of stopping the others.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
import traceback

import numpy as np


def _missing() -> str | None:
    import gradient
    if not gradient.cuda.is_available():
        return "gradient: " + __import__("gradient.backends.cuda", fromlist=["x"]).available()[1]
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if not torch.cuda.is_available():
        return "PyTorch has no CUDA device (a CPU build?)"
    return None


def _bandwidth_gbs() -> float:
    """Device-to-device copy bandwidth (read + write), GB/s."""
    import cupy
    a = cupy.empty(1 << 28, cupy.uint8)
    b = cupy.empty_like(a)
    cupy.copyto(b, a)
    cupy.cuda.Device().synchronize()
    t = time.perf_counter()
    for _ in range(10):
        cupy.copyto(b, a)
    cupy.cuda.Device().synchronize()
    return 2 * a.nbytes * 10 / (time.perf_counter() - t) / 1e9


def _gpt2_pair(directory):
    import torch
    import transformers

    import gradient
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(directory)
    theirs = transformers.GPT2LMHeadModel.from_pretrained(directory, dtype=torch.float16).cuda()
    ours = gradient.models.from_pretrained(directory, dtype=gradient.float16).to("cuda")
    return ours.eval(), theirs.eval()


def _decode(ours, theirs, batch: int, prompt_len: int, new: int, rounds: int) -> dict:
    import torch

    import gradient
    prompt = np.random.default_rng(0).integers(0, 50257, (batch, prompt_len))
    times = {"gradient": [], "torch": []}
    for _ in range(rounds):
        with gradient.no_grad():
            cache = ours.new_cache(batch, prompt_len + new)
            ids = gradient.tensor(prompt, device="cuda")
            logits = ours(ids, cache=cache, logits_to_keep=1).logits
            gradient.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(new):
                token = logits[:, -1].argmax(-1).reshape(batch, 1)
                logits = ours(token, cache=cache).logits
            gradient.cuda.synchronize()
            times["gradient"].append(time.perf_counter() - t)
        with torch.no_grad():
            out = theirs(torch.tensor(prompt, device="cuda"), use_cache=True)
            past, logits = out.past_key_values, out.logits
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(new):
                token = logits[:, -1].argmax(-1, keepdim=True)
                out = theirs(token, past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits
            torch.cuda.synchronize()
            times["torch"].append(time.perf_counter() - t)
    tok_s = {k: batch * new / min(v) for k, v in times.items()}
    return {"gradient_tok_s": round(tok_s["gradient"], 1), "torch_tok_s": round(tok_s["torch"], 1),
            "ratio": round(tok_s["gradient"] / tok_s["torch"], 3)}


def _prefill(ours, theirs, length: int, rounds: int) -> dict:
    import torch

    import gradient
    prompt = np.random.default_rng(1).integers(0, 50257, (1, length))
    times = {"gradient": [], "torch": []}
    for _ in range(rounds + 1):
        with gradient.no_grad():
            gradient.cuda.synchronize()
            t = time.perf_counter()
            ours(gradient.tensor(prompt, device="cuda"), logits_to_keep=1).logits.cpu()
            times["gradient"].append(time.perf_counter() - t)
        with torch.no_grad():
            torch.cuda.synchronize()
            t = time.perf_counter()
            theirs(torch.tensor(prompt, device="cuda"), logits_to_keep=1).logits.cpu()
            times["torch"].append(time.perf_counter() - t)
    tok_s = {k: length / min(v[1:]) for k, v in times.items()}   # the first call warms up
    return {"gradient_tok_s": round(tok_s["gradient"], 1), "torch_tok_s": round(tok_s["torch"], 1),
            "ratio": round(tok_s["gradient"] / tok_s["torch"], 3)}


def _train(steps: int) -> dict:
    import torch
    import train_gpt   # (bench/, this script's folder, is on sys.path)
    SIZES, build_gpt, copy_weights = train_gpt.SIZES, train_gpt.build_gpt, train_gpt.copy_weights

    import gradient
    cfg = SIZES["medium"]
    torch.manual_seed(0)
    theirs = build_gpt(torch, **cfg)
    ours = build_gpt(gradient, **cfg)
    copy_weights(theirs, ours)
    theirs, ours = theirs.cuda(), ours.to("cuda")
    libs = {"torch": (torch, theirs, torch.optim.AdamW(theirs.parameters(), lr=1e-3), "cuda"),
            "gradient": (gradient, ours, gradient.optim.AdamW(ours.parameters(), lr=1e-3), "cuda")}
    rng = np.random.default_rng(0)
    shape = (cfg["batch_size"], cfg["block_size"])
    batches = [(rng.integers(0, 65, shape), rng.integers(0, 65, shape)) for _ in range(steps)]
    times = {}
    for name, (lib, model, opt, device) in libs.items():
        sync = torch.cuda.synchronize if lib is torch else gradient.cuda.synchronize
        amp = lib.amp.autocast(device_type="cuda", dtype=lib.float16)
        per_step = []
        for i, (x, y) in enumerate(batches):
            xb, yb = lib.tensor(x, device=device), lib.tensor(y, device=device)
            sync()
            t = time.perf_counter()
            with amp:
                loss = model(xb, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sync()
            if i:
                per_step.append(time.perf_counter() - t)
        times[name] = statistics.median(per_step) * 1e3
    return {"gradient_ms": round(times["gradient"], 2), "torch_ms": round(times["torch"], 2),
            "ratio": round(times["gradient"] / times["torch"], 3)}


#: (out_features, in_features) of the quant case's products
QUANT_SHAPES = {"smollm2_mlp_up": (1536, 576), "smollm2_head": (49152, 576),
                "tinyllama_mlp_up": (5632, 2048), "tinyllama_mlp_down": (2048, 5632),
                "llama7b_mlp_up": (11008, 4096)}
QUANT_ROWS = (1, 8, 64, 512)


def _gpu_us(run, library: str, rounds: int, graph: bool, calls: int = 100) -> float:
    """GPU microseconds of one ``run()``, best of ``rounds`` of ``calls``: with ``graph`` the
    calls are captured as one CUDA graph and replayed (Python's launch cost left out, as in a
    replayed decode step); without, they run eagerly from Python (CuPy cannot capture its
    cuBLAS calls)."""
    def eager():
        for _ in range(calls):
            run()
    replay = eager
    if library == "torch":
        import torch
        run()
        torch.cuda.synchronize()
        sync = torch.cuda.synchronize
        if graph:
            captured = torch.cuda.CUDAGraph()
            with torch.cuda.graph(captured):
                for _ in range(calls):
                    run()
            replay = captured.replay
    else:
        import cupy
        run()                                   # allocations in the pool before the capture
        sync = cupy.cuda.Device().synchronize
        if graph:
            stream = cupy.cuda.Stream(non_blocking=True)
            with stream:
                run()
                stream.begin_capture()
                for _ in range(calls):
                    run()
                captured = stream.end_capture()
            replay = lambda: captured.launch(stream)  # noqa: E731
    replay()
    sync()
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        replay()
        sync()
        best = min(best, time.perf_counter() - t)
    return best / calls * 1e6


@functools.lru_cache(maxsize=1)
def _quant_weights(shape):
    """A random (out, in) weight: int4 g64 with zero points, Q4_0 blocks, and float16 on the
    device (quantized once per shape, on the host)."""
    import cupy
    import torch

    from gradient.quant import quantize_weight
    from gradient.quant.linear import quantize as ggml_quantize
    w = (np.random.default_rng(0).standard_normal(shape) * 0.02).astype(np.float32)
    p = quantize_weight(w, 4, 64, zero_point=True)
    grouped = [cupy.asarray(a) for a in (p.qweight, p.scales, p.zeros)]
    return (p, grouped, cupy.asarray(ggml_quantize(w, "Q4_0")),
            torch.tensor(w, device="cuda", dtype=torch.float16))


def _quant(shape, rows: int, rounds: int) -> dict:
    import cupy
    import torch

    from gradient.backends.cuda import fused
    p, grouped, q4_0, w16 = _quant_weights(shape)
    x = cupy.asarray(np.random.default_rng(1).standard_normal((rows, shape[1]))
                     .astype(np.float32))
    x16 = torch.tensor(cupy.asnumpy(x), device="cuda", dtype=torch.float16)
    graph = rows <= fused.GROUPED_MATVEC_ROWS      # more rows: cuBLAS, which CuPy cannot capture
    us = {"int4_g64_zp": _gpu_us(lambda: fused.grouped_matmul(x, *grouped, 4, 64, None),
                                 "cupy", rounds, graph),
          "q4_0": _gpu_us(lambda: fused.quant_matmul(x, q4_0, "Q4_0", *shape), "cupy", rounds,
                          graph),
          "torch_f16": _gpu_us(lambda: torch.nn.functional.linear(x16, w16), "torch", rounds,
                               graph)}
    line = {"timing": "graph" if graph else "eager"}
    line.update({f"{k}_us": round(v, 2) for k, v in us.items()})
    line["ratio_int4_to_torch_f16"] = round(us["int4_g64_zp"] / us["torch_f16"], 3)
    if rows == 1:
        line["int4_weight_gbs"] = round(p.nbytes / us["int4_g64_zp"] / 1e3, 1)
        line["torch_f16_weight_gbs"] = round(w16.numel() * 2 / us["torch_f16"] / 1e3, 1)
    y = cupy.asnumpy(fused.grouped_matmul(x, *grouped, 4, 64, None))
    ref = cupy.asnumpy(x).astype(np.float64) @ p.dequantize().astype(np.float64).T
    line["max_rel_error"] = float(np.abs(y - ref).max() / np.abs(ref).max())
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="decode,prefill,train,quant")
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    why = _missing()
    if why:
        print(json.dumps({"skipped": why}))
        return
    import gradient
    device = gradient.cuda.get_device_name()
    cases = args.cases.split(",")
    pair = None
    if {"decode", "prefill"} & set(cases):
        pair = _gpt2_pair(tempfile.mkdtemp())
    runs = []
    if "decode" in cases:
        for batch in (1, 8):
            runs.append((f"gpt2_decode_fp16_batch{batch}",
                         lambda b=batch: _decode(*pair, b, 128, args.new, args.rounds)))
    if "prefill" in cases:
        runs.append(("gpt2_prefill_fp16_1024", lambda: _prefill(*pair, 1024, args.rounds)))
    if "train" in cases:
        runs.append(("train_gpt_medium_fp16", lambda: _train(20)))
    if "quant" in cases:
        for shape_name, shape in QUANT_SHAPES.items():
            for rows in QUANT_ROWS:
                runs.append((f"quant_{shape_name}_rows{rows}",
                             lambda s=shape, r=rows: _quant(s, r, args.rounds)))
    bandwidth = _bandwidth_gbs()
    weight_bytes = sum(p.numel() * p.element_size() for p in pair[0].parameters()) if pair else 0
    for name, run in runs:
        line = {"case": name, "device": device}
        try:
            line.update(run())
            if name == "gpt2_decode_fp16_batch1":
                limit = bandwidth * 1e9 / weight_bytes      # tokens/s if only weights were read
                line["decode_fraction_of_bandwidth"] = round(line["gradient_tok_s"] / limit, 3)
                line["bandwidth_gbs"] = round(bandwidth, 1)
        except Exception as exc:  # report and go on: the other cases still say something
            line["error"] = f"{type(exc).__name__}: {exc}"
            line["where"] = traceback.format_exc(limit=-3)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
