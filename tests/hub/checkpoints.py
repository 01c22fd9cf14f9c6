"""Small random checkpoints in the Hugging Face layout, and a fake hub cache that holds them.

* :func:`make_tokenizer` trains a tiny byte-level BPE with the ``tokenizers`` library and saves
  ``tokenizer.json`` + ``tokenizer_config.json`` (with a ChatML chat template).
* :func:`make_gpt2` / :func:`make_llama` save random transformers models with ``save_pretrained``
  (config.json, generation_config.json, model.safetensors) next to that tokenizer.
* :func:`add_to_cache` lays a checkpoint out exactly as huggingface_hub's cache does:
  ``models--org--name/blobs/<hash>``, ``snapshots/<commit>/<file>`` symlinks to the blobs, and
  ``refs/<branch>`` holding the commit hash. ``huggingface_hub.scan_cache_dir`` accepts it
  (tested), and ``snapshot_download`` finds it offline.

Nothing here touches the network.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

TRAINING_TEXT = """\
Hello, my dog is cute and my cat is lazy. The quick brown fox jumps over the lazy dog.
Once upon a time there was a little model that learned to write. It wrote hello world.
Gradient descent follows the slope downhill; the learning rate sets the step.
A tokenizer splits text into tokens, and a model predicts the next token from the last ones.
"""
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
VOCAB_SIZE = 320


def make_tokenizer(directory) -> dict:
    """Train and save a byte-level BPE; returns the ids of the special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(TRAINING_TEXT.splitlines() * 4, trainer)
    os.makedirs(directory, exist_ok=True)
    tok.save(os.path.join(directory, "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 128,
              "bos_token": "<|endoftext|>", "eos_token": "<|im_end|>",
              "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>",
              "add_bos_token": False, "clean_up_tokenization_spaces": False,
              "chat_template": CHAT_TEMPLATE}
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}


def make_gpt2(directory, seed: int = 0) -> str:
    """A 2-layer, 32-wide random GPT-2 with the test tokenizer, saved by transformers."""
    import torch
    import transformers

    ids = make_tokenizer(directory)
    config = transformers.GPT2Config(
        vocab_size=VOCAB_SIZE, n_positions=128, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
        initializer_range=0.3)  # wide weights: peaked logits, so greedy picks are not near-ties
    torch.manual_seed(seed)
    transformers.GPT2LMHeadModel(config).eval().save_pretrained(directory)
    return os.fspath(directory)


def make_llama(directory, seed: int = 0) -> str:
    """A 2-layer random LLaMA with grouped-query attention and the test tokenizer."""
    import torch
    import transformers

    ids = make_tokenizer(directory)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB_SIZE, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
        tie_word_embeddings=False, initializer_range=0.3)
    torch.manual_seed(seed)
    transformers.LlamaForCausalLM(config).eval().save_pretrained(directory)
    return os.fspath(directory)


def add_to_cache(cache_dir, repo_id: str, source_dir, commit: str | None = None,
                 refs=("main",)) -> str:
    """Copy the files of ``source_dir`` into a huggingface_hub cache as revision ``commit`` of
    ``repo_id``, pointed to by each branch in ``refs``; returns the snapshot directory.

    The layout is huggingface_hub's: each file's content is a blob named by its hash (sha256,
    as for LFS files), the snapshot holds relative symlinks to the blobs, and a ref is a file
    holding the commit hash (no newline).
    """
    commit = commit or hashlib.sha1(f"{repo_id}:{source_dir}".encode()).hexdigest()
    repo = os.path.join(os.fspath(cache_dir), "models--" + repo_id.replace("/", "--"))
    blobs, snapshot = os.path.join(repo, "blobs"), os.path.join(repo, "snapshots", commit)
    os.makedirs(blobs, exist_ok=True)
    os.makedirs(snapshot, exist_ok=True)
    for name in sorted(os.listdir(source_dir)):
        src = os.path.join(source_dir, name)
        with open(src, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        blob = os.path.join(blobs, digest)
        if not os.path.exists(blob):
            shutil.copyfile(src, blob)
        os.symlink(os.path.join("..", "..", "blobs", digest), os.path.join(snapshot, name))
    for ref in refs:
        path = os.path.join(repo, "refs", ref)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(commit)
    return snapshot


_BUILT: dict = {}


def built(kind: str, tmp_path_factory) -> str:
    """The checkpoint directory of ``kind`` ("gpt2", "gpt2-b": other weights, or "llama"),
    built once per test session."""
    if kind not in _BUILT:
        directory = tmp_path_factory.mktemp(f"ckpt-{kind}")
        make = {"gpt2": lambda d: make_gpt2(d, seed=0), "gpt2-b": lambda d: make_gpt2(d, seed=1),
                "llama": make_llama}[kind]
        _BUILT[kind] = make(directory)
    return _BUILT[kind]
