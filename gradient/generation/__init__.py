"""Generation: the KV cache, sampling and the generate loop.

* :class:`KVCache` -- keys and values preallocated per layer, filled by prefill and decode.
"""

from .kv_cache import KVCache

__all__ = ["KVCache"]
