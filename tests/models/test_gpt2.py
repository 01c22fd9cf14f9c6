"""GPT-2 against transformers' GPT2LMHeadModel on the same random weights (float32)."""

import json
import os
from collections import Counter

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import gradient  # noqa: E402
from gradient.errors import FileFormatError  # noqa: E402
from gradient.models import (GPT2Config, GPT2LMHeadModel, UnknownArchitectureError,  # noqa: E402
                             from_pretrained)

from ..devices import DEVICES  # noqa: E402
from .decode_step_checks import (assert_user_changes_keep_the_step,  # noqa: E402
                                 decode_logits, steps_by_kind)

VOCAB = 300


def _hf_model(seed=0, **overrides):
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(vocab_size=VOCAB, n_positions=96, n_embd=64, n_layer=2, n_head=4,
                                  bos_token_id=0, eos_token_id=0, **overrides)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # larger than the default 0.02 so that the logits are far from uniform
        for p in model.parameters():
            if p.ndim > 1:
                p.normal_(0.0, 0.2)
    return model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("gpt2")
    hf = _hf_model()
    hf.save_pretrained(path)
    return hf, path


@pytest.fixture(scope="module")
def models(checkpoint):
    """``models(device)``: ours loaded from the checkpoint onto ``device`` (once per device)."""
    loaded = {}

    def on(device):
        if device not in loaded:
            loaded[device] = GPT2LMHeadModel.from_pretrained(checkpoint[1]).to(device)
        return loaded[device]
    return on


@pytest.fixture(scope="module")
def ours(models):
    return models("cpu")


def _ids(shape, seed=0):
    return np.random.default_rng(seed).integers(1, VOCAB, shape)


def _logits(model, ids, **kw):
    """Logits as a NumPy array; array inputs go to the model's device."""
    device = model.lm_head.weight.device
    kw = {k: gradient.tensor(v, device=device) if isinstance(v, np.ndarray) else v
          for k, v in kw.items()}
    with gradient.no_grad():
        return model(gradient.tensor(ids, device=device), **kw).logits.numpy()


@pytest.mark.parametrize("device", DEVICES)
def test_logits_match_transformers(checkpoint, models, device):
    hf, _ = checkpoint
    ids = _ids((3, 17))
    ref = hf(torch.tensor(ids)).logits.detach().numpy()
    assert np.abs(_logits(models(device), ids) - ref).max() < 1e-4


@pytest.mark.parametrize("device", DEVICES)
def test_left_padded_batch_matches_transformers(checkpoint, models, device):
    ours = models(device)
    hf, _ = checkpoint
    ids = _ids((2, 12), seed=1)
    mask = np.ones_like(ids)
    mask[0, :5] = 0  # the first prompt is 5 tokens shorter
    positions = np.clip(np.cumsum(mask, 1) - 1, 0, None)
    ref = hf(torch.tensor(ids), attention_mask=torch.tensor(mask),
             position_ids=torch.tensor(positions)).logits.detach().numpy()
    out = _logits(ours, ids, attention_mask=mask, position_ids=positions)
    real = mask.astype(bool)
    assert np.abs(out[real] - ref[real]).max() < 1e-4
    # the padded prompt's logits equal those of the same prompt alone
    alone = _logits(ours, ids[:1, 5:])
    assert np.abs(out[0, 5:] - alone[0]).max() < 1e-4


@pytest.mark.parametrize("device", DEVICES)
def test_kv_cache_decoding_equals_full_recompute(models, device):
    ours = models(device)
    ids = _ids((2, 20), seed=2)
    full = _logits(ours, ids)
    with gradient.no_grad():
        cache = ours.new_cache(2, 32)
        steps = [_logits(ours, ids[:, :8], cache=cache)]
        for t in range(8, 20):
            steps.append(_logits(ours, ids[:, t:t + 1], cache=cache))
    assert cache.length == 20
    assert np.abs(np.concatenate(steps, 1) - full).max() < 1e-5


@pytest.mark.parametrize("device", DEVICES)
def test_decode_steps_are_bit_identical_to_the_module_graph(models, device):
    ours = models(device)
    ids = _ids((2, 14), seed=7)
    counts = Counter()
    fused = decode_logits(ours, ids, counts=counts)
    # the first two one-token steps captured, the other six replayed
    assert steps_by_kind(counts) == {"capture": 2, "replay": 6, "module graph": 0}
    np.testing.assert_array_equal(fused, decode_logits(ours, ids, fused=False))


def test_chunks_after_cached_tokens_are_steps_of_their_own_size(models):
    """The prompt (no cache yet) runs through the module graph; a chunk of 3 tokens after the
    cache is a captured step of its own size (captured once here, replayed from the second
    chunk of that size), and the one-token steps are captured and replayed: the module
    graph's bits throughout."""
    ours = models("cpu")
    ids = _ids((2, 12), seed=11)
    chunks = [(0, 5), (5, 8), (8, 9), (9, 10), (10, 11), (11, 12)]
    logits = {}
    for fused in (True, False):
        ours.transformer.fused_decode = fused
        try:
            with gradient.no_grad(), gradient.kernels.trace() as t:
                cache = ours.new_cache(2, 12)
                logits[fused] = [ours(gradient.tensor(ids[:, a:b]), cache=cache).logits.numpy()
                                 for a, b in chunks]
        finally:
            ours.transformer.fused_decode = True
        if fused:
            assert steps_by_kind(t.counts) == {"capture": 3, "replay": 2, "module graph": 0}
    for fused, graph in zip(logits[True], logits[False]):
        np.testing.assert_array_equal(fused, graph)


@pytest.mark.parametrize("activation", ["gelu_new", "gelu", "relu"])
def test_captured_step_gives_the_module_graph_bits(activation):
    """Each activation of the config, through the step captured from its forward."""
    gradient.manual_seed(3)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2,
                                       n_head=4, activation_function=activation)).eval()
    rng = np.random.default_rng(5)       # biases and norms too (the initial ones are 0 and 1)
    with gradient.no_grad():
        for p in model.parameters():
            p.copy_(gradient.tensor(rng.normal(0, 0.3, p.shape).astype(np.float32)))
    ids = _ids((3, 12), seed=9)
    counts = Counter()
    np.testing.assert_array_equal(decode_logits(model, ids, counts=counts),
                                  decode_logits(model, ids, fused=False))
    assert steps_by_kind(counts) == {"capture": 2, "replay": 4, "module graph": 0}
    # the blocks run as one numba loop; the activations without a compiled form (erf GELU,
    # ReLU) are Python calls between compiled segments, with the same bits
    plan = next(iter(model.transformer.__dict__["_captured"]._entries.values()))
    assert plan.loop is not None, plan.why_python
    assert ("# run from Python" in plan.loop.source) == (activation != "gelu_new")


def test_steps_of_several_tokens_are_captured_with_the_module_graph_bits():
    """Steps of 4 tokens after the cache, under the lower-right causal bias: replayed, with
    the module graph's bits."""
    gradient.manual_seed(4)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2,
                                       n_head=4)).eval()
    ids = _ids((2, 22), seed=11)
    counts = Counter()
    np.testing.assert_array_equal(decode_logits(model, ids, counts=counts, chunk=4),
                                  decode_logits(model, ids, fused=False, chunk=4))
    assert steps_by_kind(counts) == {"capture": 2, "replay": 2, "module graph": 0}


def test_captured_step_sees_weights_changed_replaced_or_copied():
    """The step reads the weights' arrays it captured: a change in place, a replaced storage
    and a deep copy of the model (other arrays) must all reach it."""
    import copy
    gradient.manual_seed(4)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2,
                                       n_head=4)).eval()
    ids = _ids((1, 12), seed=10)
    fc = model.transformer.h[1].mlp.c_fc
    rng = np.random.default_rng(6)
    counts = Counter()
    decode_logits(model, ids, counts=counts)               # captures the step
    with gradient.no_grad():
        fc.bias.add_(gradient.tensor(rng.normal(0, 1, fc.bias.shape).astype(np.float32)))
    np.testing.assert_array_equal(decode_logits(model, ids, counts=counts),
                                  decode_logits(model, ids, fused=False))
    fc.weight.data = gradient.tensor(rng.normal(0, 1, fc.weight.shape).astype(np.float32))
    np.testing.assert_array_equal(decode_logits(model, ids, counts=counts),
                                  decode_logits(model, ids, fused=False))
    twin = copy.deepcopy(model)
    assert "_captured" not in twin.transformer.__dict__    # not copied: captured on use
    with gradient.no_grad():
        twin.transformer.h[0].attn.c_proj.bias.add_(1.0)
    changed = decode_logits(twin, ids, counts=counts)
    np.testing.assert_array_equal(changed, decode_logits(twin, ids, fused=False))
    assert not np.allclose(changed, decode_logits(model, ids, counts=counts))
    # each run captured its first two steps (setting fused_decode is a change of the stack
    # too: tests/capture checks that an unchanged step is kept across runs)
    assert steps_by_kind(counts) == {"capture": 10, "replay": 20, "module graph": 0}


def test_user_changes_keep_the_captured_step(checkpoint):
    model = GPT2LMHeadModel.from_pretrained(checkpoint[1])
    blocks = model.transformer.h
    assert_user_changes_keep_the_step(model, _ids((1, 12), seed=8), blocks[1].mlp.c_fc,
                                      blocks[0].attn, "c_proj")


def test_logits_to_keep_gives_the_last_positions(ours):
    ids = _ids((2, 9), seed=3)
    with gradient.no_grad():
        last = ours(gradient.tensor(ids), logits_to_keep=1).logits.numpy()
    assert last.shape == (2, 1, VOCAB)
    # the head's product on 1 row against on all rows: BLAS sums in another order
    np.testing.assert_allclose(last[:, 0], _logits(ours, ids)[:, -1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_greedy_32_tokens_identical_to_transformers_generate(checkpoint, models, device):
    hf, _ = checkpoint
    ours = models(device)
    prompt = _ids((1, 6), seed=4)
    ref = hf.generate(torch.tensor(prompt), max_new_tokens=32, do_sample=False, min_new_tokens=32,
                      pad_token_id=0)[0, 6:].tolist()
    assert len(set(ref)) > 4  # the weights give varied tokens, so the comparison means something
    out, ids = [], gradient.tensor(prompt, device=device)
    with gradient.no_grad():
        cache = ours.new_cache(1, 6 + 32)
        for _ in range(32):
            logits = ours(ids, cache=cache, logits_to_keep=1).logits.numpy()[0, -1]
            logits[0] = -np.inf  # min_new_tokens: no eos
            out.append(int(logits.argmax()))
            ids = gradient.tensor([[out[-1]]], device=device)
    assert out == ref


@pytest.mark.parametrize("device", DEVICES)
def test_loss_and_gradients_match_transformers(checkpoint, device):
    hf, path = checkpoint
    ours = GPT2LMHeadModel.from_pretrained(path, dtype=gradient.float32).to(device)
    ours.train(), hf.train()
    for module in (ours, hf):  # dropout off, train mode otherwise
        for name, m in module.named_modules():
            if type(m).__name__ == "Dropout":
                m.p = 0.0
    for m in ours.modules():
        if hasattr(m, "attn_dropout"):
            m.attn_dropout = 0.0
    ids = _ids((2, 16), seed=5)
    labels = ids.copy()
    labels[:, :3] = -100
    hf.zero_grad()   # the module-scoped model: gradients of an earlier run would add up
    ref = hf(torch.tensor(ids), labels=torch.tensor(labels))
    ref.loss.backward()
    out = ours(gradient.tensor(ids, device=device), labels=gradient.tensor(labels, device=device))
    out.loss.backward()
    assert abs(out.loss.item() - ref.loss.item()) < 1e-5
    hf_grads = dict(hf.named_parameters())
    for name, p in ours.named_parameters():
        g = hf_grads[name].grad.numpy()
        if name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            g = g.T  # Conv1D layout in transformers
        np.testing.assert_allclose(p.grad.numpy(), g, rtol=1e-3, atol=1e-5, err_msg=name)
    hf.eval()


def test_fine_tuning_lowers_the_loss(checkpoint):
    gradient.manual_seed(0)   # dropout's masks: the same run whatever ran before
    model = GPT2LMHeadModel.from_pretrained(checkpoint[1])
    model.train()
    opt = gradient.optim.AdamW(model.parameters(), lr=3e-3)
    ids = gradient.tensor(_ids((4, 24), seed=6))
    losses = []
    for _ in range(10):   # about 0.5x the first loss by then, with any seed
        loss = model(ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_half_precision_checkpoints(tmp_path, dtype):
    hf = _hf_model(seed=1).to(getattr(torch, dtype))
    hf.save_pretrained(tmp_path)
    stored = GPT2LMHeadModel.from_pretrained(tmp_path)  # keeps the stored dtype
    assert stored.lm_head.weight.dtype is getattr(gradient, dtype)
    upcast = GPT2LMHeadModel.from_pretrained(tmp_path, dtype="float32")
    assert upcast.lm_head.weight.dtype is gradient.float32
    ids = _ids((2, 10), seed=7)
    ref = hf.float()(torch.tensor(ids)).logits.detach().numpy()  # the same rounded weights, fp32
    # float32 compute on half-precision weights: as exact as float32
    assert np.abs(_logits(upcast, ids) - ref).max() < 1e-4
    # activations rounded to the half type after every op: a few units of its precision on
    # logits of size ~10 (bfloat16 keeps 8 significant bits, float16 11)
    tolerance = {"bfloat16": 0.5, "float16": 0.06}[dtype]
    assert np.abs(_logits(stored, ids).astype(np.float32) - ref).max() < tolerance


def test_save_pretrained_round_trip_and_shards(tmp_path, checkpoint, ours):
    hf, _ = checkpoint
    ids = _ids((1, 10), seed=8)
    ref = hf(torch.tensor(ids)).logits.detach().numpy()
    ours.save_pretrained(tmp_path / "single")
    assert sorted(os.listdir(tmp_path / "single")) == ["config.json", "model.safetensors"]
    ours.save_pretrained(tmp_path / "sharded", max_shard_size="100KB")
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2
    assert "lm_head.weight" not in index["weight_map"]  # tied: stored once, as transformers does
    for name in ("single", "sharded"):
        back = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / name).eval()
        assert np.abs(back(torch.tensor(ids)).logits.detach().numpy() - ref).max() < 1e-5
        again = from_pretrained(tmp_path / name)
        assert again.lm_head.weight is again.transformer.wte.weight
        assert np.abs(_logits(again, ids) - ref).max() < 1e-4
        # Conv1D weights become rows of their own (what the decoding products read in place)
        for layer in (again.transformer.h[0].attn.c_attn, again.transformer.h[1].mlp.c_proj):
            assert layer.weight.detach().numpy().flags.c_contiguous


def test_openai_checkpoint_names_load(tmp_path, checkpoint, ours):
    # OpenAI's gpt2 files name the tensors without "transformer." and carry attn.bias buffers
    from gradient.io import load_safetensors, save_safetensors
    hf, path = checkpoint
    tensors = load_safetensors(path / "model.safetensors")
    bare = {k.removeprefix("transformer."): v for k, v in tensors.items()}
    bare["h.0.attn.bias"] = gradient.ones(1, 1, 96, 96)
    save_safetensors(bare, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text((path / "config.json").read_text())
    ids = _ids((1, 7), seed=9)
    np.testing.assert_allclose(_logits(GPT2LMHeadModel.from_pretrained(tmp_path), ids),
                               _logits(ours, ids), atol=1e-6)


def test_clear_errors(tmp_path, checkpoint):
    _, path = checkpoint
    config = json.loads((path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(dict(config, model_type="mamba")))
    with pytest.raises(UnknownArchitectureError, match="'mamba'.*supported model types"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(FileNotFoundError, match="never loads"):
        from_pretrained(tmp_path)
    from gradient.io import load_safetensors, save_safetensors
    tensors = load_safetensors(path / "model.safetensors")
    del tensors["transformer.h.1.mlp.c_fc.bias"]
    save_safetensors(tensors, tmp_path / "model.safetensors")
    with pytest.raises(FileFormatError, match=r"missing tensors: \['transformer.h.1.mlp.c_fc.bias'\]"):
        from_pretrained(tmp_path)
