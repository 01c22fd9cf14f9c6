"""Chat templates: the Jinja program in ``tokenizer_config.json`` that turns messages into a prompt.

A chat model was trained on conversations laid out in one exact format (ChatML's
``<|im_start|>user\\n...<|im_end|>``, Llama 3's ``<|start_header_id|>user<|end_header_id|>``
...). The model repository ships that format as a Jinja template; rendering it with the
messages gives the prompt string. Templates are written for the environment Hugging Face
transformers provides, so we provide the same one:

* ``trim_blocks`` and ``lstrip_blocks`` (a block tag eats its newline and the indentation before
  it), and the ``loopcontrols`` extension (``{% break %}``, ``{% continue %}``);
* ``raise_exception(message)`` for templates that reject a conversation (roles out of order);
* ``strftime_now(format)`` for templates that print today's date;
* a ``tojson`` filter that, unlike Jinja's, does not escape ``<``, ``>``, ``&`` and ``'`` for HTML,
  and takes ``indent``, ``separators``, ``sort_keys``, ``ensure_ascii``;
* the ``{% generation %}...{% endgeneration %}`` tag (it marks assistant text for training
  masks; here it renders its body);
* the variables ``messages``, ``tools``, ``documents``, ``add_generation_prompt``, the tokenizer's
  special tokens (``bos_token``, ``eos_token``, ...) and any extra keyword the caller passes.

Templates come from model repositories, so they are untrusted code: they run in Jinja's
immutable sandbox, which blocks attribute access to Python internals and mutation of the
inputs.

Example::

    >>> render_chat_template("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}",
    ...                      [[{"role": "user", "content": "hi"}]])
    ['<user>hi']
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .errors import TokenizerError

__all__ = ["render_chat_template", "compile_chat_template", "ChatTemplateError"]


class ChatTemplateError(TokenizerError):
    """A chat template that does not parse, or that rejected the conversation (raise_exception)."""


class _GenerationTag(jinja2.ext.Extension):
    """``{% generation %}body{% endgeneration %}``: renders ``body`` unchanged.

    Hugging Face uses the tag to find the assistant's text when building training masks; a
    template that contains it must still parse here.
    """

    tags = {"generation"}

    def parse(self, parser):
        next(parser.stream)                                     # the "generation" name
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def _strftime_now(fmt):
    return datetime.now().strftime(fmt)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


@lru_cache(maxsize=32)
def compile_chat_template(template: str) -> jinja2.Template:
    """Compile ``template`` in the chat-template environment (cached: a model reuses one template).

    Raises :class:`ChatTemplateError` on a syntax error, with the line it is on.
    """
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[_GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    try:
        return env.from_string(template)
    except jinja2.exceptions.TemplateSyntaxError as e:
        raise ChatTemplateError(f"the chat template does not parse: {e.message} (template line "
                                f"{e.lineno}); check the template in tokenizer_config.json or "
                                f"chat_template.jinja") from e


# A message's reasoning ("thinking") travels under several names; templates read
# `reasoning_content` (Qwen3, DeepSeek) or `thinking` (gpt-oss). Fill both from whichever is given.
_REASONING_KEYS = ("reasoning_content", "thinking", "reasoning")

# Appended to the final message when it is to be continued, to find where it ends in the prompt.
_CONTINUE_MARK = "<<gradient-continue-final-message>> "


def _prepare_messages(messages: list[dict]) -> list[dict]:
    """Copies of the messages as templates expect them: None values dropped (APIs send
    ``"content": None``, which templates would print as "None"), reasoning under both names."""
    prepared = []
    for message in messages:
        if not isinstance(message, dict):
            raise TokenizerError(f"apply_chat_template: each message must be a dict like "
                                 f"{{'role': 'user', 'content': '...'}}, got {message!r}")
        message = {k: v for k, v in message.items() if v is not None}
        reasoning = next((message[k] for k in _REASONING_KEYS if k in message), None)
        if reasoning is not None:
            message = {"thinking": reasoning, **message, "reasoning_content": reasoning}
        prepared.append(message)
    return prepared


def render_chat_template(template: str, conversations: list[list[dict]], *,
                         add_generation_prompt: bool = False,
                         continue_final_message: bool = False,
                         tools: list[dict] | None = None, documents: list[dict] | None = None,
                         **variables: Any) -> list[str]:
    """Render ``template`` once per conversation; returns the prompt strings.

    Args:
        conversations: a list of conversations, each a list of ``{"role", "content", ...}`` dicts.
        add_generation_prompt: end with the header of an assistant turn, so the model answers.
        continue_final_message: end the prompt right after the last message's content (no
            end-of-turn token), so the model continues that message (prefilling an answer).
        tools: JSON schemas of the functions the model may call (for templates that use them).
        documents: ``{"title", "text"}`` dicts for retrieval-augmented templates.
        variables: more template variables (the tokenizer passes its special tokens here).
    """
    if add_generation_prompt and continue_final_message:
        raise TokenizerError("apply_chat_template: add_generation_prompt=True starts a new assistant "
                             "turn and continue_final_message=True continues the last message; "
                             "pass only one of them")
    if tools is not None:
        for tool in tools:
            if not isinstance(tool, dict):
                raise TokenizerError(f"apply_chat_template: tools must be JSON schemas (dicts), got "
                                     f"{type(tool).__name__}; describe a Python function as "
                                     f"{{'type': 'function', 'function': {{'name': ..., "
                                     f"'description': ..., 'parameters': {{...}}}}}}")
    compiled = compile_chat_template(template)
    rendered = []
    for messages in conversations:
        messages = _prepare_messages(messages)
        if continue_final_message:
            if not messages or not isinstance(messages[-1].get("content"), str):
                raise TokenizerError("apply_chat_template: continue_final_message=True needs a last "
                                     "message with string content to continue")
            final = messages[-1]["content"]
            messages[-1] = {**messages[-1], "content": final + _CONTINUE_MARK}
        try:
            text = compiled.render(messages=messages, tools=tools, documents=documents,
                                   add_generation_prompt=add_generation_prompt, **variables)
        except jinja2.exceptions.TemplateError as e:
            raise ChatTemplateError(f"the chat template rejected the conversation: {e}") from e
        if continue_final_message:
            # Cut the prompt where the final message ends. If the template trimmed the content
            # (`| trim`), the mark's trailing space went too, and so does the content's trailing
            # whitespace: the prompt then ends as the template would have rendered the message.
            mark = _CONTINUE_MARK.strip()
            at = text.rfind(mark)
            if at < 0 or final.strip() not in text:
                raise TokenizerError("apply_chat_template: continue_final_message=True, but the chat "
                                     "template does not print the final message's content, so the "
                                     "prompt cannot end inside it")
            text = text[:at] if text[at:at + len(_CONTINUE_MARK)] == _CONTINUE_MARK \
                else text[:at].rstrip()
        rendered.append(text)
    return rendered
