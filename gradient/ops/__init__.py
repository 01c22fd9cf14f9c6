"""Every differentiable operation, written once on top of the backend primitives.

Each submodule lists in ``TENSOR_METHODS`` the functions that are also ``Tensor`` methods.
"""

from .creation import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403
from .index import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .nn import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from . import conv, creation, elementwise, index, linalg, loss, nn, reduce, shape

_MODULES = (creation, elementwise, shape, reduce, index, linalg, nn, loss, conv)
TENSOR_METHODS = tuple(name for m in _MODULES for name in m.TENSOR_METHODS)

from .creation import _as_array  # noqa: E402,F401  (used by Tensor())
from .shape import wrap_dim, wrap_dims  # noqa: E402,F401
from .elementwise import cast  # noqa: E402,F401
from .reduce import sum_to_shape  # noqa: E402,F401
from .index import getitem, setitem_, index_put  # noqa: E402,F401
