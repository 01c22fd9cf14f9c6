"""How much a quantized model differs from its float original, measured on a text.

:func:`evaluate` runs both models on the same token ids and compares their next-token
distributions position by position:

* ``ppl_float``, ``ppl_quant`` -- perplexity of each model on the text, ``exp`` of the mean
  negative log-likelihood of each next token;
* ``kl_mean`` (and ``kl_max``) -- the mean (largest) over positions of
  ``KL(p_float || p_quant) = sum_v p_float(v) * (log p_float(v) - log p_quant(v))`` in nats:
  how much probability mass moved, whatever the text says (llama.cpp's ``--kl-divergence``
  reports the same figure);
* ``top1_agreement`` -- the fraction of positions where both models' most likely next token
  is the same (what greedy decoding would see).

Sequences longer than ``max_length`` (by default the model's context length, when its config
names one) are cut into consecutive windows, each evaluated from scratch. Everything is
computed in float64 from the float32 logits, a chunk of positions at a time (a 49152-token
vocabulary times 512 positions is 200 MB in float64).

Example::

    >>> from gradient.quant import quantize, quality
    >>> ids = tokenizer.encode(text)
    >>> quality.evaluate(model, quantize(model, "int4"), ids)    # SmolLM2-135M, 512 tokens
    {'ppl_float': 11.61, 'ppl_quant': 13.76, 'kl_mean': 0.301, 'kl_max': 2.39,
     'top1_agreement': 0.75, 'n_tokens': 511}
"""

from __future__ import annotations

import numpy as np

from ..autograd import no_grad
from ..errors import ArgumentValueError, ShapeError
from ..ops.creation import from_numpy
from ..tensor import Tensor

__all__ = ["evaluate", "logits", "log_softmax"]

_CHUNK = 128          # positions per float64 block


def _as_rows(token_ids) -> np.ndarray:
    if isinstance(token_ids, Tensor):
        token_ids = token_ids.detach().numpy()
    ids = np.asarray(token_ids)
    if ids.dtype.kind not in "iu" or ids.ndim not in (1, 2):
        raise ShapeError(f"evaluate: expected integer token ids of shape (length,) or "
                         f"(batch, length), got {ids.dtype} of shape {ids.shape}")
    ids = ids.reshape(1, -1) if ids.ndim == 1 else ids
    if ids.shape[1] < 2:
        raise ShapeError(f"evaluate: need at least 2 tokens per sequence (one to predict), got "
                         f"{ids.shape[1]}")
    return ids.astype(np.int64)


def _context_length(model) -> int | None:
    config = getattr(model, "config", None)
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 1:
            return value
    return None


def _windows(length: int, max_length: int | None):
    step = length if not max_length else max_length
    for start in range(0, length, step):
        if min(length, start + step) - start >= 2:     # a window of 1 token predicts nothing
            yield start, min(length, start + step)


def logits(model, token_ids, max_length: int | None = None) -> list[np.ndarray]:
    """The model's float32 logits for each window of each sequence of ``token_ids`` (see the
    module docstring for windows), as a list of (window length, vocab) arrays. The model runs
    in eval mode and without gradients (its previous mode is restored).

    Example: ``ref = logits(model, ids)`` then ``evaluate(model, q, ids, float_logits=ref)``
    """
    rows = _as_rows(token_ids)
    max_length = max_length or _context_length(model)
    out = []
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            for row in rows:
                for a, b in _windows(row.size, max_length):
                    result = model(from_numpy(np.ascontiguousarray(row[None, a:b])))
                    t = getattr(result, "logits", result)
                    out.append(np.asarray(t.detach().numpy(), dtype=np.float32)[0])
    finally:
        model.train(was_training)
    return out


def log_softmax(x: np.ndarray) -> np.ndarray:
    """``log softmax`` over the last axis, in float64."""
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True)))


def evaluate(model_float, model_quant, token_ids, *, max_length: int | None = None,
             float_logits: list[np.ndarray] | None = None) -> dict:
    """Compare ``model_quant`` with ``model_float`` on ``token_ids`` (a sequence or a batch of
    sequences of token ids): ``{"ppl_float", "ppl_quant", "kl_mean", "kl_max",
    "top1_agreement", "n_tokens"}`` (see the module docstring). ``n_tokens`` is the number of
    predicted positions (each window's tokens but its first).

    ``max_length``: window length (default: the float model's context length, if known).
    ``float_logits``: the float model's :func:`logits` on the same ids, to compare several
    quantized models without running the float one each time (``model_float`` may then be
    None).

    Example::

        >>> ref = logits(model, ids)
        >>> for scheme in ("int8", "int4"):
        ...     print(evaluate(None, quantize(model, scheme), ids, float_logits=ref))
    """
    rows = _as_rows(token_ids)
    if max_length is None and model_float is not None:
        max_length = _context_length(model_float)
    max_length = max_length or _context_length(model_quant)
    if float_logits is None:
        if model_float is None:
            raise ArgumentValueError(
                "evaluate: give the float model or its logits (float_logits=)")
        float_logits = logits(model_float, rows, max_length)
    quant_logits = logits(model_quant, rows, max_length)
    targets = [row[a + 1:b] for row in rows for a, b in _windows(row.size, max_length)]
    if len(float_logits) != len(targets) or len(quant_logits) != len(targets):
        raise ShapeError(f"evaluate: float_logits has {len(float_logits)} windows, the token ids "
                         f"make {len(targets)}: compute them with logits() on the same ids and "
                         f"max_length")
    nll_f = nll_q = kl_sum = 0.0
    kl_max, agree, n = 0.0, 0, 0
    for lf_all, lq_all, tgt in zip(float_logits, quant_logits, targets):
        if lf_all.shape != lq_all.shape or lf_all.shape[0] != tgt.size + 1:
            raise ShapeError(f"evaluate: logits of shapes {lf_all.shape} and {lq_all.shape} for "
                             f"a window of {tgt.size + 1} tokens")
        for c in range(0, tgt.size, _CHUNK):
            t = tgt[c:c + _CHUNK]
            lf = log_softmax(lf_all[c:c + t.size])        # positions predicting t
            lq = log_softmax(lq_all[c:c + t.size])
            pos = np.arange(t.size)
            nll_f -= lf[pos, t].sum()
            nll_q -= lq[pos, t].sum()
            kl = np.maximum((np.exp(lf) * (lf - lq)).sum(axis=-1), 0.0)   # >= 0 up to rounding
            kl_sum += kl.sum()
            kl_max = max(kl_max, float(kl.max()))
            agree += int((lf.argmax(-1) == lq.argmax(-1)).sum())
            n += t.size
    return {"ppl_float": float(np.exp(nll_f / n)), "ppl_quant": float(np.exp(nll_q / n)),
            "kl_mean": float(kl_sum / n), "kl_max": kl_max, "top1_agreement": agree / n,
            "n_tokens": n}
