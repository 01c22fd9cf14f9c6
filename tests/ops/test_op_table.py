"""One parametrized test over the op table: every op, every sample, four checks.

1. forward against PyTorch (values, shape and dtype), on contiguous and non-contiguous inputs;
2. backward against PyTorch with a random upstream gradient;
3. gradcheck in float64;
4. gradgradcheck in float64 (for ops that are twice differentiable).

The table is the ``OPS`` lists of every ``tests/ops/table_*.py`` module.
"""

from __future__ import annotations

import importlib
import pathlib

import numpy as np
import pytest

import gradient

torch = pytest.importorskip("torch")

from .op_info import OpInfo, Sample  # noqa: E402
from ..devices import DEVICES  # noqa: E402  (the CPU, and CUDA when present)


def _load_table() -> list[OpInfo]:
    ops = []
    for path in sorted(pathlib.Path(__file__).parent.glob("table_*.py")):
        module = importlib.import_module(f"tests.ops.{path.stem}")
        ops.extend(module.OPS)
    return ops



OPS = _load_table()
CASES = []
for _op in OPS:
    for _i, _s in enumerate(_op.samples(np.random.default_rng(0))):
        CASES.append(pytest.param(_op, _s, id=f"{_op.name}-{_i}{'-' + _s.name if _s.name else ''}"))


def _requires_grad(sample: Sample, i: int, a) -> bool:
    if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
        return False
    return sample.grad is None or i in sample.grad


def _has_grad_input(sample: Sample) -> bool:
    return any(_requires_grad(sample, i, a) for i, a in enumerate(sample.args))


# the gradient checks run on the samples that have something to differentiate
GRAD_CASES = [c for c in CASES if c.values[0].grad and _has_grad_input(c.values[1])]
GRADGRAD_CASES = [c for c in GRAD_CASES if c.values[0].gradgrad]


def _make_inputs(lib, sample: Sample, dtype: str, grad: bool, noncontiguous: bool = False,
                 device: str = "cpu"):
    """Tensors for ``lib`` (on ``device``) from the sample's arrays; returns (call args, leaves
    by position)."""
    args, leaves = [], {}
    for i, a in enumerate(sample.args):
        if not isinstance(a, np.ndarray):
            args.append(_convert_nested(lib, a, dtype, device))
            continue
        data = a.astype(dtype) if a.dtype.kind == "f" else a
        rg = grad and _requires_grad(sample, i, a)
        if noncontiguous and data.ndim >= 2:
            # a leaf holding the transposed data, and a transposed (non-contiguous) view of it
            leaf = _tensor(lib, np.ascontiguousarray(data.T), rg, device)
            t = leaf.permute(*reversed(range(data.ndim)))
        else:
            leaf = t = _tensor(lib, data, rg, device)
        args.append(t)
        if rg:
            leaves[i] = leaf
    return args, leaves


def _convert_nested(lib, a, dtype, device="cpu"):
    if isinstance(a, (list, tuple)) and a and all(isinstance(x, np.ndarray) for x in a):
        return type(a)(_tensor(lib, x.astype(dtype) if x.dtype.kind == "f" else x, False, device)
                       for x in a)
    return a


def _tensor(lib, data, requires_grad, device="cpu"):
    if lib is torch:  # the oracle always runs on the CPU
        return torch.tensor(data, requires_grad=requires_grad)
    return gradient.tensor(data, requires_grad=requires_grad, device=device)


def _call(op: OpInfo, lib, args, kwargs):
    fn = op.ref if (lib is torch and op.ref is not None) else op.op
    return fn(lib, *args, **kwargs)


def _flat_outputs(out):
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat_outputs(o)]
    return [out]


def _np(t):
    if isinstance(t, torch.Tensor):
        t = t.detach()
        return t.float().numpy() if t.dtype == torch.bfloat16 else t.numpy()
    if isinstance(t, gradient.Tensor):
        return np.asarray(t.detach().float().numpy() if t.dtype.name == "bfloat16" else t.detach().numpy())
    return np.asarray(t)


def _assert_close(ours, theirs, op: OpInfo, what: str):
    ours_np, theirs_np = _np(ours), _np(theirs)
    assert ours_np.shape == theirs_np.shape, f"{op.name} {what}: shape {ours_np.shape} != torch {theirs_np.shape}"
    if theirs_np.dtype.kind in "biu":
        np.testing.assert_array_equal(ours_np, theirs_np, err_msg=f"{op.name} {what}")
    else:
        np.testing.assert_allclose(ours_np, theirs_np, rtol=op.rtol, atol=op.atol, equal_nan=True,
                                   err_msg=f"{op.name} {what}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,sample", CASES)
def test_forward_matches_torch(op: OpInfo, sample: Sample, device: str):
    for noncontiguous in (False, True) if op.noncontiguous else (False,):
        g_args, _ = _make_inputs(gradient, sample, "float32", False, noncontiguous, device)
        t_args, _ = _make_inputs(torch, sample, "float32", False, noncontiguous)
        ours = _flat_outputs(_call(op, gradient, g_args, sample.kwargs))
        theirs = _flat_outputs(_call(op, torch, t_args, sample.kwargs))
        assert len(ours) == len(theirs), f"{op.name}: {len(ours)} outputs, torch has {len(theirs)}"
        for k, (o, t) in enumerate(zip(ours, theirs)):
            _assert_close(o, t, op, f"output {k}")
            if isinstance(t, torch.Tensor) and not op.skip_forward_dtype:
                assert o.dtype.name == str(t.dtype).removeprefix("torch."), \
                    f"{op.name} output {k}: dtype {o.dtype} != torch {t.dtype}"


def _backward_grads(op, lib, sample, dtype, rng_seed=1, device="cpu"):
    args, leaves = _make_inputs(lib, sample, dtype, True, device=device)
    outs = [o for o in _flat_outputs(_call(op, lib, args, sample.kwargs))
            if getattr(o, "requires_grad", False)]
    rng = np.random.default_rng(rng_seed)
    total = None
    for o in outs:
        w = _tensor(lib, rng.standard_normal(tuple(o.shape)).astype(dtype), False, device)
        term = (o * w).sum()
        total = term if total is None else total + term
    if total is None:
        return {}
    total.backward()
    return {i: leaf.grad for i, leaf in leaves.items()}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,sample", GRAD_CASES)
def test_backward_matches_torch(op: OpInfo, sample: Sample, device: str):
    ours = _backward_grads(op, gradient, sample, "float32", device=device)
    theirs = _backward_grads(op, torch, sample, "float32")
    assert set(ours) == set(theirs)
    for i in theirs:
        if theirs[i] is None:
            assert ours[i] is None or not np.any(_np(ours[i])), f"{op.name}: grad of input {i}"
            continue
        assert ours[i] is not None, f"{op.name}: no grad for input {i}, torch has one"
        _assert_close(ours[i], theirs[i], op, f"grad of input {i}")


@pytest.mark.parametrize("op,sample", GRAD_CASES)
def test_gradcheck(op: OpInfo, sample: Sample):
    args, leaves = _make_inputs(gradient, sample, "float64", True)
    fn = _positional(op, args, sample.kwargs)
    assert gradient.autograd.gradcheck(fn, tuple(args[i] for i in leaves), atol=op.gradcheck_atol,
                                       rtol=op.gradcheck_rtol)


@pytest.mark.parametrize("op,sample", GRADGRAD_CASES)
def test_gradgradcheck(op: OpInfo, sample: Sample):
    args, leaves = _make_inputs(gradient, sample, "float64", True)
    fn = _positional(op, args, sample.kwargs)
    assert gradient.autograd.gradgradcheck(fn, tuple(args[i] for i in leaves),
                                           atol=op.gradcheck_atol, rtol=op.gradcheck_rtol)


def _positional(op, args, kwargs):
    """fn(*differentiable inputs) with the other arguments fixed, for gradcheck."""
    diff_pos = [i for i, a in enumerate(args) if isinstance(a, gradient.Tensor) and a.requires_grad]

    def fn(*diff):
        full = list(args)
        for i, t in zip(diff_pos, diff):
            full[i] = t
        outs = _flat_outputs(_call(op, gradient, full, kwargs))
        return tuple(o for o in outs if isinstance(o, gradient.Tensor) and o.dtype.is_floating_point)
    return fn
