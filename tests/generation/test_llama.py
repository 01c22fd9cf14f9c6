"""Greedy generation with a tiny LLaMA (grouped-query attention: 4 query heads share 2 key/value
heads) against transformers' generate on the same random weights."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
llama = pytest.importorskip("gradient.models.llama")

from gradient.generation import generate  # noqa: E402

from .conftest import VOCAB, random_ids  # noqa: E402


@pytest.fixture(scope="module")
def llama_pair(tmp_path_factory):
    torch.manual_seed(1)
    cfg = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=128,
                                   bos_token_id=None, eos_token_id=None, pad_token_id=None)
    hf = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            if p.ndim > 1:
                p.normal_(0.0, 0.2)
    path = tmp_path_factory.mktemp("llama")
    hf.save_pretrained(path)
    return hf, llama.LlamaForCausalLM.from_pretrained(path)


def test_llama_gqa_greedy_equals_transformers(llama_pair):
    hf, ours = llama_pair
    assert ours.config.num_key_value_heads < ours.config.num_attention_heads
    ids = random_ids((3, 9), seed=20)
    mask = np.ones_like(ids)
    mask[1, :4] = 0
    mask[2, :2] = 0
    ids[mask == 0] = 0
    for prompt, prompt_mask in ((ids[:1], None), (ids, mask)):
        kwargs = {} if prompt_mask is None else {"attention_mask": torch.tensor(prompt_mask)}
        with torch.no_grad():
            ref = hf.generate(torch.tensor(prompt), max_new_tokens=32, do_sample=False,
                              pad_token_id=0, **kwargs).numpy()
        out = generate(ours, prompt, 32, attention_mask=prompt_mask).numpy()
        np.testing.assert_array_equal(out, ref)
        assert len(set(ref[0, 9:].tolist())) > 5
