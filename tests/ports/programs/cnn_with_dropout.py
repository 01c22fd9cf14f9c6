"""The classifier with dropout on: each library draws its own masks, so only that it trains
(finite losses that fall) is compared."""

from .cnn_classifier import run as _run


def run(ports):
    result = _run(ports, dropout=0.25)
    return {"finite": all(x == x and abs(x) < 1e6 for x in result["losses"]),
            "falls": result["losses"][-1] < result["losses"][0]}
