"""gradient.io.gguf: GGUF files read against the gguf package (its writer and reader), and bad
files (truncated, wrong magic, corrupt counts, offsets and types) refused with a clear error."""

import os
import struct

import numpy as np
import pytest

from gradient.errors import FileFormatError
from gradient.io.gguf import GGUFReader, gguf_metadata
from gradient.quant import GGMLType, UnsupportedQuantTypeError

from ..quant.gguf_fixtures import gguf, requires_smollm2, smollm2_path, write_gguf

V = gguf.GGUFValueType
T = gguf.GGMLQuantizationType

KV = [
    ("general.name", "tiny test model", V.STRING),
    ("test.u8", 200, V.UINT8), ("test.i8", -100, V.INT8), ("test.u16", 60000, V.UINT16),
    ("test.i16", -30000, V.INT16), ("test.u32", 4_000_000_000, V.UINT32),
    ("test.i32", -2_000_000_000, V.INT32), ("test.f32", 0.1, V.FLOAT32),
    ("test.bool", True, V.BOOL), ("test.u64", 2**63 + 5, V.UINT64), ("test.i64", -2**62, V.INT64),
    ("test.f64", 0.1, V.FLOAT64), ("test.unicode", "héllo 世界 🙂\n", V.STRING),
    ("test.empty", "", V.STRING),
    ("test.strings", ["a", "", "Ġthe", "<|im_end|>"], V.ARRAY, V.STRING),
    ("test.ints", [1, -2, 3], V.ARRAY, V.INT32),
    ("test.floats", [0.5, -1.25], V.ARRAY, V.FLOAT32),
    ("test.bools", [True, False, True], V.ARRAY, V.BOOL),
]


def tensors(seed=0):
    rng = np.random.default_rng(seed)
    return [("a.weight", rng.standard_normal((3, 64)), T.Q8_0),
            ("b.weight", rng.standard_normal((2, 256)), T.Q4_0),
            ("norm.weight", rng.standard_normal(7), T.F32),
            ("c.weight", rng.standard_normal((2, 3, 32)), T.F16),
            ("d.weight", rng.integers(0, 256, (2, 210), dtype=np.uint8), T.Q6_K)]


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    return write_gguf(tmp_path_factory.mktemp("gguf") / "small.gguf", "llama", KV, tensors())


def test_metadata_and_tensors_match_the_gguf_package(small_file):
    ref = gguf.GGUFReader(small_file)
    with GGUFReader(small_file) as f:
        assert f.version == 3 and f.alignment == 32
        expected = {k: v.contents() for k, v in ref.fields.items() if not k.startswith("GGUF.")}
        assert list(f.metadata) == list(expected)
        for key, value in expected.items():
            if key in ("test.f32", "test.floats"):     # stored as float32
                assert np.array_equal(np.float32(f.metadata[key]), np.float32(value)), key
            else:
                assert f.metadata[key] == value and type(f.metadata[key]) is type(value), key
        assert f.metadata["test.f64"] == 0.1 and f.metadata["test.bool"] is True
        assert f.metadata["test.bools"] == [True, False, True]
        assert list(f.tensors) == [t.name for t in ref.tensors]
        for t in ref.tensors:
            info = f.tensors[t.name]
            assert info.offset == t.data_offset and info.nbytes == t.n_bytes
            assert info.shape == tuple(int(d) for d in reversed(t.shape.tolist()))
            assert info.ggml_type == int(t.tensor_type) and info.type_name == t.tensor_type.name
            assert np.array_equal(f.raw(t.name), np.asarray(t.data).reshape(-1).view(np.uint8))
            ours = f.dequantize(t.name)
            theirs = gguf.quants.dequantize(t.data, t.tensor_type).reshape(info.shape)
            assert ours.dtype == np.float32
            assert np.array_equal(ours.view(np.uint32), theirs.astype(np.float32).view(np.uint32))
        assert f.tensors["c.weight"].shape == (2, 3, 32)
        assert "architecture='llama'" in repr(f) and "5 tensors" in repr(f)
    assert gguf_metadata(small_file)["general.architecture"] == "llama"


def test_custom_alignment(tmp_path):
    path = write_gguf(tmp_path / "aligned.gguf", "llama", [], tensors(1), alignment=64)
    with GGUFReader(path) as f:
        assert f.alignment == 64
        assert all(info.offset % 64 == 0 for info in f.tensors.values())
        assert f.dequantize("norm.weight").shape == (7,)


def test_lookups_and_closing(small_file):
    f = GGUFReader(small_file)
    with pytest.raises(KeyError, match="no tensor named 'nope'"):
        f.raw("nope")
    norm = f.dequantize("norm.weight")
    f.close()
    assert norm.sum() == norm.sum()                     # arrays outlive the reader
    with pytest.raises(ValueError, match="closed"):
        f.raw("a.weight")
    with pytest.raises(FileNotFoundError):
        GGUFReader(os.path.join(os.path.dirname(small_file), "missing.gguf"))


# ----------------------------------------------------------------------------- bad files
def test_every_truncation_is_refused(small_file, tmp_path):
    data = open(small_file, "rb").read()
    with GGUFReader(small_file) as f:
        end_of_data = max(t.offset + t.nbytes for t in f.tensors.values())
        data_start = f.data_start
    assert len(data) - 32 < end_of_data <= len(data)   # the writer pads the end
    cut = str(tmp_path / "cut.gguf")
    with open(cut, "wb") as f:
        f.write(data)
    # every length inside the header, then every 7th byte of the tensor data (cutting the
    # same file shorter and shorter: rewriting it each time is 100 times slower)
    lengths = [*range(data_start), *range(data_start, end_of_data, 7), end_of_data - 1]
    for n in sorted(lengths, reverse=True):
        os.truncate(cut, n)
        try:
            GGUFReader(cut)
        except FileFormatError as e:
            assert str(e).startswith(cut), n
            assert n < 24 or "truncated" in str(e) or "more than" in str(e), (n, str(e))
        else:
            raise AssertionError(f"a file cut to {n} of {end_of_data} bytes was accepted")


def test_corrupt_bytes_never_escape_as_other_errors(small_file, tmp_path):
    """Random byte changes in the header: a clean parse or a FileFormatError, nothing else."""
    data = bytearray(open(small_file, "rb").read())
    with GGUFReader(small_file) as f:
        header_end = f.data_start
    rng = np.random.default_rng(0)
    bad = tmp_path / "bad.gguf"
    refused = 0
    for _ in range(150):
        corrupt = bytearray(data)
        for at in rng.integers(4, header_end, size=rng.integers(1, 4)):
            corrupt[at] = rng.integers(0, 256)
        bad.write_bytes(bytes(corrupt))
        try:
            with GGUFReader(bad) as f:
                for name in f.tensors:
                    f.dequantize(name)
        except FileFormatError:
            refused += 1
    assert refused > 25


def _string(s: bytes) -> bytes:
    return struct.pack("<Q", len(s)) + s


def raw_gguf(kv=(), tensors=(), version=3, magic=b"GGUF", data=b"", n_kv=None, n_tensors=None):
    """GGUF bytes written by hand. kv: (key, type id, packed value); tensors: (name, dims, type
    id, offset). The data section starts at the next multiple of 32."""
    out = magic + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                              len(kv) if n_kv is None else n_kv)
    for key, vtype, value in kv:
        out += _string(key) + struct.pack("<I", vtype) + value
    for name, dims, ttype, offset in tensors:
        out += _string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        out += struct.pack("<IQ", ttype, offset)
    out += b"\0" * (-len(out) % 32)
    return out + data


ONE_F32 = [(b"w", [8], 0, 0)]


@pytest.mark.parametrize("content, message", [
    (b"", "shorter than the 24-byte GGUF header"),
    (b"GGUF\x03\x00\x00\x00", "shorter than the 24-byte GGUF header"),
    (b"\x80\x04" + b"\0" * 40, "not a GGUF file.*pickle"),
    (b"PK\x03\x04" + b"\0" * 40, "not a GGUF file.*zip"),
    (struct.pack("<Q", 20) + b'{"a": 1}' + b"\0" * 20, "not a GGUF file.*safetensors"),
    (raw_gguf(magic=b"GGUG"), r"starts with b'GGUG', not the magic b'GGUF'"),
    (raw_gguf(version=1), "GGUF version 1 is not supported"),
    (raw_gguf(version=3 << 24), "big-endian"),
    (raw_gguf(n_kv=2**40), "1099511627776 metadata entries, more than the file"),
    (raw_gguf(n_tensors=2**33), "tensors, more than the file"),
    (raw_gguf(kv=[(b"k", 4, struct.pack("<I", 1)), (b"k", 4, struct.pack("<I", 2))]),
     "the metadata key 'k' appears twice"),
    (raw_gguf(kv=[(b"k", 13, b"\0" * 8)]), "value type 13, which GGUF does not define"),
    (raw_gguf(kv=[(b"k", 9, struct.pack("<IQ", 4, 2**40))]),
     "truncated: metadata 'k' is an array of 1099511627776 UINT32 values"),
    (raw_gguf(kv=[(b"k", 8, struct.pack("<Q", 2**62) + b"abc")]), "truncated: metadata 'k'"),
    (raw_gguf(kv=[(b"\xff\xfe", 4, b"\0" * 4)]), "not valid UTF-8"),
    (raw_gguf(kv=[(b"k", 9, struct.pack("<IQ", 8, 1) + _string(b"\xc3"))]),
     "item 0 of metadata 'k' is not valid UTF-8"),
    (raw_gguf(kv=[(b"general.alignment", 4, struct.pack("<I", 24))]),
     "general.alignment is 24; expected a power of two"),
    (raw_gguf(tensors=[(b"w", [1, 2, 3, 4, 5], 0, 0)]), "'w' has 5 dimensions"),
    (raw_gguf(tensors=[(b"w", [2**40, 2**40], 0, 0)], data=b"\0" * 64), "too large for the file"),
    (raw_gguf(tensors=ONE_F32, data=b"\0" * 16), r"truncated: tensor 'w' \(F32, 32 bytes"),
    (raw_gguf(tensors=[(b"w", [8], 0, 8)], data=b"\0" * 64), "not a multiple of the alignment"),
    (raw_gguf(tensors=[(b"w", [48], 2, 0)], data=b"\0" * 64), "rows of 48 values, not a multiple"),
    (raw_gguf(tensors=[(b"w", [16], 0, 0), (b"v", [8], 0, 32)], data=b"\0" * 96),
     "the data of tensors 'w' and 'v' overlap"),
    (raw_gguf(tensors=[(b"w", [8], 0, 0), (b"w", [8], 0, 32)], data=b"\0" * 64),
     "two tensors are named 'w'"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(FileFormatError, match=message) as info:
        GGUFReader(path)
    assert str(info.value).startswith(str(path))


def test_a_hand_written_file_reads():
    """The hand-written layout above is right (so the errors above are about what they say)."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ok.gguf")
        values = np.arange(8, dtype=np.float32)
        with open(path, "wb") as f:
            f.write(raw_gguf(kv=[(b"k", 8, _string("é".encode()))], tensors=ONE_F32,
                             data=values.tobytes()))
        with GGUFReader(path) as r:
            assert r.metadata == {"k": "é"}
            assert np.array_equal(r.dequantize("w"), values)


def test_unknown_tensor_types_name_the_tensor_and_the_type_id(tmp_path):
    path = tmp_path / "unknown.gguf"
    path.write_bytes(raw_gguf(tensors=[(b"blk.0.attn_q.weight", [256], 77, 0)], data=b"\0" * 64))
    with pytest.raises(UnsupportedQuantTypeError, match=r"tensor 'blk.0.attn_q.weight' has GGML type id 77"):
        GGUFReader(path)
    # a type GGML defines but gradient does not dequantize: the file opens, the tensor does not
    path.write_bytes(raw_gguf(tensors=[(b"blk.0.ffn_up.weight", [256], int(GGMLType.IQ2_XXS), 0)],
                              data=b"\0" * 96))
    with GGUFReader(path) as f:
        assert f.tensors["blk.0.ffn_up.weight"].type_name == "IQ2_XXS"
        with pytest.raises(UnsupportedQuantTypeError,
                           match=r"bad|unknown\.gguf: blk\.0\.ffn_up\.weight: cannot dequantize GGML type IQ2_XXS \(type id 16\)"):
            f.dequantize("blk.0.ffn_up.weight")


# ----------------------------------------------------------------------------- the real file
@requires_smollm2
def test_real_file_matches_the_gguf_package():
    path = smollm2_path()
    ref = gguf.GGUFReader(path)
    with GGUFReader(path) as f:
        for key, field in ref.fields.items():
            if key.startswith("GGUF."):
                continue
            value = field.contents()
            assert f.metadata[key] == value or np.float32(f.metadata[key]) == np.float32(value), key
        assert len(f.metadata["tokenizer.ggml.tokens"]) == 49152
        types = set()
        for t in ref.tensors:
            info = f.tensors[t.name]
            assert (info.offset, info.nbytes, info.ggml_type) == (t.data_offset, t.n_bytes, int(t.tensor_type))
            # every type in the file, on a sample of tensors: the embedding, the first and the
            # last block
            if t.name.startswith(("token_embd", "blk.0.", "blk.29.", "output")):
                types.add(info.type_name)
                expected = gguf.quants.dequantize(t.data, t.tensor_type).reshape(info.shape)
                assert np.array_equal(f.dequantize(t.name).view(np.uint32),
                                      expected.view(np.uint32)), t.name
        assert types == {"Q8_0", "Q4_1", "F32"}
