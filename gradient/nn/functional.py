"""``gradient.nn.functional``: the functional neural-network ops, as in ``torch.nn.functional``.

Example::

    import gradient.nn.functional as F
    loss = F.cross_entropy(logits, targets, label_smoothing=0.1)
"""

from ..ops.attention import *  # noqa: F401,F403
from ..ops.multihead_attention import *  # noqa: F401,F403
from ..ops.conv import *  # noqa: F401,F403
from ..ops.loss import *  # noqa: F401,F403
from ..ops.loss_margin import *  # noqa: F401,F403
from ..ops.nn import *  # noqa: F401,F403
from ..ops.sampling import *  # noqa: F401,F403
from ..ops.channels import *  # noqa: F401,F403
from ..ops.embedding_bag import *  # noqa: F401,F403
from ..ops.ctc import *  # noqa: F401,F403
from ..ops.pooling_extra import *  # noqa: F401,F403
from ..ops.fractional_pool import *  # noqa: F401,F403
from ..ops.stochastic import *  # noqa: F401,F403
from ..ops.elementwise import sigmoid, tanh  # noqa: F401  (torch.nn.functional has them too)
from .functional_extras import *  # noqa: F401,F403

from ..ops.argument_errors import guard_namespace as _guard_namespace  # noqa: E402
_guard_namespace(globals(), __name__)   # a non-Tensor input: PyTorch's TypeError, naming it
