"""Every op name a backend may implement with a fast kernel, its signature and what it computes.

A kernel returns None (or False, for the in-place ones that return a flag) to decline an input
it does not handle; the op then composes the same result from the backend's primitives. Arrays
are the backend's raw arrays; "None" in a signature marks an argument that may be absent.
"""

from .registry import declare

# ----------------------------------------------------------------------------- activations
declare("gelu", "(x, approximate) -> y",
        "x * Phi(x), exact ('none') or with the tanh approximation ('tanh')")
declare("gelu_backward", "(grad, x, approximate) -> dx", "the gradient of gelu")
declare("silu", "(x) -> y", "x * sigmoid(x)")
declare("silu_backward", "(grad, x) -> dx", "the gradient of silu")
declare("swiglu", "(gate, up) -> y", "silu(gate) * up")
declare("swiglu_backward", "(grad, gate, up) -> (dgate, dup)", "the gradients of swiglu")
declare("softmax", "(x) -> y", "softmax over the last dimension")
declare("softmax_backward", "(grad, y) -> dx", "the gradient of softmax, from its output")
declare("log_softmax", "(x) -> y", "log_softmax over the last dimension")
declare("log_softmax_backward", "(grad, y) -> dx", "the gradient of log_softmax, from its output")

# ----------------------------------------------------------------------------- norms
declare("layer_norm", "(x, weight, bias, eps) -> (y, mean, rstd)",
        "LayerNorm over the last dimension; weight and bias may be None; mean and rstd "
        "(1 / sqrt(var + eps)), shaped x.shape[:-1], feed layer_norm_backward")
declare("layer_norm_backward", "(grad, x, mean, rstd, weight) -> (dx, dweight, dbias)",
        "the gradients of layer_norm")
declare("rms_norm", "(x, weight, eps) -> (y, rstd)",
        "RMSNorm over the last dimension; weight may be None; rstd feeds rms_norm_backward")
declare("rms_norm_backward", "(grad, x, rstd, weight) -> (dx, dweight)",
        "the gradients of rms_norm (dweight None without a weight)")

# ----------------------------------------------------------------------------- attention
declare("attention_forward", "(q, k, v, scale, causal) -> (out, saved)",
        "softmax(q k^T * scale [+ causal mask]) v over the last two dimensions; saved feeds "
        "attention_backward")
declare("attention_backward", "(grad, q, k, v, out, saved, scale, causal) -> (dq, dk, dv)",
        "the gradients of attention_forward")
declare("decode_attention", "(q, k, v, scale) -> out",
        "query rows (B, Hq, L, D) at the last L of the S positions of k, v (B, Hk, S, D) "
        "(read in place from a KV cache), each row seeing the keys up to its own position, "
        "heads grouped when Hk < Hq: L = 1 a decode step, L = S a causal prompt (a kernel "
        "may take only L = 1 and return None otherwise)")
declare("ragged_decode_attention", "(q, k, v, lengths, scale) -> out",
        "a decode step of sequences at different lengths: query rows (B, Hq, 1, D), row b "
        "seeing the first lengths[b] of the positions of k, v (B, Hk, S, D) (read in place), "
        "each row's arithmetic decode_attention's on its own keys")
declare("paged_decode_attention", "(q, k, v, tables, lengths, block_size, scale) -> out",
        "a decode step of sequences whose keys and values lie in blocks of a pool: query rows "
        "(B, Hq, 1, D), k (n_blocks, Hk, D, block_size: each block's keys transposed), v "
        "(n_blocks, Hk, block_size, D), row b seeing its first lengths[b] "
        "positions, held in blocks tables[b, 0], tables[b, 1], ...; each row's arithmetic "
        "decode_attention's on its own keys")
declare("rotary_embedding", "(x, cos, sin, backward) -> y",
        "x * cos + rotate_half(x) * sin (sin negated for backward)")

# ----------------------------------------------------------------------------- losses
declare("cross_entropy", "(x, target, ignore_index) -> (loss, lse)",
        "per-row cross entropy of logits (rows, classes) against class indices; lse (rows, 2) "
        "feeds cross_entropy_backward")
declare("cross_entropy_backward", "(x, target, lse, scale) -> dx",
        "scale[r] * (softmax(x[r]) - one_hot(target[r]))")

# ----------------------------------------------------------------------------- linear
declare("add_to_rows", "(out, row) -> done",
        "out += row in place, row broadcast over the rows of out: a Linear's bias")
declare("low_precision_linear", "(x, weight, bias) -> y",
        "x @ weight.T (+ bias) in float32 for a bfloat16/float16 weight read in place, or "
        "already rounded once to x's 16-bit type")
declare("float_rows_product", "(x, weight) -> y",
        "x @ weight.T in float32 for a few rows of x and a float32/bfloat16/float16 weight "
        "read once, in place (a decode step's product)")
declare("bfloat16_rows_product", "(x, weight) -> y",
        "x @ weight.T in float32 for a few float32 rows of x rounded to bfloat16 first and a "
        "bfloat16 weight read in place (llama.cpp's product for a BF16 weight)")
declare("quant_matmul", "(x, blocks, qtype, out_features, in_features) -> y",
        "x @ W.T for W stored as GGML blocks of type qtype (its name)")
declare("quant_rows", "(blocks, ids, qtype, num_embeddings, embedding_dim) -> rows",
        "the rows ids of a table stored as GGML blocks, decoded")
declare("grouped_matmul", "(x, codes, scales, zeros, bits, group_size, input_order) -> y",
        "x @ W.T for W as gradient.quant.PackedWeight holds it: int8 or packed int4 codes, a "
        "scale (and for int4 a zero point, or none) per group of group_size inputs; the codes "
        "hold x's columns in input_order when it is given")
declare("interleaved_matmul", "(x, weight, activations) -> y",
        "x @ W.T for W a repacked GGML weight (gradient.quant.InterleavedWeight); activations "
        "'int8' quantizes x as llama.cpp does, 'float32' multiplies exact weights")

# ----------------------------------------------------------------------------- the rest
declare("fma", "(a, b, c, dtype) -> y",
        "a * b + c rounded once into dtype, broadcasting (PyTorch's add with alpha, addcmul "
        "and lerp), computed in float32 for float32 and the 16-bit floats, float64 for float64; "
        "the CPU's also takes out= (an array to write y into: an in-place add_)")
declare("lerp", "(x, end, weight, dtype) -> y",
        "x + weight * (end - x) for a number weight, as PyTorch's CPU kernel computes it "
        "(the difference, then one fused multiply-add from the nearer end); the CPU's also "
        "takes out= (an in-place lerp_)")
declare("round_to_bfloat16", "(x) -> y",
        "float32 x rounded to bfloat16, nearest even (a bfloat16 model's every result)")
declare("half_binary", "(op, a, b) -> y",
        "a + b or a * b (op 'add', 'mul') of two float16 or bfloat16 arrays, computed in "
        "float32 and rounded once, one repeated over the other's leading dimensions")
declare("adam_step", "(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq) -> done",
        "one Adam/AdamW update in place (keyword arguments lr, beta1, beta2, eps, "
        "weight_decay, decoupled_weight_decay, maximize, step)")
declare("sgd_step", "(param, grad, momentum_buffer) -> done",
        "one SGD update in place, and of the momentum buffer (keyword arguments lr, momentum, "
        "dampening, weight_decay, nesterov, maximize, first: the buffer starts this step)")
declare("rmsprop_step", "(param, grad, square_avg, grad_avg, momentum_buffer) -> done",
        "one RMSprop update in place, and of its state (grad_avg None unless centred, "
        "momentum_buffer None without momentum; keyword arguments lr, alpha, eps, "
        "weight_decay, momentum, maximize)")
declare("adagrad_step", "(param, grad, state_sum) -> done",
        "one dense Adagrad update in place, and of the sum of squares (keyword arguments lr, "
        "already decayed, weight_decay, eps, maximize)")
declare("adamax_step", "(param, grad, exp_avg, exp_inf) -> done",
        "one Adamax update in place, and of its state (keyword arguments lr, beta1, beta2, "
        "eps, weight_decay, maximize, step)")
declare("index_add_rows", "(out, ids, values) -> done",
        "out[ids[i]] += values[i] in order: an embedding table's gradient")
declare("joined_pieces", "(pieces, shape, dim, ranges) -> joined",
        "the concatenation of gradient pieces that already share one buffer, without a copy")

# ----------------------------------------------------------------------------- compiled steps
# Ops that have only a compiled form, for captured steps compiled into one loop
# (gradient.kernels.lowering): what the op computes with the backend's primitives, as a
# function a compiled loop can call.
declare("reshape", "(x, shape) -> y", "x reshaped (a view of contiguous x)")
declare("permute", "(x, axes) -> y", "x with its axes permuted (a view)")
declare("add", "(a, b) -> y", "a + b, broadcast")
declare("mul", "(a, b) -> y", "a * b, broadcast")
declare("cast", "(x, dtype) -> y", "x converted to dtype (float32 and 16-bit floats)")
declare("linear", "(x, weight, bias) -> y", "x @ weight.T (+ bias) over x's last dimension")
declare("unbind", "(x, dim) -> slices", "the slices of x along dim (views)")
declare("kv_write", "(cache, layer, key, value) -> (keys, values)",
        "key and value written at a KV cache's next positions of the layer; the filled part "
        "of the layer's buffers")
declare("paged_kv_write", "(cache, layer, key, value) -> (keys, values)",
        "each row's one new key and value (rows, heads, 1, head_dim) written at that row's "
        "next position of a paged KV cache's layer; the layer's pools")
