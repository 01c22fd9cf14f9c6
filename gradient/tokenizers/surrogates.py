"""Text that is no Unicode: a lone UTF-16 surrogate in a Python str.

JSON's ``"\\ud800"`` escape, alone, and bytes decoded with ``surrogateescape`` give a str
holding a surrogate that no character pairs; it is no Unicode character, UTF-8 cannot encode
it, and the ``tokenizers`` library refuses such text with a TypeError about its input's type.
A pair's two JSON escapes are read as the one character they stand for, which is fine.

Example::

    >>> lone_surrogate({"messages": [{"content": "a\\ud800"}]})
    '\\ud800'
"""

from __future__ import annotations

import re

__all__ = ["lone_surrogate"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(value) -> str | None:
    """The first lone surrogate in ``value``: a str, or the strings of a parsed JSON value
    (lists, dicts' keys and values, at any depth); None where there is none."""
    values = [value]
    while values:
        value = values.pop()
        if isinstance(value, str):
            found = _SURROGATE.search(value)
            if found:
                return found[0]
        elif isinstance(value, dict):
            values.extend(value)
            values.extend(value.values())
        elif isinstance(value, list):
            values.extend(value)
    return None
