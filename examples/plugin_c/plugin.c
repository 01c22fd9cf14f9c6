/* A tiny gradient plugin in C: protocol version 1 (docs/plugin-protocol.md), from scratch.
 *
 * It stores arrays of every protocol dtype in host memory, as strided views of reference-
 * counted storages, and computes float32 elementwise ops, reductions and matmul. Everything
 * else it leaves to gradient, which runs it on the host (section 7 of the protocol).
 *
 * Build and use:
 *     cc -O2 -o gradient-plugin-tinyc examples/plugin_c/plugin.c -lm
 *     GRADIENT_PLUGIN_PATH=$PWD python -c "import gradient; print(gradient.ones(3, device='plugin:tinyc') * 2)"
 *
 * Layout: JSON (the protocol's subset), frames, the handle table, arrays and views, the
 * primitives, the request loop. Strides and offsets are counted in elements.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXD 16

/* ------------------------------------------------------------------ JSON */
typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } JType;
typedef struct J {
    JType t;
    double num;     /* J_NUM, J_BOOL */
    int is_int;
    int64_t i;      /* J_NUM when is_int */
    char *str;      /* J_STR */
    int n;          /* items of J_ARR / J_OBJ */
    struct J *items;
    char **keys;    /* J_OBJ */
} J;

static const char *jp; /* parse position */

static void skip_ws(void) { while (*jp == ' ' || *jp == '\n' || *jp == '\t' || *jp == '\r') jp++; }

static int parse_value(J *out);

static int parse_string(char **out) {
    if (*jp != '"') return -1;
    jp++;
    size_t cap = 16, len = 0;
    char *s = malloc(cap);
    while (*jp && *jp != '"') {
        char c = *jp++;
        if (c == '\\') {
            c = *jp++;
            if (c == 'n') c = '\n'; else if (c == 't') c = '\t'; /* else: \" and \\ */
        }
        if (len + 2 > cap) s = realloc(s, cap *= 2);
        s[len++] = c;
    }
    if (*jp != '"') { free(s); return -1; }
    jp++;
    s[len] = 0;
    *out = s;
    return 0;
}

static int parse_value(J *out) {
    memset(out, 0, sizeof *out);
    skip_ws();
    if (*jp == '{' || *jp == '[') {
        int obj = *jp == '{';
        char close = obj ? '}' : ']';
        jp++;
        out->t = obj ? J_OBJ : J_ARR;
        int cap = 4;
        out->items = malloc(cap * sizeof(J));
        if (obj) out->keys = malloc(cap * sizeof(char *));
        skip_ws();
        if (*jp == close) { jp++; return 0; }
        for (;;) {
            if (out->n == cap) {
                cap *= 2;
                out->items = realloc(out->items, cap * sizeof(J));
                if (obj) out->keys = realloc(out->keys, cap * sizeof(char *));
            }
            if (obj) {
                skip_ws();
                if (parse_string(&out->keys[out->n])) return -1;
                skip_ws();
                if (*jp++ != ':') return -1;
            }
            if (parse_value(&out->items[out->n])) return -1;
            out->n++;
            skip_ws();
            if (*jp == ',') { jp++; continue; }
            if (*jp == close) { jp++; return 0; }
            return -1;
        }
    }
    if (*jp == '"') { out->t = J_STR; return parse_string(&out->str); }
    if (!strncmp(jp, "true", 4)) { out->t = J_BOOL; out->num = 1; jp += 4; return 0; }
    if (!strncmp(jp, "false", 5)) { out->t = J_BOOL; out->num = 0; jp += 5; return 0; }
    if (!strncmp(jp, "null", 4)) { out->t = J_NULL; jp += 4; return 0; }
    char *end;
    out->t = J_NUM;
    out->num = strtod(jp, &end);
    if (end == jp) return -1;
    out->is_int = 1;
    for (const char *c = jp; c < end; c++) if (*c == '.' || *c == 'e' || *c == 'E') out->is_int = 0;
    if (out->is_int) out->i = strtoll(jp, NULL, 10);
    jp = end;
    return 0;
}

static void free_json(J *j) {
    if (j->t == J_STR) free(j->str);
    if (j->t == J_ARR || j->t == J_OBJ) {
        for (int k = 0; k < j->n; k++) {
            free_json(&j->items[k]);
            if (j->t == J_OBJ) free(j->keys[k]);
        }
        free(j->items);
        free(j->keys);
    }
}

static J *get(J *obj, const char *key) {
    for (int k = 0; k < obj->n; k++) if (!strcmp(obj->keys[k], key)) return &obj->items[k];
    return NULL;
}

static int64_t as_int(J *j) { return j && j->t == J_NUM ? (j->is_int ? j->i : (int64_t)j->num) : 0; }

static double as_float(J *j) { /* a number, or "inf", "-inf", "nan" */
    if (j && j->t == J_STR) {
        if (!strcmp(j->str, "inf")) return INFINITY;
        if (!strcmp(j->str, "-inf")) return -INFINITY;
        return NAN;
    }
    return j ? j->num : 0;
}

/* ------------------------------------------------------------------ frames */
static int read_exactly(void *buf, size_t n) {
    return fread(buf, 1, n, stdin) == n ? 0 : -1;
}

typedef struct { char *s; size_t len, cap; } Buf;

static void put(Buf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if ((size_t)k < b->cap - b->len) { b->len += k; return; }
        b->cap = b->cap * 2 + k + 64;
        b->s = realloc(b->s, b->cap);
    }
}

static void write_frame(Buf *header, const void *payload, uint64_t nbytes) {
    unsigned char prefix[16] = {'G', 'R', 'D', '1'};
    uint32_t h = (uint32_t)header->len;
    for (int k = 0; k < 4; k++) prefix[4 + k] = (h >> (8 * k)) & 255;
    for (int k = 0; k < 8; k++) prefix[8 + k] = (nbytes >> (8 * k)) & 255;
    fwrite(prefix, 1, 16, stdout);
    fwrite(header->s, 1, header->len, stdout);
    if (nbytes) fwrite(payload, 1, nbytes, stdout);
    fflush(stdout);
}

/* ------------------------------------------------------------------ dtypes */
enum { F32, F64, F16, BF16, I8, I16, I32, I64, U8, BOOL, NDTYPES };
static const char *DTYPE_NAMES[NDTYPES] = {"float32", "float64", "float16", "bfloat16", "int8",
                                           "int16", "int32", "int64", "uint8", "bool"};
static const int ITEMSIZE[NDTYPES] = {4, 8, 2, 2, 1, 2, 4, 8, 1, 1};

static int dtype_of(const char *name) {
    for (int k = 0; k < NDTYPES; k++) if (name && !strcmp(name, DTYPE_NAMES[k])) return k;
    return -1;
}

/* ------------------------------------------------------------------ arrays and handles */
typedef struct { int refs; unsigned char *data; } Storage;
typedef struct {
    Storage *st;
    int64_t offset;
    int ndim, dtype, failed;
    int64_t shape[MAXD], strides[MAXD];
} Array;

typedef struct { int64_t handle; Array *a; } Slot;   /* open addressing; handle 0: empty */
static Slot *table;
static size_t table_cap, table_used;

static void table_put(int64_t handle, Array *a);

static void table_grow(void) {
    Slot *old = table;
    size_t old_cap = table_cap;
    table_cap = table_cap ? table_cap * 2 : 1024;
    table = calloc(table_cap, sizeof(Slot));
    table_used = 0;
    for (size_t k = 0; k < old_cap; k++) if (old[k].handle > 0) table_put(old[k].handle, old[k].a);
    free(old);
}

static Slot *table_find(int64_t handle) {
    if (!table_cap) return NULL;
    for (size_t k = (size_t)handle * 2654435761u % table_cap;; k = (k + 1) % table_cap) {
        if (table[k].handle == handle) return &table[k];
        if (table[k].handle == 0) return NULL;
    }
}

static void table_put(int64_t handle, Array *a) {
    if ((table_used + 1) * 2 > table_cap) table_grow();
    size_t k = (size_t)handle * 2654435761u % table_cap;
    while (table[k].handle > 0 && table[k].handle != handle) k = (k + 1) % table_cap;
    if (table[k].handle != handle) table_used++;
    table[k].handle = handle;
    table[k].a = a;
}

static void release(Array *a) {
    if (a->st && --a->st->refs == 0) { free(a->st->data); free(a->st); }
    free(a);
}

static void table_remove(int64_t handle) {   /* deletion that keeps probe chains (tombstone) */
    Slot *s = table_find(handle);
    if (!s) return;
    release(s->a);
    s->a = NULL;
    s->handle = -1;
}

static int64_t numel(const Array *a) {
    int64_t n = 1;
    for (int d = 0; d < a->ndim; d++) n *= a->shape[d];
    return n;
}

static Array *new_array(int dtype, int ndim, const int64_t *shape) {   /* C-contiguous, zeroed */
    Array *a = calloc(1, sizeof(Array));
    a->dtype = dtype;
    a->ndim = ndim;
    int64_t step = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        a->shape[d] = shape[d];
        a->strides[d] = step;
        step *= shape[d] > 1 ? shape[d] : 1;
    }
    a->st = calloc(1, sizeof(Storage));
    a->st->refs = 1;
    a->st->data = calloc((size_t)(numel(a) ? numel(a) : 1), ITEMSIZE[dtype]);
    return a;
}

static Array *view_of(const Array *src) {   /* shares the storage; shape/strides set by caller */
    Array *a = malloc(sizeof(Array));
    *a = *src;
    a->st->refs++;
    a->failed = 0;
    return a;
}

/* A view of src's storage at src's offset, with another shape and strides. */
static Array *view_as(const Array *src, int nd, const int64_t *shape, const int64_t *strides) {
    Array *v = view_of(src);
    v->ndim = nd;
    memcpy(v->shape, shape, nd * sizeof(int64_t));
    memcpy(v->strides, strides, nd * sizeof(int64_t));
    return v;
}

static unsigned char *at(const Array *a, int64_t element) {
    return a->st->data + (size_t)element * ITEMSIZE[a->dtype];
}

/* Visit every index of a shape in C order: offsets[k] follows array k's strides. */
typedef struct { int ndim; int64_t shape[MAXD], idx[MAXD]; int n; const int64_t *strides[4];
                 int64_t offsets[4]; } Walk;

static void walk_start(Walk *w, int ndim, const int64_t *shape, int n, const Array **arrays,
                       const int64_t (*bstrides)[MAXD]) {
    w->ndim = ndim;
    w->n = n;
    for (int d = 0; d < ndim; d++) { w->shape[d] = shape[d]; w->idx[d] = 0; }
    for (int k = 0; k < n; k++) { w->strides[k] = bstrides[k]; w->offsets[k] = arrays[k]->offset; }
}

static void walk_next(Walk *w) {
    for (int d = w->ndim - 1; d >= 0; d--) {
        w->idx[d]++;
        for (int k = 0; k < w->n; k++) w->offsets[k] += w->strides[k][d];
        if (w->idx[d] < w->shape[d]) return;
        for (int k = 0; k < w->n; k++) w->offsets[k] -= w->strides[k][d] * w->shape[d];
        w->idx[d] = 0;
    }
}

/* The strides of array a broadcast to a shape of ndim dimensions (0 where it repeats). */
static int broadcast_strides(const Array *a, int ndim, const int64_t *shape, int64_t *out) {
    int lead = ndim - a->ndim;
    if (lead < 0) return -1;
    for (int d = 0; d < ndim; d++) {
        if (d < lead) { out[d] = 0; continue; }
        int64_t n = a->shape[d - lead];
        if (n == shape[d]) out[d] = n == 1 ? 0 : a->strides[d - lead];
        else if (n == 1) out[d] = 0;
        else return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ errors */
static char error_message[1024];
static const char *error_type = "ValueError";
static int failing;   /* the current request failed */

static int fail(const char *type, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    error_type = type;
    failing = 1;
    return -1;
}

/* ------------------------------------------------------------------ primitives */
static Array *arg(J *req, const char *key) {
    int64_t h = as_int(get(req, key));
    Slot *s = table_find(h);
    if (!s) { fail("ValueError", "no array has the handle %lld", (long long)h); return NULL; }
    if (s->a->failed) { fail("ValueError", "reads the array %lld, which an earlier request failed to make", (long long)h); return NULL; }
    return s->a;
}

static int read_shape(J *j, int64_t *shape) {
    if (!j || j->t != J_ARR || j->n > MAXD) return -1;
    for (int k = 0; k < j->n; k++) shape[k] = as_int(&j->items[k]);
    return j->n;
}

static void copy_into(Array *dst, const Array *src) {   /* same shape after broadcasting */
    int64_t bs[2][MAXD];
    const Array *arrays[2] = {dst, src};
    for (int d = 0; d < dst->ndim; d++) bs[0][d] = dst->strides[d];
    broadcast_strides(src, dst->ndim, dst->shape, bs[1]);
    int64_t n = numel(dst);
    size_t size = ITEMSIZE[dst->dtype];
    Walk w;
    walk_start(&w, dst->ndim, dst->shape, 2, arrays, (const int64_t(*)[MAXD])bs);
    for (int64_t e = 0; e < n; e++, walk_next(&w))
        memcpy(dst->st->data + w.offsets[0] * size, src->st->data + w.offsets[1] * size, size);
}

static Array *contiguous_copy(const Array *x) {
    Array *out = new_array(x->dtype, x->ndim, x->shape);
    copy_into(out, x);
    return out;
}

static int is_contiguous(const Array *x) {
    int64_t step = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        if (x->shape[d] != 1 && x->strides[d] != step) return 0;
        step *= x->shape[d];
    }
    return 1;
}

static void fill(Array *a, double v) {
    int64_t n = numel(a);
    for (int64_t e = 0; e < n; e++) {
        unsigned char *p = at(a, e);
        switch (a->dtype) {
        case F32: *(float *)p = (float)v; break;
        case F64: *(double *)p = v; break;
        case I8: *(int8_t *)p = (int8_t)v; break;
        case I16: *(int16_t *)p = (int16_t)v; break;
        case I32: *(int32_t *)p = (int32_t)v; break;
        case I64: *(int64_t *)p = (int64_t)v; break;
        case U8: *(uint8_t *)p = (uint8_t)v; break;
        case BOOL: *(uint8_t *)p = v != 0; break;
        }
    }
}

/* NumPy's rule for a reshape without a copy: the new strides, or 0 if a copy is needed. */
static int nocopy_reshape(const Array *x, int newnd, const int64_t *newdims, int64_t *newstrides) {
    int64_t od[MAXD], os[MAXD];
    int oldnd = 0;
    for (int d = 0; d < x->ndim; d++)
        if (x->shape[d] != 1) { od[oldnd] = x->shape[d]; os[oldnd] = x->strides[d]; oldnd++; }
    int oi = 0, oj = 1, ni = 0, nj = 1;
    while (ni < newnd && oi < oldnd) {
        int64_t np_ = newdims[ni], op = od[oi];
        while (np_ != op) {
            if (np_ < op) np_ *= newdims[nj++];
            else op *= od[oj++];
        }
        for (int ok = oi; ok < oj - 1; ok++) if (os[ok] != od[ok + 1] * os[ok + 1]) return 0;
        newstrides[nj - 1] = os[oj - 1];
        for (int nk = nj - 1; nk > ni; nk--) newstrides[nk - 1] = newstrides[nk] * newdims[nk];
        ni = nj++;
        oi = oj++;
    }
    int64_t last = ni >= 1 ? newstrides[ni - 1] : 1;
    for (int nk = ni; nk < newnd; nk++) newstrides[nk] = last;
    return 1;
}

static Array *op_reshape(J *req) {
    Array *x = arg(req, "x");
    if (!x) return NULL;
    int64_t shape[MAXD], strides[MAXD], size = numel(x), known = 1;
    int nd = read_shape(get(req, "shape"), shape), unknown = -1;
    if (nd < 0) { fail("ValueError", "reshape: a bad shape"); return NULL; }
    for (int d = 0; d < nd; d++) { if (shape[d] == -1) unknown = d; else known *= shape[d]; }
    if (unknown >= 0) shape[unknown] = known ? size / known : 0;
    Array tmp = *x;
    tmp.ndim = nd;
    memcpy(tmp.shape, shape, sizeof shape);
    if (size == 0 || !nocopy_reshape(x, nd, shape, strides)) {
        Array *c = contiguous_copy(x);   /* NumPy would copy: so do we */
        c->ndim = nd;
        memcpy(c->shape, shape, sizeof shape);
        int64_t step = 1;
        for (int d = nd - 1; d >= 0; d--) { c->strides[d] = step; step *= shape[d] > 1 ? shape[d] : 1; }
        return c;
    }
    return view_as(x, nd, shape, strides);
}

static Array *op_permute(J *req) {
    Array *x = arg(req, "x");
    if (!x) return NULL;
    int64_t axes[MAXD];
    int nd = read_shape(get(req, "axes"), axes);
    if (nd != x->ndim) { fail("ValueError", "permute: axes do not match the array"); return NULL; }
    Array *v = view_of(x);
    for (int d = 0; d < nd; d++) { v->shape[d] = x->shape[axes[d]]; v->strides[d] = x->strides[axes[d]]; }
    return v;
}

static Array *op_broadcast_to(J *req) {
    Array *x = arg(req, "x");
    if (!x) return NULL;
    int64_t shape[MAXD], strides[MAXD];
    int nd = read_shape(get(req, "shape"), shape);
    if (nd < 0 || broadcast_strides(x, nd, shape, strides)) {
        fail("ValueError", "broadcast_to: the shapes do not broadcast");
        return NULL;
    }
    return view_as(x, nd, shape, strides);
}

static Array *op_windows(J *req) {
    Array *x = arg(req, "x");
    if (!x) return NULL;
    int64_t axes[MAXD], sizes[MAXD], steps[MAXD], dil[MAXD];
    int n = read_shape(get(req, "axes"), axes);
    read_shape(get(req, "sizes"), sizes);
    read_shape(get(req, "steps"), steps);
    read_shape(get(req, "dilations"), dil);
    if (n < 0 || x->ndim + n > MAXD) { fail("ValueError", "windows: bad arguments"); return NULL; }
    Array *v = view_of(x);
    for (int k = 0; k < n; k++) {
        int64_t ax = axes[k], span = dil[k] * (sizes[k] - 1) + 1;
        int64_t count = (x->shape[ax] - span) / steps[k] + 1;
        v->shape[ax] = count > 0 ? count : 0;
        v->strides[ax] = x->strides[ax] * steps[k];
        v->shape[x->ndim + k] = sizes[k];
        v->strides[x->ndim + k] = x->strides[ax] * dil[k];
    }
    v->ndim = x->ndim + n;
    return v;
}

/* Python's slice.indices: the first index, the step and the length. */
static void slice_of(J *s, int64_t n, int64_t *start, int64_t *step, int64_t *len) {
    J *a = &s->items[0], *b = &s->items[1], *c = &s->items[2];
    *step = c->t == J_NULL ? 1 : as_int(c);
    int64_t lo, hi;
    if (*step > 0) {
        lo = a->t == J_NULL ? 0 : as_int(a);
        hi = b->t == J_NULL ? n : as_int(b);
        if (lo < 0) lo += n;
        if (lo < 0) lo = 0;
        if (lo > n) lo = n;
        if (hi < 0) hi += n;
        if (hi < 0) hi = 0;
        if (hi > n) hi = n;
        *len = hi > lo ? (hi - lo + *step - 1) / *step : 0;
    } else {
        lo = a->t == J_NULL ? n - 1 : as_int(a);
        hi = b->t == J_NULL ? -1 : as_int(b);
        if (a->t != J_NULL) { if (lo < 0) lo += n; if (lo < 0) lo = -1; if (lo >= n) lo = n - 1; }
        if (b->t != J_NULL) { if (hi < 0) hi += n; if (hi < 0) hi = -1; if (hi >= n) hi = n - 1; }
        *len = lo > hi ? (lo - hi - 1) / (-*step) + 1 : 0;
    }
    *start = lo;
}

/* The view x[index] for an index of integers, slices, "none" and "..." */
static Array *basic_view(Array *x, J *index) {
    if (!index || index->t != J_ARR) { fail("ValueError", "a bad index"); return NULL; }
    int consumed = 0;
    for (int k = 0; k < index->n; k++) {
        J *e = &index->items[k];
        if (e->t == J_OBJ && get(e, "array")) {
            fail("NotImplementedError", "indexing with arrays is not offered by this plugin");
            return NULL;
        }
        if (!(e->t == J_STR)) consumed++;
    }
    Array *v = view_of(x);
    int src = 0, nd = 0;
    for (int k = 0; k < index->n; k++) {
        J *e = &index->items[k];
        if (e->t == J_STR && !strcmp(e->str, "none")) {
            v->shape[nd] = 1; v->strides[nd] = 0; nd++;
        } else if (e->t == J_STR) {   /* "...": the dimensions no entry names */
            for (int r = 0; r < x->ndim - consumed; r++, src++) {
                v->shape[nd] = x->shape[src]; v->strides[nd] = x->strides[src]; nd++;
            }
        } else if (e->t == J_NUM) {
            int64_t i = as_int(e);
            if (i < 0) i += x->shape[src];
            if (i < 0 || i >= x->shape[src]) {
                release(v);
                fail("IndexError", "index %lld is out of bounds for a dimension of size %lld",
                     (long long)as_int(e), (long long)x->shape[src]);
                return NULL;
            }
            v->offset += i * x->strides[src++];
        } else if (e->t == J_OBJ && get(e, "slice")) {
            int64_t start, step, len;
            slice_of(get(e, "slice"), x->shape[src], &start, &step, &len);
            if (len) v->offset += start * x->strides[src];
            v->shape[nd] = len; v->strides[nd] = x->strides[src] * step; nd++; src++;
        }
    }
    for (; src < x->ndim; src++) { v->shape[nd] = x->shape[src]; v->strides[nd] = x->strides[src]; nd++; }
    v->ndim = nd;
    return v;
}

static Array *op_getitem(J *req) {
    Array *x = arg(req, "x");
    return x ? basic_view(x, get(req, "index")) : NULL;
}

static int op_setitem(J *req) {
    Array *x = arg(req, "x"), *value = arg(req, "value");
    if (!x || !value) return -1;
    if (value->dtype != x->dtype) return fail("TypeError", "setitem: the value's dtype differs");
    Array *target = basic_view(x, get(req, "index"));
    if (!target) return -1;
    int64_t bs[MAXD];
    if (broadcast_strides(value, target->ndim, target->shape, bs)) {
        release(target);
        return fail("ValueError", "setitem: the value does not broadcast to the target");
    }
    copy_into(target, value);
    release(target);
    return 0;
}

/* float32 math */
static float unary_f32(const char *name, float v) {
    if (!strcmp(name, "neg")) return -v;
    if (!strcmp(name, "abs")) return fabsf(v);
    if (!strcmp(name, "exp")) return expf(v);
    if (!strcmp(name, "log")) return logf(v);
    if (!strcmp(name, "sqrt")) return sqrtf(v);
    if (!strcmp(name, "sin")) return sinf(v);
    if (!strcmp(name, "cos")) return cosf(v);
    if (!strcmp(name, "tanh")) return tanhf(v);
    if (!strcmp(name, "reciprocal")) return 1.0f / v;
    return 1.0f / (1.0f + expf(-v));   /* sigmoid */
}

static const char *UNARY[] = {"neg", "abs", "exp", "log", "sqrt", "sin", "cos", "tanh",
                              "reciprocal", "sigmoid"};
static const char *BINARY[] = {"add", "sub", "mul", "div", "maximum", "minimum"};
static const char *REDUCE[] = {"sum", "max", "min"};

static int named(const char *name, const char **names, int n) {
    for (int k = 0; k < n; k++) if (name && !strcmp(name, names[k])) return 1;
    return 0;
}

static Array *op_unary(J *req) {
    Array *x = arg(req, "x");
    J *name = get(req, "name");
    if (!x) return NULL;
    if (x->dtype != F32 || !name || !named(name->str, UNARY, 10)) {
        fail("NotImplementedError", "unary: only float32 and the listed names");
        return NULL;
    }
    Array *out = new_array(F32, x->ndim, x->shape);
    const Array *arrays[1] = {x};
    int64_t n = numel(x);
    Walk w;
    walk_start(&w, x->ndim, x->shape, 1, arrays, (const int64_t(*)[MAXD])x->strides);
    for (int64_t e = 0; e < n; e++, walk_next(&w))
        ((float *)out->st->data)[e] = unary_f32(name->str, *(float *)at(x, w.offsets[0]));
    return out;
}

static Array *op_binary(J *req) {
    Array *a = arg(req, "a"), *b = arg(req, "b");
    J *name = get(req, "name");
    if (!a || !b) return NULL;
    if (a->dtype != F32 || b->dtype != F32 || !name || !named(name->str, BINARY, 6)) {
        fail("NotImplementedError", "binary: only float32 and the listed names");
        return NULL;
    }
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t shape[MAXD], bs[2][MAXD];
    for (int d = 0; d < nd; d++) {
        int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
        int64_t na = da >= 0 ? a->shape[da] : 1, nb = db >= 0 ? b->shape[db] : 1;
        if (na != nb && na != 1 && nb != 1) { fail("ValueError", "binary: shapes do not broadcast"); return NULL; }
        shape[d] = na == 1 ? nb : na;
    }
    broadcast_strides(a, nd, shape, bs[0]);
    broadcast_strides(b, nd, shape, bs[1]);
    Array *out = new_array(F32, nd, shape);
    const Array *arrays[2] = {a, b};
    int64_t n = numel(out);
    const char *op = name->str;
    Walk w;
    walk_start(&w, nd, shape, 2, arrays, (const int64_t(*)[MAXD])bs);
    float *o = (float *)out->st->data;
    for (int64_t e = 0; e < n; e++, walk_next(&w)) {
        float x = *(float *)at(a, w.offsets[0]), y = *(float *)at(b, w.offsets[1]);
        o[e] = !strcmp(op, "add") ? x + y : !strcmp(op, "sub") ? x - y : !strcmp(op, "mul") ? x * y
             : !strcmp(op, "div") ? x / y
             : !strcmp(op, "maximum") ? (isnan(x) || x > y ? x : y) : (isnan(x) || x < y ? x : y);
    }
    return out;
}

static Array *op_reduce(J *req) {
    Array *x = arg(req, "x");
    J *name = get(req, "name"), *axis = get(req, "axis"), *keep = get(req, "keepdims");
    if (!x) return NULL;
    if (x->dtype != F32 || !name || !named(name->str, REDUCE, 3)) {
        fail("NotImplementedError", "reduce: only float32 sum, max, min");
        return NULL;
    }
    int reduced[MAXD] = {0};
    if (!axis || axis->t == J_NULL) for (int d = 0; d < x->ndim; d++) reduced[d] = 1;
    else if (axis->t == J_NUM) reduced[(as_int(axis) + x->ndim) % x->ndim] = 1;
    else for (int k = 0; k < axis->n; k++) reduced[(as_int(&axis->items[k]) + x->ndim) % x->ndim] = 1;
    int64_t shape[MAXD], kept[MAXD];   /* kept: the output with reduced dims of size 1 */
    int nd = 0;
    for (int d = 0; d < x->ndim; d++) {
        kept[d] = reduced[d] ? 1 : x->shape[d];
        if (!reduced[d] || (keep && keep->num)) shape[nd++] = kept[d];
    }
    int64_t n = numel(x), m = 1;
    for (int d = 0; d < x->ndim; d++) m *= kept[d];
    if (n == 0 && m > 0 && strcmp(name->str, "sum")) {   /* NumPy's rule */
        fail("ValueError", "zero-size array to reduction operation %s which has no identity", name->str);
        return NULL;
    }
    double *acc = malloc((m ? m : 1) * sizeof(double));
    int sum = !strcmp(name->str, "sum"), max = !strcmp(name->str, "max");
    for (int64_t k = 0; k < m; k++) acc[k] = sum ? 0.0 : max ? -INFINITY : INFINITY;
    int64_t kept_strides[MAXD], step = 1;
    for (int d = x->ndim - 1; d >= 0; d--) { kept_strides[d] = reduced[d] ? 0 : step; step *= kept[d]; }
    const Array *arrays[2] = {x, x};
    int64_t bs[2][MAXD];
    for (int d = 0; d < x->ndim; d++) { bs[0][d] = x->strides[d]; bs[1][d] = kept_strides[d]; }
    Walk w;
    walk_start(&w, x->ndim, x->shape, 2, arrays, (const int64_t(*)[MAXD])bs);
    w.offsets[1] = 0;
    for (int64_t e = 0; e < n; e++, walk_next(&w)) {
        double v = *(float *)at(x, w.offsets[0]);
        double *t = &acc[w.offsets[1]];
        if (sum) *t += v;
        else if (isnan(v) || (max ? v > *t : v < *t)) *t = v;
    }
    Array *out = new_array(F32, nd, shape);
    for (int64_t k = 0; k < m; k++) ((float *)out->st->data)[k] = (float)acc[k];
    free(acc);
    return out;
}

static Array *op_matmul(J *req) {
    Array *a = arg(req, "a"), *b = arg(req, "b");
    if (!a || !b) return NULL;
    if (a->dtype != F32 || b->dtype != F32 || !a->ndim || !b->ndim) {
        fail("NotImplementedError", "matmul: only float32 arrays of one dimension or more");
        return NULL;
    }
    /* 1-d operands as a row (a) or a column (b), dropped from the result again */
    Array A = *a, B = *b;
    if (a->ndim == 1) { A.ndim = 2; A.shape[0] = 1; A.shape[1] = a->shape[0]; A.strides[0] = 0; A.strides[1] = a->strides[0]; }
    if (b->ndim == 1) { B.ndim = 2; B.shape[0] = b->shape[0]; B.shape[1] = 1; B.strides[0] = b->strides[0]; B.strides[1] = 0; }
    int64_t n = A.shape[A.ndim - 2], k = A.shape[A.ndim - 1], m = B.shape[B.ndim - 1];
    if (B.shape[B.ndim - 2] != k) { fail("ValueError", "matmul: shapes do not align"); return NULL; }
    int bnd = (A.ndim > B.ndim ? A.ndim : B.ndim) - 2;
    int64_t batch[MAXD], shape[MAXD];
    for (int d = 0; d < bnd; d++) {
        int da = d - (bnd - (A.ndim - 2)), db = d - (bnd - (B.ndim - 2));
        int64_t na = da >= 0 ? A.shape[da] : 1, nb = db >= 0 ? B.shape[db] : 1;
        if (na != nb && na != 1 && nb != 1) { fail("ValueError", "matmul: batch shapes do not broadcast"); return NULL; }
        batch[d] = na == 1 ? nb : na;
    }
    int nd = 0;
    for (int d = 0; d < bnd; d++) shape[nd++] = batch[d];
    if (a->ndim > 1) shape[nd++] = n;
    if (b->ndim > 1) shape[nd++] = m;
    Array *out = new_array(F32, nd, shape);
    /* the batch dimensions of A and B, broadcast: walk them with A and B as "arrays" */
    Array Ab = A, Bb = B;
    Ab.ndim = A.ndim - 2;
    Bb.ndim = B.ndim - 2;
    int64_t bs[2][MAXD];
    broadcast_strides(&Ab, bnd, batch, bs[0]);
    broadcast_strides(&Bb, bnd, batch, bs[1]);
    const Array *arrays[2] = {&A, &B};
    int64_t count = 1;
    for (int d = 0; d < bnd; d++) count *= batch[d];
    Walk w;
    walk_start(&w, bnd, batch, 2, arrays, (const int64_t(*)[MAXD])bs);
    float *o = (float *)out->st->data;
    int64_t as0 = A.strides[A.ndim - 2], as1 = A.strides[A.ndim - 1];
    int64_t bs0 = B.strides[B.ndim - 2], bs1 = B.strides[B.ndim - 1];
    for (int64_t t = 0; t < count; t++, walk_next(&w)) {
        const float *pa = (const float *)a->st->data + w.offsets[0];
        const float *pb = (const float *)b->st->data + w.offsets[1];
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < m; j++) {
                double s = 0;
                for (int64_t q = 0; q < k; q++) s += (double)pa[i * as0 + q * as1] * pb[q * bs0 + j * bs1];
                o[(t * n + i) * m + j] = (float)s;
            }
    }
    return out;
}

/* ------------------------------------------------------------------ the request loop */
static Buf reply;

static void reply_start(J *req) {
    reply.len = 0;
    put(&reply, "{\"id\":%lld", (long long)as_int(get(req, "id")));
}

static void put_shape(const Array *a) {
    put(&reply, "[");
    for (int d = 0; d < a->ndim; d++) put(&reply, d ? ",%lld" : "%lld", (long long)a->shape[d]);
    put(&reply, "]");
}

/* the first failure, kept for the next synchronising reply */
static char pending[1400];
static int have_pending;

static void remember_failure(J *req) {
    if (have_pending) return;
    J *id = get(req, "id"), *op = get(req, "op");
    Buf b = {pending, 0, sizeof pending};
    char message[1100];
    size_t m = 0;
    for (const char *c = error_message; *c && m < sizeof message - 2; c++) {
        if (*c == '"' || *c == '\\') message[m++] = '\\';
        message[m++] = *c;
    }
    message[m] = 0;
    /* the shapes and dtypes of the request's array arguments, in the protocol's order */
    static const char *ARGS[] = {"cond", "x", "a", "b", "index", "value", "src", "values"};
    char shapes[256] = "", dtypes[128] = "";
    size_t ns = 0, nt = 0;
    for (int k = 0; k < 8; k++) {
        J *h = get(req, ARGS[k]);
        Slot *slot = h && h->t == J_NUM ? table_find(as_int(h)) : NULL;
        if (!slot || slot->a->failed || ns > 200 || nt > 100) continue;
        const Array *x = slot->a;
        ns += snprintf(shapes + ns, sizeof shapes - ns, "%s[", ns ? "," : "");
        for (int d = 0; d < x->ndim && ns < 240; d++)
            ns += snprintf(shapes + ns, sizeof shapes - ns, d ? ",%lld" : "%lld", (long long)x->shape[d]);
        ns += snprintf(shapes + ns, sizeof shapes - ns, "]");
        nt += snprintf(dtypes + nt, sizeof dtypes - nt, "%s\"%s\"", nt ? "," : "", DTYPE_NAMES[x->dtype]);
    }
    snprintf(b.s, b.cap, "{\"request\":%lld,\"op\":\"%s\",\"type\":\"%s\",\"message\":\"%s\","
             "\"shapes\":[%s],\"dtypes\":[%s]}",
             (long long)as_int(id), op && op->t == J_STR ? op->str : "?", error_type, message,
             shapes, dtypes);
    have_pending = 1;
}

static void reply_status(void) {   /* "ok", or the pending error (then forgotten) */
    if (have_pending) { put(&reply, ",\"ok\":false,\"error\":%s", pending); have_pending = 0; }
    else put(&reply, ",\"ok\":true");
}

static void store(J *req, Array *result) {
    J *out = get(req, "out");
    if (out && out->t == J_ARR && out->n == 1 && result) table_put(as_int(&out->items[0]), result);
    else if (result) release(result);
}

static void mark_failed(J *req) {   /* the request's results (or its written array) fail */
    J *out = get(req, "out");
    for (int k = 0; out && out->t == J_ARR && k < out->n; k++) {
        Array *a = calloc(1, sizeof(Array));
        a->failed = 1;
        table_put(as_int(&out->items[k]), a);
    }
    J *x = get(req, "x");
    const char *op = get(req, "op") ? get(req, "op")->str : "";
    if (x && !strcmp(op, "setitem")) { Slot *s = table_find(as_int(x)); if (s) s->a->failed = 1; }
}

static const char *HELLO =
    ",\"ok\":true,\"protocol\":1,\"name\":\"tinyc\",\"devices\":[{\"name\":\"host memory (C)\"}],"
    "\"dtypes\":[\"float32\",\"float64\",\"float16\",\"bfloat16\",\"int8\",\"int16\",\"int32\","
    "\"int64\",\"uint8\",\"bool\"],"
    "\"primitives\":[\"empty\",\"reshape\",\"permute\",\"broadcast_to\",\"windows\",\"getitem\","
    "\"setitem\",\"copy\",\"contiguous\","
    "{\"name\":\"full\",\"dtypes\":[\"float32\",\"float64\",\"int8\",\"int16\",\"int32\",\"int64\","
    "\"uint8\",\"bool\"]},"
    "{\"name\":\"unary\",\"dtypes\":[\"float32\"],\"names\":[\"neg\",\"abs\",\"exp\",\"log\",\"sqrt\","
    "\"sin\",\"cos\",\"tanh\",\"reciprocal\",\"sigmoid\"]},"
    "{\"name\":\"binary\",\"dtypes\":[\"float32\"],\"names\":[\"add\",\"sub\",\"mul\",\"div\","
    "\"maximum\",\"minimum\"]},"
    "{\"name\":\"reduce\",\"dtypes\":[\"float32\"],\"names\":[\"sum\",\"max\",\"min\"]},"
    "{\"name\":\"matmul\",\"dtypes\":[\"float32\"]}],"
    "\"kernels\":[],\"shared_memory\":false,\"max_inline_bytes\":4611686018427387904}";

/* One request; returns 1 when the session ends. */
static int handle(J *req, unsigned char *payload, uint64_t nbytes) {
    J *opj = get(req, "op");
    const char *op = opj && opj->t == J_STR ? opj->str : "";
    failing = 0;
    if (!strcmp(op, "hello")) {
        reply_start(req);
        if (as_int(get(req, "protocol")) != 1) {
            put(&reply, ",\"ok\":false,\"error\":{\"message\":\"the tinyc plugin speaks protocol 1\"}}");
            write_frame(&reply, NULL, 0);
            return 1;
        }
        put(&reply, "%s", HELLO);
        write_frame(&reply, NULL, 0);
        return 0;
    }
    if (!strcmp(op, "free")) {
        J *hs = get(req, "handles");
        for (int k = 0; hs && k < hs->n; k++) table_remove(as_int(&hs->items[k]));
        return 0;
    }
    if (!strcmp(op, "sync")) {
        reply_start(req);
        reply_status();
        put(&reply, "}");
        write_frame(&reply, NULL, 0);
        return 0;
    }
    if (!strcmp(op, "to_bytes")) {
        Array *x = arg(req, "x");
        reply_start(req);
        if (!x) remember_failure(req);
        if (have_pending || !x) { reply_status(); put(&reply, "}"); write_frame(&reply, NULL, 0); return 0; }
        Array *c = is_contiguous(x) ? NULL : contiguous_copy(x);
        const Array *src = c ? c : x;
        put(&reply, ",\"ok\":true,\"shape\":");
        put_shape(x);
        put(&reply, ",\"dtype\":\"%s\"}", DTYPE_NAMES[x->dtype]);
        write_frame(&reply, at(src, src->offset), (uint64_t)numel(x) * ITEMSIZE[x->dtype]);
        if (c) release(c);
        return 0;
    }
    Array *result = NULL;
    int64_t shape[MAXD];
    if (!strcmp(op, "from_bytes") || !strcmp(op, "empty") || !strcmp(op, "full")) {
        int dtype = dtype_of(get(req, "dtype") ? get(req, "dtype")->str : NULL);
        int nd = read_shape(get(req, "shape"), shape);
        if (dtype < 0 || nd < 0) fail("ValueError", "%s: a bad shape or dtype", op);
        else {
            result = new_array(dtype, nd, shape);
            if (!strcmp(op, "from_bytes")) {
                if (nbytes != (uint64_t)numel(result) * ITEMSIZE[dtype]) {
                    release(result);
                    result = NULL;
                    fail("ValueError", "from_bytes: %llu bytes for that shape and dtype", (unsigned long long)nbytes);
                } else memcpy(result->st->data, payload, nbytes);
            } else if (!strcmp(op, "full")) {
                if (dtype == F16 || dtype == BF16) { release(result); result = NULL; fail("NotImplementedError", "full: not for half precision"); }
                else fill(result, as_float(get(req, "value")));
            }
        }
    } else if (!strcmp(op, "reshape")) result = op_reshape(req);
    else if (!strcmp(op, "permute")) result = op_permute(req);
    else if (!strcmp(op, "broadcast_to")) result = op_broadcast_to(req);
    else if (!strcmp(op, "windows")) result = op_windows(req);
    else if (!strcmp(op, "getitem")) result = op_getitem(req);
    else if (!strcmp(op, "setitem")) op_setitem(req);
    else if (!strcmp(op, "copy") || !strcmp(op, "contiguous")) {
        Array *x = arg(req, "x");
        if (x) result = contiguous_copy(x);
    } else if (!strcmp(op, "unary")) result = op_unary(req);
    else if (!strcmp(op, "binary")) result = op_binary(req);
    else if (!strcmp(op, "reduce")) result = op_reduce(req);
    else if (!strcmp(op, "matmul")) result = op_matmul(req);
    else fail("NotImplementedError", "the primitive '%s' is not offered by this plugin", op);
    if (failing) {
        remember_failure(req);
        mark_failed(req);
        if (result) release(result);
    } else store(req, result);
    J *wants = get(req, "reply");
    if (wants && wants->num) { reply_start(req); reply_status(); put(&reply, "}"); write_frame(&reply, NULL, 0); }
    return 0;
}

int main(void) {
    reply.cap = 4096;
    reply.s = malloc(reply.cap);
    unsigned char prefix[16];
    while (read_exactly(prefix, 16) == 0) {
        if (memcmp(prefix, "GRD1", 4)) { fprintf(stderr, "tinyc: not a frame\n"); return 2; }
        uint32_t h = 0;
        uint64_t p = 0;
        for (int k = 3; k >= 0; k--) h = h << 8 | prefix[4 + k];
        for (int k = 7; k >= 0; k--) p = p << 8 | prefix[8 + k];
        char *head = malloc(h + 1);
        unsigned char *payload = p ? malloc(p) : NULL;
        if (read_exactly(head, h) || (p && read_exactly(payload, p))) { fprintf(stderr, "tinyc: a cut frame\n"); return 2; }
        head[h] = 0;
        J req;
        jp = head;
        int done = 0;
        if (parse_value(&req) || req.t != J_OBJ) fprintf(stderr, "tinyc: a header that is not a JSON object\n");
        else done = handle(&req, payload, p);
        free_json(&req);
        free(head);
        free(payload);
        if (done) break;
    }
    return 0;
}
