"""gradient.hub.load: hub ids, aliases, local directories and .gguf paths to (model, tokenizer)."""

import os

import numpy as np
import pytest

import gradient
from gradient.errors import FileFormatError
from gradient.hub import ModelNotFoundError, load

from .checkpoints import add_to_cache

COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


def _stored(directory, name):
    from safetensors.numpy import load_file
    return load_file(os.path.join(directory, "model.safetensors"))[name]


def _wte(model):
    return model.transformer.wte.weight.detach().numpy()


def test_load_a_repo_id_from_the_cache(hub_cache, gpt2_dir):
    snapshot = add_to_cache(hub_cache, "org/tiny-gpt2", gpt2_dir)
    model, tokenizer = load("org/tiny-gpt2")
    assert isinstance(model, gradient.models.GPT2LMHeadModel) and not model.training
    assert os.path.samefile(model.name_or_path, snapshot)
    np.testing.assert_array_equal(_wte(model), _stored(gpt2_dir, "transformer.wte.weight"))
    assert tokenizer.decode(tokenizer.encode("Hello, my dog")) == "Hello, my dog"
    assert tokenizer.eos_token_id == model.generation_config["eos_token_id"]


def test_load_gpt2_resolves_to_openai_community(hub_cache, gpt2_dir):
    snapshot = add_to_cache(hub_cache, "openai-community/gpt2", gpt2_dir)
    model, _ = load("gpt2")
    assert os.path.samefile(model.name_or_path, snapshot)


def test_load_a_local_directory_and_convert_dtype(gpt2_dir, no_network):
    model, tokenizer = load(gpt2_dir, dtype="bfloat16")
    assert model.name_or_path == gpt2_dir
    assert model.transformer.wte.weight.dtype == gradient.bfloat16
    logits = model(gradient.tensor([tokenizer.encode("hello world")])).logits
    assert logits.shape[-1] == model.config.vocab_size


def test_revision_selects_the_weights(hub_cache, gpt2_dir, gpt2_dir_b):
    add_to_cache(hub_cache, "org/tiny-gpt2", gpt2_dir, commit=COMMIT_A, refs=("main",))
    add_to_cache(hub_cache, "org/tiny-gpt2", gpt2_dir_b, commit=COMMIT_B, refs=("v2",))
    a = _stored(gpt2_dir, "transformer.wte.weight")
    b = _stored(gpt2_dir_b, "transformer.wte.weight")
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(_wte(load("org/tiny-gpt2")[0]), a)
    np.testing.assert_array_equal(_wte(load("org/tiny-gpt2", revision="v2")[0]), b)
    np.testing.assert_array_equal(_wte(load("org/tiny-gpt2", revision=COMMIT_A)[0]), a)


def test_models_from_pretrained_goes_through_the_hub(hub_cache, gpt2_dir, gpt2_dir_b):
    add_to_cache(hub_cache, "org/tiny-gpt2", gpt2_dir, commit=COMMIT_A, refs=("main",))
    add_to_cache(hub_cache, "org/tiny-gpt2", gpt2_dir_b, commit=COMMIT_B, refs=("v2",))
    model = gradient.models.from_pretrained("org/tiny-gpt2", revision="v2")
    np.testing.assert_array_equal(_wte(model), _stored(gpt2_dir_b, "transformer.wte.weight"))


def test_load_llama_from_the_cache(hub_cache, llama_dir):
    add_to_cache(hub_cache, "org/tiny-llama", llama_dir)
    model, tokenizer = load("org/tiny-llama", dtype="float32")
    assert type(model).__name__ == "LlamaForCausalLM"
    np.testing.assert_array_equal(model.lm_head.weight.detach().numpy(),
                                  _stored(llama_dir, "lm_head.weight"))
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}],
                                         add_generation_prompt=True, tokenize=False) \
        == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


# ----------------------------------------------------------------------------- errors
def test_unknown_model_offline(hub_cache):
    with pytest.raises(ModelNotFoundError, match=r"org/nothing-here.*HF_HUB_OFFLINE"):
        load("org/nothing-here")
    with pytest.raises(ModelNotFoundError, match=r"openai-community/gpt2-large.*not in the"):
        load("gpt2-large")


def test_directory_without_config(tmp_path, no_network):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match=r"no config\.json.*found \['model\.safetensors'\]"):
        load(tmp_path)


def test_directory_with_gguf_files_points_at_them(tmp_path, no_network):
    (tmp_path / "m-Q4_0.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelNotFoundError, match=r"pass one of them .*m-Q4_0\.gguf"):
        load(tmp_path)


@pytest.mark.parametrize("path", ["./no/such/dir", "/no/such/dir", "a/b/c"])
def test_missing_path_is_not_sent_to_the_hub(path, no_network, monkeypatch):
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "snapshot_download", None)  # must not be reached
    with pytest.raises(ModelNotFoundError, match="no such directory"):
        load(path)


def test_a_file_that_is_not_a_model(tmp_path, no_network):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="is a file, not a model directory"):
        load(tmp_path / "config.json")


def test_gguf_is_routed_to_the_gguf_loader(tmp_path, no_network):
    # the loader itself is tested in tests/models/test_gguf_loader.py; here: the routing
    path = tmp_path / "model-Q4_0.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00")
    with pytest.raises(FileFormatError, match="model-Q4_0.gguf: not a GGUF file.*shorter than"):
        load(path)
    with pytest.raises(ModelNotFoundError, match="no such GGUF file"):
        load(tmp_path / "missing.gguf")
