"""Modules, optimizers and learning-rate schedulers built with an argument of the wrong kind
(None, a string, a list, a negative number) raise gradient's own error naming the argument
wherever PyTorch refuses the same call: never Python's "'<=' not supported between instances
of 'str' and 'int'" from a comparison inside a constructor."""

import inspect
import warnings

import pytest
import torch

import gradient
from gradient import nn, optim
from gradient.errors import GradientError

JUNK = [None, "a", [1, 2], -1, 2.5, -1.5]

# valid leading arguments where three of each do not make a module
_FIRST = {"AdaptiveLogSoftmaxWithLoss": [4, 10, [2, 5]], "TransformerEncoderLayer": [4, 2],
          "TransformerDecoderLayer": [4, 2]}
# small sizes by keyword where the defaults build a large module (nn.Transformer: twelve
# layers of width 512, 44M parameters initialised for each of its 70 cases, in both libraries)
_SMALL = {"Transformer": {"d_model": 4, "nhead": 2, "num_encoder_layers": 1,
                          "num_decoder_layers": 1, "dim_feedforward": 8}}


def _module_cases():
    """(name, leading arguments, the argument replaced: its index or keyword)."""
    cases = []
    for name in sorted(dir(torch.nn)):
        torch_class = getattr(torch.nn, name)
        if (not inspect.isclass(torch_class) or not issubclass(torch_class, torch.nn.Module)
                or not hasattr(nn, name) or name in ("TransformerEncoder", "TransformerDecoder")):
            continue
        try:
            parameters = list(inspect.signature(torch_class.__init__).parameters.values())[1:]
        except (TypeError, ValueError):
            continue
        parameters = [p for p in parameters if p.kind == p.POSITIONAL_OR_KEYWORD]
        required = [p for p in parameters if p.default is p.empty]
        first = _FIRST.get(name, [3] * len(required))
        cases += [(name, first, i) for i in range(len(required))]
        cases += [(name, first, p.name) for p in parameters
                  if p.default is not p.empty and p.name not in ("device", "dtype")
                  and type(p.default) in (int, float, bool, tuple, str)]
    return cases


def _call(make, first, where, junk, defaults=None):
    args, kwargs = list(first), dict(defaults or {})
    if isinstance(where, int):
        args[where] = junk
    else:
        kwargs[where] = junk
    return make(*args, **kwargs)


def _outcome(fn):
    """None where ``fn()`` returns, else the exception."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn()
    except Exception as e:   # noqa: BLE001  (any: compared with the peer's)
        return e
    return None


def _refusals_not_ours(cases, torch_space, our_space, build):
    found = []
    for name, first, where in cases:
        if _outcome(lambda: build(getattr(torch_space, name), first, None)) is not None:
            continue            # (the leading arguments do not make one in PyTorch)
        for junk in JUNK:
            if _outcome(lambda: build(getattr(torch_space, name), first, (where, junk))) is None:
                continue
            ours = _outcome(lambda: build(getattr(our_space, name), first, (where, junk)))
            if not isinstance(ours, GradientError):
                found.append(f"{name}({where}={junk!r}): {type(ours).__name__}: {ours}")
    return found


def test_every_module_refuses_what_torch_refuses_with_its_own_error():
    def build(cls, first, change):
        small = _SMALL.get(cls.__name__, {})
        return cls(*first, **small) if change is None else _call(cls, first, *change, small)
    found = _refusals_not_ours(_module_cases(), torch.nn, nn, build)
    assert not found, "\n".join(found)


def _optimizer_cases():
    cases = []
    for name in sorted(dir(torch.optim)):
        torch_class = getattr(torch.optim, name)
        if (not inspect.isclass(torch_class) or not issubclass(torch_class, torch.optim.Optimizer)
                or torch_class is torch.optim.Optimizer or not hasattr(optim, name)):
            continue
        for p in list(inspect.signature(torch_class.__init__).parameters.values())[2:]:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and type(p.default) in (
                    int, float, tuple):
                cases.append((name, [], p.name))
    return cases


def test_every_optimizer_refuses_what_torch_refuses_with_its_own_error():
    def build(cls, first, change):
        weight = (torch.nn.Parameter(torch.ones(2)) if cls.__module__.startswith("torch")
                  else nn.Parameter(gradient.ones(2)))
        return cls([weight]) if change is None else cls([weight], **{change[0]: change[1]})
    found = _refusals_not_ours(_optimizer_cases(), torch.optim, optim, build)
    assert not found, "\n".join(found)


# the leading arguments that make each scheduler
_SCHEDULERS = {"StepLR": [3], "MultiStepLR": [[2, 4]], "ExponentialLR": [0.9],
               "CosineAnnealingLR": [10], "CyclicLR": [0.01, 0.1], "OneCycleLR": [0.1],
               "CosineAnnealingWarmRestarts": [5], "PolynomialLR": [], "ConstantLR": [],
               "LinearLR": [], "ReduceLROnPlateau": [], "LambdaLR": [lambda epoch: 1.0],
               "MultiplicativeLR": [lambda epoch: 0.9]}


def _scheduler_cases():
    cases = []
    for name, first in _SCHEDULERS.items():
        parameters = list(inspect.signature(
            getattr(torch.optim.lr_scheduler, name).__init__).parameters.values())[2:]
        for i, p in enumerate(parameters):
            if i < len(first):
                cases.append((name, first, i))
            elif type(p.default) in (int, float, tuple, str) and p.name != "last_epoch":
                cases.append((name, first, p.name))
    return cases


def test_every_scheduler_refuses_what_torch_refuses_with_its_own_error():
    def build(cls, first, change):
        ours = not cls.__module__.startswith("torch")
        optimizer = (optim.SGD([nn.Parameter(gradient.ones(2))], lr=0.1, momentum=0.9) if ours
                     else torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1,
                                          momentum=0.9))
        extra = {"total_steps": 10} if cls.__name__ == "OneCycleLR" else {}
        if change is None:
            return cls(optimizer, *first, **extra)
        return _call(lambda *a, **k: cls(optimizer, *a, **k, **extra), first, *change)
    found = _refusals_not_ours(_scheduler_cases(), torch.optim.lr_scheduler,
                               optim.lr_scheduler, build)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("call, message", [
    (lambda: nn.GroupNorm("a", 4), "GroupNorm: num_groups must be an int"),
    (lambda: nn.LayerNorm(None), "LayerNorm: normalized_shape must be integers"),
    (lambda: nn.MultiheadAttention(8, None), "MultiheadAttention: num_heads must be an int"),
    (lambda: nn.Dropout("a"), "Dropout: p must be a number"),
    (lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2), "a"),
     "TransformerEncoder: num_layers must be an int"),
    (lambda: nn.Conv2d(3, 3, 3, padding_mode=[1]), "padding_mode must be one of"),
    (lambda: optim.SGD([nn.Parameter(gradient.ones(2))], lr="0.1"), "SGD: lr must be a number"),
    (lambda: optim.Adam([nn.Parameter(gradient.ones(2))], betas=0.9),
     "Adam: betas must be a tuple of numbers"),
    (lambda: optim.LBFGS([nn.Parameter(gradient.ones(2))], max_iter=None),
     "LBFGS: max_iter must be a number"),
    (lambda: optim.lr_scheduler.LambdaLR(optim.SGD([nn.Parameter(gradient.ones(2))]), None),
     "lr_lambda should be a function"),
    (lambda: optim.lr_scheduler.OneCycleLR(optim.SGD([nn.Parameter(gradient.ones(2))]), "a",
                                           total_steps=4), "max_lr must be a number"),
])
def test_the_error_names_the_argument(call, message):
    with pytest.raises(GradientError, match=message):
        call()


def test_lists_of_betas_and_tensor_learning_rates_are_taken_as_torchs():
    weight = nn.Parameter(gradient.ones(2))
    adam = optim.Adam([weight], lr=gradient.tensor(0.01), betas=[0.8, 0.9])
    assert adam.param_groups[0]["betas"] == (0.8, 0.9)
    lbfgs = optim.LBFGS([weight], max_iter=8)
    assert lbfgs.param_groups[0]["max_eval"] == 10     # max_iter * 5 // 4, as torch's
