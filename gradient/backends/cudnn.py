"""``torch.backends.cudnn``'s switches, kept for scripts ported from PyTorch
(``gradient.backends.cudnn.benchmark = True``).

gradient does not use cuDNN: its convolutions are matrix products over unfolded windows, so
these flags select nothing. They hold what a script sets, for code that reads them back, and
:func:`is_available` says False.

Example::

    >>> gradient.backends.cudnn.allow_tf32 = True     # accepted, changes nothing
"""

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """False: gradient has no cuDNN code."""
    return False


def version():
    """None: no cuDNN library is loaded."""
    return None
