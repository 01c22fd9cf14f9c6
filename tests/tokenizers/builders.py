"""Model directories for the tokenizer tests, written with the `tokenizers` library.

Each builder writes what a Hub repository would hold: tokenizer.json (a small byte-level BPE
trained on ``corpus.training_text()``), tokenizer_config.json with real-looking chat templates,
or GPT-2's vocab.json + merges.txt alone.
"""

import json
import os
from functools import lru_cache

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from gradient.tokenizers import ByteLevelBPE

from .corpus import training_text

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>",
            "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|reserved_0|>"]

# SmolLM2-Instruct's template, verbatim: ChatML with a default system prompt.
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}")

# In the style of Llama 3.1's: bos_token, a date from strftime_now, tools through tojson,
# raise_exception on roles out of order, `| trim`, whitespace control with {%- -%}, continue.
LLAMA3_TEMPLATE = """{{- bos_token }}
{%- if not date_string is defined %}
    {%- set date_string = strftime_now("%d %b %Y") %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] | trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none %}
    {{- "You have access to the following functions. Respond with JSON.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['content'] is not string %}{% continue %}{% endif %}
    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

# No whitespace control at all: trim_blocks and lstrip_blocks decide the layout; plus the
# generation tag, break, namespace, and a model-specific variable.
LAYOUT_TEMPLATE = """{% set ns = namespace(turns=0) %}
{% for message in messages %}
    {% if message.role == 'stop' %}
        {% break %}
    {% endif %}
    {% set ns.turns = ns.turns + 1 %}
    {% if message.role == 'assistant' %}
<|im_start|>assistant
{% generation %}{{ message.content }}{% endgeneration %}<|im_end|>
    {% else %}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
    {% endif %}
{% endfor %}
{% if add_generation_prompt %}
<|im_start|>assistant
{% if enable_thinking is defined and not enable_thinking %}<think>

</think>

{% endif %}
{% endif %}
turns={{ ns.turns }} {{ eos_token }}"""


@lru_cache(maxsize=None)
def _backend_json(vocab_size: int) -> str:
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator([training_text()], trainer)
    return tk.to_str()


def byte_level_backend(vocab_size: int = 700) -> Tokenizer:
    """A fresh byte-level BPE `tokenizers.Tokenizer` (ByteLevel pre-tokenizer and decoder)."""
    return Tokenizer.from_str(_backend_json(vocab_size))


def _write(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
        if isinstance(data, str):
            f.write(data)
        else:
            json.dump(data, f, ensure_ascii=False, indent=2)


def write_chatml_dir(directory):
    """SmolLM2/Qwen-like: ChatML template, pad = eos, nothing added around sequences."""
    os.makedirs(directory, exist_ok=True)
    byte_level_backend().save(os.path.join(directory, "tokenizer.json"))
    _write(directory, "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>", "unk_token": "<|endoftext|>", "pad_token": "<|im_end|>",
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "model_max_length": 8192, "clean_up_tokenization_spaces": False,
        "chat_template": CHATML_TEMPLATE})
    return directory


def write_llama3_dir(directory):
    """Llama-3-like: tokenizer.json's post-processor adds <|begin_of_text|>; no pad token."""
    os.makedirs(directory, exist_ok=True)
    tk = byte_level_backend()
    bos = "<|begin_of_text|>"
    tk.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                      special_tokens=[(bos, tk.token_to_id(bos))])])
    tk.save(os.path.join(directory, "tokenizer.json"))
    _write(directory, "tokenizer_config.json", {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": bos, "eos_token": "<|eot_id|>",
        "model_max_length": 131072, "chat_template": LLAMA3_TEMPLATE,
        # Ignored when tokenizer.json exists (its post-processor rules), in transformers and here.
        "add_eos_token": True})
    return directory


def write_gpt2_dir(directory, config=None):
    """GPT-2's layout: vocab.json + merges.txt only (written by our ByteLevelBPE)."""
    bpe = ByteLevelBPE.train(training_text(), vocab_size=600, special_tokens=["<|endoftext|>"])
    bpe.save(directory)
    if config is not None:
        _write(directory, "tokenizer_config.json", config)
    return directory
