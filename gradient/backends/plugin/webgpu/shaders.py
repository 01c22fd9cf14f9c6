"""The WebGPU plugin's WGSL compute shaders, as source text with placeholders the plugin
fills in (an expression, element types), and the expressions of the elementwise ops.

Every shader runs one invocation per output element (or row, or block), ``i``, on a 2-D grid
of workgroups of 64 (at most 65,535 per dimension); binding 0 is ``info``, the int32
metadata (sizes, offsets and strides in elements) the plugin writes for each dispatch.

Example::

    >>> source = elementwise(BINARY["add"], "f32", "f32", "f32")
"""

from __future__ import annotations

# unary and binary ops on float32, as WGSL expressions of x (and y)
UNARY = {
    "neg": "-x", "abs": "abs(x)", "exp": "exp(x)", "log": "log(x)", "sqrt": "sqrt(x)",
    "sin": "sin(x)", "cos": "cos(x)", "tanh": "tanh(x)", "sigmoid": "1.0 / (1.0 + exp(-x))",
    "reciprocal": "1.0 / x", "floor": "floor(x)", "ceil": "ceil(x)", "trunc": "trunc(x)",
}
BINARY = {
    "add": "x + y", "sub": "x - y", "mul": "x * y", "div": "x / y", "pow": "power(x, y)",
    # NaN propagates, as in NumPy (WGSL's max/min may drop it)
    "maximum": "select(select(max(x, y), y, is_nan(y)), x, is_nan(x))",
    "minimum": "select(select(min(x, y), y, is_nan(y)), x, is_nan(x))",
}
# on int32 (wrapping, as NumPy's int32 does)
INT_UNARY = {"neg": "-x", "abs": "abs(x)"}
INT_BINARY = {"add": "x + y", "sub": "x - y", "mul": "x * y", "maximum": "max(x, y)",
              "minimum": "min(x, y)"}
# comparisons and logical ops (bool operands) make bools; on float32 a compiler may take !=
# as ordered (false with a NaN: so on llvmpipe), NumPy does not
COMPARE = {"eq": "x == y", "ne": "x != y", "lt": "x < y", "le": "x <= y", "gt": "x > y",
           "ge": "x >= y"}
FLOAT_COMPARE = {**COMPARE, "ne": "x != y || is_nan(x) || is_nan(y)"}
LOGICAL = {"logical_and": "(x != 0u) && (y != 0u)", "logical_or": "(x != 0u) || (y != 0u)",
           "logical_xor": "(x != 0u) != (y != 0u)"}
BOOL_UNARY = {"logical_not": "select(0u, 1u, x == 0u)"}
REDUCE = ("sum", "max", "min")
SILU = "x / (1.0 + exp(-x))"
MATMUL_BLOCK = 4


def compute_type(element: str) -> str:
    """The WGSL type an element of storage type ``element`` is computed in."""
    return "f32" if element == "f16" else element


def as_bool(condition: str) -> str:
    """A WGSL bool expression as a bool element (u32 0 or 1)."""
    return f"select(0u, 1u, {condition})"


def cast(source: str, target: str) -> str:
    """The WGSL expression converting an element x stored as ``source`` (and loaded in its
    compute type) to what is stored as ``target`` (before the store's conversion)."""
    source, target = compute_type(source), target if target == "u32" else compute_type(target)
    if target == "u32":       # to bool: anything not zero (NaN included, as in NumPy)
        return as_bool({"f32": "x != 0.0", "i32": "x != 0", "u32": "x != 0u"}[source])
    return "x" if source == target else f"{target}(x)"


# NaN by its bits: shader compilers may assume x != x is false (WGSL leaves NaN to them)
_IS_NAN = """
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

// NumPy's power (C's powf, and sqrt for y = 0.5 as NumPy takes it): WGSL's pow is
// exp2(y * log2(x)), undefined for x < 0, and llvmpipe's gave 0 for pow(0, -1); the special
// values are taken here
fn power(x: f32, y: f32) -> f32 {
    if (y == 0.0 || x == 1.0) { return 1.0; }
    if (is_nan(x) || is_nan(y)) { return x + y; }
    if (y == 0.5) { return sqrt(x); }
    let inf = bitcast<f32>(0x7f800000u);
    let negative = (bitcast<u32>(x) & 0x80000000u) != 0u;
    let integer = floor(y) == y;
    let odd = integer && abs(y) < 16777216.0 && fract(y * 0.5) != 0.0;
    let ax = abs(x);
    var r: f32;
    if (negative && !integer && ax != 0.0 && ax != inf) {
        return bitcast<f32>(0x7fc00000u);        // a root of a negative number: NaN
    } else if (ax == 1.0) {
        r = 1.0;
    } else if (abs(y) == inf) {
        r = select(0.0, inf, (ax > 1.0) == (y > 0.0));
    } else if (ax == 0.0 || ax == inf) {
        r = select(0.0, inf, (ax == 0.0) == (y < 0.0));
    } else {
        r = pow(ax, y);
    }
    return select(r, -r, negative && odd);
}
"""

_MAIN = """@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let i = i32(gid.x + gid.y * groups.x * 64u);
    if (i >= info[0]) { return; }"""

# the offsets in two operands of element ``index`` of a shape: ``ndim`` sizes from
# info[shape_at], the operands' strides from info[a_at] and info[b_at] (C order)
_OFFSETS = """
fn offsets(index: i32, ndim: i32, shape_at: i32, a_at: i32, b_at: i32) -> vec2<i32> {
    var rest = index;
    var o = vec2<i32>(0, 0);
    for (var d: i32 = ndim - 1; d >= 0; d = d - 1) {
        let n = info[shape_at + d];
        let k = rest % n;
        rest = rest / n;
        o = o + k * vec2<i32>(info[a_at + d], info[b_at + d]);
    }
    return o;
}
"""

_ELEMENTWISE = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> a: array<T_A>;
@group(0) @binding(2) var<storage, read> b: array<T_B>;
@group(0) @binding(3) var<storage, read_write> out: array<T_O>;

// info: n, ndim, shape[8], then per operand: offset, strides[8]
MAIN
    let o = vec2<i32>(info[10], info[19]) + offsets(i, info[1], 2, 11, 20);
    let x = C_A(a[o.x]);
    let y = C_B(b[o.y]);
    out[i] = STORE(EXPR);
}
"""

# where: the condition's offset from a second offsets() over its own strides
_WHERE = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> c: array<u32>;
@group(0) @binding(2) var<storage, read> a: array<T_O>;
@group(0) @binding(3) var<storage, read> b: array<T_O>;
@group(0) @binding(4) var<storage, read_write> out: array<T_O>;

// info: n, ndim, shape[8], then for the condition, a and b: offset, strides[8]
MAIN
    let o = vec2<i32>(info[19], info[28]) + offsets(i, info[1], 2, 20, 29);
    let oc = info[10] + offsets(i, info[1], 2, 11, 11).x;
    out[i] = select(b[o.y], a[o.x], c[oc] != 0u);
}
"""

# an in-place write into a strided view of a storage: binary_ (x op= y) and setitem (x[...] =
# y), y broadcast; the value is read from another buffer (WebGPU does not bind one buffer as
# both read and read_write)
_INTO = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> b: array<T_B>;
@group(0) @binding(2) var<storage, read_write> out: array<T_O>;

// info: n, ndim, shape[8], then for the written view and the value: offset, strides[8]
MAIN
    let o = vec2<i32>(info[10], info[19]) + offsets(i, info[1], 2, 11, 20);
    let x = C_O(out[o.x]);
    let y = C_B(b[o.y]);
    out[o.x] = STORE(EXPR);
}
"""

# a gather: out[i] = x[offset of i in x, the gathered dimension's part left out
# + idx * that dimension's stride], idx read from an int32 index array (checked and made
# non-negative by the plugin)
_GATHER = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> x: array<T_O>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<T_O>;

// info: n, ndim, shape[8], then for x (its stride 0 along the gathered dimension) and the
// index: offset, strides[8]; then the gathered dimension's stride in x
MAIN
    let o = vec2<i32>(info[10], info[19]) + offsets(i, info[1], 2, 11, 20);
    out[i] = x[o.x + index[o.y] * info[28]];
}
"""

# rows of a target written by a plan the plugin made on the host: row rows[g] (of `inner`
# elements) gets, in order, the value rows order[s] for s in starts[g] .. starts[g + 1]:
# added (index_add: ((x + v1) + v2) ..., as NumPy's add.at) or put (setitem: the last wins)
_ROWS = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> v: array<T_O>;
@group(0) @binding(2) var<storage, read> rows: array<i32>;
@group(0) @binding(3) var<storage, read> starts: array<i32>;
@group(0) @binding(4) var<storage, read> order: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<T_O>;

// info: groups * inner, rest ndim, rest shape[8], target offset, target rest strides[8],
//       target row stride, inner (v is contiguous: value row r at r * inner)
MAIN
    let inner = info[20];
    let g = i / inner;
    let j = i % inner;
    let o = info[10] + rows[g] * info[19] + offsets(j, info[1], 2, 11, 11).x;
    var acc = out[o];
    for (var s: i32 = starts[g]; s < starts[g + 1]; s = s + 1) {
        let y = v[order[s] * inner + j];
        STEP
    }
    out[o] = acc;
}
"""
_ROWS_STEP = {"add": "acc = acc + y;", "put": "acc = y;"}

# the same for single elements: target element targets[g] gets src[sources[s]], s in
# starts[g] .. starts[g + 1] (scatter_add, put_along_axis); offsets made on the host
_ELEMENTS = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> v: array<T_O>;
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read> starts: array<i32>;
@group(0) @binding(4) var<storage, read> sources: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<T_O>;

// info: groups
MAIN
    let o = targets[i];
    var acc = out[o];
    for (var s: i32 = starts[i]; s < starts[i + 1]; s = s + 1) {
        let y = v[sources[s]];
        STEP
    }
    out[o] = acc;
}
"""

_REDUCE = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> a: array<T_A>;
@group(0) @binding(2) var<storage, read_write> out: array<T_O>;

// info: outputs, kept ndim, kept shape[8], kept strides[8], offset,
//       reduced count, reduced ndim, reduced shape[8], reduced strides[8]
MAIN
    var rest = i;
    var base = info[18];
    for (var d: i32 = info[1] - 1; d >= 0; d = d - 1) {
        let n = info[2 + d];
        base = base + (rest % n) * info[10 + d];
        rest = rest / n;
    }
    let count = info[19];
    var acc: f32 = INIT;
    var carry: f32 = 0.0;
    for (var j: i32 = 0; j < count; j = j + 1) {
        var r = j;
        var o = base;
        for (var d: i32 = info[20] - 1; d >= 0; d = d - 1) {
            let n = info[21 + d];
            o = o + (r % n) * info[29 + d];
            r = r / n;
        }
        let v = f32(a[o]);
        STEP
    }
    out[i] = STORE(acc);
}
"""

REDUCE_STEPS = {
    "sum": ("0.0", """let t = acc + (v - carry);   // Kahan: what the sum lost comes back next time
        carry = (t - acc) - (v - carry);
        acc = t;"""),
    "max": ("f32(a[base])", "if (is_nan(v) || v > acc) { acc = select(v, acc, is_nan(acc)); }"),
    "min": ("f32(a[base])", "if (is_nan(v) || v < acc) { acc = select(v, acc, is_nan(acc)); }"),
}

# each invocation a block of 4 x 4 outputs (its row and column blocks from i, the batch from
# i / blocks): per step of k it reads four values of a and four of b for sixteen products,
# a quarter of the reads of one output per invocation, and no workgroup barriers; every sum
# over k runs in index order
_MATMUL = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> a: array<T_A>;
@group(0) @binding(2) var<storage, read> b: array<T_A>;
@group(0) @binding(3) var<storage, read_write> out: array<T_O>;

// info: blocks, M, N, K, batch ndim, batch shape[8], a batch strides[8], b batch strides[8],
//       a offset, a row stride, a column stride, b offset, b row stride, b column stride
MAIN
    let m = info[1];
    let n = info[2];
    let k = info[3];
    let col_blocks = (n + 3) / 4;
    let per_batch = ((m + 3) / 4) * col_blocks;
    let batch = i / per_batch;
    let row0 = ((i % per_batch) / col_blocks) * 4;
    let col0 = (i % col_blocks) * 4;
    let o = vec2<i32>(info[29], info[32]) + offsets(batch, info[4], 5, 13, 21);
    var rows = vec4<i32>(0, 1, 2, 3) + row0;
    var cols = vec4<i32>(0, 1, 2, 3) + col0;
    let row_ok = rows < vec4<i32>(m);
    let col_ok = cols < vec4<i32>(n);
    rows = select(vec4<i32>(row0), rows, row_ok);    // past the edge: read a valid row, unused
    cols = select(vec4<i32>(col0), cols, col_ok);
    let ra = o.x + rows * info[30];
    let cb = o.y + cols * info[34];
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var q: i32 = 0; q < k; q = q + 1) {
        let qa = q * info[31];
        let vb = vec4<f32>(f32(b[cb.x + q * info[33]]), f32(b[cb.y + q * info[33]]),
                           f32(b[cb.z + q * info[33]]), f32(b[cb.w + q * info[33]]));
        acc0 = acc0 + f32(a[ra.x + qa]) * vb;
        acc1 = acc1 + f32(a[ra.y + qa]) * vb;
        acc2 = acc2 + f32(a[ra.z + qa]) * vb;
        acc3 = acc3 + f32(a[ra.w + qa]) * vb;
    }
    let base = batch * m * n;
    let accs = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var r: i32 = 0; r < 4; r = r + 1) {
        if (row_ok[r]) {
            for (var c: i32 = 0; c < 4; c = c + 1) {
                if (col_ok[c]) { out[base + rows[r] * n + cols[c]] = STORE(accs[r][c]); }
            }
        }
    }
}
"""

# Fused kernels over the last dimension: one invocation per row of a contiguous x (n values
# from info[2] + row * n), sums in order. info: rows, n, x offset, weight offset (-1: none),
# bias offset (-1: none), eps (its float32 bits).
_ROW_HEAD = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
MAIN
    let n = info[1];
    let base = info[2] + i * n;
    var top = x[base];          // the row's maximum (NaN propagates)
    for (var j: i32 = 1; j < n; j = j + 1) {
        let v = x[base + j];
        top = select(select(max(top, v), v, is_nan(v)), top, is_nan(top));
    }
"""
_SOFTMAX = _ROW_HEAD + """
    var total: f32 = 0.0;
    for (var j: i32 = 0; j < n; j = j + 1) { total = total + exp(x[base + j] - top); }
    for (var j: i32 = 0; j < n; j = j + 1) { out[i * n + j] = RESULT; }
}
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
"""
SOFTMAXES = {"softmax": "exp(x[base + j] - top) / total",
             "log_softmax": "(x[base + j] - top) - log(total)"}
_NORM = """
@group(0) @binding(0) var<storage, read> info: array<i32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> rstd_out: array<f32>;
MAIN
    let n = info[1];
    let base = info[2] + i * n;
    var mean: f32 = 0.0;
    if (CENTRED) {
        var s: f32 = 0.0;
        for (var j: i32 = 0; j < n; j = j + 1) { s = s + x[base + j]; }
        mean = s / f32(n);
    }
    var ss: f32 = 0.0;
    for (var j: i32 = 0; j < n; j = j + 1) { let d = x[base + j] - mean; ss = ss + d * d; }
    let rstd = 1.0 / sqrt(ss / f32(n) + bitcast<f32>(info[5]));
    for (var j: i32 = 0; j < n; j = j + 1) {
        var y = (x[base + j] - mean) * rstd;
        if (info[3] >= 0) { y = y * w[info[3] + j]; }
        if (info[4] >= 0) { y = y + b[info[4] + j]; }
        out[i * n + j] = y;
    }
    mean_out[i] = mean;
    rstd_out[i] = rstd;
}
"""


def _complete(shader: str, offsets: bool = True) -> str:
    return shader.replace("MAIN", _MAIN) + (_OFFSETS if offsets else "") + _IS_NAN


# float16 (where the adapter has shader-f16): stored as f16, computed in f32 as NumPy does,
# and rounded back with f16(), which WGSL leaves undefined past f16's range (NumPy: inf)
_F16 = """
fn to_f16(x: f32) -> f16 {
    let inf = bitcast<f32>(0x7f800000u);
    if (abs(x) >= 65520.0) { return f16(select(-inf, inf, x > 0.0)); }
    return f16(x);
}
"""


def _typed(source: str, to: str = "f32", **types) -> str:
    """``source`` with its element types (``T_A``, ``T_B``, ``T_O``: the arguments ``ta``,
    ``tb``, ``to``), their compute types (``C_A``, ...) and ``STORE(...)`` (a compute value
    stored as ``to``) filled in."""
    source = source.replace("STORE(", "to_f16(" if to == "f16" else f"{to}(")
    types["to"] = to
    for name, element in types.items():
        letter = name[1].upper()
        source = source.replace(f"T_{letter}", element).replace(f"C_{letter}",
                                                                compute_type(element))
    return ("enable f16;\n" + source + _F16) if "f16" in types.values() else source


def elementwise(expression: str, ta: str, tb: str, to: str) -> str:
    """``out[i] = expression`` of x from a and y from b (element types ``ta``, ``tb``; x and y
    in their compute types)."""
    return _typed(_complete(_ELEMENTWISE).replace("EXPR", expression), to, ta=ta, tb=tb)


def where(to: str) -> str:
    return _typed(_complete(_WHERE), to)


def into(expression: str, tb: str, to: str) -> str:
    """An in-place write ``x = expression`` of x (the target's element) and y (the value's)."""
    return _typed(_complete(_INTO).replace("EXPR", expression), to, tb=tb)


def gather(to: str) -> str:
    return _typed(_complete(_GATHER), to)


def rows(step: str, to: str) -> str:
    """Rows of a target added to or put by a plan (``step``: ``"add"`` or ``"put"``)."""
    return _typed(_complete(_ROWS).replace("STEP", _ROWS_STEP[step]), to)


def elements(step: str, to: str) -> str:
    """Elements of a target added to or put by a plan (``step``: ``"add"`` or ``"put"``)."""
    return _typed(_complete(_ELEMENTS, offsets=False).replace("STEP", _ROWS_STEP[step]), to)


def reduce(name: str, ta: str = "f32") -> str:
    """sum (in f32), max or min over the reduced dimensions, stored as ``ta``."""
    init, step = REDUCE_STEPS[name]
    return _typed(_complete(_REDUCE, offsets=False).replace("INIT", init).replace("STEP", step),
                  ta, ta=ta)


def matmul(ta: str = "f32") -> str:
    """The blocked matmul of two ``ta`` arrays, accumulated in f32."""
    return _typed(_complete(_MATMUL), ta, ta=ta)


def softmax(name: str) -> str:
    return _complete(_SOFTMAX, offsets=False).replace("RESULT", SOFTMAXES[name])


def norm(name: str) -> str:
    """rms_norm or layer_norm over rows, with their saved statistics."""
    return _complete(_NORM, offsets=False).replace(
        "CENTRED", "true" if name == "layer_norm" else "false")
