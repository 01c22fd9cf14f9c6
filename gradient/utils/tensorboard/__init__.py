"""``torch.utils.tensorboard``: :class:`SummaryWriter` writes a training run's scalars,
histograms, images, figures, text and hyperparameters as TensorBoard event files. It needs the
``tensorboard`` package (``pip install tensorboard``, or ``gradient[tensorboard]``), as
PyTorch's does; ``tensorboard --logdir runs`` shows them.

Example::

    >>> from gradient.utils.tensorboard import SummaryWriter
    >>> with SummaryWriter("runs/exp1") as writer:
    ...     writer.add_scalar("loss", 0.5, global_step=1)
"""

import importlib.util

if importlib.util.find_spec("tensorboard") is None:
    raise ImportError("gradient.utils.tensorboard writes TensorBoard's event files with the "
                      "tensorboard package, which is not installed: pip install tensorboard "
                      "(or pip install 'gradient[tensorboard]')")

from .writer import FileWriter, SummaryWriter  # noqa: E402

__all__ = ["SummaryWriter", "FileWriter"]
