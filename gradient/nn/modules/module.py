"""``gradient.nn.modules.module``: where PyTorch keeps ``Module`` and the module-global hooks
(``torch.nn.modules.module.register_module_full_backward_hook``), so imports ported from PyTorch
work. Everything lives in :mod:`gradient.nn.module`.

Example::

    from gradient.nn.modules.module import Module, register_module_full_backward_hook
"""

from ..module import *  # noqa: F401,F403
from ..module import __all__  # noqa: F401
