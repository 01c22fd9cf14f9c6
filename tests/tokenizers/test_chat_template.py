"""Chat templates: prompt strings and ids identical to transformers' apply_chat_template."""

import json
import os

import pytest
from transformers import AutoTokenizer

import gradient
from gradient.tokenizers import ChatTemplateError, Tokenizer, TokenizerError, render_chat_template

from .builders import CHATML_TEMPLATE, LAYOUT_TEMPLATE, write_chatml_dir, write_llama3_dir

CONVERSATIONS = [
    [{"role": "user", "content": "Hi!"}],
    [{"role": "system", "content": "  You answer in French.  "},
     {"role": "user", "content": "What is 2 + 2?"},
     {"role": "assistant", "content": "Quatre."},
     {"role": "user", "content": "Et 3 + 3 ? Réponds avec un emoji 🎲"}],
    [{"role": "user", "content": "multi\nline\n\n  content  "},
     {"role": "assistant", "content": "ok"},
     {"role": "user", "content": "日本語でお願いします"}],
]

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather <in> a city & its région — \"quoted\"",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    root = tmp_path_factory.mktemp("chat_dirs")
    out = {}
    for name, write in (("chatml", write_chatml_dir), ("llama3", write_llama3_dir)):
        directory = write(str(root / name))
        out[name] = (Tokenizer.from_pretrained(directory), AutoTokenizer.from_pretrained(directory))
    return out


@pytest.mark.parametrize("name", ["chatml", "llama3"])
@pytest.mark.parametrize("add_generation_prompt", [True, False])
def test_prompt_strings_and_ids_match_transformers(pairs, name, add_generation_prompt):
    ours, hf = pairs[name]
    kwargs = dict(add_generation_prompt=add_generation_prompt)
    if name == "llama3":
        kwargs["date_string"] = "26 Jul 2024"
    for messages in CONVERSATIONS:
        text = ours.apply_chat_template(messages, tokenize=False, **kwargs)
        assert text == hf.apply_chat_template(messages, tokenize=False, **kwargs)
        ids = ours.apply_chat_template(messages, **kwargs)
        assert ids == hf.apply_chat_template(messages, **kwargs)["input_ids"]
        # The template wrote the BOS; tokenizing must not add a second one.
        assert ids == ours.encode(text, add_special_tokens=False)
    header = "<|start_header_id|>assistant<|end_header_id|>\n\n" if name == "llama3" \
        else "<|im_start|>assistant\n"
    assert text.endswith(header) == add_generation_prompt


def test_chatml_prompt_text(pairs):
    ours, _ = pairs["chatml"]
    assert ours.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True,
                                    tokenize=False) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
        "<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_tools_tojson_and_strftime_now(pairs):
    ours, hf = pairs["llama3"]
    messages = CONVERSATIONS[1]
    text = ours.apply_chat_template(messages, tools=TOOLS, add_generation_prompt=True, tokenize=False)
    assert text == hf.apply_chat_template(messages, tools=TOOLS, add_generation_prompt=True,
                                          tokenize=False)
    # transformers' tojson: no HTML escaping, non-ASCII kept, indent honoured.
    assert 'Weather <in> a city & its région — \\"quoted\\"' in text
    assert '\n    "type": "function"' in text
    # strftime_now("%d %b %Y") printed today's date.
    import datetime
    assert "Today Date: " + datetime.datetime.now().strftime("%d %b %Y") in text


def test_raise_exception_becomes_a_clear_error(pairs):
    ours, hf = pairs["llama3"]
    bad = [{"role": "assistant", "content": "I speak first"}]
    with pytest.raises(ChatTemplateError, match="roles must alternate"):
        ours.apply_chat_template(bad, tokenize=False)
    with pytest.raises(Exception, match="roles must alternate"):
        hf.apply_chat_template(bad, tokenize=False)
    assert issubclass(ChatTemplateError, ValueError)


@pytest.mark.parametrize("name", ["chatml", "llama3"])
@pytest.mark.parametrize("content", ["Sure, the answer is", "Trailing spaces   ", "x\n"])
def test_continue_final_message_matches_transformers(pairs, name, content):
    ours, hf = pairs[name]
    messages = [{"role": "user", "content": "Answer briefly."},
                {"role": "assistant", "content": content}]
    kwargs = dict(continue_final_message=True, tokenize=False, date_string="1 Jan 2025")
    text = ours.apply_chat_template(messages, **kwargs)
    assert text == hf.apply_chat_template(messages, **kwargs)
    assert text.rstrip().endswith(content.strip())
    with pytest.raises(TokenizerError, match="only one"):
        ours.apply_chat_template(messages, continue_final_message=True, add_generation_prompt=True)


def test_batched_conversations_with_padding_and_tensors(pairs):
    ours, hf = pairs["chatml"]
    texts = ours.apply_chat_template(CONVERSATIONS, add_generation_prompt=True, tokenize=False)
    assert texts == hf.apply_chat_template(CONVERSATIONS, add_generation_prompt=True, tokenize=False)
    got = ours.apply_chat_template(CONVERSATIONS, add_generation_prompt=True, padding=True,
                                   return_dict=True, return_tensors="gr")
    want = hf.apply_chat_template(CONVERSATIONS, add_generation_prompt=True, padding=True,
                                  return_dict=True, return_tensors="np")
    assert got["input_ids"].dtype == gradient.int64
    assert got["input_ids"].tolist() == want["input_ids"].tolist()
    assert got["attention_mask"].tolist() == want["attention_mask"].tolist()


def test_whitespace_control_generation_tag_loopcontrols_and_kwargs(pairs):
    """A template without {%- -%}: trim_blocks/lstrip_blocks decide its layout; it also uses
    {% generation %}, {% break %}, namespace() and a caller variable (enable_thinking)."""
    ours, hf = pairs["chatml"]
    conversations = CONVERSATIONS + [[{"role": "user", "content": "a"},
                                      {"role": "stop", "content": "ignored"},
                                      {"role": "user", "content": "never shown"}]]
    for messages in conversations:
        for extra in ({}, {"enable_thinking": False}, {"enable_thinking": True}):
            kwargs = dict(chat_template=LAYOUT_TEMPLATE, add_generation_prompt=True,
                          tokenize=False, **extra)
            assert ours.apply_chat_template(messages, **kwargs) == \
                hf.apply_chat_template(messages, **kwargs), (messages, extra)
    text = ours.apply_chat_template(conversations[-1], chat_template=LAYOUT_TEMPLATE,
                                    tokenize=False, enable_thinking=False,
                                    add_generation_prompt=True)
    assert "never shown" not in text and "turns=1 <|im_end|>" in text
    assert "<think>\n\n</think>" in text and "\n    " not in text


def test_none_values_are_dropped_and_reasoning_aliased(pairs):
    ours, hf = pairs["chatml"]
    template = ("{% for m in messages %}{{ m.role }}:{{ m.content | default('-') }}"
                "{% if m.reasoning_content %}[{{ m.reasoning_content }}]{% endif %}"
                "{% if m.thinking %}<{{ m.thinking }}>{% endif %};{% endfor %}")
    messages = [{"role": "user", "content": "q"},
                {"role": "assistant", "content": None, "reasoning": "hmm"}]
    text = ours.apply_chat_template(messages, chat_template=template, tokenize=False)
    assert text == hf.apply_chat_template(messages, chat_template=template, tokenize=False)
    assert text == "user:q;assistant:-[hmm]<hmm>;"
    assert messages[1]["content"] is None            # the caller's messages are untouched


def test_named_templates_and_chat_template_jinja_file(tmp_path):
    directory = write_chatml_dir(str(tmp_path / "named"))
    path = os.path.join(directory, "tokenizer_config.json")
    with open(path) as f:
        config = json.load(f)
    config["chat_template"] = [
        {"name": "default", "template": CHATML_TEMPLATE},
        {"name": "tool_use", "template": "TOOLS:{{ tools | length }}{{ messages[0].content }}"},
        {"name": "short", "template": "{{ messages[-1].content }}"}]
    with open(path, "w") as f:
        json.dump(config, f)
    ours, hf = Tokenizer.from_pretrained(directory), AutoTokenizer.from_pretrained(directory)
    messages = CONVERSATIONS[0]
    for kwargs in ({}, {"tools": TOOLS}, {"chat_template": "short"}):
        assert ours.apply_chat_template(messages, tokenize=False, **kwargs) == \
            hf.apply_chat_template(messages, tokenize=False, **kwargs)
    assert ours.apply_chat_template(messages, tools=TOOLS, tokenize=False) == "TOOLS:1Hi!"
    # save_pretrained writes the named templates back in the list form transformers reads.
    ours.save_pretrained(tmp_path / "saved")
    again = AutoTokenizer.from_pretrained(str(tmp_path / "saved"))
    for kwargs in ({}, {"tools": TOOLS}, {"chat_template": "short"}):
        assert again.apply_chat_template(messages, tokenize=False, **kwargs) == \
            hf.apply_chat_template(messages, tokenize=False, **kwargs)

    # chat_template.jinja takes priority over tokenizer_config.json's entry.
    directory = write_chatml_dir(str(tmp_path / "jinja"))
    with open(os.path.join(directory, "chat_template.jinja"), "w") as f:
        f.write("FROM FILE {{ messages[0].content }}{{ eos_token }}")
    ours, hf = Tokenizer.from_pretrained(directory), AutoTokenizer.from_pretrained(directory)
    assert ours.apply_chat_template(messages, tokenize=False) == \
        hf.apply_chat_template(messages, tokenize=False) == "FROM FILE Hi!<|im_end|>"


def test_missing_template_and_bad_templates(tmp_path):
    directory = write_chatml_dir(str(tmp_path))
    path = os.path.join(directory, "tokenizer_config.json")
    with open(path) as f:
        config = json.load(f)
    del config["chat_template"]
    with open(path, "w") as f:
        json.dump(config, f)
    tok = Tokenizer.from_pretrained(directory)
    with pytest.raises(TokenizerError, match="no chat template") as info:
        tok.apply_chat_template([{"role": "user", "content": "hi"}])
    assert "chat_template=" in str(info.value)
    with pytest.raises(ChatTemplateError, match="does not parse"):
        tok.apply_chat_template([{"role": "user", "content": "hi"}],
                                chat_template="{% for m in messages %}{{ m }")
    with pytest.raises(TokenizerError, match="non-empty list"):
        tok.apply_chat_template([], chat_template="x")
    with pytest.raises(TokenizerError, match="JSON schemas"):
        tok.apply_chat_template([{"role": "user", "content": "hi"}], chat_template="x",
                                tools=[len])


def test_templates_run_sandboxed():
    messages = [[{"role": "user", "content": "hi"}]]
    with pytest.raises(ChatTemplateError):
        render_chat_template("{{ ().__class__.__base__.__subclasses__() }}", messages)
    with pytest.raises(ChatTemplateError):
        render_chat_template("{% set _ = messages.append(1) %}", messages)
    assert render_chat_template("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}",
                                messages) == ["<user>hi"]
