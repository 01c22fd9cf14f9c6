"""The transformer layers against torch.nn's: TransformerEncoderLayer, TransformerDecoderLayer,
their stacks and Transformer.

Each module is built by the same code for both frameworks (``make(nn)``, which checks the
constructor signatures and defaults too), torch's parameters are perturbed (so that biases,
norms and the layers of a stack all differ) and its state dict is copied into ours; then in
float64 and eval mode (dropout off) the outputs and the gradients of the inputs and of every
parameter must agree (``run_both``). Names, reprs, masks, causal-mask detection, Transformer's
initialisation and the errors are checked too.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import gradient
import gradient.nn as gnn

from .test_layers import load_from_torch, run_both

# torch's encoder warns that it cannot use its nested tensors in most of these configurations
pytestmark = [pytest.mark.filterwarnings("ignore:enable_nested_tensor is True"),
              pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")]

E, H, FF, N, S, T = 8, 2, 12, 3, 5, 4
rng = np.random.default_rng(5)


# ---------------------------------------------------------------------------- helpers
def build(make):
    """``make(nn)`` for torch.nn and gradient.nn, in float64 and eval mode, with torch's
    (perturbed) state dict loaded into ours; the state dict keys must be the same."""
    torch.manual_seed(0)
    theirs = make(torch.nn).double().eval()
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        for p in theirs.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    ours = make(gnn).double().eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    load_from_torch(ours, theirs)
    return ours, theirs


def with_masks(masks: dict, call):
    """A ``forward`` for run_both: converts the numpy masks to each framework's tensors and
    calls ``call(layer, inputs, masks)``."""
    def forward(layer, *xs):
        to = torch.tensor if isinstance(layer, torch.nn.Module) else gradient.tensor
        ms = {k: (to(v) if isinstance(v, np.ndarray) else v) for k, v in masks.items()}
        return call(layer, xs, ms)
    return forward


def seq(length, batch_first, batched=True):
    if not batched:
        return rng.standard_normal((length, E))
    return rng.standard_normal((N, length, E) if batch_first else (length, N, E))


def causal_float(n):
    return np.triu(np.full((n, n), -np.inf), 1)


def causal_bool(n):
    return np.triu(np.ones((n, n), dtype=bool), 1)


def padding(length, rows=((0, -1), (2, 1))):
    """A (N, length) key padding mask (True = padding) leaving every row some keys."""
    mask = np.zeros((N, length), dtype=bool)
    for b, i in rows:
        mask[b, i] = True
    return mask


ACTIVATIONS = {
    "relu": lambda nn: "relu",
    "gelu": lambda nn: "gelu",
    "F.gelu": lambda nn: nn.functional.gelu,      # a function, as PyTorch's default F.relu
    "SiLU": lambda nn: nn.SiLU(),                  # a module: becomes the child "activation"
}


# ---------------------------------------------------------------------------- encoder layer
ENCODER_MASKS = {
    "none": ({}, {}),
    "causal-float": ({"src_mask": causal_float(S)}, {"is_causal": True}),
    "causal-bool": ({"src_mask": causal_bool(S)}, {}),
    "padding": ({"src_key_padding_mask": padding(S)}, {}),
    "both": ({"src_mask": causal_bool(S), "src_key_padding_mask": padding(S)}, {"is_causal": True}),
}


@pytest.mark.parametrize("mask_kind", list(ENCODER_MASKS))
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer(norm_first, batch_first, activation, mask_kind):
    ours, theirs = build(lambda nn: nn.TransformerEncoderLayer(
        E, H, FF, activation=ACTIVATIONS[activation](nn), batch_first=batch_first,
        norm_first=norm_first))
    masks, flags = ENCODER_MASKS[mask_kind]
    run_both(ours, theirs, [seq(S, batch_first)],
             forward=with_masks(masks, lambda layer, xs, ms: layer(xs[0], **ms, **flags)))


DECODER_MASKS = {
    "none": ({}, {}),
    "tgt-causal": ({"tgt_mask": causal_float(T)}, {"tgt_is_causal": True}),
    "paddings": ({"tgt_key_padding_mask": padding(T), "memory_key_padding_mask": padding(S)}, {}),
    "memory-mask": ({"memory_mask": rng.standard_normal((T, S))}, {}),
    "all": ({"tgt_mask": causal_bool(T), "memory_mask": rng.random((T, S)) < 0.3,
             "tgt_key_padding_mask": padding(T, ((1, 2),)),
             "memory_key_padding_mask": padding(S, ((0, 0),))}, {}),
}


@pytest.mark.parametrize("mask_kind", list(DECODER_MASKS))
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer(norm_first, batch_first, activation, mask_kind):
    ours, theirs = build(lambda nn: nn.TransformerDecoderLayer(
        E, H, FF, activation=ACTIVATIONS[activation](nn), batch_first=batch_first,
        norm_first=norm_first))
    masks, flags = DECODER_MASKS[mask_kind]
    if "memory_mask" in masks and masks["memory_mask"].dtype == bool:
        masks["memory_mask"][:, 0] = False      # every query keeps a key it may attend to
    run_both(ours, theirs, [seq(T, batch_first), seq(S, batch_first)],
             forward=with_masks(masks, lambda layer, xs, ms: layer(*xs, **ms, **flags)))


@pytest.mark.parametrize("activation", ["F.gelu", "SiLU"])
def test_layers_with_callable_activation_and_no_bias(activation):
    for cls in ("TransformerEncoderLayer", "TransformerDecoderLayer"):
        ours, theirs = build(lambda nn: getattr(nn, cls)(
            E, H, FF, dropout=0.0, activation=ACTIVATIONS[activation](nn), bias=False,
            layer_norm_eps=1e-3))
        assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
        assert repr(ours) == repr(theirs)
        xs = [seq(T, False)] if cls.startswith("TransformerEncoder") else [seq(T, False),
                                                                          seq(S, False)]
        run_both(ours, theirs, xs)


def test_layers_unbatched():
    ours, theirs = build(lambda nn: nn.TransformerEncoderLayer(E, H, FF, norm_first=True))
    run_both(ours, theirs, [seq(S, False, batched=False)],
             forward=with_masks({"src_mask": causal_bool(S)},
                                lambda layer, xs, ms: layer(xs[0], **ms)))
    ours, theirs = build(lambda nn: nn.TransformerDecoderLayer(E, H, FF, batch_first=True))
    run_both(ours, theirs, [seq(T, True, batched=False), seq(S, True, batched=False)],
             forward=with_masks({"tgt_mask": causal_float(T),
                                 "memory_key_padding_mask": np.array([0, 0, 1, 0, 1], bool)},
                                lambda layer, xs, ms: layer(*xs, **ms)))


def test_fully_padded_sequence_as_torch():
    # a batch element whose keys are all padding: both attend to nothing (zeros), not NaN
    ours, theirs = build(lambda nn: nn.TransformerEncoderLayer(E, H, FF))
    kpm = np.zeros((N, S), dtype=bool)
    kpm[1] = True
    out, _ = run_both(ours, theirs, [seq(S, False)], forward=with_masks(
        {"src_key_padding_mask": kpm}, lambda layer, xs, ms: layer(xs[0], **ms)))
    assert np.isfinite(out.detach().numpy()).all()


def test_inference_without_grad_as_torch():
    # no grad, eval, batch first: torch takes its fused and nested-tensor paths; the encoder's
    # nested path returns zeros at padded positions (before the final norm), where ours
    # computes them, so only the real positions are compared there
    ours, theirs = build(lambda nn: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(E, H, FF, batch_first=True), 2))
    x, kpm = rng.standard_normal((N, S, E)), padding(S, ((0, -1), (0, -2)))
    with torch.no_grad():
        out_t = theirs(torch.tensor(x), src_key_padding_mask=torch.tensor(kpm)).numpy()
        layer_t = theirs.layers[0](torch.tensor(x), src_key_padding_mask=torch.tensor(kpm))
    with gradient.no_grad():
        out_o = ours(gradient.tensor(x), src_key_padding_mask=gradient.tensor(kpm)).numpy()
        layer_o = ours.layers[0](gradient.tensor(x), src_key_padding_mask=gradient.tensor(kpm))
    np.testing.assert_allclose(layer_o.numpy(), layer_t.numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(out_o[~kpm], out_t[~kpm], rtol=1e-7, atol=1e-10)
    assert (out_t[kpm] == 0).all()


def test_layer_defaults_and_attributes():
    for nn in (torch.nn, gnn):
        enc = nn.TransformerEncoderLayer(E, H)
        dec = nn.TransformerDecoderLayer(E, H, activation="gelu")
        assert enc.linear1.out_features == 2048 and enc.dropout.p == 0.1
        assert enc.norm1.eps == 1e-5 and not enc.norm_first and not enc.self_attn.batch_first
        assert enc.activation is nn.functional.relu and enc.activation_relu_or_gelu == 1
        assert nn.TransformerEncoderLayer(E, H, activation="gelu").activation_relu_or_gelu == 2
        assert nn.TransformerEncoderLayer(E, H, activation=nn.GELU()).activation_relu_or_gelu == 2
        assert nn.TransformerEncoderLayer(E, H, activation=nn.SiLU()).activation_relu_or_gelu == 0
        assert dec.activation is nn.functional.gelu and dec.dropout3.p == 0.1
    assert repr(gnn.TransformerDecoderLayer(E, H)) == repr(torch.nn.TransformerDecoderLayer(E, H))
    layer = gnn.TransformerEncoderLayer(E, H, dtype=gradient.float64)
    assert {p.dtype for p in layer.parameters()} == {gradient.float64}


def test_training_mode_applies_dropout():
    layer = gnn.TransformerEncoderLayer(E, H, FF, dropout=0.5)
    x = gradient.tensor(seq(S, False), dtype=gradient.float32)
    eval_out = layer.eval()(x)
    gradient.manual_seed(0)
    train_out = layer.train()(x)
    assert not np.allclose(train_out.detach().numpy(), eval_out.detach().numpy())
    no_drop = gnn.TransformerEncoderLayer(E, H, FF, dropout=0.0)
    np.testing.assert_array_equal(no_drop.train()(x).detach().numpy(),
                                  no_drop.eval()(x).detach().numpy())


# ---------------------------------------------------------------------------- stacks
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_stack_with_final_norm(norm_first, batch_first):
    ours, theirs = build(lambda nn: nn.TransformerEncoder(
        nn.TransformerEncoderLayer(E, H, FF, batch_first=batch_first, norm_first=norm_first),
        num_layers=2, norm=nn.LayerNorm(E), enable_nested_tensor=False))
    assert list(ours.state_dict())[:2] == ["layers.0.self_attn.in_proj_weight",
                                           "layers.0.self_attn.in_proj_bias"]
    assert list(ours.state_dict())[-2:] == ["norm.weight", "norm.bias"]
    masks = {"mask": causal_bool(S), "src_key_padding_mask": padding(S)}
    run_both(ours, theirs, [seq(S, batch_first)],
             forward=with_masks(masks, lambda layer, xs, ms: layer(xs[0], **ms)))
    run_both(ours, theirs, [seq(S, batch_first)])


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_stack_with_final_norm(norm_first, batch_first):
    ours, theirs = build(lambda nn: nn.TransformerDecoder(
        nn.TransformerDecoderLayer(E, H, FF, activation="gelu", batch_first=batch_first,
                                   norm_first=norm_first),
        num_layers=2, norm=nn.LayerNorm(E)))
    masks = {"tgt_mask": causal_bool(T), "memory_mask": rng.random((T, S)) < 0.3,
             "tgt_key_padding_mask": padding(T, ((1, 3),)), "memory_key_padding_mask": padding(S)}
    masks["memory_mask"][:, 2] = False
    run_both(ours, theirs, [seq(T, batch_first), seq(S, batch_first)],
             forward=with_masks(masks, lambda layer, xs, ms: layer(*xs, **ms)))


def test_stacks_without_norm_and_layers_are_equal_copies():
    for nn in (torch.nn, gnn):
        layer = nn.TransformerEncoderLayer(E, H, FF)
        enc = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
        assert enc.norm is None and enc.num_layers == 3 and len(enc.layers) == 3
        assert all(m is not layer for m in enc.layers)
        first, second = enc.layers[0].linear1.weight, enc.layers[1].linear1.weight
        assert first is not second
        assert (first.detach().numpy() == layer.linear1.weight.detach().numpy()).all()
        assert (second.detach().numpy() == first.detach().numpy()).all()
    ours, theirs = build(lambda nn: nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, FF), 2))
    run_both(ours, theirs, [seq(T, False), seq(S, False)])
    ours = gnn.TransformerEncoder(gnn.TransformerEncoderLayer(E, H, FF), 2, mask_check=False)
    assert ours.enable_nested_tensor is True and ours.mask_check is False


def test_stack_reprs():
    # n = 2: torch's ModuleList prints runs of equal layers once ("(0-1): 2 x ..."), so does ours
    for n in (1, 2):
        for make in (lambda nn: nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, FF), n,
                                                      norm=nn.LayerNorm(E),
                                                      enable_nested_tensor=False),
                     lambda nn: nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, FF), n)):
            ours, theirs = make(gnn), make(torch.nn)
            assert repr(ours) == repr(theirs)


def record_is_causal(stack, key):
    """Collect the ``key`` keyword each layer of ``stack`` is called with."""
    seen = []
    for layer in stack.layers:
        layer.register_forward_pre_hook(lambda m, args, kwargs: seen.append(kwargs[key]),
                                        with_kwargs=True)
    return seen


@pytest.mark.parametrize("mask_kind", ["float-causal", "bool-causal", "float-other", "none"])
@pytest.mark.parametrize("hint", [None, False, True])
def test_stacks_detect_causal_masks_as_torch(mask_kind, hint):
    if hint is True and mask_kind == "none":
        return   # torch's layers then need a mask (both raise)
    mask = {"float-causal": causal_float(S), "bool-causal": causal_bool(S),
            "float-other": causal_float(S).T, "none": None}[mask_kind]   # .T: anti-causal
    for stack_kind in ("encoder", "decoder"):
        ours, theirs = build(lambda nn: (
            nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, FF, batch_first=True), 2,
                                  enable_nested_tensor=False)
            if stack_kind == "encoder" else
            nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, FF, batch_first=True), 2)))
        key = "is_causal" if stack_kind == "encoder" else "tgt_is_causal"
        seen_o, seen_t = record_is_causal(ours, key), record_is_causal(theirs, key)
        masks = {} if mask is None else {"mask" if stack_kind == "encoder" else "tgt_mask": mask}
        flags = {"is_causal" if stack_kind == "encoder" else "tgt_is_causal": hint}
        inputs = [rng.standard_normal((N, S, E))]
        if stack_kind == "decoder":
            inputs.append(rng.standard_normal((N, T, E)))
        run_both(ours, theirs, inputs,
                 forward=with_masks(masks, lambda layer, xs, ms: layer(*xs, **ms, **flags)))
        assert seen_o == seen_t and len(seen_o) == 2, (stack_kind, seen_o, seen_t)


# ---------------------------------------------------------------------------- Transformer
def small_transformer(batch_first=False, norm_first=False):
    return lambda nn: nn.Transformer(d_model=E, nhead=H, num_encoder_layers=2,
                                     num_decoder_layers=2, dim_feedforward=FF,
                                     batch_first=batch_first, norm_first=norm_first)


@pytest.mark.parametrize("batch_first,norm_first", [(False, False), (True, True)])
def test_transformer_forward_and_gradients(batch_first, norm_first):
    ours, theirs = build(small_transformer(batch_first, norm_first))
    def additive(mask):   # float key padding masks this time: 0 keeps, -inf drops
        return np.where(mask, -np.inf, 0.0)

    masks = {"src_mask": rng.standard_normal((S, S)),
             "tgt_mask": gnn.Transformer.generate_square_subsequent_mask(T).double().numpy(),
             "memory_mask": rng.standard_normal((T, S)),
             "src_key_padding_mask": additive(padding(S)),
             "tgt_key_padding_mask": additive(padding(T, ((2, 3),))),
             "memory_key_padding_mask": additive(padding(S))}
    run_both(ours, theirs, [seq(S, batch_first), seq(T, batch_first)],
             forward=with_masks(masks, lambda layer, xs, ms: layer(*xs, **ms)))
    run_both(ours, theirs, [seq(S, batch_first), seq(T, batch_first)])


@pytest.fixture(scope="module")
def default_pair():
    """Transformer() with every default, ours and torch's (44M parameters each: built once)."""
    return gnn.Transformer(), torch.nn.Transformer()


def test_transformer_names_defaults_and_repr(default_pair):
    ours, theirs = default_pair
    assert [(n, tuple(p.shape)) for n, p in ours.named_parameters()] == \
        [(n, tuple(p.shape)) for n, p in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert len(ours.encoder.layers) == len(ours.decoder.layers) == 6
    assert (ours.d_model, ours.nhead, ours.batch_first) == (512, 8, False)
    assert repr(ours) == repr(theirs)
    small_o, small_t = small_transformer(True, True)(gnn), small_transformer(True, True)(torch.nn)
    assert repr(small_o) == repr(small_t)
    assert list(small_o.state_dict()) == list(small_t.state_dict())


def test_transformer_initialisation_is_xavier_uniform():
    gradient.manual_seed(0)
    model = gnn.Transformer(d_model=32, nhead=4, num_encoder_layers=2, num_decoder_layers=1,
                            dim_feedforward=64)
    for name, p in model.named_parameters():
        values = p.detach().numpy()
        if p.ndim > 1:
            fan_out, fan_in = p.shape
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            assert np.abs(values).max() <= bound, name
            # uniform on [-bound, bound]: std bound / sqrt(3); thousands of samples
            assert abs(values.std() - bound / math.sqrt(3)) < 0.1 * bound, name
        elif "norm" in name:   # norms and biases keep their layers' initialisation
            expected = 1.0 if name.endswith("weight") else 0.0
            assert (values == expected).all(), name
        elif "in_proj_bias" in name or "out_proj.bias" in name:
            assert (values == 0).all(), name
    # re-initialised one by one, the stacked layers (copies at first) now differ
    w = [layer.linear1.weight.detach().numpy() for layer in model.encoder.layers]
    assert not np.array_equal(w[0], w[1])


def test_transformer_custom_encoder_decoder():
    def make(nn):
        enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, FF), 1,
                                    enable_nested_tensor=False)
        dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, FF), 1)
        return nn.Transformer(d_model=E, nhead=H, custom_encoder=enc, custom_decoder=dec)

    ours, theirs = build(make)
    assert ours.encoder.norm is None and repr(ours) == repr(theirs)
    run_both(ours, theirs, [seq(S, False), seq(T, False)])


def test_generate_square_subsequent_mask():
    for sz, dtype in ((1, None), (4, None), (3, "float64")):
        kw = {} if dtype is None else {"dtype": getattr(gradient, dtype)}
        kt = {} if dtype is None else {"dtype": getattr(torch, dtype)}
        ours = gnn.Transformer.generate_square_subsequent_mask(sz, **kw)
        theirs = torch.nn.Transformer.generate_square_subsequent_mask(sz, **kt)
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert gnn.Transformer.generate_square_subsequent_mask(2, device="cpu").device.type == "cpu"


# ---------------------------------------------------------------------------- errors
def test_errors_are_the_torch_classes():
    for nn, to in ((torch.nn, torch.tensor), (gnn, gradient.tensor)):
        with pytest.raises(RuntimeError, match="relu"):
            nn.TransformerEncoderLayer(E, H, activation="tanh")
        model = small_transformer()(nn)
        with pytest.raises(RuntimeError, match="batch number"):
            model(to(seq(S, False)), to(rng.standard_normal((T, N + 1, E))))
        with pytest.raises(RuntimeError, match="feature number"):
            model(to(rng.standard_normal((S, N, E + 2))), to(rng.standard_normal((T, N, E + 2))))
    layer = gnn.TransformerEncoderLayer(E, H, FF)
    with pytest.raises(TypeError, match="bool mask"):
        layer(gradient.randn(S, N, E), src_mask=gradient.zeros(S, S, dtype=gradient.int64))
    with pytest.raises(TypeError, match="callable"):
        gnn.TransformerEncoderLayer(E, H, activation=3)


def test_mismatched_mask_types_warn_as_torch():
    for nn, to in ((torch.nn, torch.tensor), (gnn, gradient.tensor)):
        layer = nn.TransformerEncoderLayer(E, H, FF).double()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            layer(to(seq(S, False)), src_mask=to(causal_float(S)),
                  src_key_padding_mask=to(padding(S)))
        assert any("mismatched src_key_padding_mask and src_mask" in str(w.message)
                   for w in caught), nn
