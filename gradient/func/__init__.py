"""Function transforms, as ``torch.func``: ``grad``, ``grad_and_value``, ``vjp``, ``jvp``,
``linearize``, ``jacrev``, ``jacfwd``, ``hessian``, ``vmap`` and ``functional_call``
(``gradient.vmap`` is ``vmap``, as ``torch.vmap``), and ``stack_module_state`` and
``replace_all_batch_norm_modules_`` to vmap over an ensemble of models.

They take a function of tensors (or of pytrees of tensors: tuples, lists, dicts) and return a
new function, and they compose: ``grad(grad(f))``, ``jacrev(grad(f))``, ``vmap(grad(f))``.

Example: per-sample gradients of a model::

    import gradient
    from gradient.func import functional_call, grad, vmap

    model = gradient.nn.Linear(3, 1)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, x, y):
        pred = functional_call(model, p, (x.unsqueeze(0),))
        return ((pred.squeeze() - y) ** 2)

    xs, ys = gradient.randn(8, 3), gradient.randn(8)
    grads = vmap(grad(loss), in_dims=(None, 0, 0))(params, xs, ys)
    grads["weight"].shape          # (8, 1, 3): one gradient per sample

What differs from PyTorch (each function's docstring says more):

* They are built on gradient's reverse-mode autograd, not functorch's interpreter stack.
  ``jvp`` and ``jacfwd`` are computed in reverse mode (there is no forward-mode AD here); the
  values are the same.
* ``vmap`` is a loop over the mapped dimension that stacks the results, not batching rules:
  correct, but not faster than a Python loop. ``randomness='error'`` does not detect random ops.
"""

from ..nn.utils.stateless import functional_call
from ._transforms import grad, grad_and_value, hessian, jacfwd, jacrev, jvp, linearize, vjp
from ._vmap import vmap
from ._ensembles import replace_all_batch_norm_modules_, stack_module_state

__all__ = ["functional_call", "grad", "grad_and_value", "vjp", "jvp", "linearize", "jacrev",
           "jacfwd", "hessian", "vmap", "stack_module_state", "replace_all_batch_norm_modules_"]
