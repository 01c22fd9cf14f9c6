"""Transformer layers, as in ``torch.nn``: the encoder and decoder layers of "Attention Is All
You Need", their stacks, and the whole encoder-decoder :class:`Transformer`.

They are built from :class:`MultiheadAttention`, :class:`Linear`, :class:`LayerNorm` and
:class:`Dropout`, with PyTorch's submodule names (``self_attn``, ``linear1``, ``norm1``,
``layers.0`` ...), so state dicts interchange with PyTorch's. Each layer is the residual
pattern of PyTorch's reference implementation::

    post-norm (norm_first=False):  x = norm1(x + sa(x));  x = norm2(x + ff(x))
    pre-norm  (norm_first=True):   x = x + sa(norm1(x));  x = x + ff(norm2(x))

(the decoder layer has a cross-attention block to ``memory`` between the two, with ``norm2``,
and its feed-forward block uses ``norm3``).

Masks follow :class:`MultiheadAttention`: in a boolean ``*_mask`` or ``*_key_padding_mask`` a
True entry means "do not attend"; a float mask is added to the attention scores (0 allows,
-inf forbids). ``is_causal`` arguments are hints that the mask given is the causal one, as in
PyTorch: pass the mask too (:meth:`Transformer.generate_square_subsequent_mask` makes it). The
stacks detect a causal mask by themselves when their ``is_causal`` is left at None.

Differences from PyTorch: there are no nested tensors and no fused inference kernels, so
``enable_nested_tensor`` and ``mask_check`` are accepted and ignored; PyTorch's encoder, when it
takes its nested-tensor path (inference without grad, ``batch_first=True``, a key padding mask),
returns zeros (before the final norm) at padded positions, where ours returns the computed
values, which are equally meaningless. All other outputs agree.
"""

from __future__ import annotations

import copy
import warnings
from typing import Callable

from ... import ops as _ops
from ...dtypes import bool_, get_default_dtype
from ...errors import ArgumentTypeError, ArgumentValueError, DTypeError, ShapeError
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from .activation import GELU, ReLU
from .attention import MultiheadAttention
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear, _check_size
from .normalization import LayerNorm

__all__ = ["Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer",
           "TransformerDecoderLayer"]


# ---------------------------------------------------------------------------- helpers
def _generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
    """The (sz, sz) float causal mask: -inf above the diagonal (a later position), 0 elsewhere."""
    dtype = get_default_dtype() if dtype is None else dtype
    return _ops.full((sz, sz), float("-inf"), dtype=dtype, device=device).triu(1)


def _canonical_mask(mask, name: str, other=None, other_name: str = "", dtype=None):
    """``mask`` as an additive float mask of ``dtype`` (a bool mask's True becomes -inf), as
    PyTorch's layers pass masks on; warns, as PyTorch does, when ``other`` (the mask given with
    it) is of another dtype."""
    if mask is None:
        return None
    if mask.dtype is not bool_ and not mask.dtype.is_floating_point:
        raise DTypeError(f"{name} must be a bool mask (True = do not attend) or a float mask "
                         f"(added to the attention scores), got dtype {mask.dtype}; convert it "
                         f"with {name}.bool() or {name}.float()")
    if other is not None and other.dtype is not mask.dtype:
        # stacklevel: _canonical_mask, forward, Module.__call__, then the caller
        warnings.warn(f"Support for mismatched {name} and {other_name} is deprecated. Use same "
                      "type for both instead.", stacklevel=4)
    if mask.dtype is bool_:
        mask = _ops.zeros(tuple(mask.shape), dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    return mask


def _get_seq_len(src: Tensor, batch_first: bool) -> int:
    """The sequence length of ``src``: (S, E) unbatched, (N, S, E) or (S, N, E) batched."""
    if src.ndim == 2:
        return src.shape[0]
    return src.shape[1 if batch_first else 0]


def _detect_is_causal_mask(mask, is_causal: bool | None = None, size: int | None = None) -> bool:
    """Whether ``mask`` is the causal mask of ``size``: ``is_causal`` if it is given (a hint
    trusted as it is, like PyTorch), else a comparison with the causal mask of that dtype."""
    if is_causal is not None or mask is None:
        return bool(is_causal)
    sz = size if size is not None else mask.shape[-2]
    if tuple(mask.shape) != (sz, sz):
        return False
    if mask.dtype is bool_:
        causal = _ops.ones((sz, sz), dtype=bool_, device=mask.device).triu(1)
    else:
        causal = _generate_square_subsequent_mask(sz, device=mask.device, dtype=mask.dtype)
    return bool((mask == causal).all().item())


def _activation_fn(activation) -> Callable:
    """PyTorch's legacy activation names ("relu", "gelu") as functions; callables pass."""
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise ArgumentValueError(f"activation should be 'relu' or 'gelu' (or a callable such as "
                                 f"nn.SiLU()), not {activation!r}")
    if not callable(activation):
        raise ArgumentTypeError(f"activation should be 'relu', 'gelu' or a callable, got "
                                f"{type(activation).__name__}")
    return activation


def _get_clones(module: Module, n: int, stack: str) -> ModuleList:
    """``n`` deep copies of ``module``: the layers of a stack start out equal, as in PyTorch."""
    return ModuleList([copy.deepcopy(module)
                       for _ in range(_check_size(stack, "num_layers", n))])


# ---------------------------------------------------------------------------- layers
class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward network, each with a residual connection and a
    LayerNorm (after the residual sum, or before the block with ``norm_first=True``).

    ``activation`` is ``F.relu`` (default, or ``"relu"``), ``"gelu"``, or any callable (a
    module such as ``nn.SiLU()`` becomes the child ``activation``). Inputs are (S, N, E)
    (sequence first) or, with ``batch_first=True``, (N, S, E); unbatched (S, E) works too.
    ``bias=False`` drops the biases of the attention, the linear layers and the norms.

    Example::

        layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, dim_feedforward=32,
                                           batch_first=True)
        x = gradient.randn(2, 5, 16)
        causal = nn.Transformer.generate_square_subsequent_mask(5)
        y = layer(x, src_mask=causal, is_causal=True)                 # (2, 5, 16)
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation=F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **factory)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        activation = _activation_fn(activation)
        # PyTorch's flag (1 relu, 2 gelu, 0 other), which its fused kernel reads; kept so that
        # code inspecting it ports
        if activation is F.relu or isinstance(activation, ReLU):
            self.activation_relu_or_gelu = 1
        elif activation is F.gelu or isinstance(activation, GELU):
            self.activation_relu_or_gelu = 2
        else:
            self.activation_relu_or_gelu = 0
        self.activation = activation

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        """One encoder layer.

        ``src_mask`` (S, S) or (N * nhead, S, S) restricts which positions attend to which;
        ``src_key_padding_mask`` (N, S) marks padding; ``is_causal=True`` says that
        ``src_mask`` is the causal mask (a hint: the mask is still required).
        """
        src_key_padding_mask = _canonical_mask(src_key_padding_mask, "src_key_padding_mask",
                                               src_mask, "src_mask", src.dtype)
        src_mask = _canonical_mask(src_mask, "src_mask", dtype=src.dtype)
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal: bool = False) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerDecoderLayer(Module):
    """Self-attention, cross-attention to ``memory`` (the encoder's output) and a feed-forward
    network, each with a residual connection and a LayerNorm (``norm1``, ``norm2``, ``norm3``;
    after the residual sum, or before each block with ``norm_first=True``).

    Arguments as :class:`TransformerEncoderLayer`'s.

    Example::

        layer = nn.TransformerDecoderLayer(d_model=16, nhead=4, dim_feedforward=32,
                                           batch_first=True)
        tgt, memory = gradient.randn(2, 5, 16), gradient.randn(2, 7, 16)
        causal = nn.Transformer.generate_square_subsequent_mask(5)
        y = layer(tgt, memory, tgt_mask=causal, tgt_is_causal=True)    # (2, 5, 16)
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation=F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **factory)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                                 batch_first=batch_first, **factory)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **factory)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **factory)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)
        self.activation = _activation_fn(activation)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        """One decoder layer.

        ``tgt_mask`` (T, T) and ``tgt_key_padding_mask`` (N, T) apply to the self-attention,
        ``memory_mask`` (T, S) and ``memory_key_padding_mask`` (N, S) to the attention to
        ``memory``; the ``*_is_causal`` flags are hints that the matching mask is causal.
        """
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask,
                                    memory_is_causal)
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask,
                                               memory_is_causal))
            x = self.norm3(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal: bool = False) -> Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           is_causal=is_causal, need_weights=False)[0]
        return self.dropout1(x)

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal: bool = False) -> Tensor:
        x = self.multihead_attn(x, mem, mem, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask, is_causal=is_causal,
                                need_weights=False)[0]
        return self.dropout2(x)

    def _ff_block(self, x) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout3(x)


# ---------------------------------------------------------------------------- stacks
def _batch_first(layers: ModuleList) -> bool:
    """Whether the stack's inputs are batch first, as its first layer's attention says."""
    attn = getattr(layers[0], "self_attn", None) if len(layers) else None
    return bool(getattr(attn, "batch_first", False))


class TransformerEncoder(Module):
    """``num_layers`` encoder layers applied in turn (``layers.0``, ``layers.1`` ...), then
    ``norm`` if given.

    The layers are deep copies of ``encoder_layer``, so they start with equal weights, as in
    PyTorch (:class:`Transformer` re-initialises its own). ``enable_nested_tensor`` and
    ``mask_check`` are accepted for PyTorch compatibility and ignored: there are no nested
    tensors here (see the module docstring).

    Example::

        layer = nn.TransformerEncoderLayer(d_model=16, nhead=4, batch_first=True)
        encoder = nn.TransformerEncoder(layer, num_layers=3, norm=nn.LayerNorm(16))
        padding = gradient.tensor([[False, False, True]])      # True = padding
        y = encoder(gradient.randn(1, 3, 16), src_key_padding_mask=padding)
    """

    def __init__(self, encoder_layer: Module, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True) -> None:
        super().__init__()
        self.layers = _get_clones(encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.use_nested_tensor = False   # PyTorch's record of whether it will use them
        self.mask_check = mask_check

    def forward(self, src: Tensor, mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        """Run ``src`` through every layer with the same masks.

        ``is_causal=None`` (default) detects whether ``mask`` is the causal mask.
        """
        src_key_padding_mask = _canonical_mask(src_key_padding_mask, "src_key_padding_mask",
                                               mask, "mask", src.dtype)
        mask = _canonical_mask(mask, "mask", dtype=src.dtype)
        is_causal = _detect_is_causal_mask(mask, is_causal,
                                           _get_seq_len(src, _batch_first(self.layers)))
        output = src
        for layer in self.layers:
            output = layer(output, src_mask=mask, is_causal=is_causal,
                           src_key_padding_mask=src_key_padding_mask)
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(Module):
    """``num_layers`` decoder layers applied in turn (``layers.0``, ``layers.1`` ...), each
    attending to the same ``memory``, then ``norm`` if given.

    The layers are deep copies of ``decoder_layer``, so they start with equal weights.

    Example::

        layer = nn.TransformerDecoderLayer(d_model=16, nhead=4, batch_first=True)
        decoder = nn.TransformerDecoder(layer, num_layers=2, norm=nn.LayerNorm(16))
        causal = nn.Transformer.generate_square_subsequent_mask(5)
        y = decoder(gradient.randn(2, 5, 16), gradient.randn(2, 7, 16), tgt_mask=causal)
    """

    def __init__(self, decoder_layer: Module, num_layers: int,
                 norm: Module | None = None) -> None:
        super().__init__()
        self.layers = _get_clones(decoder_layer, num_layers, "TransformerDecoder")
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Tensor:
        """Run ``tgt`` through every layer with the same ``memory`` and masks.

        ``tgt_is_causal=None`` (default) detects whether ``tgt_mask`` is the causal mask.
        """
        tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal,
                                               _get_seq_len(tgt, _batch_first(self.layers)))
        output = tgt
        for layer in self.layers:
            output = layer(output, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                           tgt_key_padding_mask=tgt_key_padding_mask,
                           memory_key_padding_mask=memory_key_padding_mask,
                           tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
        if self.norm is not None:
            output = self.norm(output)
        return output


class Transformer(Module):
    """The encoder-decoder transformer of "Attention Is All You Need": ``encoder`` (a
    :class:`TransformerEncoder` with a final LayerNorm) reads ``src``, ``decoder`` (a
    :class:`TransformerDecoder` with a final LayerNorm) reads ``tgt`` and attends to the
    encoder's output.

    Every parameter with more than one dimension is re-initialised with
    :func:`~gradient.nn.init.xavier_uniform_` (PyTorch's scheme, so the stacked layers differ);
    biases and norms keep their layers' initialisation. ``custom_encoder`` and
    ``custom_decoder`` replace the default stacks (they are re-initialised too, as in PyTorch).
    It has no embedding or output projection: add your own.

    Example::

        model = nn.Transformer(d_model=32, nhead=4, num_encoder_layers=2,
                               num_decoder_layers=2, dim_feedforward=64, batch_first=True)
        src, tgt = gradient.randn(2, 10, 32), gradient.randn(2, 6, 32)
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(6)
        out = model(src, tgt, tgt_mask=tgt_mask)                      # (2, 6, 32)
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation=F.relu, custom_encoder: Module | None = None,
                 custom_decoder: Module | None = None, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        layer_args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                      batch_first, norm_first, bias)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(
                TransformerEncoderLayer(*layer_args, **factory), num_encoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(
                TransformerDecoderLayer(*layer_args, **factory), num_decoder_layers,
                LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **factory))
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Tensor | None = None,
                tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None,
                src_is_causal: bool | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        """Encode ``src`` (S, N, E), decode ``tgt`` (T, N, E) against it; returns (T, N, E).

        With ``batch_first=True`` the batch comes first: (N, S, E), (N, T, E). Masks:
        ``src_mask`` (S, S), ``tgt_mask`` (T, T), ``memory_mask`` (T, S); key padding masks
        (N, S), (N, T), (N, S).
        """
        batched = src.ndim == 3
        batch_dim = 0 if self.batch_first else 1
        if batched and src.shape[batch_dim] != tgt.shape[batch_dim]:
            raise ShapeError(f"Transformer: the batch number of src and tgt must be equal, got "
                             f"{src.shape[batch_dim]} and {tgt.shape[batch_dim]} (dimension "
                             f"{batch_dim} of src {tuple(src.shape)} and tgt {tuple(tgt.shape)}, "
                             f"batch_first={self.batch_first})")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ShapeError(f"Transformer: the feature number of src and tgt must be equal to "
                             f"d_model={self.d_model}, got src {tuple(src.shape)} and tgt "
                             f"{tuple(tgt.shape)}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device=None, dtype=None) -> Tensor:
        """The (sz, sz) causal mask: -inf where a position would see a later one, else 0.

        ``dtype`` defaults to the default dtype (float32). Example::

            >>> nn.Transformer.generate_square_subsequent_mask(3)
            tensor([[0., -inf, -inf],
                    [0., 0., -inf],
                    [0., 0., 0.]])
        """
        return _generate_square_subsequent_mask(sz, device=device, dtype=dtype)

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)
