"""Quantized Hugging Face checkpoints (gradient.quant.formats): compressed-tensors against the
compressed-tensors library and transformers (the peer writes, gradient reads the same
dequantized weights bit for bit and the same logits; gradient writes, the peer reads the same
weights), and GPTQ's and AWQ's packings against transcriptions of their reference packers
(AutoGPTQ's and AutoAWQ's loops), with GPTQ's activation order."""

import json
import os

import numpy as np
import pytest

import gradient
from gradient.errors import FileFormatError
from gradient.models import LlamaConfig, LlamaForCausalLM
from gradient.quant import WeightOnlyLinear, gptq, quantize, smoothquant
from gradient.quant.formats.packing import pack_words, unpack_words

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

LAYERS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
          "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")
IDS = np.array([[1, 5, 9, 20, 33, 7, 64, 2]])


def tiny_hf_llama(seed=0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return transformers.LlamaForCausalLM(config).eval()


# ----------------------------------------------------------------------------- compressed-tensors
def peer_checkpoint(directory, scheme):
    """A tiny LLaMA quantized and saved by the compressed-tensors library: ``scheme`` "w4-sym",
    "w4-asym", "w3-sym", "w3-asym" (groups of 32, pack-quantized), "w8-packed" (int8 per
    channel, pack-quantized: W8A16) or "w8a8" (int8 per channel, dynamic int8 per token)."""
    ct = pytest.importorskip("compressed_tensors")
    from compressed_tensors.compressors import ModelCompressor
    from compressed_tensors.quantization import (QuantizationArgs, QuantizationConfig,
                                                 QuantizationScheme, apply_quantization_config)
    model = tiny_hf_llama()
    if scheme == "w8a8":
        weights = QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="channel")
        acts = QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="token",
                                dynamic=True)
        fmt = "int-quantized"
    elif scheme == "w8-packed":
        weights = QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="channel")
        acts, fmt = None, "pack-quantized"
    else:
        bits = int(scheme[1])
        weights = QuantizationArgs(num_bits=bits, type="int", symmetric=scheme.endswith("-sym"),
                                   strategy="group", group_size=32)
        acts, fmt = None, "pack-quantized"
    config = QuantizationConfig(config_groups={"group_0": QuantizationScheme(
        targets=["Linear"], weights=weights, input_activations=acts)}, ignore=["lm_head"],
        format=fmt)
    apply_quantization_config(model, config)
    for m in model.modules():
        if not hasattr(m, "weight_scale"):
            continue
        w = m.weight.data.float()
        if scheme.startswith("w8"):
            m.weight_scale.data = (w.abs().amax(-1, keepdim=True) / 127).to(m.weight_scale.dtype)
            continue
        g = w.reshape(w.shape[0], -1, 32)
        levels = 1 << bits
        if scheme.endswith("-sym"):
            m.weight_scale.data = (g.abs().amax(-1) / (levels / 2 - 0.5)).to(
                m.weight_scale.dtype)
        else:
            lo, hi = g.amin(-1).clamp(max=0), g.amax(-1).clamp(min=0)
            s = (hi - lo) / (levels - 1)
            m.weight_scale.data = s.to(m.weight_scale.dtype)
            m.weight_zero_point.data = (-levels // 2 - torch.round(lo / s)).clamp(
                -levels // 2, levels // 2 - 1).to(m.weight_zero_point.dtype)
    compressor = ModelCompressor.from_pretrained_model(model, quantization_format=fmt)
    compressor.compress_model(model)
    model.save_pretrained(directory)
    compressor.update_config(directory)
    assert ct is not None


def peer_load(directory):
    """transformers' own CPU path: the checkpoint decompressed to float32 weights."""
    config = transformers.CompressedTensorsConfig(run_compressed=False)
    return transformers.AutoModelForCausalLM.from_pretrained(
        directory, dtype=torch.float32, quantization_config=config).eval()


@pytest.mark.parametrize("scheme", ["w4-sym", "w4-asym", "w3-sym", "w3-asym", "w8-packed",
                                    "w8a8"])
def test_checkpoints_the_peer_wrote_load_with_its_weights_and_logits(tmp_path, scheme):
    peer_checkpoint(tmp_path, scheme)
    ours = gradient.models.from_pretrained(tmp_path)
    peer = peer_load(tmp_path)
    bits = int(scheme[1])
    for i in range(2):
        for name in LAYERS:
            layer = ours.get_submodule(f"model.layers.{i}.{name}")
            assert isinstance(layer, WeightOnlyLinear)
            assert layer.bits == (8 if bits == 8 else 4)
            assert layer.packed_weight().code_bits == bits
            # 3-bit codes keep their zero points (4 where symmetric) in the int4 layout
            assert layer.zero_point == (scheme.endswith("-asym") or bits == 3)
            assert layer.activations == ("int8_per_token" if scheme == "w8a8" else "float32")
            theirs = peer.get_submodule(f"model.layers.{i}.{name}").weight.detach().numpy()
            np.testing.assert_array_equal(layer.dequantize().numpy(), theirs)
    assert type(ours.lm_head) is gradient.nn.Linear
    with torch.no_grad():
        expected = peer(torch.tensor(IDS)).logits.numpy()
    if scheme == "w8a8":             # the peer's CPU path runs float activations
        for m in ours.modules():
            if isinstance(m, WeightOnlyLinear):
                m.activations = "float32"
    with gradient.no_grad():
        got = ours(gradient.tensor(IDS)).logits.numpy()
    assert np.abs(got - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def gradient_model(seed=0):
    gradient.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)).eval()


@pytest.mark.parametrize("how", ["int4-g32-zp", "int4-g64", "int8", "smoothquant",
                                 "gptq3-g32"])
def test_models_gradient_quantized_load_in_the_peer(tmp_path, how):
    pytest.importorskip("compressed_tensors")
    model = gradient_model()
    calib = [np.arange(32) % 96, (np.arange(32) * 7) % 96]
    if how == "smoothquant":
        q = smoothquant(model, calib, progress=False)
    elif how == "gptq3-g32":
        q = gptq(model, calib, bits=3, group_size=32, progress=False)
    else:
        bits, group, zp = {"int4-g32-zp": (4, 32, True), "int4-g64": (4, 64, False),
                           "int8": (8, None, False)}[how]
        q = quantize(model, f"int{bits}", group_size=group, zero_point=zp)
    q.save_pretrained(tmp_path)
    config = json.load(open(os.path.join(tmp_path, "config.json")))["quantization_config"]
    assert config["quant_method"] == "compressed-tensors" and config["ignore"] == ["lm_head"]
    weights = config["config_groups"]["group_0"]["weights"]
    assert weights["num_bits"] == {"gptq3-g32": 3, "int8": 8, "smoothquant": 8}.get(how, 4)
    peer = peer_load(tmp_path)
    for i in range(2):
        for name in LAYERS:
            layer = q.get_submodule(f"model.layers.{i}.{name}")
            # the peer computes (q - z) * s in the scales' dtype (gradient's are float16),
            # gradient in float32: the same values, rounded to float16 on the peer's side
            ours = layer.dequantize().numpy().astype(layer.packed_weight().scales.dtype)
            theirs = peer.get_submodule(f"model.layers.{i}.{name}").weight.detach().numpy()
            np.testing.assert_array_equal(ours.astype(np.float32), theirs)
    again = gradient.models.from_pretrained(tmp_path)        # and gradient reads it back
    with gradient.no_grad():
        np.testing.assert_array_equal(again(gradient.tensor(IDS)).logits.numpy(),
                                      q(gradient.tensor(IDS)).logits.numpy())


# ----------------------------------------------------------------------------- GPTQ, AWQ
def autogptq_pack(codes, zeros, bits=4):
    """AutoGPTQ's QuantLinear.pack, its loops written as they are: ``codes`` (out, in) and
    ``zeros`` (groups, out) as integers; qweight (in * bits / 32, out), qzeros (groups,
    out * bits / 32), zero points stored less one. 3 bits: 32 codes in three words, two
    codes straddling them."""
    intweight = codes.T.astype(np.uint32)                   # (in, out)
    qweight = np.zeros((intweight.shape[0] // 32 * bits, intweight.shape[1]), np.uint32)
    _autogptq_rows(intweight, qweight, bits)
    z = (zeros - 1).astype(np.uint32) & np.uint32((1 << bits) - 1)
    qzeros = np.zeros((z.shape[0], z.shape[1] // 32 * bits), np.uint32)
    _autogptq_rows(z.T, qzeros.T, bits)                    # the same loop along columns
    return qweight.view(np.int32), qzeros.view(np.int32)


def _autogptq_rows(intweight, qweight, bits):
    i = row = 0
    while row < qweight.shape[0]:
        if bits in (2, 4, 8):
            for j in range(i, i + 32 // bits):
                qweight[row] |= intweight[j] << (bits * (j - i))
            i += 32 // bits
            row += 1
        else:                                               # bits == 3
            for j in range(i, i + 10):
                qweight[row] |= intweight[j] << (3 * (j - i))
            i += 10
            qweight[row] |= intweight[i] << 30
            row += 1
            qweight[row] |= (intweight[i] >> 2) & 1
            i += 1
            for j in range(i, i + 10):
                qweight[row] |= intweight[j] << (3 * (j - i) + 1)
            i += 10
            qweight[row] |= intweight[i] << 31
            row += 1
            qweight[row] |= (intweight[i] >> 1) & 0x3
            i += 1
            for j in range(i, i + 10):
                qweight[row] |= intweight[j] << (3 * (j - i) + 2)
            i += 10
            row += 1


def autoawq_pack(codes, zeros):
    """AutoAWQ's WQLinear_GEMM.from_linear packing, as written: eight 4-bit codes of output
    columns ``[0, 2, 4, 6, 1, 3, 5, 7]`` of each eight, per word."""
    order_map = [0, 2, 4, 6, 1, 3, 5, 7]
    intweight = codes.T.astype(np.uint32)                   # (in, out)
    qweight = np.zeros((intweight.shape[0], intweight.shape[1] // 8), np.uint32)
    for col in range(intweight.shape[1] // 8):
        for i in range(8):
            qweight[:, col] |= intweight[:, col * 8 + order_map[i]] << (i * 4)
    z = zeros.astype(np.uint32)
    qzeros = np.zeros((z.shape[0], z.shape[1] // 8), np.uint32)
    for col in range(z.shape[1] // 8):
        for i in range(8):
            qzeros[:, col] |= z[:, col * 8 + order_map[i]] << (i * 4)
    return qweight.view(np.int32), qzeros.view(np.int32)


def save_checkpoint(directory, model, method, layers, **config):
    """A gradient model's float tensors plus, per layer, the quantized tensors given."""
    from gradient.io import save_safetensors
    tensors = {n: t.detach().numpy() for n, t in model.state_dict().items()
               if n.rsplit(".", 1)[0] not in layers}
    for name, arrays in layers.items():
        tensors.update({f"{name}.{k}": v for k, v in arrays.items()})
    save_safetensors(tensors, os.path.join(directory, "model.safetensors"), {"format": "pt"})
    c = model.config.to_dict()
    c["quantization_config"] = {"quant_method": method, **config}
    json.dump(c, open(os.path.join(directory, "config.json"), "w"))


def random_codes(rng, out, k, group, bits=4):
    codes = rng.integers(0, 1 << bits, (out, k))
    zeros = rng.integers(1, 1 << bits, (k // group, out))
    scales = rng.uniform(0.005, 0.02, (k // group, out)).astype(np.float16)
    return codes, zeros, scales


def expected_weight(codes, zeros, scales, g_idx):
    """``(q - z) * s`` of every weight, its channel's group from g_idx, in float32."""
    z = zeros[g_idx].T.astype(np.float32)                   # (out, in)
    s = scales[g_idx].T.astype(np.float32)
    return (codes.astype(np.float32) - z) * s


@pytest.mark.parametrize("method,desc_act,bits", [("gptq", False, 4), ("gptq", True, 4),
                                                  ("gptq", False, 3), ("gptq", True, 3),
                                                  ("gptq", False, 2), ("awq", False, 4)])
def test_gptq_and_awq_checkpoints_load_as_their_packers_wrote_them(tmp_path, method, desc_act,
                                                                   bits):
    model = gradient_model(1)
    rng = np.random.default_rng(2)
    layers, expected = {}, {}
    for i in range(2):
        for name in LAYERS:
            full = f"model.layers.{i}.{name}"
            linear = model.get_submodule(full)
            out, k = linear.out_features, linear.in_features
            codes, zeros, scales = random_codes(rng, out, k, 32, bits)
            g_idx = np.arange(k) // 32
            if desc_act:                                       # groups in activation order
                g_idx = g_idx[rng.permutation(k)]
            if method == "gptq":
                qweight, qzeros = autogptq_pack(codes, zeros, bits)
                layers[full] = {"qweight": qweight, "qzeros": qzeros, "scales": scales,
                                "g_idx": g_idx.astype(np.int32)}
            else:
                qweight, qzeros = autoawq_pack(codes, zeros)
                layers[full] = {"qweight": qweight, "qzeros": qzeros, "scales": scales}
            expected[full] = expected_weight(codes, zeros, scales, g_idx)
    config = ({"bits": bits, "group_size": 32, "desc_act": desc_act, "sym": False}
              if method == "gptq" else {"bits": 4, "group_size": 32, "zero_point": True,
                                        "version": "gemm"})
    save_checkpoint(tmp_path, model, method, layers, **config)
    ours = gradient.models.from_pretrained(tmp_path)
    for full, weight in expected.items():
        layer = ours.get_submodule(full)
        assert isinstance(layer, WeightOnlyLinear) and layer.zero_point
        assert layer.packed_weight().code_bits == bits
        assert (layer.input_order is not None) == desc_act
        np.testing.assert_array_equal(layer.dequantize().numpy(), weight)
        # the product reads the channels in the codes' order
        x = rng.standard_normal((3, layer.in_features)).astype(np.float32)
        with gradient.no_grad():
            y = layer(gradient.tensor(x)).numpy()
        np.testing.assert_allclose(y, x @ weight.T, rtol=1e-5, atol=1e-5)
    # and written back in the same format, the same tensors
    out_dir = tmp_path / "again"
    ours.save_pretrained(out_dir, quantization_format=method)
    from gradient.io import SafetensorsReader
    with SafetensorsReader(os.path.join(out_dir, "model.safetensors")) as reader:
        for full, arrays in layers.items():
            for suffix, array in arrays.items():
                np.testing.assert_array_equal(reader.read(f"{full}.{suffix}"), array)


def test_gptq_round_trip_of_a_gradient_model_and_its_refusals(tmp_path):
    model = gradient_model(2)
    q = quantize(model, "int4", group_size=32)                # symmetric: zero points 8
    q.save_pretrained(tmp_path, quantization_format="gptq")
    config = json.load(open(os.path.join(tmp_path, "config.json")))["quantization_config"]
    assert config == {"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": False,
                      "sym": True, "checkpoint_format": "gptq"}
    again = gradient.models.from_pretrained(tmp_path)
    with gradient.no_grad():
        np.testing.assert_array_equal(again(gradient.tensor(IDS)).logits.numpy(),
                                      q(gradient.tensor(IDS)).logits.numpy())
    # GPTQ's own 3-bit weights are written in 3 bits, and read back the same
    q3 = gptq(model, [np.arange(32) % 96], bits=3, group_size=32, progress=False)
    q3.save_pretrained(tmp_path / "gptq3", quantization_format="gptq")
    config = json.load(open(tmp_path / "gptq3" / "config.json"))["quantization_config"]
    assert config["bits"] == 3 and not config["sym"]
    again = gradient.models.from_pretrained(tmp_path / "gptq3")
    layer = again.model.layers[0].mlp.down_proj
    assert "bits=3" in repr(layer) and layer.packed_weight().code_bits == 3
    np.testing.assert_array_equal(layer.dequantize().numpy(),
                                  q3.model.layers[0].mlp.down_proj.dequantize().numpy())
    with gradient.no_grad():
        np.testing.assert_array_equal(again(gradient.tensor(IDS)).logits.numpy(),
                                      q3(gradient.tensor(IDS)).logits.numpy())
    from gradient.quant.formats import gptq as gptq_format
    from gradient.quant.gptq import round_to_nearest
    rows_of_48 = round_to_nearest(np.random.default_rng(0).standard_normal((48, 64)), bits=3,
                                  group_size=32)
    with pytest.raises(FileFormatError, match="not a multiple of 32 both ways"):
        gptq_format.write_layer(rows_of_48, None)
    from gradient.quant.formats import awq as awq_format
    with pytest.raises(FileFormatError, match="AWQ checkpoints hold 4-bit"):   # 3-bit codes
        awq_format.write_layer(rows_of_48, None)
    rows_of_12 = round_to_nearest(np.random.default_rng(0).standard_normal((12, 64)), bits=4,
                                  group_size=32)
    with pytest.raises(FileFormatError, match="not a multiple of 8"):
        awq_format.write_layer(rows_of_12, None)
    with pytest.raises(FileFormatError, match="write them as compressed-tensors"):
        mixed = quantize(model, "int4", group_size=32, skip=("lm_head", "*.down_proj"))
        mixed.model.layers[0].mlp.down_proj = WeightOnlyLinear.from_linear(
            model.model.layers[0].mlp.down_proj, bits=8)
        mixed.save_pretrained(tmp_path / "mixed", quantization_format="gptq")
    with pytest.raises(FileFormatError, match="AWQ checkpoints hold 4-bit"):
        quantize(model, "int8").save_pretrained(tmp_path / "awq8", quantization_format="awq")
    with pytest.raises(gradient.quant.UnsupportedQuantTypeError, match="quant_method 'bnb'"):
        quantize(model, "int8").save_pretrained(tmp_path / "bnb", quantization_format="bnb")


@pytest.mark.parametrize("bits,axis,order", [(4, 0, None), (4, 1, (0, 2, 4, 6, 1, 3, 5, 7)),
                                             (8, 1, None), (2, 0, None), (3, 0, None),
                                             (3, 1, None)])
def test_packing_round_trips(bits, axis, order):
    rng = np.random.default_rng(bits)
    shape = [16, 24]
    shape[axis] = 64
    codes = rng.integers(0, 1 << bits, shape).astype(np.uint8)
    words = pack_words(codes, bits, axis, order)
    assert words.dtype == np.int32 and words.shape[axis] == 64 * bits // 32
    np.testing.assert_array_equal(unpack_words(words, bits, axis, order), codes)
    # compressed-tensors' older packing: 32 // bits codes to a word, the top bits empty
    old = pack_words(codes, bits, axis, order, dense=False)
    assert old.shape[axis] == -(-64 // (32 // bits))
    np.testing.assert_array_equal(unpack_words(old, bits, axis, order, dense=False, count=64),
                                  codes)


@pytest.mark.parametrize("bits", range(1, 9))
def test_packing_is_the_compressed_tensors_librarys(bits):
    """Every width against the library's own packer, at counts that leave a word part full;
    and the reader's refusal of words that do not hold the weight's shape."""
    helpers = pytest.importorskip("compressed_tensors.compressors.pack_quantized.helpers")
    rng = np.random.default_rng(bits)
    for count in (1, 33, 100):
        for axis in (0, 1):
            shape = (count, 5) if axis == 0 else (5, count)
            codes = rng.integers(0, 1 << bits, shape)
            signed = torch.tensor(codes - (1 << (bits - 1)), dtype=torch.int8)
            theirs = helpers.pack_to_int32(signed, bits, packed_dim=axis).numpy()
            ours = pack_words(codes, bits, axis)
            np.testing.assert_array_equal(ours, theirs)
            np.testing.assert_array_equal(unpack_words(theirs, bits, axis, count=count), codes)
    with pytest.raises(gradient.errors.ShapeError, match="do not hold"):
        unpack_words(np.zeros((5, 4), np.int32), bits, axis=1, count=32 * 4 // bits + 40)


def test_compressed_tensors_group_activation_order_reads_weight_g_idx():
    """``actorder: "group"``: the codes in the layer's channel order, each channel's group in
    ``weight_g_idx``; the layer reads x in the order that makes the groups consecutive."""
    from gradient.quant.formats import compressed_tensors as ct
    rng = np.random.default_rng(5)
    out, k = 16, 64
    codes, zeros, scales = random_codes(rng, out, k, 32)
    g_idx = (np.arange(k) // 32)[rng.permutation(k)]
    config = {"config_groups": {"g": {"targets": ["Linear"], "weights": {
        "num_bits": 4, "type": "int", "symmetric": False, "strategy": "group",
        "group_size": 32, "actorder": "group"}}}}
    tensors = {"weight_packed": pack_words(codes, 4, axis=1),
               "weight_scale": np.ascontiguousarray(scales.T),
               "weight_zero_point": pack_words(zeros.T, 4, axis=0),
               "weight_shape": np.array([out, k]), "weight_g_idx": g_idx.astype(np.int32)}
    packed, order, activations = ct.read_layer(config, tensors, "layer")
    layer = WeightOnlyLinear(packed, input_order=order)
    expected = expected_weight(codes, zeros, scales, g_idx)
    np.testing.assert_array_equal(layer.dequantize().numpy(), expected)
    x = rng.standard_normal((2, k)).astype(np.float32)
    with gradient.no_grad():
        np.testing.assert_allclose(layer(gradient.tensor(x)).numpy(), x @ expected.T,
                                   rtol=1e-5, atol=1e-5)
    tensors["weight_g_idx"] = np.zeros(k, np.int32)           # every channel in group 0
    with pytest.raises(FileFormatError, match="each group 32 channels"):
        ct.read_layer(config, tensors, "layer")


def test_a_model_of_ggml_blocks_is_not_saved_without_its_weights(tmp_path):
    """GGML layers (a GGUF file's) have no safetensors form: refused, not written half."""
    model = gradient_model(3)
    q = quantize(model, "Q4_0")
    with pytest.raises(gradient.quant.UnsupportedQuantTypeError, match="save_gguf"):
        q.save_pretrained(tmp_path)
    assert not os.path.exists(os.path.join(tmp_path, "model.safetensors"))


def _malformed(tensors):
    """Each tensor emptied, cut short, flattened, given a leading axis, made float, dropped."""
    for name, a in tensors.items():
        a = np.asarray(a)
        yield f"{name} empty", {**tensors, name: a[:0]}
        yield f"{name} cut short", {**tensors, name: a[..., :-1]}
        yield f"{name} flat", {**tensors, name: a.reshape(-1)}
        yield f"{name} 3-d", {**tensors, name: a[None]}
        yield f"{name} float", {**tensors, name: a.astype(np.float32)}
        yield f"{name} missing", {n: v for n, v in tensors.items() if n != name}


def test_malformed_3_bit_layers_are_refused_with_the_formats_error():
    """A checkpoint's tensors of the wrong shape or type: FileFormatError (or the missing
    tensor's KeyError, which read_layers words as one), never a crash from deep inside."""
    from gradient.quant.formats import compressed_tensors as ct
    from gradient.quant.formats import gptq as gptq_format
    rng = np.random.default_rng(7)
    out, k = 64, 128
    codes, zeros = rng.integers(0, 8, (out, k)), rng.integers(0, 8, (out, 4))
    scales = rng.uniform(0.01, 0.02, (out, 4)).astype(np.float16)
    config = {"config_groups": {"g": {"targets": ["Linear"], "weights": {
        "num_bits": 3, "type": "int", "symmetric": False, "strategy": "group",
        "group_size": 32}}}}
    layer = {"weight_packed": pack_words(codes, 3, 1), "weight_scale": scales,
             "weight_zero_point": pack_words(zeros, 3, 0), "weight_shape": np.array([out, k])}
    cases = [(ct.read_layer, config, how, t) for how, t in _malformed(layer)]
    cases += [(ct.read_layer, config, f"weight_shape {s}", {**layer, "weight_shape": s})
              for s in (np.array([0, 0]), np.array([out, k - 3]), np.array([out, k, 1]))]
    g_layer = {"qweight": pack_words(codes.T, 3, 0), "qzeros": pack_words(zeros.T, 3, 1),
               "scales": scales.T.copy(), "g_idx": (np.arange(k) // 32).astype(np.int32)}
    cases += [(gptq_format.read_layer, {"bits": 3, "group_size": 32}, how, t)
              for how, t in _malformed(g_layer)]
    refused = 0
    for read, cfg, how, tensors in cases:
        try:
            read(cfg, tensors, "layer")
        except (FileFormatError, KeyError):
            refused += 1
        except Exception as e:                               # noqa: BLE001
            pytest.fail(f"{how}: {type(e).__name__}: {e}")
    assert refused > len(cases) // 2                        # most of them cannot be read
