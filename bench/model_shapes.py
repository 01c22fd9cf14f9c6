"""GGUF files of a real model's shape with random weights, made at benchmark time: what a
benchmark of a model whose weights dominate (1.1B parameters) runs on without downloading it.

``shape_gguf("tinyllama", "Q4_K_M")`` writes TinyLlama-1.1B's shape (22 layers, hidden 2048,
FFN 5632, 32 heads, 4 KV heads, vocabulary 32,000, RoPE theta 10,000) with N(0, 0.02)
weights as F16 with gradient's writer (``save_gguf``), then has llama.cpp's own quantizer
(``llama_model_quantize`` through llama-cpp-python) make the type asked for: Q4_K_M is
llama.cpp's mix (Q6_K for the output and some attention values and FFN downs), not one type.
The tokenizer is a byte-level BPE of 4,000 tokens trained on a paragraph, padded to the
vocabulary. Files are kept in ``--shape-dir`` (default ``~/.cache/gradient-bench``) and reused;
they never belong in the repository.

``shape_gguf("tinyllama", "BF16")`` writes the random model as a bfloat16 safetensors
checkpoint (``tinyllama-random-bf16``) and, from it, the BF16 file with gradient's writer:
``gguf_decode.py --model-shape tinyllama --type BF16 --checkpoint
~/.cache/gradient-bench/tinyllama-random-bf16`` runs gradient on the checkpoint and llama.cpp
on the file, the peak memory of a bfloat16 checkpoint against llama.cpp's on the same weights.

``shape_gguf("gpt2", "F32")`` writes GPT-2 124M's shape (llama.cpp's gpt2 architecture) with
gradient's writer in that type; the weights are kept once as a checkpoint directory
(``gpt2-random`` beside the files), from which each type's file is written.

Example::

    >>> path = shape_gguf("tinyllama", "Q4_0")     # ~640 MB, made once
"""

from __future__ import annotations

import os
import sys

from common import ROOT

SHAPES = {
    "tinyllama": dict(vocab_size=32000, hidden_size=2048, intermediate_size=5632,
                      num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                      rope_theta=10000.0, max_position_embeddings=2048, rms_norm_eps=1e-5),
}
#: GPT-2 shapes (GPT2Config): the file in a type gradient's writer makes (F32, F16, Q8_0 ...)
GPT2_SHAPES = {"gpt2": dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12,
                            n_head=12)}
#: the llama.cpp file types a shape is made in (llama_ftype)
FILE_TYPES = {"F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K_M": 15, "Q5_K_M": 17, "Q6_K": 18}
DEFAULT_DIR = os.path.join(os.path.expanduser("~"), ".cache", "gradient-bench")
_BPE_TOKENS = 4000


def shape_gguf(shape: str, file_type: str, directory: str = DEFAULT_DIR) -> str:
    """The path of a GGUF file of ``shape`` in ``file_type``, made now if it is not there."""
    if shape in GPT2_SHAPES:
        return _gpt2_gguf(shape, file_type, directory)
    if shape not in SHAPES:
        raise SystemExit(f"unknown model shape {shape!r}: one of "
                         f"{', '.join([*SHAPES, *GPT2_SHAPES])}")
    if file_type == "BF16":
        return _bfloat16_gguf(shape, directory)
    if file_type not in FILE_TYPES:
        raise SystemExit(f"unknown file type {file_type!r}: one of "
                         f"{', '.join([*FILE_TYPES, 'BF16'])}")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{shape}-random.{file_type}.gguf")
    if os.path.isfile(path):
        return path
    f16 = os.path.join(directory, f"{shape}-random.F16.gguf")
    if not os.path.isfile(f16):
        _write_f16(shape, f16, directory)
    if file_type != "F16":
        _quantize(f16, path, FILE_TYPES[file_type])
    return path


def _write_f16(shape: str, path: str, directory: str) -> None:
    sys.path.insert(0, ROOT)
    import gradient
    from gradient.models import LlamaConfig, LlamaForCausalLM, save_gguf
    from gradient.tokenizers import Tokenizer

    print(f"making {path} (random weights, once)", file=sys.stderr)
    tokenizer = Tokenizer.from_pretrained(_train_tokenizer(os.path.join(directory, shape)))
    gradient.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SHAPES[shape]))
    save_gguf(model, path + ".part", "F16", tokenizer, name=f"{shape} (random weights)")
    os.replace(path + ".part", path)


def _bfloat16_gguf(shape: str, directory: str) -> str:
    """The BF16 GGUF path of a random model of ``shape``, written by gradient's writer from a
    bfloat16 safetensors checkpoint kept beside it (``{shape}-random-bf16``, what
    ``gguf_decode.py --checkpoint`` gives gradient: the same weights in both libraries)."""
    sys.path.insert(0, ROOT)
    import gradient
    from gradient.models import LlamaConfig, LlamaForCausalLM, save_gguf
    from gradient.tokenizers import Tokenizer

    os.makedirs(directory, exist_ok=True)
    checkpoint = os.path.join(directory, f"{shape}-random-bf16")
    path = os.path.join(directory, f"{shape}-random.BF16.gguf")
    if os.path.isfile(path) and os.path.isfile(os.path.join(checkpoint, "config.json")):
        return path
    print(f"making {checkpoint} and {path} (random weights, once)", file=sys.stderr)
    tokenizer = Tokenizer.from_pretrained(_train_tokenizer(os.path.join(directory, shape)))
    gradient.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SHAPES[shape])).to(gradient.bfloat16)
    model.save_pretrained(checkpoint + ".part")
    tokenizer.save_pretrained(checkpoint + ".part")
    os.replace(checkpoint + ".part", checkpoint)
    save_gguf(model, path + ".part", "BF16", tokenizer, name=f"{shape} (random weights)")
    os.replace(path + ".part", path)
    return path


def _gpt2_gguf(shape: str, file_type: str, directory: str) -> str:
    """The GGUF path of a random GPT-2 of ``shape`` in ``file_type``: its weights kept once
    as a checkpoint directory (float32 safetensors and the tokenizer), each type's file
    written from it by gradient's writer."""
    sys.path.insert(0, ROOT)
    import gradient
    from gradient.models import GPT2Config, GPT2LMHeadModel, save_gguf
    from gradient.tokenizers import Tokenizer

    os.makedirs(directory, exist_ok=True)
    checkpoint = os.path.join(directory, f"{shape}-random")
    path = os.path.join(directory, f"{shape}-random.{file_type}.gguf")
    made = os.path.isfile(os.path.join(checkpoint, "config.json"))
    if made and os.path.isfile(path):
        return path
    if made:         # the weights exist; this file type of them does not
        model, tokenizer = (GPT2LMHeadModel.from_pretrained(checkpoint),
                            Tokenizer.from_pretrained(checkpoint))
    else:
        tokenizer = Tokenizer.from_pretrained(_train_tokenizer(os.path.join(directory, shape)))
        print(f"making {checkpoint} (random weights, once)", file=sys.stderr)
        gradient.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(**GPT2_SHAPES[shape]))
        model.save_pretrained(checkpoint + ".part")
        tokenizer.save_pretrained(checkpoint + ".part")
        os.replace(checkpoint + ".part", checkpoint)
    print(f"making {path}", file=sys.stderr)
    save_gguf(model, path + ".part", file_type, tokenizer, name=f"{shape} (random weights)")
    os.replace(path + ".part", path)
    return path


def _train_tokenizer(directory: str) -> str:
    """A byte-level BPE trained on the decode benchmark's paragraph, saved in ``directory``."""
    from gguf_decode import TEXT
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=_BPE_TOKENS, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([TEXT] * 8, trainer)
    os.makedirs(directory, exist_ok=True)
    tok.save(os.path.join(directory, "tokenizer.json"))
    return directory


def _quantize(source: str, path: str, ftype: int) -> None:
    import llama_cpp
    print(f"making {path} with llama_model_quantize", file=sys.stderr)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = os.cpu_count() or 1
    if llama_cpp.llama_model_quantize(source.encode(), (path + ".part").encode(), params):
        raise SystemExit(f"llama_model_quantize failed on {source}")
    os.replace(path + ".part", path)
