"""Op table entries for shape and movement: reshape, squeeze, permute, expand, cat, split, flip ...

Ops that take a list of tensors get them as separate arguments (``lambda m, a, b, c:
m.cat([a, b, c])``) so that each one is a leaf the driver can check gradients for.
"""

import numpy as np

from .op_info import OpInfo, Sample, arr, ints

OPS = [
    # ------------------------------------------------------------------ reshaping
    OpInfo("reshape", lambda m, a, shape: a.reshape(shape), lambda r: [
        Sample((arr(r, 3, 4), (2, -1))),
        Sample((arr(r, 2, 3, 4), (4, 6)), name="merge"),
        Sample((arr(r), (1,)), name="0-d"),
        Sample((arr(r, 1, 1), ()), name="to-0-d"),
        Sample((arr(r, 0, 3), (3, -1, 2)), name="empty"),
    ]),
    # view needs compatible strides, so only contiguous inputs (test_shape checks the error)
    OpInfo("view", lambda m, a, shape: a.view(shape), lambda r: [
        Sample((arr(r, 3, 4), (4, 3))),
        Sample((arr(r, 2, 6), (-1,)), name="flat"),
        Sample((arr(r), (1, 1)), name="0-d"),
    ], noncontiguous=False),
    OpInfo("view_as", lambda m, a, b: a.view_as(b), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 2, 6)), grad=(0,)),
    ], noncontiguous=False),
    OpInfo("reshape_as", lambda m, a, b: a.reshape_as(b), lambda r: [
        Sample((arr(r, 3, 4), arr(r, 2, 6)), grad=(0,)),
    ]),
    OpInfo("flatten", lambda m, a, **k: m.flatten(a, **k), lambda r: [
        Sample((arr(r, 2, 3, 4),)),
        Sample((arr(r, 2, 3, 4),), {"start_dim": 1}, name="start"),
        Sample((arr(r, 2, 3, 2, 2),), {"start_dim": -3, "end_dim": -2}, name="negative"),
        Sample((arr(r),), name="0-d"),
        Sample((arr(r, 2, 0, 3),), {"start_dim": 1}, name="empty"),
    ]),
    OpInfo("ravel", lambda m, a: a.ravel(), lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("unflatten", lambda m, a, dim, sizes: a.unflatten(dim, sizes), lambda r: [
        Sample((arr(r, 3, 8), 1, (2, -1))),
        Sample((arr(r, 6, 2), -2, (3, 1, 2)), name="negative-dim"),
        Sample((arr(r, 0, 4), 1, (2, 2)), name="empty"),
    ]),
    OpInfo("squeeze", lambda m, a, *d: a.squeeze(*d), lambda r: [
        Sample((arr(r, 1, 3, 1, 2),), name="all"),
        Sample((arr(r, 1, 3, 1, 2), 2), name="int"),
        Sample((arr(r, 1, 3, 1, 2), -4), name="negative"),
        Sample((arr(r, 1, 3, 1, 2), (0, 1, 2)), name="tuple-with-non-1"),
        Sample((arr(r, 2, 3), 1), name="non-1-is-noop"),
        Sample((arr(r), 0), name="0-d"),
        Sample((arr(r, 1, 0),), name="empty"),
    ]),
    OpInfo("unsqueeze", lambda m, a, d: a.unsqueeze(d), lambda r: [
        Sample((arr(r, 3, 4), 1)),
        Sample((arr(r, 3, 4), -1), name="negative"),
        Sample((arr(r, 3, 4), -3), name="negative-front"),
        Sample((arr(r), 0), name="0-d"),
        Sample((arr(r, 0, 2), 2), name="empty"),
    ]),
    OpInfo("atleast_3d", lambda m, a, b, c: m.atleast_3d(a, b, c), lambda r: [
        Sample((arr(r), arr(r, 3), arr(r, 2, 3))),
    ]),
    # ------------------------------------------------------------------ permutations
    OpInfo("permute", lambda m, a, dims: a.permute(dims), lambda r: [
        Sample((arr(r, 2, 3, 4), (2, 0, 1))),
        Sample((arr(r, 2, 3, 4), (-1, -3, -2)), name="negative"),
        Sample((arr(r, 0, 3), (1, 0)), name="empty"),
    ]),
    OpInfo("transpose", lambda m, a, d0, d1: m.transpose(a, d0, d1), lambda r: [
        Sample((arr(r, 2, 3, 4), 0, 2)),
        Sample((arr(r, 2, 3, 4), -1, 1), name="negative"),
        Sample((arr(r), 0, -1), name="0-d"),
    ]),
    OpInfo("swapaxes", lambda m, a: a.swapaxes(0, -1), lambda r: [Sample((arr(r, 2, 3, 4),))]),
    OpInfo("swapdims", lambda m, a: m.swapdims(a, 1, 0), lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("t", lambda m, a: a.t(), lambda r: [
        Sample((arr(r, 3, 4),)), Sample((arr(r, 4),), name="1-d"), Sample((arr(r),), name="0-d"),
    ]),
    OpInfo("T", lambda m, a: a.T, lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("mT", lambda m, a: a.mT, lambda r: [Sample((arr(r, 2, 3, 4),))]),
    OpInfo("movedim", lambda m, a, s, d: m.movedim(a, s, d), lambda r: [
        Sample((arr(r, 2, 3, 4), 0, -1)),
        Sample((arr(r, 2, 3, 4), (0, 1), (2, 0)), name="tuples"),
        Sample((arr(r, 2, 3, 1, 2), (-1, 0), (0, -1)), name="negative"),
    ]),
    OpInfo("moveaxis", lambda m, a: m.moveaxis(a, 2, 0), lambda r: [Sample((arr(r, 2, 3, 4),))]),
    # ------------------------------------------------------------------ broadcasting, repetition
    OpInfo("expand", lambda m, a, *s: a.expand(*s), lambda r: [
        Sample((arr(r, 3, 1), 3, 4)),
        Sample((arr(r, 3, 1), 2, -1, 4), name="new-leading"),
        Sample((arr(r), 3, 2), name="0-d"),
        Sample((arr(r, 1, 3), 0, 3), name="to-empty"),
    ]),
    OpInfo("expand_as", lambda m, a, b: a.expand_as(b), lambda r: [
        Sample((arr(r, 1, 4), arr(r, 3, 4)), grad=(0,)),
    ]),
    OpInfo("broadcast_to", lambda m, a, s: m.broadcast_to(a, s), lambda r: [
        Sample((arr(r, 3, 1), (2, 3, 4))),
    ]),
    OpInfo("broadcast_tensors", lambda m, a, b, c: m.broadcast_tensors(a, b, c), lambda r: [
        Sample((arr(r, 3, 1), arr(r, 4), arr(r, 2, 1, 1))),
        Sample((arr(r), arr(r, 2, 3), arr(r, 1, 3)), name="0-d"),
    ]),
    OpInfo("repeat", lambda m, a, *s: a.repeat(*s), lambda r: [
        Sample((arr(r, 2, 3), 2, 2)),
        Sample((arr(r, 2, 3), 2, 1, 3), name="new-leading"),
        Sample((arr(r, 3), 1), name="ones"),
        Sample((arr(r), 2, 3), name="0-d"),
        Sample((arr(r, 2, 3), 0, 2), name="zero"),
        Sample((arr(r, 0, 3), 2, 2), name="empty"),
    ]),
    OpInfo("tile", lambda m, a, dims: m.tile(a, dims), lambda r: [
        Sample((arr(r, 2, 3), (2,))),
        Sample((arr(r, 2, 3), (2, 1, 2)), name="more-dims"),
    ]),
    OpInfo("repeat_interleave", lambda m, a, rep, **k: m.repeat_interleave(a, rep, **k), lambda r: [
        Sample((arr(r, 2, 3), 2)),
        Sample((arr(r, 2, 3), 2), {"dim": 1}, name="dim"),
        Sample((arr(r, 2, 3), 3), {"dim": -2}, name="negative-dim"),
        Sample((arr(r, 2, 3), np.array([1, 0, 2])), {"dim": 1}, name="tensor-repeats"),
        Sample((arr(r), 3), name="0-d"),
    ]),
    # ------------------------------------------------------------------ reordering
    OpInfo("flip", lambda m, a, dims: a.flip(dims), lambda r: [
        Sample((arr(r, 2, 3, 4), (0, 2))),
        Sample((arr(r, 2, 3, 4), (-1,)), name="negative"),
        Sample((arr(r, 3, 4), 1), name="int"),
        Sample((arr(r), (0,)), name="0-d"),
        Sample((arr(r, 0, 3), (0, 1)), name="empty"),
    ]),
    OpInfo("fliplr", lambda m, a: m.fliplr(a), lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("flipud", lambda m, a: m.flipud(a), lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("roll", lambda m, a, *s, **k: m.roll(a, *s, **k), lambda r: [
        Sample((arr(r, 3, 4), 1, 1)),
        Sample((arr(r, 3, 4), 5), name="flattened"),
        Sample((arr(r, 3, 4), (1, -2), (0, 1)), name="tuples"),
        Sample((arr(r, 3, 4), -7, -1), name="negative"),
        Sample((arr(r, 3, 4), 3, 0), name="full-turn"),
        Sample((arr(r), 2), name="0-d"),
        Sample((arr(r, 0, 3), 1, 0), name="empty"),
    ]),
    # ------------------------------------------------------------------ joining
    OpInfo("cat", lambda m, a, b, c, **k: m.cat([a, b, c], **k), lambda r: [
        Sample((arr(r, 2, 3), arr(r, 1, 3), arr(r, 3, 3))),
        Sample((arr(r, 2, 3), arr(r, 2, 1), arr(r, 2, 2)), {"dim": 1}, grad=(0, 2),
               name="one-without-grad"),
        Sample((arr(r, 2, 3), arr(r, 2, 0), arr(r, 2, 2)), {"dim": -1}, name="empty-piece"),
        Sample((arr(r, 2, 3), arr(r, 0), arr(r, 1, 3)), name="legacy-empty"),
        Sample((arr(r, 2, 2), ints(r, 2, 2), arr(r, 1, 2)), name="int-promoted"),
    ]),
    OpInfo("concat", lambda m, a, b: m.concat([a, b], dim=0), lambda r: [
        Sample((arr(r, 2), arr(r, 3))),
    ]),
    OpInfo("cat_single", lambda m, a: m.cat([a], -1), lambda r: [Sample((arr(r, 2, 3),))]),
    OpInfo("stack", lambda m, a, b, c, **k: m.stack([a, b, c], **k), lambda r: [
        Sample((arr(r, 2, 3), arr(r, 2, 3), arr(r, 2, 3))),
        Sample((arr(r, 2, 3), arr(r, 2, 3), arr(r, 2, 3)), {"dim": -1}, grad=(1,),
               name="last-one-grad"),
        Sample((arr(r), arr(r), arr(r)), name="0-d"),
    ]),
    OpInfo("hstack", lambda m, a, b: m.hstack([a, b]), lambda r: [
        Sample((arr(r, 2, 3), arr(r, 2, 1))),
        Sample((arr(r, 2), arr(r)), name="1-d-and-0-d"),
    ]),
    OpInfo("vstack", lambda m, a, b: m.vstack([a, b]), lambda r: [
        Sample((arr(r, 2, 3), arr(r, 3))),
    ]),
    OpInfo("dstack", lambda m, a, b: m.dstack([a, b]), lambda r: [
        Sample((arr(r, 2, 3), arr(r, 2, 3, 2))),
    ]),
    OpInfo("column_stack", lambda m, a, b: m.column_stack([a, b]), lambda r: [
        Sample((arr(r, 3), arr(r, 3, 2))),
    ]),
    # ------------------------------------------------------------------ splitting
    OpInfo("split", lambda m, a, s, **k: a.split(s, **k), lambda r: [
        Sample((arr(r, 5, 3), 2)),
        Sample((arr(r, 3, 5), [1, 0, 4]), {"dim": 1}, name="sizes"),
        Sample((arr(r, 3, 4), 4), {"dim": -1}, name="one-piece"),
        Sample((arr(r, 0, 3), 2), name="empty"),
    ]),
    # only some outputs used: the others must get zero gradient
    OpInfo("split_unused", lambda m, a: m.split(a, [1, 2, 1], dim=1)[1], lambda r: [
        Sample((arr(r, 3, 4),)),
    ]),
    OpInfo("split_unused_ends", lambda m, a: a.split(2)[0::2], lambda r: [
        Sample((arr(r, 5, 2),)),
    ]),
    OpInfo("chunk", lambda m, a, c, **k: a.chunk(c, **k), lambda r: [
        Sample((arr(r, 5, 3), 3)),
        Sample((arr(r, 3, 6), 4), {"dim": 1}, name="fewer-chunks"),
        Sample((arr(r, 0, 2), 3), name="empty"),
    ]),
    OpInfo("tensor_split", lambda m, a, s, **k: m.tensor_split(a, s, **k), lambda r: [
        Sample((arr(r, 7, 2), 3)),
        Sample((arr(r, 2, 7), [1, 4]), {"dim": 1}, name="indices"),
        Sample((arr(r, 7), [1, 5, 3, 9]), name="overlapping"),
        Sample((arr(r, 6), [-2]), name="negative-index"),
    ]),
    OpInfo("hsplit", lambda m, a: m.hsplit(a, 2), lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("vsplit", lambda m, a: m.vsplit(a, [1]), lambda r: [Sample((arr(r, 3, 4),))]),
    OpInfo("unbind", lambda m, a, **k: a.unbind(**k), lambda r: [
        Sample((arr(r, 3, 4),)),
        Sample((arr(r, 2, 3, 2),), {"dim": -1}, name="negative"),
        Sample((arr(r, 4),), name="1-d"),
    ]),
    OpInfo("narrow", lambda m, a, d, s, n: a.narrow(d, s, n), lambda r: [
        Sample((arr(r, 3, 5), 1, 1, 3)),
        Sample((arr(r, 3, 5), -2, -2, 2), name="negative"),
        Sample((arr(r, 3, 5), 0, 3, 0), name="empty"),
    ]),
    # ------------------------------------------------------------------ triangles, diagonals
    OpInfo("tril", lambda m, a, *k: a.tril(*k), lambda r: [
        Sample((arr(r, 3, 4),)),
        Sample((arr(r, 2, 3, 4), -1), name="batched"),
        Sample((arr(r, 4, 3), 2), name="above"),
        Sample((arr(r, 0, 3),), name="empty"),
    ]),
    OpInfo("triu", lambda m, a, *k: a.triu(*k), lambda r: [
        Sample((arr(r, 3, 4),)),
        Sample((arr(r, 2, 3, 3), 1), name="batched"),
        Sample((arr(r, 3, 4), -5), name="all"),
    ]),
    OpInfo("diagonal", lambda m, a, **k: a.diagonal(**k), lambda r: [
        Sample((arr(r, 3, 4),)),
        Sample((arr(r, 3, 4),), {"offset": 1}, name="offset"),
        Sample((arr(r, 4, 3),), {"offset": -2}, name="below"),
        Sample((arr(r, 2, 3, 4),), {"dim1": -1, "dim2": 0}, name="dims"),
        Sample((arr(r, 2, 3, 4),), {"offset": 1, "dim1": 1, "dim2": 2}, name="batched"),
        Sample((arr(r, 3, 4),), {"offset": 5}, name="past-the-end"),
    ]),
    OpInfo("diag_embed", lambda m, a, **k: m.diag_embed(a, **k), lambda r: [
        Sample((arr(r, 2, 3),)),
        Sample((arr(r, 2, 3),), {"offset": -1, "dim1": 0, "dim2": 2}, name="dims"),
        Sample((arr(r, 3),), {"offset": 1, "dim1": 1, "dim2": 0}, name="swapped"),
    ]),
    OpInfo("diag", lambda m, a, *k: m.diag(a, *k), lambda r: [
        Sample((arr(r, 3),), name="vector"),
        Sample((arr(r, 3), -1), name="vector-offset"),
        Sample((arr(r, 3, 4), 1), name="matrix"),
    ]),
    # ------------------------------------------------------------------ copies
    OpInfo("clone", lambda m, a: a.clone(), lambda r: [Sample((arr(r, 3, 4),)), Sample((arr(r),))]),
    OpInfo("contiguous", lambda m, a: a.contiguous(), lambda r: [Sample((arr(r, 3, 4),))]),
]

# ---------------------------------------------------------------------- grids and windows
OPS += [
    OpInfo("unfold-method", lambda m, a, *k: a.unfold(*k), lambda r: [
        Sample((arr(r, 7), 0, 3, 2), name="overlapping"),
        Sample((arr(r, 2, 6, 3), 1, 2, 3), name="gaps"),
        Sample((arr(r, 3, 5), -1, 5, 1), name="whole"),
        Sample((arr(r, 3, 5), 0, 1, 1), name="size-1"),
        Sample((arr(r, 4, 3), 0, 4, 7), name="step-past-end"),
        Sample((arr(r, 4, 3), 1, 0, 1), name="size-0"),
        Sample((arr(r), 0, 1, 1), name="0-d"),
    ]),
    OpInfo("meshgrid", lambda m, *t, **k: m.meshgrid(*t, **k), lambda r: [
        Sample((arr(r, 2), arr(r, 3)), {"indexing": "ij"}, name="ij"),
        Sample((arr(r, 2), arr(r, 3), arr(r, 4)), {"indexing": "xy"}, name="xy-3"),
        Sample((arr(r, 3),), {"indexing": "xy"}, name="one"),
        Sample((arr(r), arr(r, 2)), {"indexing": "ij"}, name="0-d"),
    ]),
    OpInfo("meshgrid-list", lambda m, a, b: m.meshgrid([a, b], indexing="xy"), lambda r: [
        Sample((ints(r, 3), ints(r, 2)), name="int"),
    ], grad=False),
    OpInfo("cartesian_prod", lambda m, *t: m.cartesian_prod(*t), lambda r: [
        Sample((arr(r, 2), arr(r, 3))),
        Sample((arr(r, 2), arr(r, 1), arr(r, 3)), name="three"),
        Sample((arr(r, 3),), name="one"),
    ]),
]
