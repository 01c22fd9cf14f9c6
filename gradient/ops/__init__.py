"""Every differentiable operation, written once on top of the backend primitives.

Each submodule lists in ``TENSOR_METHODS`` the functions that are also ``Tensor`` methods.
"""

from .creation import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
from .reduce import *  # noqa: F401,F403
from .index import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .linalg_decompositions import *  # noqa: F401,F403
from .lowrank import *  # noqa: F401,F403  (svd_lowrank, pca_lowrank)
from .lu_factorization import *  # noqa: F401,F403  (torch.lu, lu_solve, lu_unpack)
from .fake_quantize import *  # noqa: F401,F403  (quantization-aware training)
from .nn import *  # noqa: F401,F403
# losses and conv/pool stay in gradient.nn.functional only (as in PyTorch), so that names like
# `unfold` and `pad` do not collide with tensor functions of the same name
from .attention import *  # noqa: F401,F403
from .special import *  # noqa: F401,F403  (its __all__: the torch.* names, not torch.special's own)
from .transfer import to_device  # noqa: F401
from . import attention, conv, creation, elementwise, index, linalg, loss, nn, reduce, shape
from . import special
from . import linalg_decompositions, lu_factorization
# order statistics and histograms, matrix builders, number helpers, windows, scatter-style
# writes, strided views, and the in-place forms PyTorch has beyond elementwise ones
from .statistics import *  # noqa: F401,F403
from .matrices import *  # noqa: F401,F403
from .bits import *  # noqa: F401,F403
from .windows import *  # noqa: F401,F403
from .scatter_into import *  # noqa: F401,F403
from .strided import *  # noqa: F401,F403
from .inplace_extra import *  # noqa: F401,F403
from .conversion import *  # noqa: F401,F403
# other names torch has for existing ops (rsub, split_with_sizes, clamp_ ...); NumPy-born helpers
from .aliases import *  # noqa: F401,F403
from .numpy_style import *  # noqa: F401,F403
from .real_as_complex import *  # noqa: F401,F403  (conj, real, angle ... of real tensors)
from . import aliases, numpy_style, real_as_complex
from . import storage  # (Tensor methods, and the two storage classes)
from .storage import TypedStorage, UntypedStorage  # noqa: F401
from . import sparse  # (sparse COO tensors: gradient.sparse's face, Tensor.to_sparse)
from .sparse import sparse_coo_tensor  # noqa: F401
from . import bits, conversion, inplace_extra, matrices, scatter_into, statistics, strided, windows
from . import view_write  # (Tensor's in-place ops: a write into a view, followed in its base)

_MODULES = (creation, elementwise, shape, reduce, index, linalg, nn, loss, conv, attention, special,
            linalg_decompositions, statistics, matrices, bits, windows, scatter_into, strided,
            inplace_extra, aliases, numpy_style, storage, sparse, lu_factorization,
            real_as_complex)
#: (module, name) of every function that is also a Tensor method
TENSOR_METHODS = tuple((m, name) for m in _MODULES for name in m.TENSOR_METHODS)

from .creation import _as_array  # noqa: E402,F401  (used by Tensor())
from .shape import wrap_dim, wrap_dims  # noqa: E402,F401
from .elementwise import cast  # noqa: E402,F401
from .reduce import sum_to_shape  # noqa: E402,F401
from .index import getitem, setitem_, index_put  # noqa: E402,F401

# `from gradient.ops import *` exports the functions, not the family modules (gradient.nn is
# the layer package, not gradient.ops.nn)
__all__ = [name for name, value in list(globals().items())
           if not name.startswith("_") and not isinstance(value, type(creation))
           and name not in ("TENSOR_METHODS", "embedding", "batch_norm", "instance_norm",
                            "rotary_embedding", "swiglu")]
# (torch.embedding, torch.batch_norm and torch.instance_norm take other arguments than the
# functional forms, and torch has no rotary_embedding or swiglu: those stay in
# gradient.nn.functional only)
from .sampling import pixel_shuffle, pixel_unshuffle  # noqa: E402,F401  (torch.pixel_shuffle too)
__all__ += ["pixel_shuffle", "pixel_unshuffle"]
