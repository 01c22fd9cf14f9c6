"""An import hook that answers ``import torch`` (and ``torch.nn``, ``from torch.utils.data import
...``) with gradient's modules of the same names, so that a program written for PyTorch runs on
gradient unchanged. Importing this module installs it (in a child process of the ports tests).

Example::

    >>> import tests.ports.torch_as_gradient      # from now on, torch is gradient
    >>> import torch.nn.functional as F           # gradient.nn.functional
"""

import importlib
import importlib.abc
import importlib.util
import sys


class _TorchAsGradient(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torch" or fullname.startswith("torch."):
            target_name = "gradient" + fullname[len("torch"):]
            if importlib.util.find_spec(target_name) is None:
                return None          # a torch module gradient has not: ImportError, as it would
            return importlib.util.spec_from_loader(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        return importlib.import_module("gradient" + spec.name[len("torch"):])

    def exec_module(self, module):
        pass                         # gradient's module, already run by its own import


if "torch" in sys.modules:
    raise RuntimeError("torch_as_gradient must be imported before anything imports torch")
sys.meta_path.insert(0, _TorchAsGradient())
