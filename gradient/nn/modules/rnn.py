"""Recurrent layers, as in ``torch.nn``: RNN, LSTM, GRU and their one-step cells.

Parameter names, shapes, gate order and initialisation are PyTorch's, so a state dict moves
between the two frameworks key by key:

- layer ``k`` (and ``k_reverse``, the backward direction of a bidirectional layer) holds
  ``weight_ih_lk`` (gates * hidden_size, layer input size), ``weight_hh_lk``
  (gates * hidden_size, hidden_size), and unless ``bias=False`` ``bias_ih_lk`` and ``bias_hh_lk``;
  an LSTM with ``proj_size > 0`` adds ``weight_hr_lk`` (proj_size, hidden_size);
- the gates are stacked in the order i, f, g, o (LSTM) and r, z, n (GRU), as in cuDNN;
- every weight and bias starts uniform in (-1/sqrt(hidden_size), 1/sqrt(hidden_size)), drawn
  from gradient's generator (the same distribution as PyTorch's, not the same numbers).

Everything is a composition of gradient's differentiable ops, so backward and double backward
come from the ops. As in PyTorch, the input projection ``x W_ih^T + b_ih`` of a layer is one
matrix product over all time steps; only the recurrent product ``h W_hh^T`` runs step by step.

Sequences of different lengths go in as a :class:`~gradient.nn.utils.rnn.PackedSequence`. The
layers work on the packed layout throughout (a padded input is the special case where every
time step holds the whole batch): at step t only the first ``batch_sizes[t]`` sequences run,
so each sequence stops at its own length and its final state is its last valid one.

Differences from PyTorch: the errors are gradient's (``ShapeError`` for sizes and shapes, which
is both a ``ValueError`` and a ``RuntimeError``; ``DTypeError`` for an input whose dtype differs
from the weights'); there are no cuDNN flat weights (``flatten_parameters`` does nothing).
"""

from __future__ import annotations

import math
import numbers
import warnings

from ... import ops as _ops
from ...autograd import autocast_state as _autocast
from ...errors import ArgumentTypeError, ArgumentValueError, DTypeError, ShapeError
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..module import Module
from ..parameter import Parameter
from ..utils.rnn import PackedSequence

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


# ---------------------------------------------------------------------- one time step
# Each step takes gi, the input projection x_t W_ih^T + b_ih already computed for this step,
# the state (a tuple: (h,) or (h, c)) and the recurrent weights, and returns the new state.
# The layers call them inside their loop over time; the cells call them once.

def _tanh_step(gi, state, w_hh, b_hh, w_hr=None):
    (h,) = state
    return (_ops.tanh(gi + F.linear(h, w_hh, b_hh)),)


def _relu_step(gi, state, w_hh, b_hh, w_hr=None):
    (h,) = state
    return (F.relu(gi + F.linear(h, w_hh, b_hh)),)


def _lstm_step(gi, state, w_hh, b_hh, w_hr=None):
    h, c = state
    i, f, g, o = (gi + F.linear(h, w_hh, b_hh)).chunk(4, 1)
    c = _ops.sigmoid(f) * c + _ops.sigmoid(i) * _ops.tanh(g)
    h = _ops.sigmoid(o) * _ops.tanh(c)
    if w_hr is not None:   # proj_size > 0: the hidden state is projected down to proj_size
        h = F.linear(h, w_hr)
    return h, c


def _gru_step(gi, state, w_hh, b_hh, w_hr=None):
    (h,) = state
    gh = F.linear(h, w_hh, b_hh)
    hidden = h.shape[1]
    gi_rz, gi_n = gi.split([2 * hidden, hidden], 1)
    gh_rz, gh_n = gh.split([2 * hidden, hidden], 1)
    r, z = _ops.sigmoid(gi_rz + gh_rz).chunk(2, 1)
    # the reset gate multiplies W_hn h + b_hn, bias included (PyTorch's and cuDNN's variant)
    n = _ops.tanh(gi_n + r * gh_n)
    return (n + z * (h - n),)   # (1 - z) * n + z * h, one product fewer


_STEPS = {"RNN_TANH": _tanh_step, "RNN_RELU": _relu_step, "LSTM": _lstm_step, "GRU": _gru_step}
_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _scan(step, inputs, state0, weights, reverse: bool):
    """Run ``step`` over the per-time-step input projections ``inputs`` (a list, in time order).

    ``inputs[t]`` has ``batch_sizes[t]`` rows, never more than the step before: the packed
    layout, where the sequences still running at step t are the first rows. ``state0`` is the
    initial state (a tuple of (batch, *) tensors). Returns the outputs of all steps concatenated
    in the packed layout and the final state, whose row b is sequence b's state after its last
    step.
    """
    outputs = []
    if not reverse:
        state, ended = state0, []
        for gi in inputs:
            n, running = gi.shape[0], state[0].shape[0]
            if n < running:   # the last running - n sequences ended: set their final state aside
                ended.append(tuple(s.narrow(0, n, running - n) for s in state))
                state = tuple(s.narrow(0, 0, n) for s in state)
            state = step(gi, state, *weights)
            outputs.append(state[0])
        if ended:   # the latest to end are the rows right after those still running
            state = tuple(_ops.cat([s, *reversed(parts)], 0)
                          for s, parts in zip(state, zip(*ended)))
    else:
        # backwards in time, a sequence joins the batch at its last step, from its initial state
        last = inputs[-1].shape[0] if inputs else 0
        state = (state0 if last == state0[0].shape[0]
                 else tuple(s.narrow(0, 0, last) for s in state0))
        for gi in reversed(inputs):
            n, running = gi.shape[0], state[0].shape[0]
            if n > running:
                state = tuple(_ops.cat([s, s0.narrow(0, running, n - running)], 0)
                              for s, s0 in zip(state, state0))
            state = step(gi, state, *weights)
            outputs.append(state[0])
        outputs.reverse()
    return _ops.cat(outputs, 0), state


def _shape(t) -> tuple:
    return tuple(t.shape)


# ---------------------------------------------------------------------- the layers
class RNNBase(Module):
    """What :class:`RNN`, :class:`LSTM` and :class:`GRU` share: the parameters of a stack of
    (bidirectional) recurrent layers and the loop over layers, directions and time.

    ``mode`` is ``'RNN_TANH'``, ``'RNN_RELU'``, ``'LSTM'`` or ``'GRU'``, as in PyTorch; use the
    subclasses rather than this class. Example: ``nn.GRU(10, 20, num_layers=2)``.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
        super().__init__()
        if not isinstance(mode, str):
            raise ArgumentTypeError(f"RNNBase: mode must be a string, one of {sorted(_STEPS)}, "
                                    f"got {type(mode).__name__} {mode!r}")
        name = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(mode, mode)
        if mode not in _STEPS:
            raise ArgumentValueError(f"RNNBase: unrecognized mode {mode!r}; expected one of "
                                     f"{sorted(_STEPS)} (or use nn.RNN, nn.LSTM, nn.GRU)")
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ArgumentValueError(
                f"{name}: dropout should be a number in range [0, 1] representing "
                f"the probability of an element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout option adds dropout after all but last recurrent "
                          "layer, so non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        for arg, value in (("bias", bias), ("batch_first", batch_first),
                           ("bidirectional", bidirectional)):
            if not isinstance(value, bool):
                raise ArgumentTypeError(f"{name}: {arg} should be of type bool, got "
                                        f"{type(value).__name__} {value!r}")
        for arg, value, least in (("input_size", input_size, 1), ("hidden_size", hidden_size, 1),
                                  ("num_layers", num_layers, 1), ("proj_size", proj_size, 0)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ArgumentTypeError(f"{name}: {arg} should be of type int, got "
                                        f"{type(value).__name__} {value!r}")
            if value < least:
                raise ArgumentValueError(
                    f"{name}: {arg} must be "
                    f"{'greater than zero' if least else 'zero or positive'}, "
                    f"got {value}")
        if proj_size and proj_size >= hidden_size:
            raise ArgumentValueError(f"{name}: proj_size has to be smaller than hidden_size, got "
                                     f"proj_size={proj_size} and hidden_size={hidden_size}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size

        factory = {"device": device, "dtype": dtype}
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size or hidden_size
        directions = 2 if bidirectional else 1
        # PyTorch's registration order (state dict order): per layer, per direction,
        # w_ih, w_hh, b_ih, b_hh, w_hr
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else real_hidden * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [("weight_ih", (gate_size, layer_input)),
                          ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size:
                    shapes += [("weight_hr", (proj_size, hidden_size))]
                names = []
                for base, shape in shapes:
                    setattr(self, base + suffix, Parameter(_ops.empty(shape, **factory)))
                    names.append(base + suffix)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    @property
    def _name(self) -> str:
        return type(self).__name__

    def reset_parameters(self) -> None:
        """Draw every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    def flatten_parameters(self) -> None:
        """Does nothing: PyTorch packs the weights into one cuDNN buffer here; gradient has none.

        Kept so that scripts calling ``rnn.flatten_parameters()`` run unchanged.
        """

    @property
    def all_weights(self) -> list:
        """The parameters, one list per layer and direction: ``[[w_ih, w_hh, b_ih, b_hh], ...]``."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, name) for name in self._flat_weights_names]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ------------------------------------------------------------------ forward
    def _weights(self, layer: int, direction: int) -> tuple:
        """(w_ih, b_ih) and (w_hh, b_hh, w_hr) of one layer and direction (None when absent)."""
        p = self._parameters
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        return ((p["weight_ih" + suffix], p.get("bias_ih" + suffix)),
                (p["weight_hh" + suffix], p.get("bias_hh" + suffix), p.get("weight_hr" + suffix)))

    def _state_sizes(self) -> tuple:
        """The feature size of each state tensor: (h,) or, for an LSTM, (h, c)."""
        real_hidden = self.proj_size or self.hidden_size
        return (real_hidden, self.hidden_size) if self.mode == "LSTM" else (real_hidden,)

    def _check_input(self, data: Tensor, what: str) -> None:
        if not isinstance(data, Tensor):
            raise ArgumentTypeError(
                f"{self._name}: expected a gradient.Tensor or a PackedSequence input, "
                f"got {type(data).__name__}")
        if data.shape[-1] != self.input_size:
            raise ShapeError(f"{self._name}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {data.shape[-1]} ({what} of shape "
                             f"{_shape(data)}); the last dimension holds the features")
        weight = self.weight_ih_l0
        if data.dtype is not weight.dtype and not _autocast.any_enabled():
            raise DTypeError(f"{self._name}: input dtype ({data.dtype}) does not match weight "
                             f"dtype ({weight.dtype}); convert the input with "
                             f"input.to({weight.dtype}) or the model with model.to({data.dtype})")

    def _initial_state(self, hx, batch: int, data: Tensor, batched: bool, sorted_indices) -> tuple:
        """hx as a tuple of (num_layers * num_directions, batch, size) tensors (zeros if None),
        with its batch in the packed (sorted) order."""
        stacked = self.num_layers * (2 if self.bidirectional else 1)
        sizes = self._state_sizes()
        lstm = self.mode == "LSTM"
        if hx is None:
            return tuple(_ops.zeros((stacked, batch, size), dtype=data.dtype, device=data.device)
                         for size in sizes)
        if lstm:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2
                    and all(isinstance(t, Tensor) for t in hx)):
                raise ArgumentTypeError(
                    f"LSTM: hx should be a tuple (h_0, c_0) of two tensors, got "
                    f"{type(hx).__name__}")
            states = tuple(hx)
        else:
            if not isinstance(hx, Tensor):
                raise ArgumentTypeError(f"{self._name}: hx should be a tensor (h_0), got "
                                        f"{type(hx).__name__}")
            states = (hx,)
        names = ("hx[0] (h_0)", "hx[1] (c_0)") if lstm else ("hx",)
        want = 3 if batched else 2
        out = []
        for state, size, name in zip(states, sizes, names):
            if state.ndim != want:
                kind = "batched 3-D" if batched else "unbatched 2-D"
                raise ShapeError(f"{self._name}: for {kind} input, {name} should be {want}-D "
                                 f"too, got shape {_shape(state)}")
            expected = (stacked, batch, size) if batched else (stacked, size)
            if _shape(state) != expected:
                what = "proj_size" if size != self.hidden_size else "hidden_size"
                layout = f"(num_layers * num_directions, {'batch, ' if batched else ''}{what})"
                raise ShapeError(f"{self._name}: expected {name} of shape {expected} {layout}, "
                                 f"got {_shape(state)}")
            if not batched:
                state = state.unsqueeze(1)
            if state.dtype is not data.dtype and not _autocast.any_enabled():
                raise DTypeError(f"{self._name}: {name} has dtype {state.dtype} but the input "
                                 f"{data.dtype}; convert it with .to({data.dtype})")
            if sorted_indices is not None:
                state = state.index_select(1, sorted_indices)
            out.append(state)
        return tuple(out)

    def forward(self, input, hx=None):
        """Run the layers over ``input`` from the initial state ``hx`` (zeros when None).

        Returns ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``), of PyTorch's shapes; the
        output is a PackedSequence when the input is one.
        """
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            self._check_input(data, "packed data")
            if data.ndim != 2:
                raise ShapeError(f"{self._name}: packed data must have 2 dimensions "
                                 f"(sum of lengths, input_size), got shape {_shape(data)}")
            batch_sizes = [int(b) for b in batch_sizes.tolist()]
            batch, batched = batch_sizes[0], True
        else:
            if not isinstance(input, Tensor):
                raise ArgumentTypeError(
                    f"{self._name}: expected a gradient.Tensor or a PackedSequence "
                    f"input, got {type(input).__name__}")
            if input.ndim not in (2, 3):
                layout = ("(batch, seq_len, input_size)" if self.batch_first
                          else "(seq_len, batch, input_size)")
                raise ShapeError(f"{self._name}: Expected input to be 2D or 3D, got {input.ndim}D "
                                 f"(shape {_shape(input)}); pass {layout}, or (seq_len, "
                                 "input_size) for one sequence")
            self._check_input(input, "input")
            sorted_indices = unsorted_indices = None
            batched = input.ndim == 3
            x = input if batched else input.unsqueeze(1)
            if batched and self.batch_first:
                x = x.transpose(0, 1)   # time-major inside: each step's rows are contiguous
            steps, batch = x.shape[0], x.shape[1]
            if steps == 0:
                raise ShapeError(f"{self._name}: expected a sequence length greater than 0, got "
                                 f"input of shape {_shape(input)}")
            data = x.reshape(steps * batch, self.input_size)
            batch_sizes = [batch] * steps
        state0 = self._initial_state(hx, batch, data, batched, sorted_indices)
        output, finals = self._run(data, batch_sizes, state0)

        if packed:
            output = PackedSequence(output, input.batch_sizes, sorted_indices, unsorted_indices)
            if unsorted_indices is not None:   # final states back in the user's batch order
                finals = tuple(f.index_select(1, unsorted_indices) for f in finals)
        else:
            output = output.reshape(steps, batch, output.shape[-1])
            if not batched:
                output = output.squeeze(1)
                finals = tuple(f.squeeze(1) for f in finals)
            elif self.batch_first:
                output = output.transpose(0, 1)
        return output, (finals if self.mode == "LSTM" else finals[0])

    def _run(self, data: Tensor, batch_sizes: list, state0: tuple):
        """All layers and directions over packed rows ``data`` (sum(batch_sizes), input_size).

        Returns the last layer's outputs (same rows, num_directions * hidden features) and the
        final states, each stacked to (num_layers * num_directions, batch, size).
        """
        step = _STEPS[self.mode]
        directions = 2 if self.bidirectional else 1
        # one tensor per layer and direction; unbind is a single op where indexing would be many
        initial = [s.unbind(0) for s in state0]
        finals = []
        layer_input = data
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                (w_ih, b_ih), recurrent = self._weights(layer, direction)
                # all time steps' input projections in one matrix product, then one view per step
                steps = F.linear(layer_input, w_ih, b_ih).split(batch_sizes, 0)
                k = layer * directions + direction
                out, final = _scan(step, list(steps), tuple(s[k] for s in initial), recurrent,
                                   reverse=direction == 1)
                outputs.append(out)
                finals.append(final)
            layer_input = outputs[0] if directions == 1 else _ops.cat(outputs, 1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        stacked = tuple(_ops.stack([f[i] for f in finals], 0) for i in range(len(state0)))
        return layer_input, stacked


class RNN(RNNBase):
    """A stack of Elman RNN layers: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``
    (``nonlinearity='relu'``: ReLU instead of tanh).

    Input (L, N, input_size) (``batch_first=True``: (N, L, input_size)), (L, input_size) for one
    unbatched sequence, or a PackedSequence. Returns ``(output, h_n)``: output (L, N,
    D * hidden_size) holds the last layer's h_t for every t (D = 2 when bidirectional, the two
    directions concatenated), h_n (num_layers * D, N, hidden_size) every layer's final state.
    ``dropout`` applies to each layer's output but the last, in training mode.

    Example::

        rnn = nn.RNN(10, 20, num_layers=2)
        output, h_n = rnn(gradient.randn(5, 3, 10), gradient.zeros(2, 3, 20))
        output.shape, h_n.shape                   # (5, 3, 20), (2, 3, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None):
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ArgumentValueError(
                f"RNN: Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' "
                "or 'relu'.")
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """A stack of LSTM layers (Hochreiter & Schmidhuber, 1997), with PyTorch's gate order::

        i, f, g, o = split(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)   # 4 * hidden_size
        c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
        h_t = sigmoid(o) * tanh(c_t)              # then h_t W_hr^T when proj_size > 0

    Input as :class:`RNN`; ``hx`` is a tuple ``(h_0, c_0)``. Returns
    ``(output, (h_n, c_n))``: output (L, N, D * H_out), h_n (num_layers * D, N, H_out), c_n
    (num_layers * D, N, hidden_size), where H_out is proj_size if it is > 0, else hidden_size.

    Example::

        lstm = nn.LSTM(10, 20, batch_first=True, bidirectional=True)
        output, (h_n, c_n) = lstm(gradient.randn(3, 5, 10))
        output.shape, h_n.shape, c_n.shape        # (3, 5, 40), (2, 3, 20), (2, 3, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """A stack of GRU layers (Cho et al., 2014), with PyTorch's gate order and reset variant::

        r, z = sigmoid(x_t W_i{r,z}^T + b_i{r,z} + h_{t-1} W_h{r,z}^T + b_h{r,z})
        n = tanh(x_t W_in^T + b_in + r * (h_{t-1} W_hn^T + b_hn))
        h_t = (1 - z) * n + z * h_{t-1}

    Input and outputs as :class:`RNN`.

    Example::

        gru = nn.GRU(10, 20, num_layers=2, dropout=0.1)
        output, h_n = gru(gradient.randn(5, 3, 10))              # (5, 3, 20), (2, 3, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


# ---------------------------------------------------------------------- the cells
class RNNCellBase(Module):
    """What the cells share: ``weight_ih`` (gates * hidden_size, input_size), ``weight_hh``
    (gates * hidden_size, hidden_size), ``bias_ih`` and ``bias_hh`` (gates * hidden_size,), all
    from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)). Use :class:`RNNCell`, :class:`LSTMCell`
    or :class:`GRUCell`; example: ``nn.GRUCell(10, 20)``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        for arg, value in (("input_size", input_size), ("hidden_size", hidden_size),
                           ("num_chunks", num_chunks)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ArgumentTypeError(f"{name}: {arg} should be of type int, got "
                                        f"{type(value).__name__} {value!r}")
            if value < 0:
                raise ArgumentValueError(f"{name}: {arg} must be non-negative, got {value}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        factory = {"device": device, "dtype": dtype}
        gates = num_chunks * hidden_size
        self.weight_ih = Parameter(_ops.empty((gates, input_size), **factory))
        self.weight_hh = Parameter(_ops.empty((gates, hidden_size), **factory))
        if bias:
            self.bias_ih = Parameter(_ops.empty(gates, **factory))
            self.bias_hh = Parameter(_ops.empty(gates, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every weight and bias from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _prepare(self, input, hx, count: int) -> tuple:
        """Check input and hx; returns (input as (N, input_size), states as (N, hidden_size)
        tensors, whether the input was batched)."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise ArgumentTypeError(
                f"{name}: expected a gradient.Tensor input, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ShapeError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D (shape "
                             f"{_shape(input)}); pass (batch, input_size) or (input_size,)")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"{name}: input has inconsistent input_size: got {input.shape[-1]} "
                             f"expected {self.input_size} (input shape {_shape(input)})")
        if input.dtype is not self.weight_ih.dtype and not _autocast.any_enabled():
            raise DTypeError(f"{name}: input dtype ({input.dtype}) does not match weight dtype "
                             f"({self.weight_ih.dtype}); convert the input with "
                             f"input.to({self.weight_ih.dtype}) or the cell with "
                             f"cell.to({input.dtype})")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        batch = x.shape[0]
        if hx is None:
            zeros = _ops.zeros((batch, self.hidden_size), dtype=x.dtype, device=x.device)
            return x, (zeros,) * count, batched
        if count == 2:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2
                    and all(isinstance(t, Tensor) for t in hx)):
                raise ArgumentTypeError(f"{name}: hx should be a tuple (h, c) of two tensors, got "
                                        f"{type(hx).__name__}")
            states, names = tuple(hx), ("hx[0]", "hx[1]")
        else:
            if not isinstance(hx, Tensor):
                raise ArgumentTypeError(f"{name}: hx should be a tensor, got {type(hx).__name__}")
            states, names = (hx,), ("hx",)
        out = []
        for state, what in zip(states, names):
            expected = (batch, self.hidden_size) if batched else (self.hidden_size,)
            if _shape(state) != expected:
                raise ShapeError(f"{name}: expected {what} of shape {expected} "
                                 f"({'batch, ' if batched else ''}hidden_size) for input of shape "
                                 f"{_shape(input)}, got {_shape(state)}")
            out.append(state if batched else state.unsqueeze(0))
        return x, tuple(out), batched

    def _cell(self, step, input, hx, count: int):
        x, state, batched = self._prepare(input, hx, count)
        gi = F.linear(x, self.weight_ih, self.bias_ih)
        new = step(gi, state, self.weight_hh, self.bias_hh)
        return new if batched else tuple(s.squeeze(0) for s in new)


class RNNCell(RNNCellBase):
    """One step of an Elman RNN: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``
    (``nonlinearity='relu'``: ReLU).

    ``forward(input, hx=None)``: input (N, input_size) or (input_size,), hx (N, hidden_size) or
    (hidden_size,), zeros when None; returns h'.

    Example::

        cell = nn.RNNCell(10, 20)
        h = gradient.zeros(3, 20)
        for x in gradient.randn(6, 3, 10):
            h = cell(x, h)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentValueError(
                f"RNNCell: Unknown nonlinearity '{nonlinearity}'. Select from "
                "'tanh' or 'relu'.")
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        step = _tanh_step if self.nonlinearity == "tanh" else _relu_step
        return self._cell(step, input, hx, 1)[0]


class LSTMCell(RNNCellBase):
    """One step of an LSTM (gates i, f, g, o, as :class:`LSTM`): returns ``(h', c')``.

    ``forward(input, hx=None)``: input (N, input_size) or (input_size,), hx a tuple (h, c) of
    (N, hidden_size) or (hidden_size,) tensors, zeros when None.

    Example::

        cell = nn.LSTMCell(10, 20)
        h, c = gradient.zeros(3, 20), gradient.zeros(3, 20)
        for x in gradient.randn(6, 3, 10):
            h, c = cell(x, (h, c))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        return self._cell(_lstm_step, input, hx, 2)


class GRUCell(RNNCellBase):
    """One step of a GRU (gates r, z, n, as :class:`GRU`): returns h'.

    ``forward(input, hx=None)``: as :class:`RNNCell`.

    Example::

        cell = nn.GRUCell(10, 20)
        h = cell(gradient.randn(3, 10))          # from h = 0; (3, 20)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None):
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        return self._cell(_gru_step, input, hx, 1)[0]
