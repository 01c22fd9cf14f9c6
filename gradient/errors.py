"""One exception hierarchy for gradient.

Each error subclasses the built-in exception a Python user would expect to catch
(``ValueError`` for bad shapes, ``TypeError`` for bad dtypes, ...), so
``except ValueError`` keeps working, while ``except gradient.GradientError``
catches everything the framework raises on purpose. Shape and dtype errors are also
``RuntimeError``s, the class PyTorch raises for them, so code ported from PyTorch that
catches ``RuntimeError`` catches them too.
Messages say what was expected, what was given, and what to do.
"""


class GradientError(Exception):
    """Base class of every error gradient raises on purpose."""


class ShapeError(GradientError, ValueError, RuntimeError):
    """Shapes that do not fit together: ``matmul: shapes (3, 4) and (5, 6) do not align: 4 != 5``."""


class DTypeError(GradientError, TypeError, RuntimeError):
    """An unknown dtype, or a dtype an operation does not support."""


class ArgumentTypeError(GradientError, TypeError):
    """An argument of the wrong type: ``abs(): argument 'input' (position 1) must be a
    Tensor, not NoneType``, as PyTorch words it; ``topk: k must be an integer, got 'a'``."""


class ArgumentValueError(GradientError, ValueError, RuntimeError):
    """An argument of the right type whose value the call cannot take: ``normal: expected std
    >= 0, got -1.0``, an unknown mode, a probability past 1. A ``ValueError``, and a
    ``RuntimeError`` as PyTorch raises for most of them."""


class IndexRangeError(GradientError, IndexError, RuntimeError):
    """An index that does not fit what it indexes: one past the size (``gather: index 9 is out
    of range for dimension 1 with size 4 (allowed: 0 to 3)``, a class id past a table, a
    ModuleList's index) or one of a kind that cannot index (a float tensor, a second
    ``...``), as Python and PyTorch raise ``IndexError`` for both. An ``IndexError`` and a
    ``RuntimeError``: PyTorch raises one or the other, by op."""


class ConfigError(GradientError, ValueError):
    """A model configuration that describes no model: a size that is no non-negative integer,
    attention heads that do not divide the width, an unknown activation (a ``config.json``
    file, or a config's arguments)."""


class LayoutError(GradientError, NotImplementedError):
    """An operation a sparse tensor does not take (``relu`` of a sparse COO tensor): the
    message says which, and that ``to_dense()`` gives a tensor every operation takes. A
    ``NotImplementedError`` (so a ``RuntimeError`` too), as PyTorch raises for such calls."""


class UnsupportedError(GradientError, NotImplementedError):
    """Something gradient does not do: a mode, an option, a GGUF architecture or tokenizer, a
    model feature (``interpolate(..., mode="lanczos")``, a mixture-of-experts GGUF file); the
    message says what it does instead. A ``NotImplementedError`` (so a ``RuntimeError`` too),
    as PyTorch raises for what it does not support."""


class ScalarOverflowError(GradientError, OverflowError, RuntimeError):
    """A Python number too large for what it must become: an int past 64 bits
    (``x * 10**20``), a clamp bound or fill value past the dtype's range. An
    ``OverflowError`` and a ``RuntimeError``, as PyTorch raises one or the other."""


class DivisionByZeroError(GradientError, ZeroDivisionError, RuntimeError):
    """An integer division or remainder by zero (``x // 0``, ``x % 0`` of an integer tensor);
    floating division gives inf or nan instead, as IEEE 754 and PyTorch do. A
    ``ZeroDivisionError``, and a ``RuntimeError`` as PyTorch raises."""


class DeviceError(GradientError, RuntimeError):
    """An unknown or unavailable device, or tensors on different devices."""


class PluginError(DeviceError):
    """A plugin device failed: its process exited, hung past ``GRADIENT_PLUGIN_TIMEOUT``, spoke
    another protocol version or sent bytes that are not frames (the message quotes the end of
    its stderr), or a primitive failed in it (the message names the primitive and its
    arguments' shapes and dtypes). The parent process and other devices keep working."""


class DistributedError(GradientError, RuntimeError):
    """A process group that cannot work: no launcher (``gradient run -n 2 script.py``), a
    collective that did not complete within ``GRADIENT_DISTRIBUTED_TIMEOUT`` (another rank
    failed or never reached it), or ranks that disagree on a tensor's shape."""


class UsageError(GradientError, RuntimeError):
    """An object used in a way, or at a time, it does not allow: a ``ParameterList`` called,
    a hook that returns what it may not, two ``weight_norm`` hooks on one parameter, a fusion
    of modules in training mode, a second profiler or capture while one runs. A
    ``RuntimeError``, as PyTorch raises for these."""


class AutogradError(GradientError, RuntimeError):
    """Misuse of autograd: backward twice, modified saved tensors, no grad to compute."""


class LinAlgError(GradientError, RuntimeError):
    """A matrix a decomposition cannot handle: a singular matrix given to ``inv`` or ``solve``,
    a matrix that is not positive-definite given to ``cholesky`` (PyTorch's
    ``torch.linalg.LinAlgError``, also a ``RuntimeError``)."""


class FileFormatError(GradientError, OSError):
    """A checkpoint or weight file that is truncated, corrupt or of an unknown format."""


class TokenizerError(GradientError, ValueError):
    """Misuse of a tokenizer: padding without a pad token, no chat template, an unknown token id."""


class TokenizerFileNotFoundError(FileFormatError, FileNotFoundError):
    """A tokenizer directory without the files a tokenizer is built from (the message lists them)."""


class UnknownArchitectureError(GradientError, ValueError):
    """A model configuration whose architecture (``model_type``) gradient does not implement."""


class KernelRegistryError(GradientError, ValueError):
    """A kernel registered under an undeclared op name, with parameters that do not match the
    op's declaration, or twice for one op and backend (see :mod:`gradient.kernels`)."""


class HubError(GradientError, OSError):
    """A model that gradient cannot locate or fetch (:mod:`gradient.hub`,
    :mod:`gradient.io.download`)."""


class ModelNotFoundError(HubError, FileNotFoundError):
    """No such local directory, no such hub repo or revision, or a repo that is not in the cache
    while downloads are off. The message says where gradient looked and what to do."""


class UnsupportedWeightsError(FileFormatError):
    """A repo whose weights gradient will not read: PyTorch pickles (``*.bin``, ``*.pt``), which
    can run code when loaded, or no weights at all."""


class GenerationError(GradientError, ValueError):
    """Generation arguments out of range: ``top_p`` above 1, a negative temperature or
    ``max_new_tokens``, a prompt that encodes to no tokens (see
    :func:`gradient.generation.check_sampling`)."""
