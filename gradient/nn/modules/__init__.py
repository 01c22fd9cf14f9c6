"""The layers: one module file per family (linear, activation, conv, pooling, normalization ...).

Each file lists its public classes in ``__all__``; they are re-exported here and by
``gradient.nn`` (``gradient.nn.Linear`` is ``gradient.nn.modules.linear.Linear``).
"""

from .activation import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .batchnorm import *  # noqa: F401,F403
from .container import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .distance import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .flatten import *  # noqa: F401,F403
from .lazy import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .padding import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .sparse import *  # noqa: F401,F403
from .transformer import *  # noqa: F401,F403
from .upsampling import *  # noqa: F401,F403
from .adaptive import *  # noqa: F401,F403
from .channelshuffle import *  # noqa: F401,F403
from .fold import *  # noqa: F401,F403
from .sync_batchnorm import *  # noqa: F401,F403

from . import (activation, attention, batchnorm, container, conv, distance, dropout, flatten, lazy,
               linear, loss, normalization, padding, pooling, rnn, sparse, transformer, upsampling)

# Only the layer classes are re-exported: without __all__, ``from .modules import *`` in
# gradient/nn/__init__.py would also export the submodules themselves, and modules/utils.py
# would shadow gradient.nn.utils.
__all__ = [name for mod in (activation, attention, batchnorm, container, conv, distance, dropout,
                            flatten, lazy, linear, loss, normalization, padding, pooling, rnn, sparse,
                            transformer, upsampling) for name in mod.__all__]
from . import adaptive, channelshuffle, fold, sync_batchnorm  # noqa: E402
__all__ += (adaptive.__all__ + channelshuffle.__all__ + fold.__all__
            + sync_batchnorm.__all__)
