"""GPTQ checkpoints that llm-compressor writes, loaded by gradient, when it can be run.

llm-compressor (vLLM's quantization library) pins its own transformers and compressed-tensors,
so it cannot share the test environment. Point ``GRADIENT_TEST_LLMCOMPRESSOR`` at the Python
of an environment that has it (``python -m venv /tmp/lc && /tmp/lc/bin/pip install
torch==2.13.0 llmcompressor``) and this test runs it in a child process: it quantizes a tiny
random LLaMA with its GPTQ (4-bit, groups of 32 with zero points, activation order none and
static; and 3-bit, which it packs densely, 32 codes to 3 words), saves the checkpoint compressed, and writes what its own CPU path makes of it
(transformers' decompressed float weights, and logits). gradient loads the checkpoint and
must give the same dequantized weights bit for bit and the same logits to 1e-4. ``.ci/run``
makes such an environment and runs this file in a pass of its own; without the variable (the
default run) the test skips, and ``tests/quant/test_formats.py`` checks the same format
against the compressed-tensors library.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

import gradient
from gradient.quant import WeightOnlyLinear

PEER = os.environ.get("GRADIENT_TEST_LLMCOMPRESSOR")
LAYERS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
          "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
IDS = [[1, 5, 9, 20, 33, 7, 64, 2]]

# Run by the peer's Python: argv = [work directory, actorder ("none" or "static"), bits].
PEER_SCRIPT = r'''
import os, sys
import numpy as np
import torch, transformers
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.gptq import GPTQModifier
from tokenizers import Tokenizer, models

work, actorder, bits = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.manual_seed(0)
config = transformers.LlamaConfig(vocab_size=96, hidden_size=64, intermediate_size=128,
                                  num_hidden_layers=2, num_attention_heads=4,
                                  num_key_value_heads=2, max_position_embeddings=64)
model = transformers.LlamaForCausalLM(config).eval()
float_dir = os.path.join(work, "float")
model.save_pretrained(float_dir)
vocab = {f"t{i}": i for i in range(96)}
tokenizer = transformers.PreTrainedTokenizerFast(
    tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")), unk_token="t0")
tokenizer.save_pretrained(float_dir)          # oneshot asks for one
rng = np.random.default_rng(0)
calib = rng.integers(0, 96, (32, 32))
data = Dataset.from_dict({"input_ids": [list(map(int, r)) for r in calib],
                          "attention_mask": [[1] * 32] * 32})
weights = {"num_bits": bits, "type": "int", "symmetric": False, "strategy": "group",
           "group_size": 32}
recipe = [GPTQModifier(config_groups={"group_0": {"targets": ["Linear"], "weights": weights}},
                       ignore=["lm_head"], dampening_frac=0.01,
                       actorder=None if actorder == "none" else actorder)]
model = transformers.AutoModelForCausalLM.from_pretrained(float_dir, dtype=torch.float32)
oneshot(model=model, dataset=data, recipe=recipe, max_seq_length=32,
        num_calibration_samples=32)
out = os.path.join(work, "gptq")
model.save_pretrained(out, save_compressed=True)
peer = transformers.AutoModelForCausalLM.from_pretrained(
    out, dtype=torch.float32,
    quantization_config=transformers.CompressedTensorsConfig(run_compressed=False)).eval()
arrays = {name: p.detach().numpy() for name, p in peer.named_parameters()}
with torch.no_grad():
    arrays["logits"] = peer(torch.tensor(%r)).logits.numpy()
np.savez(os.path.join(work, "peer.npz"), **arrays)
''' % (IDS,)


@pytest.mark.skipif(PEER is None, reason="GRADIENT_TEST_LLMCOMPRESSOR (the Python of an "
                    "environment with llmcompressor) is not set")
@pytest.mark.parametrize("actorder,bits", [("none", 4), ("static", 4), ("static", 3)])
def test_llmcompressor_gptq_checkpoints_load_with_its_weights_and_logits(tmp_path, actorder,
                                                                         bits):
    result = subprocess.run([PEER, "-c", PEER_SCRIPT, str(tmp_path), actorder, str(bits)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    peer = np.load(tmp_path / "peer.npz")
    ours = gradient.models.from_pretrained(tmp_path / "gptq")
    for i in range(2):
        for name in LAYERS:
            layer = ours.get_submodule(f"model.layers.{i}.{name}")
            assert isinstance(layer, WeightOnlyLinear)
            assert (layer.bits, layer.group_size, layer.zero_point) == (4, 32, True)
            assert layer.packed_weight().code_bits == bits
            np.testing.assert_array_equal(layer.dequantize().numpy(),
                                          peer[f"model.layers.{i}.{name}.weight"])
    with gradient.no_grad():
        got = ours(gradient.tensor(np.array(IDS))).logits.numpy()
    expected = peer["logits"]
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())
