"""The layers: one module file per family (linear, activation, conv, pooling, normalization ...).

Each file lists its public classes in ``__all__``; they are re-exported here and by
``gradient.nn`` (``gradient.nn.Linear`` is ``gradient.nn.modules.linear.Linear``).
"""

from .activation import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .batchnorm import *  # noqa: F401,F403
from .container import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .flatten import *  # noqa: F401,F403
from .linear import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .sparse import *  # noqa: F401,F403
