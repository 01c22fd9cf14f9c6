"""Neural-network building blocks, as in ``torch.nn``: Module, Parameter, layers, losses, init.

Example::

    import gradient.nn as nn
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    loss = nn.CrossEntropyLoss()(model(x), y)
"""

from .module import Module  # noqa: F401
from .modules import *  # noqa: F401,F403
from .parameter import Buffer, Parameter  # noqa: F401
from .parameter import UninitializedBuffer, UninitializedParameter  # noqa: F401
from .factory import factory_kwargs  # noqa: F401  (torch.nn.factory_kwargs)

# after the star import, so that `nn.utils` is gradient.nn.utils (not a layers helper module)
from . import attention, functional, grad, init, utils  # noqa: F401,E402
from . import parallel  # noqa: F401,E402  (torch.nn.parallel.DistributedDataParallel)
from .parallel import DataParallel  # noqa: F401,E402  (torch.nn.DataParallel)
