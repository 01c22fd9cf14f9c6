"""Optimizers and learning-rate schedulers, with ``torch.optim``'s names, defaults and update math.

Example::

    import gradient
    opt = gradient.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    sched = gradient.optim.lr_scheduler.warmup_cosine(opt, warmup_steps=100, total_steps=5000)
    for x, y in batches:
        loss = gradient.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
"""

from . import lr_scheduler
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .lbfgs import LBFGS
from .muon import Muon
from .nadam import NAdam
from .optimizer import Optimizer, OptimizerError
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD
from .sparse_adam import SparseAdam
from . import swa_utils  # noqa: E402  (torch.optim.swa_utils: averaged weights, EMA)

__all__ = ["Optimizer", "OptimizerError", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad",
           "NAdam", "RAdam", "Adamax", "Adadelta", "ASGD", "Rprop", "LBFGS", "Adafactor",
           "SparseAdam", "Muon",
           "lr_scheduler", "swa_utils"]
