"""Generation on a device other than the CPU: the models keep every tensor on the model's device,
and greedy decoding picks each token there (only the ids come back to the host).

The device here is a NumPy ArrayBackend registered under another name: its arrays live in host
memory, but to gradient it is another device, so a tensor made on the CPU by mistake inside a
model would fail with a device error, as it would on CUDA.
"""

import importlib

import numpy as np
import pytest

import gradient
from gradient.backends import register_backend
from gradient.backends.numpy_backend import ArrayBackend
from gradient.models import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

register_backend("second_device", ArrayBackend(np, "second_device"))
generate_module = importlib.import_module("gradient.generation.generate")  # not the function

MODELS = {
    "gpt2": lambda: GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=64, n_embd=32,
                                               n_layer=2, n_head=4)),
    "llama-gqa": lambda: LlamaForCausalLM(LlamaConfig(
        vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_greedy_generation_on_a_device_equals_the_cpu_and_selects_there(name, monkeypatch):
    gradient.manual_seed(0)
    model = MODELS[name]().eval()
    prompt = [[1, 5, 7, 9], [3, 2, 8, 4]]
    expected = model.generate(gradient.tensor(prompt), max_new_tokens=8).tolist()

    def no_host_selection(*args, **kwargs):
        raise AssertionError("greedy decoding on a device must not select on the host")
    monkeypatch.setattr(generate_module, "select_tokens", no_host_selection)
    model.to("second_device")
    out = model.generate(gradient.tensor(prompt, device="second_device"), max_new_tokens=8)
    assert out.device.type == "second_device"
    assert out.tolist() == expected


def test_sampling_on_a_device_still_selects_on_the_host():
    gradient.manual_seed(0)
    model = MODELS["gpt2"]().eval()
    expected = model.generate(gradient.tensor([[1, 5, 7]]), max_new_tokens=6, do_sample=True,
                              top_k=5, seed=3).tolist()
    model.to("second_device")
    out = model.generate(gradient.tensor([[1, 5, 7]], device="second_device"), max_new_tokens=6,
                         do_sample=True, top_k=5, seed=3)
    assert out.tolist() == expected
