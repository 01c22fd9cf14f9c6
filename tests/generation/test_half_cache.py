"""A float16 KV cache (``kv_cache_dtype="float16"``, llama.cpp's default): attention takes a
float32 query against float16 keys and values in inference and computes what the cache
widened to float32 gives; a model decodes with it through every path (a prompt run whole, one
token at a time, ``generate``'s captured steps) to the same logits."""

import numpy as np
import pytest

import gradient
import gradient.nn.functional as F
from gradient.generation import generate

from ..hub.conftest import llama_dir  # noqa: F401  (the fixture)


def _qkv(rows, keys, seed=0):
    rng = np.random.default_rng(seed)
    q = gradient.tensor(rng.standard_normal((1, 4, rows, 8)).astype(np.float32))
    k, v = (gradient.tensor(rng.standard_normal((1, 2, keys, 8)).astype(np.float16))
            for _ in range(2))
    return q, k, v


@pytest.mark.parametrize("rows,keys,causal", [(1, 9, False), (6, 6, True), (3, 70, False)])
def test_attention_widens_a_float16_cache_exactly(rows, keys, causal):
    q, k, v = _qkv(rows, keys)
    with gradient.no_grad():
        ours = F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
        wide = F.scaled_dot_product_attention(q, k.float(), v.float(), is_causal=causal,
                                              enable_gqa=True)
        assert ours.dtype is gradient.float32
        np.testing.assert_array_equal(ours.numpy(), wide.numpy())
        # an additive mask: no kernel takes it, the composition runs on the widened cache
        mask = gradient.tensor(np.random.default_rng(1).standard_normal((rows, keys)),
                               dtype=gradient.float32)
        np.testing.assert_array_equal(
            F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=True).numpy(),
            F.scaled_dot_product_attention(q, k.float(), v.float(), attn_mask=mask,
                                           enable_gqa=True).numpy())


def test_mixed_dtypes_stay_an_error_where_pytorch_raises():
    q, k, v = _qkv(1, 9)
    with pytest.raises(gradient.DTypeError, match="same dtype"):       # recorded: as PyTorch
        F.scaled_dot_product_attention(q.requires_grad_(), k, v, enable_gqa=True)
    with gradient.no_grad(), pytest.raises(gradient.DTypeError, match="same dtype"):
        F.scaled_dot_product_attention(q.double(), k, v, enable_gqa=True)


@pytest.fixture(scope="module")
def models(llama_dir):  # noqa: F811
    """The same tiny LLaMA with a float32 and a float16 KV cache."""
    wide, _ = gradient.hub.load(str(llama_dir))
    half, _ = gradient.hub.load(str(llama_dir), kv_cache_dtype="float16")
    return wide.eval(), half.eval()


def _steps(model, ids, pieces):
    cache = model.new_cache(1, len(ids))
    with gradient.no_grad():
        return cache, np.concatenate([model(gradient.tensor([ids[a:b]]), cache=cache).logits
                                      .numpy()[0] for a, b in pieces])


def test_a_model_decodes_with_a_float16_cache(models):
    wide, half = models
    ids = np.random.default_rng(0).integers(3, 200, 24).tolist()
    one_by_one = [(t, t + 1) for t in range(24)]
    cache, stepped = _steps(half, ids, one_by_one)
    assert cache.keys[0].dtype is gradient.float16 and cache.stacked()[0].dtype == np.float16
    _, whole = _steps(half, ids, [(0, 24)])
    _, pieces = _steps(half, ids, [(0, 10), (10, 11), (11, 24)])
    # the same float16 keys and values read by each path (the products' summation orders differ)
    np.testing.assert_allclose(whole, stepped, rtol=0, atol=1e-5)
    np.testing.assert_allclose(pieces, stepped, rtol=0, atol=1e-5)
    _, float32 = _steps(wide, ids, one_by_one)
    difference = np.abs(stepped - float32).max()
    assert 0 < difference < 0.05      # float16's rounding of the cache, not another computation


def test_a_forward_without_a_cache_reads_keys_and_values_as_the_cache_holds_them(models):
    wide, half = models
    ids = np.random.default_rng(2).integers(3, 200, 16).tolist()
    _, cached = _steps(half, ids, [(0, 16)])
    with gradient.no_grad():
        np.testing.assert_array_equal(half(gradient.tensor([ids])).logits.numpy()[0], cached)
        exact = wide(gradient.tensor([ids])).logits.numpy()[0]
    assert np.abs(cached - exact).max() > 0          # float16's rounding, not float32's values
    # recorded for autograd (training), the keys and values stay what the layers computed
    recorded = half(gradient.tensor([ids])).logits.detach().numpy()[0]
    np.testing.assert_allclose(recorded, exact, rtol=0, atol=1e-5)


def test_generate_keeps_a_float16_cache_in_its_compiled_steps(models):
    _, half = models
    prompt = np.random.default_rng(1).integers(3, 200, 12).tolist()
    out = generate(half, [prompt], 16, eos_token_id=[])[0].tolist()
    ids = list(prompt)
    cache = half.new_cache(1, len(prompt) + 16)
    with gradient.no_grad():
        logits = half(gradient.tensor([ids]), cache=cache).logits
        for _ in range(16):
            ids.append(int(logits[0, -1].argmax().item()))
            logits = half(gradient.tensor([ids[-1:]]), cache=cache).logits
    assert out == ids


def test_load_checks_the_cache_dtype(llama_dir):  # noqa: F811
    with pytest.raises(ValueError, match="kv_cache_dtype must be 'float16', 'float32' or None"):
        gradient.hub.load(str(llama_dir), kv_cache_dtype="int8")
