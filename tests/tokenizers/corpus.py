"""Text for the tokenizer tests, built here (nothing is downloaded).

``training_text()``: some 90 KB of Python standard-library docstrings plus hand-written
multilingual lines. ``held_out_texts()``: strings a tokenizer gets wrong first: accents, CJK,
emoji (multi-codepoint ones too), code, whitespace runs with trailing spaces and newlines,
numbers, contractions in both cases, unusual Unicode spaces.
"""

import collections
import inspect
import json
import os
import re
import string
import textwrap

_MODULES = (collections, inspect, json, os, re, string, textwrap)

MULTILINGUAL = [
    "Le cœur a ses raisons que la raison ne connaît point. Ça va très bien, merci !",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein. Straße, Größe, Fußgänger.",
    "¿Dónde está la biblioteca? Mañana será otro día, señor Muñoz.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "日本語の文章を書くのは楽しいです。東京は大きな都市です。",
    "我们今天去公园散步，天气非常好。中文分词很有意思。",
    "한국어 문장도 포함합니다. 안녕하세요, 만나서 반갑습니다.",
    "مرحبا بالعالم، هذه جملة عربية قصيرة.",
    "नमस्ते दुनिया, यह एक हिंदी वाक्य है।",
    "Emoji: 😀 😂 👍🏽 ❤️ 👨‍👩‍👧‍👦 🇫🇷 🎉🎉🎉 and more 🙂",
    "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # comment\n\n\tif x != 0:\n\t\tpass\n",
    "Numbers: 0 7 42 3.14159 -273.15 1e-9 1,000,000 2024-01-31 ١٢٣ ½",
    "I don't know; you can't; we'll see. I'LL SHOUT, DON'T YOU? She's here, they've gone, I'd go.",
]


def training_text() -> str:
    docs = []
    for module in _MODULES:
        for name in sorted(dir(module)):
            if name.startswith("_"):
                continue
            doc = inspect.getdoc(getattr(module, name))
            if doc:
                docs.append(doc)
    return "\n\n".join(docs + MULTILINGUAL * 3)


def held_out_texts() -> list[str]:
    return [
        "Hello world",
        "  leading spaces and trailing spaces   ",
        "tabs\tand\t\ttabs\t",
        "line one\nline two\n\n\nline five\n",
        "windows\r\nline endings\r\n",
        "trailing newline only\n",
        "   ",
        "\n\n\n",
        "",
        "a",
        "don't DON'T I'll I'LL we're WE'RE it's IT'S you've I'm I'd 'quoted'",
        "naïve façade coöperate résumé Ångström Øresund",
        "東京タワーと富士山、そして大阪城。",
        "北京欢迎你！漢字と한글을 섞어서 씁니다",
        "Ünïcödé üñíçödé with combining: e\u0301 a\u0300 n\u0303",
        "emoji 😀 alone, 👍🏽 toned, 👨‍👩‍👧‍👦 family, 🇯🇵 flag, 🧑‍💻 coder",
        "😀😀😀😀😀",
        "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }",
        "x=1;y=2;print(f'{x+y=}')  # → 3",
        "    indented = True\n        deeper = [1, 2]\n",
        "12345678901234567890 3.14159 0x1F -42 1_000_000",
        "word" * 30,
        " " * 40 + "x" + " " * 40,
        "mixed\u00a0non-breaking\u3000ideographic\u2009thin spaces",
        "zero\u200bwidth and soft\u00adhyphen",
        "Русский текст с пунктуацией: «ёлки-палки», — сказал он.",
        "<|endoftext|> is written in the middle<|endoftext|>of text",
        "Ends with punctuation!!! ??? ...",
        "URL https://example.com/path?q=1&r=two#frag and e-mail a.b@c.de",
    ]
